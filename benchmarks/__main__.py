"""Run every benchmark and write ``benchmarks/RESULTS.md`` and ``benchmarks/results.json``.

    python -m benchmarks            # full: the figures (about 8 minutes here)
    python -m benchmarks --quick    # smoke run: small sizes, no assertions on timing

Each benchmark compares ours with its baseline in the same run (the machine
is shared and noisy, so only same-run ratios mean much), and each runs alone,
one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: benchmark, measure, ours, baseline, ratio, target, met
Row = tuple[str, str, str, str, str, str, str]


def _ok(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def parse_rows(r: dict[str, Any]) -> list[Row]:
    """Rows for ``bench_parse``."""
    v, ratios, t = r["variants"], r["ratios"], r["targets"]
    ours, xtd, floor = v["ours"], v["xmltodict"], v["expat"]
    mb = f"{r['document_bytes'] / 1e6:.0f} MB"
    rows: list[Row] = [
        ("parse", f"typed MOB sessions, {mb} (MB/s)", f"{ours['mb_s']:.1f}",
         f"xmltodict+convert {xtd['mb_s']:.1f}", f"{ratios['ours_vs_xmltodict']:.1f}×",
         f"≥ {t['ours_vs_xmltodict_min']:.0f}×", _ok(r["targets_met"]["ours_vs_xmltodict"])),
        ("parse", "typed throughput (MB/s)", f"{ours['mb_s']:.1f}", "—", "—",
         f"≥ {t['ours_mb_s_min']:.0f}", _ok(r["targets_met"]["ours_mb_s"])),
        ("parse", "records/s", f"{ours['records_s']:,}", f"{xtd['records_s']:,}",
         f"{ours['records_s'] / xtd['records_s']:.1f}×", "—", "—"),
        ("parse", "expat floor / ours (MB/s)", f"{ours['mb_s']:.1f}",
         f"expat {floor['mb_s']:.1f}", f"{ratios['floor_vs_ours']:.1f}×",
         f"≤ {t['floor_vs_ours_max']:.0f}×", _ok(r["targets_met"]["floor_vs_ours"])),
        ("parse", f"peak RSS growth, {mb} (MB)", f"{ours['rss_growth_mb']:.1f}",
         f"xmltodict {xtd['rss_growth_mb']:.1f}", "—", "—", "—"),
    ]  # fmt: skip
    if r.get("big"):
        big = r["big"]
        rows.append(
            ("parse", f"RSS growth, {big['bytes'] / 1e9:.1f} GB streamed (MB)",
             f"{big['rss_growth_mb']:.1f}", "—", "—", f"< {t['big_rss_growth_mb_max']:.0f}",
             _ok(r["targets_met"].get("big_rss_growth")))
        )  # fmt: skip
    return rows


def client_rows(r: dict[str, Any]) -> list[Row]:
    """Rows for ``bench_client``."""
    rows: list[Row] = []
    for conc, variants in r["phase1"].items():
        ours, aio, hx = variants["ours"], variants["aiohttp"], variants["httpx"]
        target = "≤ 1.5×" if conc == "50" else "—"
        met = _ok(r["targets"]["cpu_met"]) if conc == "50" else "—"
        rows.append(
            ("client", f"CPU ms/request at {conc} in flight", f"{ours['cpu_ms_per_req']:.3f}",
             f"aiohttp {aio['cpu_ms_per_req']:.3f} / httpx {hx['cpu_ms_per_req']:.3f}",
             f"{ours['cpu_ms_per_req'] / aio['cpu_ms_per_req']:.1f}× / "
             f"{ours['cpu_ms_per_req'] / hx['cpu_ms_per_req']:.2f}×", target, met)
        )  # fmt: skip
        rows.append(
            ("client", f"requests/s at {conc} in flight", f"{ours['req_per_s']:.0f}",
             f"aiohttp {aio['req_per_s']:.0f} / httpx {hx['req_per_s']:.0f}", "—", "—", "—")
        )  # fmt: skip
    p2 = r["phase2"]
    rows.append(
        ("client", f"50 ms latency, 100 in flight, {p2['n']:,} calls (% of ideal rate)",
         f"{p2['ours']['pct_of_ideal']:.0f}%",
         f"aiohttp {p2['aiohttp']['pct_of_ideal']:.0f}% / httpx {p2['httpx']['pct_of_ideal']:.0f}%",
         f"{p2['ours']['wall_s'] / p2['aiohttp']['wall_s']:.2f}× aiohttp wall", "≥ 90%",
         _ok(r["targets"]["rate_met"]))
    )  # fmt: skip
    return rows


def fleet_rows(r: dict[str, Any]) -> list[Row]:
    """Rows for ``bench_fleet``."""
    c, rate, mem = r["calls"], r["rate"], r["memory"]
    rows: list[Row] = [
        ("fleet", f"calls for a {c['devices']:,}-device audit", f"{c['audit_calls']:,}",
         f"naive walk {c['naive_calls']:,}", f"{c['ratio']:.2f}×",
         "= 1 + 2·clients + mob devices", _ok(c["exact"])),
    ]  # fmt: skip
    for lat in r["latency"].values():
        each = ", ".join(f"{run['ratio']:.2f}×" for run in lat["runs"])
        rows.append(
            ("fleet", f"latency-bound audit, {lat['devices']:,} devices, {lat['clients']} clients, "
             f"median of {len(lat['runs'])} runs ({each}), each against its own simulator, "
             "after that simulator's first audit "
             f"(wall s; first outcome {lat['first_outcome_s']:.2f} s, listing done "
             f"{lat['enumeration_end_s']:.2f} s; client CPU {lat['client_cpu_share']:.2f})",
             f"{lat['wall_s']:.2f}", f"ideal {lat['ideal_s']:.2f}", f"{lat['ratio']:.2f}×",
             f"≤ {lat['target_ratio']}×", _ok(lat["ratio"] <= lat["target_ratio"]))
        )  # fmt: skip
        fresh = lat["fresh_simulator"]
        firsts = ", ".join(f"{run['ratio']:.2f}×" for run in fresh["runs"])
        rows.append(
            ("fleet", "  the simulator's warm-up, not the target: each simulator's first audit, "
             f"median of {firsts} "
             "(its lazy per-device draws, first renderings of the listings and first-time "
             "code paths, on the same two cores)",
             f"{fresh['wall_s']:.2f}", f"ideal {fresh['ideal_s']:.2f}", f"{fresh['ratio']:.2f}×",
             "—", "—")
        )  # fmt: skip
        bare = lat["bare_client"]
        rows.append(
            ("fleet", f"  the floor, same run: a bare client (aiohttp + parser only) over the same "
             f"{bare['calls']:,} session calls (wall s; client/server CPU ms per call "
             f"{bare['client_cpu_ms_per_call']:.3f}/{bare['server_cpu_ms_per_call']:.3f}, "
             f"audit {lat['client_cpu_ms_per_call']:.3f}/{lat['server_cpu_ms_per_call']:.3f})",
             f"{bare['wall_s']:.2f}", f"ideal {bare['ideal_s']:.2f}", f"{bare['ratio']:.2f}×",
             "—", "—")
        )  # fmt: skip
        alone = lat["client_alone"]
        rows.append(
            ("fleet", "  our client alone, same run and simulator: NsightClient.list_mob_sessions "
             f"over the same {alone['calls']:,} calls, no fleet, listing or digest (wall s; "
             f"client/server CPU ms per call {alone['client_cpu_ms_per_call']:.3f}/"
             f"{alone['server_cpu_ms_per_call']:.3f})",
             f"{alone['wall_s']:.2f}", f"ideal {alone['ideal_s']:.2f}",
             f"{alone['ratio']:.2f}×", "—", "—")
        )  # fmt: skip
        quiet = lat["prerendered"]
        rows.append(
            ("fleet", "  diagnostic, not the target: the same audit against pre-rendered answers "
             "(benchmarks/_prerendered.py), the two cores not shared with a rendering server "
             f"(wall s; client/server CPU ms per call {quiet['client_cpu_ms_per_call']:.3f}/"
             f"{quiet['server_cpu_ms_per_call']:.3f})",
             f"{quiet['wall_s']:.2f}", f"ideal {quiet['ideal_s']:.2f}",
             f"{quiet['ratio']:.2f}×", "—", "—")
        )  # fmt: skip
    rows.append(
        ("fleet", f"rate limit {rate['rate_per_min']}/min, {rate['calls']:,} calls "
         "(over-limit answers; achieved/R)", f"{rate['over_limit']}; {rate['achieved_ratio']:.3f}",
         "—", "—", "0; ≥ 0.95",
         _ok(rate["over_limit"] == 0 and rate["achieved_ratio"] >= 0.95))
    )  # fmt: skip
    rows.append(
        ("fleet", f"peak RSS, {mem['devices']:,}-device audit into the store (MB)",
         f"{mem['peak_rss_mb']:.1f}", f"start {mem['baseline_rss_mb']:.1f}", "—",
         f"< {mem['target_peak_rss_mb']}", _ok(mem["peak_rss_mb"] < mem["target_peak_rss_mb"]))
    )  # fmt: skip
    return rows


def _versions() -> str:
    names = ("nsight-async", "httpx", "aiohttp", "attrs", "xmltodict")
    out = []
    for name in names:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} ?")
    return ", ".join(out)


def _machine() -> str:
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, {platform.platform()}"


def write_results(results: dict[str, Any], rows: list[Row], *, quick: bool, command: str) -> None:
    """Write ``RESULTS.md`` and ``results.json`` next to this file."""
    lines = [
        "# Benchmark results",
        "",
        f"- Date: {results['date']}",
        f"- Command: `{command}` ({'quick smoke run' if quick else 'full run'})",
        f"- Machine: {results['machine']} (shared and noisy: compare same-run ratios)",
        f"- Python {platform.python_version()}; {results['versions']}",
        "",
        "| benchmark | measure | ours | baseline (same run) | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", "Raw figures: `benchmarks/results.json`.", ""]
    (HERE / "RESULTS.md").write_text("\n".join(lines), "utf-8")
    (HERE / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks one after the other; write the table and the JSON."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--only", choices=["parse", "client", "fleet"], action="append", help="run only these"
    )
    args = parser.parse_args(argv)
    from . import bench_client, bench_fleet, bench_parse

    suites: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict[str, Any]], list[Row]]]]
    suites = {
        "parse": (bench_parse.main, parse_rows),
        "client": (bench_client.main, client_rows),
        "fleet": (bench_fleet.main, fleet_rows),
    }
    flag = ["--quick"] if args.quick else []
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": _versions(),
        "quick": args.quick,
    }
    rows: list[Row] = []
    for name, (run, to_rows) in suites.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        result = run(flag)
        results[name] = result
        results[f"{name}_elapsed_s"] = round(time.monotonic() - started, 1)
        rows += to_rows(result)
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    write_results(results, rows, quick=args.quick, command=command)
    print(f"\nwrote {HERE / 'RESULTS.md'} and {HERE / 'results.json'}")
    print((HERE / "RESULTS.md").read_text("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
