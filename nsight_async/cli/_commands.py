"""The subcommands. Each takes the parsed arguments and returns an exit code.

Commands only connect, call the library and render: no URLs, no XML here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .._audit import Health
from .._auditjob import AUDIT, AuditSettings, backup_audit
from .._errors import InvalidArgumentError
from .._fleet import ClientFailure, Filters, Fleet
from .._patchjob import PatchOutcome, PatchPlan, plan_patch_retry
from .._patchrun import execute_patch_plan
from .._serial import jsonable
from .._store import RunStore
from .._vocab import DeviceKind, PatchStatus
from ._connect import connect
from ._output import audit_summary, write_audit_file, write_records
from ._progress import ProgressDisplay

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_NETWORK = 4
EXIT_INCOMPLETE = 5
EXIT_INTERRUPTED = 130

DEFAULT_AUDIT_STORE = "nsight-audit.sqlite"


class Session:
    """What a command tells ``main`` if it is interrupted: how to resume."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    resume_hint: str | None = None


def _filters(args: argparse.Namespace) -> Filters:
    types = (
        (DeviceKind.SERVER, DeviceKind.WORKSTATION)
        if args.type == "all"
        else (DeviceKind(args.type),)
    )
    return Filters(clients=args.client, sites=args.site, devices=args.device, device_types=types)


async def backup_audit_command(
    args: argparse.Namespace, out: Console, err: Console, session: Session
) -> int:
    """``backup-audit``: audit, record, summarise, write the files."""
    if args.out and Path(args.out).suffix.lower() not in {".csv", ".jsonl", ".sqlite"}:
        raise InvalidArgumentError(f"--out {args.out}: use a .csv, .jsonl or .sqlite file")
    store_path = args.store or (
        args.out if args.out and args.out.lower().endswith(".sqlite") else DEFAULT_AUDIT_STORE
    )
    words = ["nsight-async", *session.argv]
    if "--resume" not in words:
        words.append("--resume")
    resume_cmd = shlex.join(words)
    session.resume_hint = f"progress is saved in {store_path}; resume with:\n  {resume_cmd}"
    settings = AuditSettings(
        now=args.as_of or datetime.now(UTC), stale_after=args.stale_after, window=args.window
    )
    run_ids: list[str] = []
    with RunStore(store_path) as store:
        async with connect(args) as client:
            if args.resume and store.latest_run(AUDIT, unfinished=not args.retry_errors) is None:
                err.print(f"no unfinished audit in {store_path}: starting a new one")
            if not args.quiet:
                err.print(f"recording results in {store_path} (resumable with --resume)")
            with ProgressDisplay(
                "backup audit",
                console=err,
                max_per_minute=client.limits.max_per_minute,
                quiet=args.quiet,
            ) as progress:
                async for _ in backup_audit(
                    client,
                    filters=_filters(args),
                    settings=settings,
                    store=store,
                    resume=args.resume,
                    retry_errors=args.retry_errors,
                    on_progress=progress.update,
                    on_run=run_ids.append,
                ):
                    pass  # each result is already recorded in the store
        run_id = run_ids[0]
        rows = list(store.outcomes(run_id))
        failures = store.client_failures(run_id)
        params = store.run_params(run_id)
    session.resume_hint = None
    counts = audit_summary(rows, failures, out)
    if args.out and not args.out.lower().endswith(".sqlite"):
        write_audit_file(args.out, rows)
        err.print(f"wrote {len(rows)} devices to {args.out}")
    if args.html:
        from .._report import render_audit_report

        html = render_audit_report(
            rows,
            generated=datetime.now(UTC),
            settings=params["settings"],
            client_failures=failures,
        )
        await asyncio.to_thread(Path(args.html).write_text, html, "utf-8")
        err.print(f"wrote the report to {args.html}")
    if args.fail_on:
        watched = {
            "stale": {Health.STALE, Health.NEVER},
            "failing": {Health.FAILING},
            "any": {Health.STALE, Health.NEVER, Health.FAILING},
        }[args.fail_on]
        if any(counts.get(h, 0) for h in watched):
            return EXIT_UNHEALTHY
    if failures or counts.get(Health.NOT_AUDITED, 0):
        return EXIT_INCOMPLETE
    return EXIT_OK


def _statuses(names: list[str]) -> list[int]:
    if not names:
        return [PatchStatus.FAILED]
    out = []
    for name in names:
        key = name.strip().upper().replace("-", "_").replace(" ", "_")
        if key.isdigit():
            out.append(int(key))
        elif key in PatchStatus.__members__:
            out.append(int(PatchStatus[key]))
        else:
            choices = ", ".join(m.lower() for m in PatchStatus.__members__)
            raise InvalidArgumentError(f"unknown patch status {name!r}: use {choices} or a code")
    return out


