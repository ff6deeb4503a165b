"""Render records as a table, JSON, JSON Lines or CSV; and the audit summary."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from .._audit import AuditSummary, Health, verdict_of, worst_first
from .._serial import jsonable

#: Table columns per record type (the full record goes to json/jsonl/csv).
COLUMNS: Mapping[str, Sequence[str]] = {
    "Client": ("client_id", "name", "server_count", "workstation_count", "device_count"),
    "Site": ("site_id", "name", "client_id", "connection_ok", "creation_date"),
    "Device": ("device_id", "kind", "name", "os", "online", "last_boot_time"),
    "DeviceAtClient": ("device_id", "kind", "name", "client_name", "site_name", "mob", "patch"),
    "Patch": ("patch_id", "status", "title", "product", "install_date"),
    "MobSession": ("session_id", "plugin", "status", "start", "end", "transferred_size"),
    "ServiceParameter": ("name", "type", "required", "default", "description"),
}


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested dicts to dotted keys and lists to ``;``-joined text (for CSV)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            out.update(flatten(item, f"{name}."))
        elif isinstance(item, list):
            out[name] = ";".join(
                json.dumps(v) if isinstance(v, dict | list) else str(v) for v in item
            )
        else:
            out[name] = item
    return out


def write_records(records: Iterable[Any], fmt: str, out: TextIO, console: Console) -> int:
    """Write records in ``fmt``; return how many were written."""
    count = 0
    if fmt == "jsonl":
        for record in records:
            out.write(json.dumps(jsonable(record), ensure_ascii=False) + "\n")
            count += 1
        return count
    records = list(records)
    rows = [jsonable(r) for r in records]
    if fmt == "json":
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return len(rows)
    if fmt == "csv":
        write_csv((flatten(r) for r in rows), out)
        return len(rows)
    kind = type(records[0]).__name__ if records else ""
    columns = COLUMNS.get(kind) or (list(rows[0]) if rows else [])
    table = Table(show_lines=False, header_style="bold")
    for column in columns:
        is_id = column.endswith("_id")  # ids must stay whole, to be copied
        table.add_column(column, no_wrap=is_id, min_width=len(column) if is_id else None)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)
    console.print(f"{len(rows)} rows")
    return len(rows)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def write_csv(rows: Iterable[Mapping[str, Any]], out: TextIO) -> None:
    """Write dict rows as CSV, with the union of their keys as the header."""
    rows = list(rows)
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


# -- the audit ------------------------------------------------------------------

AUDIT_CSV_COLUMNS = (
    "client_name", "site_name", "device_name", "device_kind", "device_id", "client_id",
    "site_id", "verdict", "last_success", "last_success_age_hours", "consecutive_failures",
    "failing_plugins", "last_session_start", "last_session_status", "sessions",
    "window_sessions", "window_failures", "window_errors", "window_transferred_bytes", "error",
)  # fmt: skip


def audit_csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """One spreadsheet row per device from a stored outcome."""
    detail = row.get("detail") or {}
    out = {k: row.get(k) for k in AUDIT_CSV_COLUMNS if k in row}
    for key in AUDIT_CSV_COLUMNS:
        if key in detail:
            value = detail[key]
            out[key] = ";".join(value) if isinstance(value, list) else value
    out["error"] = row.get("error") or ""
    return {k: out.get(k) for k in AUDIT_CSV_COLUMNS}


def write_audit_file(path: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write audit results to ``.csv`` or ``.jsonl`` (``.sqlite`` is the store itself)."""
    target = Path(path)
    suffix = target.suffix.lower()
    buffer = io.StringIO()
    if suffix == ".csv":
        write_csv((audit_csv_row(r) for r in rows), buffer)
    elif suffix == ".jsonl":
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    else:
        raise ValueError(f"unsupported output {path!r}: use .csv, .jsonl or .sqlite")
    target.write_text(buffer.getvalue(), "utf-8", newline="")


_STYLE = {
    Health.NEVER: "bold red",
    Health.STALE: "dark_orange",
    Health.FAILING: "red",
    Health.NOT_AUDITED: "grey50",
    Health.NOT_ENABLED: "grey70",
    Health.HEALTHY: "green",
}


def audit_summary(
    rows: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]], console: Console
) -> Counter[Health]:
    """Print the summary table, worst first, and the worst devices; return the counts."""
    counts = AuditSummary.of_rows(rows).by_health
    table = Table(title="Backup audit", header_style="bold")
    table.add_column("verdict")
    table.add_column("devices", justify="right")
    table.add_column("share", justify="right")
    total = max(1, len(rows))
    for health in Health:
        table.add_row(
            f"[{_STYLE[health]}]{health.value.replace('_', ' ')}[/]",
            str(counts.get(health, 0)),
            f"{100 * counts.get(health, 0) / total:.0f}%",
        )
    table.add_row("[bold]total[/]", str(len(rows)), "")
    console.print(table)
    worst = sorted((r for r in rows if verdict_of(r).unhealthy), key=worst_first)[:10]
    if worst:
        t = Table(title="Worst devices", header_style="bold")
        for column in ("client", "site", "device", "verdict", "last success", "failures"):
            t.add_column(column)
        for r in worst:
            d = r.get("detail") or {}
            age = d.get("last_success_age_hours")
            t.add_row(
                r.get("client_name") or "-", r.get("site_name") or "-", r.get("device_name") or "-",
                f"[{_STYLE[verdict_of(r)]}]{verdict_of(r).value}[/]",
                "never" if age is None else f"{age / 24:.1f} days ago",
                str(d.get("consecutive_failures", 0)),
            )  # fmt: skip
        console.print(t)
    for f in failures:
        console.print(
            f"[red]client {f.get('client_name')!s} ({f.get('client_id')}) could not be listed:[/] "
            f"{f.get('error')}"
        )
    return counts
