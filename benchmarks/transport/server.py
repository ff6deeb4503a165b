"""Loopback HTTP/1.1 benchmark server (raw asyncio protocol, no framework).

Run in its own process so that client and server each get a core::

    python -m benchmarks.transport.server [--port 0]

Prints ``PORT <n>`` on stdout (flushed) once listening on 127.0.0.1.

Per-request latency is taken from the query string: ``/anything?lat_ms=50``
(delivered with ``loop.call_later`` so the server itself stays cheap).
Responds with a ~400 byte XML body, keeps connections alive unless the
client sends ``Connection: close``.  Only bodiless requests (GET/HEAD/...)
with ``Content-Length`` bodies are understood; good enough for the benchmark.

``start_server_process()`` / ``stop_server_process()`` are helpers for the
benchmark driver (subprocess, stopped by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time

_ITEMS = "".join(f'<item id="{i}" name="item-{i:03d}" value="{i * 7}"/>' for i in range(8))
BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<result status="OK"><items>{_ITEMS}</items><count>8</count></result>\n'
).encode()

_HEAD_KEEP = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/xml\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"\r\n"
)
_HEAD_CLOSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/xml\r\n"
    b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
    b"Connection: close\r\n"
    b"\r\n"
)
RESP_KEEP = _HEAD_KEEP + BODY
RESP_CLOSE = _HEAD_CLOSE + BODY


class HTTPProtocol(asyncio.Protocol):
    __slots__ = ("buf", "loop", "need_body", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.loop = asyncio.get_running_loop()
        self.need_body = 0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def connection_lost(self, exc) -> None:  # type: ignore[override]
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        while True:
            if self.need_body:
                take = min(self.need_body, len(buf))
                buf = buf[take:]
                self.need_body -= take
                if self.need_body:
                    break
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            buf = buf[end + 4 :]
            self._handle(head)
        self.buf = buf

    def _handle(self, head: bytes) -> None:
        lower = head.lower()
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            j = lower.find(b"\r\n", i + 2)
            self.need_body = int(lower[i + 17 : j if j > 0 else None].strip())
        close = b"\r\nconnection: close" in lower
        resp = RESP_CLOSE if close else RESP_KEEP
        line_end = head.find(b"\r\n")
        reqline = head[:line_end] if line_end > 0 else head
        delay = 0.0
        k = reqline.find(b"lat_ms=")
        if k >= 0:
            e = k + 7
            while e < len(reqline) and reqline[e : e + 1].isdigit():
                e += 1
            delay = int(reqline[k + 7 : e] or b"0") / 1000.0
        if delay > 0:
            self.loop.call_later(delay, self._send, resp, close)
        else:
            self._send(resp, close)

    def _send(self, resp: bytes, close: bool) -> None:
        t = self.transport
        if t is None:
            return
        t.write(resp)
        if close:
            t.close()


async def _serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HTTPProtocol, host, port, backlog=1024, reuse_address=True)
    real_port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {real_port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    a = ap.parse_args()
    if a.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    asyncio.run(_serve(a.host, a.port))


def start_server_process(cpu: int | None = None, timeout: float = 10.0):
    """Start the server in a subprocess; return (Popen, port)."""
    cmd = [sys.executable, "-m", "benchmarks.transport.server"]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=root, text=True, bufsize=1)
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the server prints its port
    if not line.startswith("PORT ") or time.monotonic() > deadline:
        stop_server_process(proc)
        raise RuntimeError(f"server failed to start: {line!r}")
    return proc, int(line.split()[1])


def stop_server_process(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    if proc.stdout is not None:
        proc.stdout.close()


if __name__ == "__main__":
    main()
