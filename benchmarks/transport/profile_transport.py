"""cProfile one benchmark variant at a given concurrency (latency 0).

    .venv/bin/python -m benchmarks.transport.profile_transport b c d --conc 50 --n 3000

Prints the top functions by total (self) time and by cumulative time, plus
per-request call counts of the httpcore pool bookkeeping functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import time

from .bench import VARIANTS, run_load, sniffio_missing
from .server import start_server_process, stop_server_process

WATCH = (
    "_assign_requests_to_connections",
    "has_expired",
    "is_idle",
    "is_socket_readable",
    "is_available",
    "can_handle_request",
    "get_extra_info",
    "current_async_library",
    "_find_and_load",
    "poll",
    "extract_cookies",
)


async def prof_one(key: str, conc: int, n: int, url: str, top: int) -> None:
    v = {x.key: x for x in VARIANTS}[key]
    ctx = sniffio_missing() if v.no_sniffio else contextlib.nullcontext()
    with ctx:
        fetch, aclose = v.factory(conc, stream=v.stream)
        try:
            await run_load(fetch, url, max(100, 3 * conc), conc, 5.0)
            pr = cProfile.Profile()
            c0 = time.process_time()
            pr.enable()
            r = await run_load(fetch, url, n, conc, 30.0)
            pr.disable()
            cpu = time.process_time() - c0
        finally:
            await aclose()
    done = max(r["done"], 1)
    print(
        f"\n=== variant {key} ({v.desc}) conc={conc} done={r['done']} errors={r['errors']} "
        f"profiled CPU {1000 * cpu / done:.3f} ms/req (cProfile inflates absolute figures)"
    )
    st = pstats.Stats(pr)
    total = st.total_tt
    for sort in ("tottime", "cumulative"):
        s = io.StringIO()
        pstats.Stats(pr, stream=s).sort_stats(sort).print_stats(top)
        lines = s.getvalue().splitlines()
        start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls"))
        print(f"--- top {top} by {sort} (total profiled {total:.2f}s)")
        print("\n".join(lines[start : start + top + 1]))
    print("--- watched functions: calls/request, cumulative share of profiled time")
    for (fn, line, name), (_cc, nc, tt, ct, _callers) in st.stats.items():
        if name in WATCH or any(w in name for w in ("select.poll",)):
            short = fn.split("site-packages/")[-1]
            print(
                f"  {nc / done:8.1f} calls/req  cum {100 * ct / total:5.1f}%  "
                f"self {100 * tt / total:5.1f}%  {short}:{line}({name})"
            )


async def main_async(a) -> None:
    proc, port = start_server_process()
    try:
        for key in a.variants:
            await prof_one(key, a.conc, a.n, f"http://127.0.0.1:{port}/api/get", a.top)
    finally:
        stop_server_process(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--top", type=int, default=25)
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
