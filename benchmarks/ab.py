"""Compare revisions on the latency-bound audit: one server, client processes alternated.

    python -m benchmarks.ab HEAD~1 HEAD                  # simulator, 40 clients
    python -m benchmarks.ab --server pre --clients 2 071c2f8 HEAD
    python -m benchmarks.ab --rounds 6 --audits 3 HEAD /path/to/a/checkout

Each revision (a git revision, checked out in a temporary worktree, or a
directory holding a checkout) runs in its own client process; the processes
take turns, ``--rounds`` times, each running ``--audits`` audits (10,000
devices, 100 in flight, 50 ms latency, no rate limit) against one server
started from this checkout: the simulator, or pre-rendered answers
(``_prerendered.py``); each round starts with the next revision in turn.
Reported per revision and audit position: the median
and range of wall time ÷ ideal (calls × latency ÷ in flight), and the median
against the first revision's, measured in the same rounds. The full benchmark
gives each audit a fresh simulator; this one keeps one server, so the
revisions differ only in the client. Each audit takes about 3.5 s, each process
about a second more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench_latency's figures, not imported: this module runs in each revision's child process,
# which must import that revision's nsight_async first (bench_latency imports ours).
LATENCY = 0.05
IN_FLIGHT = 100
DEVICES = 10_000


async def _audit(url: str) -> float:
    from nsight_async import NsightClient, backup_audit
    from nsight_async.testing import SIMULATOR_API_KEY

    started = time.perf_counter()
    async with NsightClient(
        url, SIMULATOR_API_KEY, max_at_once=IN_FLIGHT, max_per_minute=None
    ) as client:
        async for _ in backup_audit(client):
            pass
        calls = client.calls_started
    return (time.perf_counter() - started) / (calls * LATENCY / IN_FLIGHT)


def _client(checkout: str, url: str, audits: int) -> None:
    """In a child process: audit ``audits`` times with the checkout's package; print the ratios."""
    sys.path.insert(0, checkout)
    import nsight_async

    if not Path(nsight_async.__file__).resolve().is_relative_to(Path(checkout).resolve()):
        raise SystemExit(f"imported {nsight_async.__file__}, not the checkout {checkout}")
    print(" ".join(f"{asyncio.run(_audit(url)):.4f}" for _ in range(audits)))


@contextlib.contextmanager
def _checkouts(revisions: list[str]) -> Iterator[list[str]]:
    """Yield a directory per revision: the directory itself, or a temporary git worktree."""
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nsight-ab-") as tmp:
        try:
            dirs = []
            for n, rev in enumerate(revisions):
                if Path(rev).is_dir():
                    dirs.append(str(Path(rev).resolve()))
                    continue
                where = str(Path(tmp) / f"rev{n}")
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", where, rev],
                    check=True, capture_output=True,
                )  # fmt: skip
                made.append(where)
                dirs.append(where)
            yield dirs
        finally:
            for where in made:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", where],
                    capture_output=True,
                )  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["--client"]:  # a child process: --client CHECKOUT URL AUDITS
        _client(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("revisions", nargs="+", help="git revisions or checkout directories")
    parser.add_argument("--server", choices=["sim", "pre"], default="sim")
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--audits", type=int, default=2)
    args = parser.parse_args()
    from benchmarks._simproc import simulator_process

    labels = args.revisions
    ratios: dict[str, list[list[float]]] = {r: [[] for _ in range(args.audits)] for r in labels}
    with (
        _checkouts(labels) as dirs,
        simulator_process(
            clients=args.clients, devices=DEVICES, latency=LATENCY, history_days=7,
            prerendered=args.server == "pre",
        ) as (url, _pid),
    ):  # fmt: skip
        pairs = list(zip(labels, dirs, strict=True))
        for n in range(args.rounds):
            # Each round starts with the next revision: the place in a round moved one
            # revision's medians by up to 0.03 against another (session 8, three A/Bs).
            for label, where in pairs[n % len(pairs) :] + pairs[: n % len(pairs)]:
                out = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--client", where, url,
                     str(args.audits)],
                    check=True, capture_output=True, text=True, cwd=where,
                ).stdout.split()  # fmt: skip
                for k, value in enumerate(out):
                    ratios[label][k].append(float(value))
            print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
    print(
        f"latency-bound audit, {args.server}, {args.clients} clients, {DEVICES:,} devices, "
        f"{args.rounds} rounds × {args.audits} audits per process (wall ÷ ideal)"
    )
    first = labels[0]
    for label in labels:
        for k, values in enumerate(ratios[label]):
            median = statistics.median(values)
            base = statistics.median(ratios[first][k])
            print(
                f"{label:>24}  audit {k + 1}: median {median:.3f} "
                f"(min {min(values):.3f}, max {max(values):.3f}); {median / base:.3f}× {first}'s"
            )


if __name__ == "__main__":
    main()
