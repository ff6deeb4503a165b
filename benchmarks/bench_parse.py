"""Parse benchmark: our streaming parser vs xmltodict + conversion vs bare expat.

    .venv/bin/python -m benchmarks.bench_parse            # full  (~100 MB doc + 1 GB RSS run)
    .venv/bin/python -m benchmarks.bench_parse --quick    # quick (~10 MB doc)
    .venv/bin/python -m benchmarks.bench_parse --json out.json

One ``list_mob_sessions`` document (unique sessions with realistic variety:
CDATA values, unknown plugins and statuses, empty elements, sizes > 2**32)
is written to a temporary file, then every variant runs in its own fresh
subprocess so peak RSS (``ru_maxrss``) is per variant; RSS growth is reported
above the child's baseline after its imports:

1. ``ours``: ``parser_for("list_mob_sessions")`` fed 64 KiB chunks read from
   the file; records are consumed and dropped as they come (streaming).
2. ``xmltodict``: the whole body read into memory (as existing clients hold
   ``response.content``), ``xmltodict.parse`` of it, then each session dict
   converted to the same typed ``MobSession`` records with straightforward
   conversions, kept in a list (what those clients return).
3. ``expat``: ``xml.parsers.expat.ParserCreate()`` with no handlers fed the
   same chunks: the tokenizer floor.

Each timed run is repeated (best of 3; the machine is shared and noisy) and
all variants are measured in the same run of this script. Every variant also
reports a checksum of the records it built, so ours and xmltodict are checked
to agree. Full mode adds a 1 GB document generated on the fly (never held)
fed to our parser only, to measure RSS growth.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHUNK = 64 * 1024
FULL_BYTES = 100_000_000
QUICK_BYTES = 10_000_000
BIG_BYTES = 1_000_000_000
REPEAT = 3
ROOT = Path(__file__).resolve().parent.parent

TARGETS = {
    "ours_vs_xmltodict_min": 5.0,
    "ours_mb_s_min": 30.0,
    "floor_vs_ours_max": 3.0,
    "big_rss_growth_mb_max": 50.0,
}

_PLUGINS = (
    "FILE_SYSTEM",
    "FILE_SYSTEM",
    "FILE_SYSTEM",
    "SYSTEM_STATE",
    "<![CDATA[EXCHANGE]]>",
    "NETWORK_SHARES",
    "VMWARE",
    "MSSQL",
    "SHAREPOINT",
    "ORACLE",
    "HYPER_V",
    "<![CDATA[AZURE_VM]]>",
)
_STATUSES = (
    "COMPLETED",
    "COMPLETED",
    "COMPLETED",
    "COMPLETED_WITH_ERRORS",
    "INTERRUPTED",
    "FAILED",
    "NOT_STARTED",
    "CANCELED",
    "IN_PROGRESS",
)


# -- the document ---------------------------------------------------------------


def render_session(i: int) -> str:
    """One ``<session>`` with variety drawn deterministically from ``i``."""
    day = 1 + i % 28
    hour = i % 24
    if i % 97 == 0:  # a session the server recorded with empty elements
        return (
            f"  <session>\n    <session_id>{i}</session_id>\n    <type/>\n"
            "    <storage_account_id></storage_account_id>\n    <plugin/>\n"
            "    <start>0000-00-00 00:00:00</start>\n    <end/>\n    <selection_size/>\n"
            "    <selection_item_count/>\n    <size_change/>\n    <item_count_change/>\n"
            "    <removed_item_count/>\n    <processed_size/>\n    <processed_item_count/>\n"
            "    <transferred_size/>\n    <error_count/>\n    <status/>\n  </session>\n"
        )
    kind = "RESTORE" if i % 41 == 0 else "BACKUP"
    kind = f"<![CDATA[{kind}]]>" if i % 13 == 0 else kind
    size = 6_442_450_944 + i * 7919
    return (
        f"  <session>\n    <session_id>{1_000_000 + i}</session_id>\n"
        f"    <type>{kind}</type>\n"
        f"    <storage_account_id>{42000 + i % 50}</storage_account_id>\n"
        f"    <plugin>{_PLUGINS[i % len(_PLUGINS)]}</plugin>\n"
        f"    <start>2024-03-{day:02d} {hour:02d}:00:02</start>\n"
        f"    <end>2024-03-{day:02d} {hour:02d}:{i % 60:02d}:59</end>\n"
        f"    <selection_size>{size}</selection_size>\n"
        f"    <selection_item_count>{1000 + i % 100_000}</selection_item_count>\n"
        f"    <size_change>{(i % 2001) - 1000}</size_change>\n"
        f"    <item_count_change>{i % 37}</item_count_change>\n"
        f"    <removed_item_count>{i % 5}</removed_item_count>\n"
        f"    <processed_size>{size // 3}</processed_size>\n"
        f"    <processed_item_count>{i % 333}</processed_item_count>\n"
        f"    <transferred_size>{size // 7 + i}</transferred_size>\n"
        f"    <error_count>{i % 3 if i % 7 == 0 else 0}</error_count>\n"
        f"    <status>{_STATUSES[i % len(_STATUSES)]}</status>\n  </session>\n"
    )


_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<result created="2024-03-18T09:20:00-06:00" host="www.am.remote.management" status="OK">\n'
)
_TAIL = b"</result>\n"


def iter_document(total: int, *, unique: bool = True, chunk: int = CHUNK) -> Iterator[bytes]:
    """Yield a ~``total``-byte document in ``chunk`` pieces, lazily (never held whole).

    ``unique=False`` cycles a pool of 4096 pre-rendered sessions, so generating
    a 1 GB document costs almost nothing next to parsing it.
    """
    pool = [render_session(i).encode() for i in range(4096)] if not unique else []
    buf = bytearray(_HEAD)
    sent = 0
    i = 0
    while sent + len(buf) < total:
        buf += render_session(i).encode() if unique else pool[i % 4096]
        i += 1
        while len(buf) >= chunk:
            yield bytes(buf[:chunk])
            sent += chunk
            del buf[:chunk]
    yield bytes(buf) + _TAIL


def write_document(path: Path, total: int) -> int:
    """Write the benchmark document to ``path``; return its size in bytes."""
    size = 0
    with path.open("wb") as out:
        for piece in iter_document(total):
            out.write(piece)
            size += len(piece)
    return size


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while piece := f.read(CHUNK):
            yield piece


# -- the variants (run inside a child process) -------------------------------------


def _checksum(records: Any) -> list[int]:
    """An order-insensitive digest of records, to check the variants agree."""
    count = total = stamp = 0
    for r in records:
        count += 1
        total += (r.selection_size or 0) + (r.transferred_size or 0) + r.session_id
        stamp += int(r.start.timestamp()) if r.start is not None else 0
        stamp += len(r.plugin or "") + len(r.status or "")
    return [count, total, stamp]


class _Digest:
    """Accumulates :func:`_checksum` over records as they stream past."""

    def __init__(self) -> None:
        self.value = [0, 0, 0]

    def add(self, records: list[Any]) -> None:
        for i, v in enumerate(_checksum(records)):
            self.value[i] += v


def run_ours(path: Path) -> tuple[int, list[int]]:
    from nsight_async import parser_for

    parser = parser_for("list_mob_sessions", {"deviceid": "1"})
    digest = _Digest()
    for piece in read_chunks(path):
        digest.add(parser.feed(piece))
    digest.add(parser.close())
    return digest.value[0], digest.value


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _utc(value: str | None) -> datetime | None:
    if not value or value.startswith("0000"):
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def run_xmltodict(path: Path) -> tuple[int, list[int]]:
    import xmltodict

    from nsight_async import MobSession, Plugin, SessionStatus, SessionType

    body = path.read_bytes()  # existing clients hold the whole response body
    t0 = time.perf_counter()
    doc = xmltodict.parse(body)
    t1 = time.perf_counter()
    sessions = doc["result"].get("session") or []
    if isinstance(sessions, dict):  # the one-vs-many trap
        sessions = [sessions]
    records = [
        MobSession(
            session_id=int(s["session_id"]),
            type=SessionType(s["type"]) if s.get("type") else None,
            plugin=Plugin(s["plugin"]) if s.get("plugin") else None,
            status=SessionStatus(s["status"]) if s.get("status") else None,
            start=_utc(s.get("start")),
            end=_utc(s.get("end")),
            storage_account_id=_int(s.get("storage_account_id")),
            selection_size=_int(s.get("selection_size")),
            selection_item_count=_int(s.get("selection_item_count")),
            size_change=_int(s.get("size_change")),
            item_count_change=_int(s.get("item_count_change")),
            removed_item_count=_int(s.get("removed_item_count")),
            processed_size=_int(s.get("processed_size")),
            processed_item_count=_int(s.get("processed_item_count")),
            transferred_size=_int(s.get("transferred_size")),
            error_count=_int(s.get("error_count")),
        )
        for s in sessions
    ]
    t2 = time.perf_counter()
    _PHASES["parse_s"] = min(_PHASES.get("parse_s", t1 - t0), t1 - t0)
    _PHASES["convert_s"] = min(_PHASES.get("convert_s", t2 - t1), t2 - t1)
    return len(records), _checksum(records)


def run_expat(path: Path) -> tuple[int, list[int]]:
    from xml.parsers import expat

    parser = expat.ParserCreate()
    for piece in read_chunks(path):
        parser.Parse(piece, False)
    parser.Parse(b"", True)
    return 0, [0, 0, 0]


#: Best time of each phase of a variant, when it has phases (xmltodict: parse, convert).
_PHASES: dict[str, float] = {}

VARIANTS = {"ours": run_ours, "xmltodict": run_xmltodict, "expat": run_expat}


def _maxrss_bytes() -> int:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def child_variant(variant: str, path: Path, repeat: int) -> dict[str, Any]:
    """Run one variant ``repeat`` times in this (fresh) process; return timings and RSS."""
    import xmltodict  # noqa: F401

    import nsight_async  # noqa: F401  # imports are part of the baseline, not the growth

    size = path.stat().st_size
    gc.collect()
    baseline = _maxrss_bytes()
    times = []
    count, checksum = 0, [0, 0, 0]
    for _ in range(repeat):
        t0 = time.perf_counter()
        count, checksum = VARIANTS[variant](path)
        times.append(time.perf_counter() - t0)
        gc.collect()
    best = min(times)
    return {
        "variant": variant,
        "bytes": size,
        "records": count,
        "checksum": checksum,
        "times_s": [round(t, 4) for t in times],
        "best_s": round(best, 4),
        "mb_s": round(size / 1e6 / best, 2),
        "records_s": round(count / best) if count else None,
        "rss_growth_mb": round((_maxrss_bytes() - baseline) / 1e6, 1),
        "phases_s": {k: round(v, 4) for k, v in _PHASES.items()},
    }


def child_big(total: int) -> dict[str, Any]:
    """Feed a ``total``-byte document generated on the fly to our parser; report RSS growth."""
    from nsight_async import parser_for

    pieces = iter_document(total, unique=False)
    gc.collect()
    baseline = _maxrss_bytes()
    parser = parser_for("list_mob_sessions", {"deviceid": "1"})
    count = fed = 0
    t0 = time.perf_counter()
    for piece in pieces:
        fed += len(piece)
        count += len(parser.feed(piece))
    count += len(parser.close())
    elapsed = time.perf_counter() - t0
    return {
        "variant": "ours-1GB-streamed",
        "bytes": fed,
        "records": count,
        "best_s": round(elapsed, 2),
        "mb_s": round(fed / 1e6 / elapsed, 2),
        "records_s": round(count / elapsed),
        "rss_growth_mb": round((_maxrss_bytes() - baseline) / 1e6, 1),
    }


# -- the driver ----------------------------------------------------------------------


def _spawn(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_parse", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'variant':<20}{'MB/s':>9}{'records/s':>12}{'best s':>9}{'RSS growth MB':>15}"
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = f"{r['records_s']:,}" if r.get("records_s") else "-"
        lines.append(
            f"{r['variant']:<20}{r['mb_s']:>9.1f}{rate:>12}{r['best_s']:>9.2f}"
            f"{r['rss_growth_mb']:>15.1f}"
        )
    return "\n".join(lines)


def run_benchmark(*, quick: bool, repeat: int = REPEAT) -> dict[str, Any]:
    """Build the document, run every variant in its own child, and compare."""
    target = QUICK_BYTES if quick else FULL_BYTES
    with tempfile.TemporaryDirectory(prefix="bench_parse_") as tmp:
        path = Path(tmp) / "list_mob_sessions.xml"
        size = write_document(path, target)
        variants = {
            name: _spawn(["--child", name, "--doc", str(path), "--repeat", str(repeat)])
            for name in ("expat", "ours", "xmltodict")
        }
    big = None if quick else _spawn(["--child-big", str(BIG_BYTES)])
    ours, xtd, floor = variants["ours"], variants["xmltodict"], variants["expat"]
    ratios = {
        "ours_vs_xmltodict": round(ours["mb_s"] / xtd["mb_s"], 2),
        "floor_vs_ours": round(floor["mb_s"] / ours["mb_s"], 2),
    }
    verdict = {
        "ours_vs_xmltodict": ratios["ours_vs_xmltodict"] >= TARGETS["ours_vs_xmltodict_min"],
        "ours_mb_s": ours["mb_s"] >= TARGETS["ours_mb_s_min"],
        "floor_vs_ours": ratios["floor_vs_ours"] <= TARGETS["floor_vs_ours_max"],
        "records_agree": ours["checksum"] == xtd["checksum"],
    }
    if big is not None:
        verdict["big_rss_growth"] = big["rss_growth_mb"] < TARGETS["big_rss_growth_mb_max"]
    return {
        "benchmark": "bench_parse",
        "mode": "quick" if quick else "full",
        "document_bytes": size,
        "chunk_bytes": CHUNK,
        "repeat": repeat,
        "timing": f"best of {repeat}, each variant in a fresh subprocess",
        "python": platform.python_version(),
        "machine": f"{platform.machine()} x{os.cpu_count()}",
        "variants": variants,
        "big": big,
        "ratios": ratios,
        "targets": TARGETS,
        "targets_met": verdict,
    }


def _report(result: dict[str, Any]) -> None:
    rows = [result["variants"][n] for n in ("ours", "xmltodict", "expat")]
    if result["big"] is not None:
        rows.append(result["big"])
    print(
        f"list_mob_sessions document: {result['document_bytes'] / 1e6:.1f} MB, "
        f"{rows[0]['records']:,} sessions, {CHUNK // 1024} KiB chunks, {result['timing']}"
    )
    print(_table(rows))
    r, t, ok = result["ratios"], result["targets"], result["targets_met"]

    def mark(key: str) -> str:
        return "OK" if ok[key] else "MISS"

    print(
        f"ours vs xmltodict+convert: {r['ours_vs_xmltodict']:.1f}x "
        f"(target >= {t['ours_vs_xmltodict_min']:.0f}x) {mark('ours_vs_xmltodict')}"
    )
    print(
        f"ours throughput: {rows[0]['mb_s']:.1f} MB/s (target >= {t['ours_mb_s_min']:.0f}) "
        f"{mark('ours_mb_s')}"
    )
    print(
        f"expat floor vs ours: {r['floor_vs_ours']:.1f}x (target <= {t['floor_vs_ours_max']:.0f}x) "
        f"{mark('floor_vs_ours')}"
    )
    phases = result["variants"]["xmltodict"]["phases_s"]
    print(
        f"xmltodict phases (best): parse {phases['parse_s']:.2f} s, "
        f"convert to MobSession {phases['convert_s']:.2f} s"
    )
    print(f"records agree (ours vs xmltodict checksum): {ok['records_agree']}")
    if result["big"] is not None:
        print(
            f"1 GB streamed: RSS growth {result['big']['rss_growth_mb']:.1f} MB "
            f"(target < {t['big_rss_growth_mb_max']:.0f}) {mark('big_rss_growth')}"
        )


def main(argv: list[str] | None = None, *, quick: bool | None = None) -> dict[str, Any]:
    """Run the benchmark and return its results; ``main(quick=True)`` for an aggregate runner."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_parse", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="~10 MB document, no 1 GB run")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    ap.add_argument("--repeat", type=int, default=REPEAT, help="timed runs per variant (best of)")
    ap.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    ap.add_argument("--doc", help=argparse.SUPPRESS)
    ap.add_argument("--child-big", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args([] if argv is None and quick is not None else argv)
    if args.child:
        result = child_variant(args.child, Path(args.doc), args.repeat)
        print(json.dumps(result))
        return result
    if args.child_big:
        result = child_big(args.child_big)
        print(json.dumps(result))
        return result
    result = run_benchmark(quick=args.quick if quick is None else quick, repeat=args.repeat)
    _report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
