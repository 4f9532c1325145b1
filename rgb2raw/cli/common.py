"""The conventions every command shares, in one place.

- Options: `-o/--output` (`output_option`), `--overwrite` with `--force` as a hidden alias
  where a command had it (`Overwrite`, `ForceAlias`, `overwrite_flags`), `--skip-existing`,
  `-q/-v/-vv` after the subcommand as well as before it (`Verbose`, `Quiet`), and the camera
  choice (`camera_option`): listed in --help, case-insensitive, validated by typer.
- Usage mistakes exit 2 (`usage_error`); the library's `InvalidParameter` is one too.
- Library errors name library parameters; `flag_for` spells them as this command's flags.
- Outputs are checked once, before any work (`check_output_folder`, `check_output_file`).

Only light modules are imported here: `rgb2raw --help` and shell completion must not pay
for numpy, OpenCV, torch or ONNX Runtime (a test guards it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import typer

from rgb2raw import progress
from rgb2raw.cameras import CAMERA_NAMES
from rgb2raw.errors import OutputExists, Rgb2RawError, unwritable

# The camera choice, built from the one list of cameras. mypy sees a plain string; typer sees
# the Literal, validates it (exit 2) and lists it in --help.
if TYPE_CHECKING:
    CameraName = str
else:
    CameraName = Literal[CAMERA_NAMES]

Backend = Literal["auto", "onnx", "torch"]
ComputeDevice = Literal["cpu", "cuda"]

# ----------------------------------------------------------------------------- verbosity

_verbosity = {"root": 0, "command": 0, "quiet": False}


class _LineFormatter(logging.Formatter):
    """``warning: ...``; info and debug lines also carry the logger's short name."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno < logging.WARNING:
            short = record.name.removeprefix("rgb2raw.").removeprefix("rgb2raw")
            return f"{record.levelname.lower()}: {short + ': ' if short else ''}{text}"
        return f"{record.levelname.lower()}: {text}"


def configure_logging(verbosity: int) -> None:
    """Library log records to stderr: -1 errors only, 0 warnings, 1 info, 2+ debug."""
    logger = logging.getLogger("rgb2raw")
    level = logging.WARNING - 10 * verbosity
    logger.setLevel(max(logging.DEBUG, min(logging.ERROR, level)))
    ours = [h for h in logger.handlers if getattr(h, "_rgb2raw", False)]
    for old in ours:  # a fresh handler on the current stderr (tests and rich swap it)
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    handler._rgb2raw = True  # type: ignore[attr-defined]
    logger.addHandler(handler)


def _apply_verbosity() -> None:
    quiet = bool(_verbosity["quiet"])
    configure_logging(-1 if quiet else int(_verbosity["root"]) + int(_verbosity["command"]))
    progress.set_enabled(not quiet)


def set_verbosity(*, verbose: int, quiet: bool, root: bool) -> None:
    """Record -v/-q given before (`root`) or after the subcommand; both count."""
    if root:
        _verbosity.update(root=verbose, command=0, quiet=quiet)
    else:
        _verbosity["command"] = verbose
        _verbosity["quiet"] = bool(_verbosity["quiet"]) or quiet
    _apply_verbosity()


def is_quiet() -> bool:
    return bool(_verbosity["quiet"])


def _on_verbose(value: int) -> int:
    set_verbosity(verbose=value, quiet=is_quiet(), root=False)
    return value


def _on_quiet(value: bool) -> bool:
    if value:
        set_verbosity(verbose=int(_verbosity["command"]), quiet=True, root=False)
    return value


# Every command takes these too, so `rgb2raw infer ... -v` works like `rgb2raw -v infer ...`.
# The values reach the command only through the callbacks (expose_value=False).
Verbose = Annotated[int, typer.Option(
    "--verbose", "-v", count=True, expose_value=False, callback=_on_verbose, metavar="",
    show_default=False, help="More log lines on stderr: -v info, -vv debug.")]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", expose_value=False, callback=_on_quiet, metavar="",
    help="Only errors on stderr: no warnings, no progress bars.")]

# ----------------------------------------------------------------------------- shared options


def report_existing(existing: list[tuple[Path, Path]], folder: Path, noun: str) -> None:
    """One stderr line for outputs kept because they already exist: the file itself when there
    is one, else the output folder with the count. `existing` holds (input, output) pairs."""
    if len(existing) == 1:
        source, target = existing[0]
        where = f"{source}: output {target}" if source != target else f"{target}:"
        typer.echo(f"error: {where} already exists (use --overwrite to replace it, or "
                   "--skip-existing)", err=True)
    elif existing:
        typer.echo(f"error: {folder}: {len(existing)} {noun} already exist, not replaced (use "
                   "--overwrite to replace them, or --skip-existing)", err=True)


def camera_option(help_text: str, *, short: bool = True) -> Any:
    """`--camera/-c`, one of the known cameras, any case."""
    names = ("--camera", "-c") if short else ("--camera",)
    return typer.Option(*names, case_sensitive=False, help=help_text)


def output_path(text: str) -> Path:
    """Parse an output path, refusing ``''`` (which `Path` would turn into ``.``) and ``-``."""
    if text.strip() == "":
        raise typer.BadParameter("an empty path is not an output")
    if text == "-":
        raise typer.BadParameter("'-' (standard output) cannot hold these files; give a path")
    return Path(text)


