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
from collections.abc import Iterator, Sequence

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


@contextlib.contextmanager
def _logging(args: argparse.Namespace) -> Iterator[None]:
    """Log as the flags ask, with the key masked; put the logging setup back afterwards.

    ``main`` may be called in-process (tests, wrappers), so it must not leave
    its handlers and levels behind.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    handlers: list[logging.Handler] = []
    if args.log_file:
        file_handler = logging.FileHandler(args.log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        handlers.append(file_handler)
    if args.verbose or not args.log_file:
        stream_handler = logging.StreamHandler(sys.stderr)
        stream_handler.setLevel(level)
        handlers.append(stream_handler)
    for handler in handlers:
        handler.addFilter(RedactingFilter())  # every record, from any library, is masked
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    noisy = [logging.getLogger(name) for name in ("httpx", "aiohttp")]
    saved = (root.handlers[:], root.level, [log.level for log in noisy])
    root.handlers[:] = handlers
    root.setLevel(logging.DEBUG if args.log_file else level)
    if args.verbose < 2:
        for log in noisy:
            log.setLevel(logging.WARNING)
    install_log_filter()
    try:
        yield
    finally:
        for handler in handlers:
            handler.close()
        root.handlers[:], root.level = saved[0], saved[1]
        for log, old in zip(noisy, saved[2], strict=True):
            log.setLevel(old)


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
    with _logging(args):
        return _run(args, out, err, Session(argv))


def _run(args: argparse.Namespace, out: Console, err: Console, session: Session) -> int:
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
