"""Coverage-guided fuzzing of the response parser with atheris (libFuzzer).

Each input picks a response shape (its first byte), split points (the next
bytes) and a body (the rest), and is fed through ``parser_for(service)``. Only
``NsightError`` may escape; anything else is a crash libFuzzer reports and saves
(``crash-*`` in the working directory). The seed corpus is ``tests/samples/``.

Usage (atheris needs Linux or macOS and CPython <= 3.11 wheels)::

    pip install atheris
    python benchmarks/fuzz_atheris.py -max_total_time=60          # one minute
    python benchmarks/fuzz_atheris.py -runs=100000 some/crash-file  # replay a crash

``NSIGHT_FUZZ_SKIP_KNOWN=1`` treats the parser bugs already reported
(``RecursionError`` on deep nesting, ``LookupError`` on an unknown declared
encoding, a ``str`` field holding a dict or list) as non-crashes, so a run can
look for new ones.
"""

from __future__ import annotations

import itertools
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["nsight_async"]):
    from nsight_async import NsightError, parser_for

SHAPES: tuple[tuple[str, dict[str, str], dict[str, bool]], ...] = (
    ("list_clients", {}, {}),
    ("list_sites", {"clientid": "100"}, {}),
    ("list_servers", {"siteid": "200000"}, {}),
    ("list_workstations", {"siteid": "200000"}, {}),
    ("list_devices_at_client", {"clientid": "100", "devicetype": "server"}, {}),
    ("list_mob_sessions", {"deviceid": "1000001"}, {}),
    ("patch_list_all", {"deviceid": "1000001"}, {}),
    ("patch_retry", {"deviceid": "1000001", "patchids": "1,2"}, {}),
    ("list_mob_sessions", {}, {"describe": True}),
    ("list_checks", {"deviceid": "1000001"}, {}),
)
SKIP_KNOWN = os.environ.get("NSIGHT_FUZZ_SKIP_KNOWN", "") not in {"", "0"}
KNOWN = (RecursionError, LookupError)
TEXT_FIELDS = ("name", "client_name", "site_name", "title", "product", "description")


def fuzz_one(data: bytes) -> None:
    """Parse one fuzzer input; raise on anything but typed records or an NsightError."""
    if len(data) < 3:
        return
    service, params, flags = SHAPES[data[0] % len(SHAPES)]
    cuts = sorted({data[1] * 7, data[2] * 131})
    body = data[3:]
    points = [0, *(c for c in cuts if c < len(body)), len(body)]
    parser = parser_for(service, params, **flags)
    records = []
    try:
        for start, end in itertools.pairwise(points):
            records += parser.feed(body[start:end])
        records += parser.close()
    except NsightError:
        return
    except KNOWN:
        if SKIP_KNOWN:
            return
        raise
    for record in records:
        for name in TEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and not isinstance(value, str):
                if SKIP_KNOWN:
                    return
                raise TypeError(f"{type(record).__name__}.{name} is {type(value).__name__}")


def main() -> None:
    """Run libFuzzer with the samples as the seed corpus (prepended to argv)."""
    samples = Path(__file__).resolve().parents[1] / "tests" / "samples"
    corpus = Path(tempfile.mkdtemp(prefix="nsight-fuzz-corpus-"))
    for i, sample in enumerate(sorted(samples.glob("*"))):
        for shape in range(len(SHAPES)):
            (corpus / f"{i}-{shape}").write_bytes(bytes([shape, 0, 0]) + sample.read_bytes())
    args = [sys.argv[0], *sys.argv[1:]]
    if not any(not a.startswith("-") for a in sys.argv[1:]):
        args.append(str(corpus))
    atheris.Setup(args, fuzz_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
