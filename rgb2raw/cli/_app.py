"""The Typer application object and the conventions every command shares.

Commands live in their own modules (`visualize.py`, `score.py`, ...) and register themselves
on `app`. Each command body is wrapped by `reports_errors`, which turns the library's
`Rgb2RawError` into one line on stderr and exit code 1. Usage errors (bad options) are Click's
and exit 2. Set RGB2RAW_DEBUG=1 to get the full traceback instead.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from rgb2raw import __version__
from rgb2raw.errors import Rgb2RawError

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="rgb2raw",
    help="Reconstruct camera RAW sensor data from the JPEGs a phone's ISP produced.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def debug_enabled() -> bool:
    """True when RGB2RAW_DEBUG asks for tracebacks instead of one-line errors."""
    return os.environ.get("RGB2RAW_DEBUG", "") not in ("", "0")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so a known error prints `error: <file>: <problem>` and exits 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except Rgb2RawError as exc:
            if debug_enabled():
                raise
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


class _WarningFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def configure_logging(verbosity: int) -> None:
    """Send the library's log records to stderr as `warning: ...` lines."""
    logger = logging.getLogger("rgb2raw")
    level = logging.WARNING - 10 * verbosity
    logger.setLevel(max(logging.DEBUG, min(logging.ERROR, level)))
    if not any(getattr(h, "_rgb2raw", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_WarningFormatter())
        handler._rgb2raw = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rgb2raw {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log output on stderr."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr."),
) -> None:
    """Reconstruct camera RAW sensor data from the JPEGs a phone's ISP produced."""
    configure_logging(-1 if quiet else verbose)
