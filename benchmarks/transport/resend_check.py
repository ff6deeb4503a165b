"""Does a transport silently send a request twice when a connection drops?

    .venv/bin/python -m benchmarks.transport.resend_check

A loopback server (in-process, 127.0.0.1, ephemeral port) counts requests
per path and has two failure modes:

  stale : answers the 1st request on a connection; on the 2nd request on the
          same (kept-alive) connection it reads the request completely, counts
          it, and closes the socket without answering.  The client first sends
          GET /warm (answered, connection kept alive), then the "write" on the
          reused connection.
  drop  : the first time a given path arrives (on any connection, even a
          brand-new one) the server counts it and closes without answering.
          Models a server/LB dropping the connection after receiving the
          request -- the case force_close/Connection: close do NOT cover.

For every transport variant we report how many times the server received the
write (1 = safe, 2 = silently resent) and what the caller saw.
Exit status 0 iff every variant marked "expect 1" received exactly one copy.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx

from .lean_transport import NO_RESEND, AiohttpLeanTransport, no_resend_middleware

try:
    import httpx_aiohttp
except ImportError:  # pragma: no cover
    httpx_aiohttp = None

_OUT = Path(__file__).resolve().parent / "resend_out.json"

BODY = b'<result status="OK"><items/></result>'
RESP = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class CountingServer(asyncio.Protocol):
    counts: ClassVar[collections.Counter[str]] = collections.Counter()
    seen_headers: ClassVar[dict[str, dict[str, str]]] = {}

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.t = transport
        self.buf = b""
        self.n_on_conn = 0
        self.need = 0

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need:
                take = min(self.need, len(self.buf))
                self.buf = self.buf[take:]
                self.need -= take
                if self.need:
                    return
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _ = lines[0].split(" ", 2)
            hdrs = {
                k.strip().lower(): v.strip()
                for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
            }
            self.need = int(hdrs.get("content-length", "0") or 0)
            path = target.split("?", 1)[0]
            self.n_on_conn += 1
            CountingServer.counts[path] += 1
            CountingServer.seen_headers[path] = hdrs
            if path.startswith("/stale/") and self.n_on_conn >= 2:
                self.t.close()  # read the request, never answer
                return
            if path.startswith("/drop/") and CountingServer.counts[path] == 1:
                self.t.close()
                return
            self.t.write(RESP)
            if hdrs.get("connection", "").lower() == "close":
                self.t.close()
                return


# ---------------------------------------------------------------- variants
# Each factory returns (send(method, url, write: bool) -> awaitable, aclose)
Send = Callable[[str, str, bool], Awaitable[Any]]


def _aiohttp(
    session_kwargs=None,
    connector_kwargs=None,
    write_headers=None,
    write_middleware=False,
    retry_off=False,
):
    def factory():
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(**(connector_kwargs or {})), **(session_kwargs or {})
        )
        if retry_off:
            session._retry_connection = False  # private switch (used by aiohttp.test_utils)

        async def send(method: str, url: str, write: bool):
            kw: dict = {}
            if write and write_headers:
                kw["headers"] = write_headers
            if write and write_middleware:
                kw["middlewares"] = (no_resend_middleware,)
            async with session.request(method, url, **kw) as r:
                await r.read()
                return r.status

        return send, session.close

    return factory


def _httpx(transport_factory=None, write_ext=None, write_headers=None):
    def factory():
        client = httpx.AsyncClient(transport=transport_factory() if transport_factory else None)

        async def send(method: str, url: str, write: bool):
            kw: dict = {}
            if write and write_ext:
                kw["extensions"] = write_ext
            if write and write_headers:
                kw["headers"] = write_headers
            r = await client.request(method, url, **kw)
            return r.status_code

        return send, client.aclose

    return factory


async def _marker_mw(req, handler):
    """Session-level middleware for httpx_aiohttp: requests carrying the
    X-Nsight-No-Resend header (stripped before sending) are never resent."""
    if req.headers.popall("X-Nsight-No-Resend", None) is not None:
        return await no_resend_middleware(req, handler)
    return await handler(req)


# (name, factory, method, expected count for the stale/drop modes or None=report only)
VARIANTS: list[tuple[str, Callable, str, dict]] = [
    ("aiohttp default, GET", _aiohttp(), "GET", {}),
    ("aiohttp default, POST (reference)", _aiohttp(), "POST", {"stale": 1, "drop": 1}),
    (
        "aiohttp TCPConnector(force_close=True), GET",
        _aiohttp(connector_kwargs={"force_close": True}),
        "GET",
        {},
    ),
    (
        "aiohttp GET + 'Connection: close' header on the write",
        _aiohttp(write_headers={"Connection": "close"}),
        "GET",
        {},
    ),
    (
        "aiohttp session._retry_connection=False (private), GET",
        _aiohttp(retry_off=True),
        "GET",
        {"stale": 1, "drop": 1},
    ),
    (
        "aiohttp per-request middlewares=(no_resend_middleware,), GET",
        _aiohttp(write_middleware=True),
        "GET",
        {"stale": 1, "drop": 1},
    ),
    ("httpx default (httpcore), GET", _httpx(), "GET", {"stale": 1, "drop": 1}),
    (
        "httpx AsyncHTTPTransport(retries=3), GET",
        _httpx(lambda: httpx.AsyncHTTPTransport(retries=3)),
        "GET",
        {"stale": 1, "drop": 1},
    ),
]
if httpx_aiohttp is not None:
    VARIANTS += [
        (
            "httpx + httpx_aiohttp.AiohttpTransport(), GET",
            _httpx(lambda: httpx_aiohttp.AiohttpTransport()),
            "GET",
            {},
        ),
        (
            "httpx + AiohttpTransport(client=ClientSession(middlewares=(marker_mw,)))"
            " + X-Nsight-No-Resend header, GET",
            _httpx(
                lambda: httpx_aiohttp.AiohttpTransport(
                    client=lambda: aiohttp.ClientSession(middlewares=(_marker_mw,))
                ),
                write_headers={"X-Nsight-No-Resend": "1"},
            ),
            "GET",
            {"stale": 1, "drop": 1},
        ),
    ]
VARIANTS += [
    ("httpx + lean AiohttpLeanTransport, GET (no flag)", _httpx(AiohttpLeanTransport), "GET", {}),
    (
        "httpx + lean AiohttpLeanTransport, GET extensions={NO_RESEND: True}",
        _httpx(AiohttpLeanTransport, write_ext={NO_RESEND: True}),
        "GET",
        {"stale": 1, "drop": 1},
    ),
]


def _outcome(res: Any) -> str:
    if isinstance(res, BaseException):
        s = type(res).__module__.split(".")[0] + "." + type(res).__name__
        cause = res.__cause__
        if cause is not None:
            s += f" (from {type(cause).__module__.split('.')[0]}.{type(cause).__name__})"
        return s
    return f"HTTP {res}"


async def run_variant(idx: int, name: str, factory, method: str, base: str, mode: str) -> dict:
    send, aclose = factory()
    path = f"/{mode}/v{idx}"
    try:
        if mode == "stale":
            await asyncio.wait_for(send("GET", f"{base}/warm/v{idx}", False), 10)
        try:
            res: Any = await asyncio.wait_for(
                send(method, f"{base}{path}?op=patch_retry", True), 10
            )
        except Exception as exc:
            res = exc
        await asyncio.sleep(0.05)  # let any late resend arrive
    finally:
        await aclose()
    hdrs = CountingServer.seen_headers.get(path, {})
    return {
        "variant": name,
        "method": method,
        "mode": mode,
        "server_received": CountingServer.counts[path],
        "caller_saw": _outcome(res),
        "marker_header_leaked": "x-nsight-no-resend" in hdrs,
    }


async def main_async() -> int:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(CountingServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    rows = []
    failures = 0
    try:
        for i, (name, factory, method, expect) in enumerate(VARIANTS):
            for mode in ("stale", "drop"):
                r = await run_variant(i, name, factory, method, base, mode)
                r["expect"] = expect.get(mode)
                r["ok"] = r["expect"] is None or r["expect"] == r["server_received"]
                if not r["ok"] or r["marker_header_leaked"]:
                    failures += 1
                rows.append(r)
    finally:
        server.close()
        await server.wait_closed()
    print(
        f"aiohttp {aiohttp.__version__}, httpx {httpx.__version__}, "
        f"httpx_aiohttp {'present' if httpx_aiohttp else 'absent'}"
    )
    print(f"{'received':>8}  {'mode':5}  {'expect':6}  variant  ->  caller saw")
    for r in rows:
        exp = "-" if r["expect"] is None else str(r["expect"])
        flag = "" if r["ok"] else "   <-- UNEXPECTED"
        leak = "   <-- marker header leaked" if r["marker_header_leaked"] else ""
        print(
            f"{r['server_received']:>8}  {r['mode']:5}  {exp:6}  {r['variant']}  ->  "
            f"{r['caller_saw']}{flag}{leak}"
        )
    # a one-off report written once at the end of the run: blocking I/O is fine here
    out = _OUT
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}; {'ALL EXPECTATIONS MET' if not failures else f'{failures} UNEXPECTED'}")
    return 1 if failures else 0


def main() -> None:
    sys.exit(asyncio.run(main_async()))


if __name__ == "__main__":
    main()
