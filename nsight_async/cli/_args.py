"""The ``nsight-async`` argument parser: subcommands with consistent options."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

from .._version import __version__

EPILOG = """\
Configuration: flags override the environment (NSIGHT_SERVER, NSIGHT_API_KEY,
NSIGHT_MAX_PER_MINUTE, NSIGHT_MAX_AT_ONCE, NSIGHT_TIMEOUT), which overrides the
config file (--config, $NSIGHT_CONFIG or ~/.config/nsight-async/config.toml).
The API key is never echoed or written to any output.

Try anything without a key: add --demo to run it against a built-in simulator.

Exit codes: 0 success; 1 unhealthy devices found (with --fail-on); 2 usage
error; 3 API or authentication error (wrong key or region); 4 network error;
5 finished, but some devices could not be processed; 130 interrupted (Ctrl-C).
"""


def duration(text: str) -> timedelta:
    """Parse ``90m``, ``36h``, ``3d``, ``2w`` (a bare number is hours)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 36h, 3d, 2w)")
    value, unit = float(m.group(1)), m.group(2) or "h"
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    return timedelta(seconds=value * seconds)


def timestamp(text: str) -> datetime:
    """Parse an ISO 8601 time; no zone means UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _connection_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection")
    g.add_argument("--server", help="region (uk, us, americas, europe, …) or https URL")
    g.add_argument(
        "--api-key-file", metavar="FILE", help="read the API key from FILE (safer than a flag)"
    )
    g.add_argument("--config", metavar="FILE", help="TOML config file (server, api_key, limits)")
    g.add_argument(
        "--max-per-minute",
        type=float,
        metavar="N",
        help="calls per minute, spaced evenly (default 60; 0 = no limit)",
    )
    g.add_argument("--max-at-once", type=int, metavar="N", help="requests in flight (default 10)")
    g.add_argument("--timeout", type=float, metavar="S", help="seconds to wait for the server")
    g.add_argument(
        "--demo", action="store_true", help="run against a built-in simulated fleet (no key)"
    )
    o = common.add_argument_group("output")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    o.add_argument(
        "-v", "--verbose", action="count", default=0, help="log retries (-v) or everything (-vv)"
    )
    o.add_argument("--log-file", metavar="FILE", help="write the log to FILE (key masked)")
    return common


def _filters(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("which devices")
    g.add_argument(
        "--client", action="append", default=[], metavar="ID|NAME", help="client id or name glob"
    )
    g.add_argument(
        "--site", action="append", default=[], metavar="ID|NAME", help="site id or name glob"
    )
    g.add_argument(
        "--device", action="append", default=[], metavar="ID|NAME", help="device id or name glob"
    )
    g.add_argument(
        "--type",
        choices=["server", "workstation", "all"],
        default="all",
        help="device type (default: servers and workstations)",
    )


def _format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format", choices=["table", "json", "jsonl", "csv"], default="table", help="output format"
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for every subcommand."""
    common = _connection_options()
    parser = argparse.ArgumentParser(
        prog="nsight-async",
        description="Backup audits, bulk patch retries and listings for N-able N-sight RMM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"nsight-async {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=help_text,
            description=description,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    audit = add(
        "backup-audit",
        "audit every device's backups (the main job)",
        "Walk the fleet with the fewest calls the API allows (one list_clients, one\n"
        "list_devices_at_client per client and type, one list_mob_sessions per device\n"
        "with Backup & Recovery on), classify every device and print a summary,\n"
        "worst first. Results are recorded as they arrive, so an interrupted run\n"
        "resumes where it stopped (--resume).\n\n"
        "example: nsight-async backup-audit --out audit.csv --html audit.html --fail-on stale",
    )
    _filters(audit)
    a = audit.add_argument_group("audit")
    a.add_argument(
        "--stale-after", type=duration, default=timedelta(days=3), metavar="AGE",
        help="a last success older than this is stale (default 3d)",
    )  # fmt: skip
    a.add_argument(
        "--window", type=duration, default=timedelta(days=7), metavar="AGE",
        help="window for error counts and bytes transferred (default 7d)",
    )  # fmt: skip
    a.add_argument(
        "--as-of", type=timestamp, metavar="TIME",
        help="judge ages as of this time (ISO 8601, UTC if no zone; default now)",
    )  # fmt: skip
    a.add_argument(
        "--out", metavar="FILE", help="write results: .csv (one row per device), .jsonl or .sqlite"
    )
    a.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    a.add_argument(
        "--store", metavar="FILE",
        help="run store for resuming (default: the --out .sqlite, else nsight-audit.sqlite)",
    )  # fmt: skip
    a.add_argument("--resume", action="store_true", help="continue the last unfinished audit")
    a.add_argument(
        "--retry-errors", action="store_true", help="with --resume: audit failed devices again"
    )
    a.add_argument(
        "--fail-on",
        choices=["stale", "failing", "any"],
        help="exit 1 if a device is stale/never (stale), failing, or either (any)",
    )

    patch = add(
        "patch-retry",
        "retry failed patches across the fleet (dry run by default)",
        "Build a plan (which patches on which devices), show it, and only with --apply\n"
        "send one patch_retry per device. Every call is journaled before it is sent, so\n"
        "nothing is ever sent twice, even across --resume.\n\n"
        "example: nsight-async patch-retry --client 'Acme*' --plan-out plan.json\n"
        "         nsight-async patch-retry --plan plan.json --apply",
    )
    _filters(patch)
    _format(patch)
    pg = patch.add_argument_group("plan")
    pg.add_argument(
        "--status", action="append", default=[], metavar="NAME|CODE",
        help="patch status to retry (default failed); repeatable",
    )  # fmt: skip
    pg.add_argument("--title", action="append", default=[], help="patch title glob or substring")
    pg.add_argument("--product", action="append", default=[], help="product glob or substring")
    pg.add_argument("--plan-out", metavar="FILE", help="save the plan as JSON for review")
    pg.add_argument("--plan", metavar="FILE", help="execute this saved plan instead of planning")
    xg = patch.add_argument_group("execution")
    xg.add_argument("--apply", action="store_true", help="send the retries (after confirmation)")
    xg.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    xg.add_argument(
        "--store", metavar="FILE", default="nsight-patch-retry.sqlite",
        help="journal of sent calls (default nsight-patch-retry.sqlite)",
    )  # fmt: skip
    xg.add_argument("--resume", action="store_true", help="continue the last unfinished run")
    xg.add_argument(
        "--resend-unknown", action="store_true",
        help="with --resume: send again calls whose outcome is unknown (check first!)",
    )  # fmt: skip

    # name, help, description, example, positional id (None for none)
    listings = (
        ("clients", "list clients", "List clients.",
         "nsight-async clients --format csv > clients.csv", None),
        ("devices", "list devices (all clients)", "List devices of every client.",
         "nsight-async devices --type server", None),
        ("sites", "list a client's sites", "List the sites of a client.",
         "nsight-async sites 123 --format json", "client_id"),
        ("patches", "list a device's patches", "List every patch on a device.",
         "nsight-async patches 4567 --format csv", "device_id"),
        ("sessions", "list a device's backup sessions",
         "List a device's Backup & Recovery (MOB) sessions.",
         "nsight-async sessions 4567 --format jsonl", "device_id"),
    )  # fmt: skip
    for name, what, description, example, ident in listings:
        p = add(name, what, f"{description}\n\nexample: {example}")
        if ident is not None:
            p.add_argument(ident, type=int, metavar=ident.upper())
        _format(p)
        if name == "devices":
            _filters(p)
    p = add(
        "call",
        "call any service",
        "Call any read service; prints its response as JSON.\n\n"
        "example: nsight-async call list_checks deviceid=123",
    )
    p.add_argument("service")
    p.add_argument("params", nargs="*", metavar="KEY=VALUE")
    p = add(
        "describe",
        "describe a service",
        "Print a service's describe=true description.\n\n"
        "example: nsight-async describe list_mob_sessions",
    )
    p.add_argument("service")
    _format(p)
    sub.add_parser(
        "simulate",
        help="run the loopback simulator (for integration tests)",
        description="Run the N-sight simulator on 127.0.0.1; see `simulate --help`.",
        add_help=False,
    )
    return parser
