"""The ``nsight-async`` command line (also ``python -m nsight_async``).

``main(argv)`` parses, sets up logging with the key masked, runs the
subcommand and maps what happened to an exit code (see ``--help``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
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

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a closed pipe


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

        try:
            return run_simulator(argv[1:])
        except SystemExit as exc:  # --help, or a usage error from its own parser
            return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    _setup_logging(args, err)
    session = Session(argv)
    try:
        return asyncio.run(_dispatch(args, out, err, session))
    except KeyboardInterrupt:
        err.print("\n[yellow]interrupted[/]: stopped cleanly.")
        if session.resume_hint:
            # no wrapping and no markup: the command must paste back into a shell intact
            err.print(session.resume_hint, highlight=False, markup=False, soft_wrap=True)
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
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as other tools do.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  # keeps the interpreter's final flush quiet
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        err.print(f"[red]error:[/] {redact(str(exc))}", highlight=False)
        return EXIT_USAGE