def output_option(help_text: str, metavar: str = "PATH", *, hidden: bool = False) -> Any:
    """`-o/--output` (the path parsed by `output_path`)."""
    return typer.Option("--output", "-o", metavar=metavar, help=help_text, show_default=False,
                        parser=output_path, hidden=hidden)


Overwrite = Annotated[bool, typer.Option(
    "--overwrite", metavar="", help="Replace outputs that already exist.")]
SkipExisting = Annotated[bool, typer.Option(
    "--skip-existing", metavar="", help="Leave outputs that already exist alone; do the rest.")]
# The old spelling, kept working but no longer shown.
ForceAlias = Annotated[bool, typer.Option("--force", hidden=True, metavar="",
                                          help="Old spelling of --overwrite.")]


def flag(*names: str, help_text: str) -> Any:
    """An on/off option with no value shown in --help."""
    return typer.Option(*names, metavar="", help=help_text)


def overwrite_flags(*, overwrite: bool, skip_existing: bool = False, force: bool = False) -> bool:
    """The effective --overwrite; a usage error when it meets --skip-existing."""
    overwrite = overwrite or force
    if overwrite and skip_existing:
        usage_error("--skip-existing and --overwrite exclude each other", "--skip-existing")
    return overwrite


# ----------------------------------------------------------------------------- errors


def usage_error(message: str, flag_name: str | None = None) -> NoReturn:
    """Raise a usage mistake (exit 2), printed the way typer prints its own."""
    raise typer.BadParameter(message, param_hint=flag_name)


def flag_for(param: str) -> str | None:
    """This command's flag for a library parameter (``max_pixels`` -> ``--max-pixels``).

    Found among the running command's options by the parameter's name (the CLI names its
    options after the library's parameters); None when the command has no such option.
    """
    try:  # typer vendors click; its current-context lookup is not re-exported
        from typer.main import get_current_context
    except ImportError:  # pragma: no cover - older typer on top of click
        return None
    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    wanted = {param, param.replace("-", "_")}
    for option in ctx.command.params:
        if option.name in wanted:
            long = [o for o in option.opts if o.startswith("--")]
            return (long or list(option.opts))[0]
    return None


def describe(exc: Rgb2RawError) -> str:
    """The error as this command's user reads it: its flags, not the library's keywords."""
    return exc.message(flag_for)


# ----------------------------------------------------------------------------- outputs


def _probe_folder(folder: Path) -> None:
    """Create `folder` if needed and a file in it; undo both. Raises OSError when it cannot."""
    created: list[Path] = []
    try:
        missing = []
        current = folder
        while not current.exists():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        if current.exists() and not current.is_dir():
            raise NotADirectoryError(20, "Not a directory", str(current))
        for part in reversed(missing):
            part.mkdir()
            created.append(part)
        fd, name = tempfile.mkstemp(prefix=".rgb2raw-tmp-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    finally:
        for part in reversed(created):
            with contextlib.suppress(OSError):
                part.rmdir()


def _refuse_odd_names(path: Path, text: str) -> None:
    if text.strip() == "":
        usage_error("an empty path is not an output", "--output")
    if text == "-":
        usage_error("'-' (standard output) cannot hold these files; give a path", "--output")


def check_output_folder(path: Path, *, flag_name: str = "--output") -> None:
    """Refuse an output folder that is a file, looks like a file, or cannot be written.

    Done once before any work, so a batch fails with one line instead of one per input.
    """
    text = os.fspath(path)
    _refuse_odd_names(path, text)
    if path.exists() and not path.is_dir():
        raise Rgb2RawError(path, "exists and is not a folder")
    if not path.exists() and path.suffix and path.suffix.lower() in _FILE_SUFFIXES:
        usage_error(f"{text!r} looks like a file name, but this output is a folder", flag_name)
    try:
        _probe_folder(path)
    except OSError as exc:
        raise unwritable(path, exc) from None


def check_output_file(path: Path, *, overwrite: bool, suffixes: tuple[str, ...] = (),
                      flag_name: str = "--output") -> None:
    """Refuse an output file whose folder cannot be written, or that exists (unless `overwrite`)."""
    text = os.fspath(path)
    _refuse_odd_names(path, text)
    if suffixes and path.suffix.lower() not in suffixes:
        usage_error(f"{text!r}: expected a {' or '.join(suffixes)} file", flag_name)
    if path.is_dir():
        raise Rgb2RawError(path, "is a folder; expected a file name")
    if path.exists() and not overwrite:
        raise OutputExists(path)
    try:
        _probe_folder(path.parent)
    except OSError as exc:
        raise unwritable(path, exc) from None


# Names that say "file": an output folder named like this is almost surely a mistake.
_FILE_SUFFIXES = (".txt", ".json", ".csv", ".npy", ".png", ".jpg", ".jpeg", ".zip", ".dng",
                  ".onnx", ".pt", ".pth", ".tif", ".tiff")

__all__ = [
    "Backend",
    "CameraName",
    "ComputeDevice",
    "ForceAlias",
    "Overwrite",
    "Quiet",
    "SkipExisting",
    "Verbose",
    "camera_option",
    "check_output_file",
    "check_output_folder",
    "configure_logging",
    "describe",
    "flag",
    "flag_for",
    "is_quiet",
    "output_option",
    "output_path",
    "overwrite_flags",
    "set_verbosity",
    "usage_error",
]
