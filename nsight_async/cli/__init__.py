"""The ``nsight-async`` command line (also ``python -m nsight_async``).

``main(argv)`` parses, sets up logging with the key masked, runs the
subcommand and maps what happened to an exit code (see ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from rich.console import Console

from .._errors import (
    ApiError,
    ConfigurationError,
    InvalidArgumentError,
    NsightError,
    TransportError,
    WriteOutcomeUnknownError,
)
from .._redact import RedactingFilter, install_log_filter, redact
from ._args import build_parser
from ._commands import (
    EXIT_API,
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_USAGE,
    Session,
    backup_audit_command,
    call_command,
    listing_command,
    patch_retry_command,
)

__all__ = ["main"]


def _setup_logging(args: argparse.Namespace, err: Console) -> None:
    level = logging.WARNING
    if args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    handlers: list[logging.Handler] = []
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file, encoding="utf-8"))
    if args.verbose or not args.log_file:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.addFilter(RedactingFilter())  # every record, from any library, is masked
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(logging.DEBUG if args.log_file else level)
    for handler in handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.setLevel(level)
    if args.verbose < 2:
        logging.getLogger("httpx").setLevel(logging.WARNING)
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
    install_log_filter()


async def _dispatch(args: argparse.Namespace, out: Console, err: Console, session: Session) -> int:
    if args.command == "backup-audit":
        return await backup_audit_command(args, out, err, session)
    if args.command == "patch-retry":
        return await patch_retry_command(args, out, err, session)
    if args.command in {"call", "describe"}:
        return await call_command(args, out, err)
    return await listing_command(args, out, err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "simulate":
        from ..testing import run_simulator

        return run_simulator(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    _setup_logging(args, err)
    session = Session()
    try:
        return asyncio.run(_dispatch(args, out, err, session))
    except KeyboardInterrupt:
        err.print("\n[yellow]interrupted[/]: stopped cleanly.")
        if session.resume_hint:
            err.print(session.resume_hint, highlight=False)
        return EXIT_INTERRUPTED
    except (ConfigurationError, InvalidArgumentError) as exc:
        err.print(f"[red]error:[/] {redact(str(exc))}", highlight=False)
        return EXIT_USAGE
    except ApiError as exc:
        err.print(f"[red]API error:[/] {redact(str(exc))}", highlight=False)
        return EXIT_API
    except WriteOutcomeUnknownError as exc:
        err.print(f"[red]outcome unknown:[/] {redact(str(exc))}", highlight=False)
        return EXIT_INCOMPLETE
    except (TransportError, NsightError) as exc:
        err.print(f"[red]error:[/] {redact(str(exc))}", highlight=False)
        return EXIT_NETWORK
    except OSError as exc:
        err.print(f"[red]error:[/] {redact(str(exc))}", highlight=False)
        return EXIT_USAGE
