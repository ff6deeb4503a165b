"""A simulator in a child process on loopback, for benchmarks that must not share its CPU."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def simulator_process(
    *,
    clients: int,
    devices: int,
    latency: float,
    history_days: int,
    seed: str = "bench",
    prerendered: bool = False,
) -> Iterator[tuple[str, int]]:
    """Serve a simulator from a child process on loopback; yield (URL, pid), stop it after.

    ``prerendered``: serve the answers an audit asks for, rendered before serving
    (``_prerendered.py``: a server that costs next to no CPU per call).
    """
    module = ["benchmarks._prerendered"] if prerendered else ["nsight_async.testing", "--port", "0"]
    cmd = [
        sys.executable, "-m", *module, "--seed", seed,
        "--clients", str(clients), "--devices", str(devices), "--latency", str(latency),
        "--history-days", str(history_days),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the simulator did not start: {url!r}")
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