def _show_plan(plan: PatchPlan, fmt: str, out: Console) -> None:
    if fmt != "table":
        write_records(
            [{"device": jsonable(i.device), "patches": jsonable(i.patches)} for i in plan.items],
            fmt,
            sys.stdout,
            out,
        )
        return
    table = Table(title="Patch retry plan", header_style="bold")
    for column in ("client", "site", "device", "patches", "titles"):
        table.add_column(column)
    for item in plan.items:
        titles = "; ".join(sorted({p.title or str(p.patch_id) for p in item.patches}))
        table.add_row(
            item.device.client_name or "-",
            item.device.site_name or "-",
            item.device.name or str(item.device.device_id),
            str(len(item.patches)),
            titles[:80] + ("…" if len(titles) > 80 else ""),
        )
    out.print(table)
    out.print(f"{len(plan.items)} devices, {plan.patch_count} patches")
    for device, error in plan.errors:
        out.print(f"[red]could not list patches on {device.name} ({device.device_id}):[/] {error}")


async def patch_retry_command(
    args: argparse.Namespace, out: Console, err: Console, session: Session
) -> int:
    """``patch-retry``: plan (dry run), or apply a plan with a journal."""
    if args.apply and not args.yes and not sys.stdin.isatty():
        # Refuse before spending a single call on planning.
        raise InvalidArgumentError("refusing to --apply without --yes when not interactive")
    async with connect(args) as client:
        plan: PatchPlan | None = None
        if args.resume:
            if not args.apply:
                raise InvalidArgumentError("--resume sends calls: add --apply (and --yes)")
        elif args.plan:
            plan = PatchPlan.load(args.plan)
        else:
            with ProgressDisplay(
                "planning", console=err, max_per_minute=client.limits.max_per_minute,
                quiet=args.quiet,
            ) as progress:  # fmt: skip
                plan = await plan_patch_retry(
                    client,
                    filters=_filters(args),
                    statuses=_statuses(args.status),
                    titles=args.title,
                    products=args.product,
                    on_progress=progress.update,
                )
        if plan is not None:
            _show_plan(plan, args.format, out)
            if args.plan_out:
                plan.save(args.plan_out)
                err.print(f"saved the plan to {args.plan_out}")
        if not args.apply:
            err.print("dry run: nothing was sent. Review the plan, then add --apply to send it.")
            return EXIT_OK
        if plan is not None and not plan.items:
            err.print("nothing to retry.")
            return EXIT_OK
        if not args.yes:
            what = "the unfinished run" if plan is None else f"{len(plan.items)} devices"
            prompt = f"Send patch_retry to {what}? This changes production machines [y/N] "
            answer = await asyncio.to_thread(input, prompt)
            if answer.strip().lower() not in {"y", "yes"}:
                err.print("cancelled: nothing was sent.")
                return EXIT_OK
        session.resume_hint = (
            f"the journal is {args.store}; resume with:\n"
            f"  nsight-async patch-retry --resume --apply --yes --store {args.store}"
        )
        states: Counter[str] = Counter()
        with RunStore(args.store) as store:
            async for outcome in execute_patch_plan(
                client, plan, store=store, resume=args.resume, resend_unknown=args.resend_unknown
            ):
                states[outcome.state] += 1
                _print_outcome(outcome, out)
        session.resume_hint = None
    out.print(
        f"done: {states['done']} calls, failed: {states['failed']}, "
        f"outcome unknown: {states['unknown']}"
    )
    return EXIT_INCOMPLETE if states["failed"] or states["unknown"] else EXIT_OK


def _print_outcome(o: PatchOutcome, out: Console) -> None:
    name = o.device.name or str(o.device.device_id)
    earlier = " (recorded by an earlier run)" if o.earlier else ""
    if o.state == "done":
        out.print(
            f"[green]done[/]    {name}: retrying {list(o.retrying)}, "
            f"already applied {list(o.already_applied)}{earlier}",
            highlight=False,
        )
    else:
        colour = "red" if o.state == "failed" else "yellow"
        out.print(f"[{colour}]{o.state}[/] {name}: {o.error}{earlier}", highlight=False)


async def listing_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """``clients``, ``sites``, ``devices``, ``patches``, ``sessions``."""
    failures = 0
    async with connect(args) as client:
        records: list[Any]
        if args.command == "clients":
            records = [c async for c in client.list_clients()]
        elif args.command == "sites":
            records = [s async for s in client.list_sites(args.client_id)]
        elif args.command == "patches":
            records = [p async for p in client.patch_list_all(args.device_id)]
        elif args.command == "sessions":
            records = [s async for s in client.list_mob_sessions(args.device_id)]
        else:
            records = []
            async for item in Fleet(client, filters=_filters(args)).devices():
                if isinstance(item, ClientFailure):
                    failures += 1
                    err.print(
                        f"[red]client {item.client.name} could not be listed:[/] {item.error}"
                    )
                else:
                    records.append(item)
    write_records(records, args.format, sys.stdout, out)
    return EXIT_INCOMPLETE if failures else EXIT_OK


async def call_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """``call SERVICE key=value…`` and ``describe SERVICE``."""
    async with connect(args) as client:
        if args.command == "describe":
            description = await client.describe(args.service)
            if args.format == "table":
                out.print(f"[bold]{description.name}[/]: {description.description or ''}")
                write_records(list(description.parameters), "table", sys.stdout, out)
            else:
                write_records([description], args.format, sys.stdout, out)
            return EXIT_OK
        params: dict[str, str] = {}
        for item in args.params:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise InvalidArgumentError(f"parameters are KEY=VALUE, got {item!r}")
            params[key] = value
        document = await client.call(args.service, **params)
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return EXIT_OK
