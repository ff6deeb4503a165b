"""``python -m nsight_async.testing``: serve a simulated N-sight API on loopback."""

from nsight_async.testing._run import run_simulator

raise SystemExit(run_simulator())
