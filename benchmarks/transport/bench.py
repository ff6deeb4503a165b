"""HTTP client transport benchmark (httpx vs aiohttp vs httpx-over-aiohttp).

    .venv/bin/python -m benchmarks.transport.bench          # full  (~3-4 min)
    .venv/bin/python -m benchmarks.transport.bench --quick  # quick (<30 s)

The loopback server (benchmarks/transport/server.py) runs in a separate
process.  Every variant is measured in the same run, interleaved, and ratios
are given against raw aiohttp measured in that same run.

Phase 1 (latency 0): concurrency 1/10/50/100, client CPU s per request
(time.process_time delta of this process) and requests/s.
Phase 2 (latency 50 ms, 100 in flight, N requests): wall vs ideal
N*0.05/100.  Runs that hit the time cap report the achieved rate and the
projected wall time for N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.machinery
import itertools
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import httpx
import psutil

from .lean_transport import AiohttpLeanTransport, NoCookieJar
from .server import start_server_process, stop_server_process

try:
    import httpx_aiohttp
except ImportError:  # pragma: no cover
    httpx_aiohttp = None

try:
    import h2  # noqa: F401

    HAVE_H2 = True
except ImportError:
    HAVE_H2 = False

try:
    import sniffio  # noqa: F401

    HAVE_SNIFFIO = True
except ImportError:
    HAVE_SNIFFIO = False

HERE = os.path.dirname(os.path.abspath(__file__))
Fetch = Callable[[str], Awaitable[int]]


# --------------------------------------------------------------------------
# "sniffio missing" simulation: httpcore does `import sniffio` inside
# current_async_library() every time it sets up a lock/event.  When sniffio is
# not installed that import fails *after a full sys.path search* every time.
# We reproduce exactly that cost: a meta-path finder that performs the same
# PathFinder search for a non-existent module and then fails.
# --------------------------------------------------------------------------
class _MissingSniffio:
    def find_spec(self, name, path=None, target=None):
        if name == "sniffio" or name.startswith("sniffio."):
            importlib.machinery.PathFinder.find_spec("sniffio_is_not_installed_probe")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@contextlib.contextmanager
def sniffio_missing():
    saved = {k: v for k, v in sys.modules.items() if k == "sniffio" or k.startswith("sniffio.")}
    for k in saved:
        del sys.modules[k]
    finder = _MissingSniffio()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(saved)


# --------------------------------------------------------------------------
# Variants.  Each factory returns (fetch, aclose); fetch reads the full body.
# --------------------------------------------------------------------------
def _httpx_fetchers(client: httpx.AsyncClient, stream: bool) -> Fetch:
    if stream:

        async def fetch(url: str) -> int:
            n = 0
            async with client.stream("GET", url) as r:
                async for chunk in r.aiter_bytes():
                    n += len(chunk)
            return n

    else:

        async def fetch(url: str) -> int:
            r = await client.get(url)  # reads the body (aread)
            return len(r.content)

    return fetch


def v_aiohttp(conc: int, stream: bool = False):
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc))
    if stream:

        async def fetch(url: str) -> int:
            n = 0
            async with session.get(url) as r:
                async for chunk in r.content.iter_chunked(65536):
                    n += len(chunk)
            return n

    else:

        async def fetch(url: str) -> int:
            async with session.get(url) as r:
                return len(await r.read())

    return fetch, session.close


def v_httpx_default(conc: int, stream: bool = False):
    client = httpx.AsyncClient()
    return _httpx_fetchers(client, stream), client.aclose


def _tuned_limits(conc: int) -> httpx.Limits:
    return httpx.Limits(max_connections=conc, max_keepalive_connections=conc)


def v_httpx_tuned(conc: int, stream: bool = False):
    client = httpx.AsyncClient(limits=_tuned_limits(conc))
    return _httpx_fetchers(client, stream), client.aclose


def v_httpx_aiohttp(conc: int, stream: bool = False):
    # AiohttpTransport builds TCPConnector(limit=limits.max_connections,
    # keepalive_timeout=limits.keepalive_expiry) lazily inside the loop.
    transport = httpx_aiohttp.AiohttpTransport(limits=_tuned_limits(conc))
    client = httpx.AsyncClient(transport=transport)
    return _httpx_fetchers(client, stream), client.aclose


def v_httpx_sharded(conc: int, stream: bool = False):
    k = max(1, conc // 10)
    per = max(1, -(-conc // k))
    clients = [httpx.AsyncClient(limits=_tuned_limits(per)) for _ in range(k)]
    fetchers = [_httpx_fetchers(c, stream) for c in clients]
    rr = itertools.count()

    async def fetch(url: str) -> int:
        return await fetchers[next(rr) % k](url)

    async def aclose() -> None:
        for c in clients:
            await c.aclose()

    return fetch, aclose


def v_lean(conc: int, stream: bool = False):
    client = httpx.AsyncClient(transport=AiohttpLeanTransport(limits=_tuned_limits(conc)))
    return _httpx_fetchers(client, stream), client.aclose


def v_lean_nojar(conc: int, stream: bool = False):
    client = httpx.AsyncClient(
        transport=AiohttpLeanTransport(limits=_tuned_limits(conc)), cookies=NoCookieJar()
    )
    return _httpx_fetchers(client, stream), client.aclose


class _NullTransport(httpx.AsyncBaseTransport):
    """No network: canned response.  Measures the httpx client layer alone."""

    _body = b"x" * 426

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers=[(b"content-type", b"application/xml"), (b"content-length", b"426")],
            stream=httpx.ByteStream(self._body),
        )


def v_httpx_null(conc: int, stream: bool = False):
    client = httpx.AsyncClient(transport=_NullTransport())
    return _httpx_fetchers(client, stream), client.aclose


@dataclass
class Variant:
    key: str
    desc: str
    factory: Callable
    stream: bool = False
    no_sniffio: bool = False
    latency_phase: bool = True
    in_quick: bool = True


VARIANTS = [
    Variant("a", "aiohttp ClientSession (limit=conc) read()", v_aiohttp),
    Variant("a_s", "aiohttp ClientSession iter_chunked", v_aiohttp, stream=True),
    Variant("b", "httpx.AsyncClient() defaults, get()", v_httpx_default),
    Variant(
        "b_s",
        "httpx defaults, stream+aiter_bytes",
        v_httpx_default,
        stream=True,
        latency_phase=False,
        in_quick=False,
    ),
    Variant(
        "b_nosn",
        "httpx defaults, sniffio MISSING (simulated)",
        v_httpx_default,
        no_sniffio=True,
        latency_phase=False,
    ),
    Variant("c", "httpx Limits(conc,conc)+sniffio, get()", v_httpx_tuned),
    Variant(
        "c_s",
        "httpx Limits(conc,conc), stream+aiter_bytes",
        v_httpx_tuned,
        stream=True,
        latency_phase=False,
    ),
    Variant("d", "httpx + httpx_aiohttp.AiohttpTransport, get()", v_httpx_aiohttp),
    Variant("d_s", "httpx + AiohttpTransport, stream+aiter_bytes", v_httpx_aiohttp, stream=True),
    Variant("g", "httpx + lean aiohttp transport (ours), get()", v_lean),
    Variant("g_s", "httpx + lean transport, stream+aiter_bytes", v_lean, stream=True),
    Variant("h_s", "httpx + lean transport + NoCookieJar, stream", v_lean_nojar, stream=True),
    Variant(
        "z_s",
        "FLOOR: httpx layer only (null transport), stream",
        v_httpx_null,
        stream=True,
        latency_phase=False,
    ),
    Variant("f", "httpx sharded K=conc//10 tuned clients, get()", v_httpx_sharded),
    Variant(
        "f_s",
        "httpx sharded, stream+aiter_bytes",
        v_httpx_sharded,
        stream=True,
        latency_phase=False,
        in_quick=False,
    ),
]
if httpx_aiohttp is None:
    VARIANTS = [v for v in VARIANTS if not v.key.startswith("d")]


# --------------------------------------------------------------------------
async def run_load(fetch: Fetch, url: str, n: int, conc: int, cap_s: float):
    counter = itertools.count()
    done = 0
    errors = 0
    last_err = None
    deadline = time.perf_counter() + cap_s

    async def worker() -> None:
        nonlocal done, errors, last_err
        while next(counter) < n and time.perf_counter() < deadline:
            try:
                await fetch(url)
                done += 1
            except Exception as e:
                errors += 1
                last_err = repr(e)
                if errors > 50:
                    return

    c0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conc))), timeout=cap_s + 60)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    return {
        "done": done,
        "errors": errors,
        "last_error": last_err,
        "wall_s": wall,
        "cpu_s": cpu,
        "capped": done + errors < n,
    }


async def measure(
    v: Variant,
    conc: int,
    url: str,
    n: int,
    cap: float,
    warm_n: int,
    warm_cap: float,
    server: psutil.Process,
):
    ctx = sniffio_missing() if v.no_sniffio else contextlib.nullcontext()
    with ctx:
        fetch, aclose = v.factory(conc, stream=v.stream)
        try:
            await run_load(fetch, url, warm_n, conc, warm_cap)
            gc.collect()
            s0 = server.cpu_times()
            r = await run_load(fetch, url, n, conc, cap)
            s1 = server.cpu_times()
        finally:
            await aclose()
    r["server_cpu_s"] = (s1.user + s1.system) - (s0.user + s0.system)
    d = max(r["done"], 1)
    r["cpu_ms_per_req"] = 1000 * r["cpu_s"] / d
    r["server_cpu_ms_per_req"] = 1000 * r["server_cpu_s"] / d
    r["rps"] = r["done"] / r["wall_s"] if r["wall_s"] > 0 else 0.0
    return r


def _fmt_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


async def main_async(args) -> dict:
    quick = args.quick
    concs = [1, 10, 50, 100]
    rounds = 1 if quick else 2
    n0, cap0, warm_cap0 = (400, 0.18, 0.2) if quick else (2500, 1.0, 0.6)
    n_lat, cap_lat, warm_cap_lat = (1000, 1.5, 0.5) if quick else (10000, 10.0, 1.0)
    variants = [v for v in VARIANTS if v.in_quick] if quick else VARIANTS
    if args.variants:
        wanted = set(args.variants.split(",")) | {"a"}  # raw aiohttp is always the reference
        variants = [v for v in variants if v.key in wanted]
    lat_ms, lat_conc = 50, 100

    proc, port = start_server_process()
    results: dict = {
        "meta": {
            "mode": "quick" if quick else "full",
            "python": sys.version.split()[0],
            "httpx": httpx.__version__,
            "aiohttp": aiohttp.__version__,
            "httpx_aiohttp": getattr(httpx_aiohttp, "__version__", "0.2.0?")
            if httpx_aiohttp
            else None,
            "h2_installed": HAVE_H2,
            "sniffio_installed": HAVE_SNIFFIO,
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "platform": platform.platform(),
            "rounds_phase1": rounds,
            "phase1_n_cap": [n0, cap0],
            "phase2": {"n": n_lat, "cap_s": cap_lat, "latency_ms": lat_ms, "in_flight": lat_conc},
        },
        "variants": {},
        "phase1": {},
        "phase2": {},
    }
    results["variants"] = {v.key: v.desc for v in variants}
    if not HAVE_H2:
        print("variant (e) httpx http2: SKIPPED (h2 not installed)")
    t_start = time.perf_counter()
    try:
        server = psutil.Process(proc.pid)
        base = f"http://127.0.0.1:{port}"
        # ---------------- phase 1
        for conc in [] if args.phase2_only else concs:
            cell: dict = {}
            for rnd in range(rounds):
                order = variants if rnd % 2 == 0 else list(reversed(variants))
                for v in order:
                    r = await measure(
                        v,
                        conc,
                        f"{base}/api/get?x=1",
                        n0,
                        cap0,
                        max(50, 3 * conc),
                        warm_cap0,
                        server,
                    )
                    prev = cell.get(v.key)
                    r["rounds_cpu_ms"] = (prev["rounds_cpu_ms"] if prev else []) + [
                        r["cpu_ms_per_req"]
                    ]
                    if prev is None or r["cpu_ms_per_req"] < prev["cpu_ms_per_req"]:
                        cell[v.key] = r
                    else:
                        prev["rounds_cpu_ms"] = r["rounds_cpu_ms"]
            ref = cell["a"]
            for r in cell.values():
                r["cpu_ratio_vs_aiohttp"] = r["cpu_ms_per_req"] / ref["cpu_ms_per_req"]
                r["rps_ratio_vs_aiohttp"] = r["rps"] / ref["rps"]
            results["phase1"][str(conc)] = cell
            print(f"  phase1 conc={conc} done ({time.perf_counter() - t_start:.0f}s)", flush=True)
        # ---------------- phase 2
        ideal = n_lat * lat_ms / 1000 / lat_conc
        ideal_rps = lat_conc / (lat_ms / 1000)
        for v in variants:
            if not v.latency_phase or (quick and v.key == "f"):
                continue
            r = await measure(
                v,
                lat_conc,
                f"{base}/api/get?lat_ms={lat_ms}",
                n_lat,
                cap_lat,
                2 * lat_conc,
                warm_cap_lat,
                server,
            )
            r["ideal_s"] = ideal
            r["ideal_rps"] = ideal_rps
            r["efficiency"] = r["rps"] / ideal_rps
            r["projected_wall_s"] = n_lat / r["rps"] if r["rps"] else float("inf")
            results["phase2"][v.key] = r
            print(f"  phase2 {v.key} done ({time.perf_counter() - t_start:.0f}s)", flush=True)
        ref2 = results["phase2"]["a"]
        for r in results["phase2"].values():
            r["cpu_ratio_vs_aiohttp"] = r["cpu_ms_per_req"] / ref2["cpu_ms_per_req"]
    finally:
        stop_server_process(proc)
    results["meta"]["elapsed_s"] = time.perf_counter() - t_start
    results["meta"]["loadavg_end"] = os.getloadavg()
    return results


def report(res: dict) -> str:
    out = []
    m = res["meta"]
    out.append(
        f"mode={m['mode']} python={m['python']} httpx={m['httpx']} aiohttp={m['aiohttp']} "
        f"sniffio={m['sniffio_installed']} h2={m['h2_installed']} cpus={m['cpus']} "
        f"loadavg={tuple(round(x, 2) for x in m['loadavg_start'])}"
    )
    concs = list(res["phase1"].keys())
    out.append("\nPhase 1, latency 0: client CPU ms/request (ratio vs raw aiohttp) | requests/s")
    headers = ["variant"] + [f"c={c}" for c in concs]
    rows = []
    for key, desc in res["variants"].items():
        row = [f"{key:7s} {desc}"]
        for c in concs:
            r = res["phase1"][c].get(key)
            if r is None:
                row.append("-")
                continue
            err = f" ERR{r['errors']}" if r["errors"] else ""
            row.append(
                f"{r['cpu_ms_per_req']:.3f} ({r['cpu_ratio_vs_aiohttp']:.2f}x)"
                f" | {r['rps']:.0f}/s{err}"
            )
        rows.append(row)
    out.append(_fmt_table(headers, rows))
    srv = (
        ""
        if not concs
        else ", ".join(
            f"c={c}: {res['phase1'][c]['a']['server_cpu_ms_per_req']:.3f}" for c in concs
        )
    )
    if concs:
        out.append(f"(server CPU ms/req during aiohttp cells: {srv})")
    p2 = res["phase2"]
    if p2:
        any_r = next(iter(p2.values()))
        out.append(
            f"\nPhase 2, latency {m['phase2']['latency_ms']} ms, "
            f"{m['phase2']['in_flight']} in flight, N={m['phase2']['n']} "
            f"(ideal {any_r['ideal_s']:.2f} s = {any_r['ideal_rps']:.0f} req/s), "
            f"cap {m['phase2']['cap_s']} s"
        )
        headers = [
            "variant",
            "done",
            "wall s",
            "proj. wall s (N)",
            "req/s",
            "% of ideal",
            "CPU ms/req",
            "CPU vs aiohttp",
        ]
        rows = []
        for key, r in p2.items():
            rows.append(
                [
                    f"{key:7s} {res['variants'][key]}",
                    f"{r['done']}{' (capped)' if r['capped'] else ''}"
                    + (f" ERR{r['errors']}" if r["errors"] else ""),
                    f"{r['wall_s']:.2f}",
                    f"{r['projected_wall_s']:.2f}",
                    f"{r['rps']:.0f}",
                    f"{100 * r['efficiency']:.1f}%",
                    f"{r['cpu_ms_per_req']:.3f}",
                    f"{r['cpu_ratio_vs_aiohttp']:.2f}x",
                ]
            )
        out.append(_fmt_table(headers, rows))
    out.append(f"\nelapsed {m['elapsed_s']:.0f}s")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--out", default=None, help="default: out.json (full) / out_quick.json (--quick)"
    )
    ap.add_argument("--variants", default="", help="comma-separated keys (a is always included)")
    ap.add_argument("--phase2-only", action="store_true")
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(HERE, "out_quick.json" if args.quick else "out.json")
    res = asyncio.run(main_async(args))
    text = report(res)
    print(text)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1, default=str)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
