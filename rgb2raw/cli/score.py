"""`rgb2raw score PRED GT`: the numbers CodaLab will print, paired by stem, fast.

stdout: the worst images (10 unless --top/--all say otherwise) and, as its last line, the
means; or, with `--json -` / `--csv -`, that document alone. stderr: a progress bar for large
sets that take over a second (on a terminal, not under -q) and warnings. Exit 1 on bad input, 2 on usage mistakes.

Only light modules are imported at the top: numpy (and OpenCV, only where the C extension
rgb2raw._ssim is not built) load when the command runs, so `rgb2raw --help` does not pay for
them. Output files are checked before any scoring,
and the results are printed before they are written, so a failed write loses nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rgb2raw import progress
from rgb2raw.cli import common
from rgb2raw.cli._app import app, command_options, reports_errors
from rgb2raw.cli._plain import PlainValuesCommand
from rgb2raw.cli.common import ForceAlias, Overwrite, Quiet, Verbose
from rgb2raw.errors import OutputExists, Rgb2RawError, unwritable

if TYPE_CHECKING:
    from rgb2raw.scoring import ScoreResult

log = logging.getLogger("rgb2raw.cli")
PROGRESS_MIN_IMAGES = 50  # smaller sets finish before a bar is worth drawing
# A bar appears once scoring has taken this long: the usual set (480 pairs) finishes sooner,
# and then rich, whose import alone costs a tenth of such a run, is never imported.
PROGRESS_DELAY_S = 1.0
DEFAULT_TOP = 10
STDOUT = "-"


def _positive_finite(value: float | None) -> float | None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise typer.BadParameter(f"must be a positive number, got {value:g}")
    return value


def _check_output(path: Path | None, overwrite: bool, flag_name: str) -> None:
    """Refuse, before any work, an output file that exists, is a folder or cannot be written."""
    if path is None or str(path) == STDOUT:
        return
    if path.exists() and not path.is_dir() and not path.is_file():
        # /dev/null, a FIFO: replacing it with a regular file would be wrong.
        raise Rgb2RawError(path, "is not a regular file ('-' writes to stdout)")
    common.check_output_file(path, overwrite=overwrite, flag_name=flag_name)


def _json_text(result: ScoreResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"


def _csv_text(result: ScoreResult) -> str:
    # Stems are file stems: no commas, quotes or newlines need escaping in practice, but
    # the csv module quotes them correctly if they do.
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["stem", "psnr", "ssim"])
    for image in result.per_image:
        writer.writerow([image.stem, repr(image.psnr), repr(image.ssim)])
    return text.getvalue()


def _write_file(path: Path, text: str, overwrite: bool) -> None:
    from rgb2raw._atomic import atomic_write

    try:
        with atomic_write(path, overwrite=overwrite) as handle:
            handle.write(text.encode("utf-8"))
    except FileExistsError:
        if path.exists():
            raise OutputExists(path) from None
        raise unwritable(path, NotADirectoryError(path)) from None
    except OSError as exc:
        raise unwritable(path, exc) from None


def table_lines(result: ScoreResult, top: int | None) -> list[str]:
    """The per-image table, worst first: plain aligned text (fast for thousands of rows)."""
    shown = result.worst_first(top)
    if not shown:
        return []
    title = (f"worst {len(shown)} of {result.count}" if len(shown) < result.count
             else "per image, worst first")
    width = max(5, *(len(image.stem) for image in shown))
    lines = [title, f"{'image':<{width}}  {'PSNR (dB)':>10}  {'SSIM':>8}"]
    lines += [f"{image.stem:<{width}}  {image.psnr:>10.4f}  {image.ssim:>8.6f}" for image in shown]
    return lines


def summary_line(result: ScoreResult) -> str:
    """The last line of stdout."""
    return f"mean PSNR {result.psnr:.4f} dB  SSIM {result.ssim:.6f}  ({result.count} images)"


def _print(text: str) -> None:
    """Write to stdout; a closed pipe (`| head`) ends the output quietly, not with a traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError):  # keep the interpreter's final flush quiet too
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None


@app.command(**command_options("score"), cls=PlainValuesCommand)
@reports_errors
def score(
    pred: Annotated[Path, typer.Argument(
        metavar="PRED", help="Predicted .npy folder, or a submission .zip.", show_default=False)],
    gt: Annotated[Path, typer.Argument(
        metavar="GT", help="Ground-truth .npy folder (or .zip).", show_default=False)],
    white_level: Annotated[float | None, typer.Option(
        "--white-level", metavar="DN", callback=_positive_finite, show_default=False,
        help="Values are divided by this (default 1024, the challenge's).")] = None,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", metavar="",
        help="Score the pairs that exist instead of failing on missing/extra files.")] = False,
    allow_multiple_folders: Annotated[bool, typer.Option(
        "--allow-multiple-folders", metavar="",
        help="Score a zip whose .npy files sit in several folders as one set "
             "(the official scorer reads only one).")] = False,
    top: Annotated[int, typer.Option(
        "--top", min=0, metavar="N", help="Show the N worst images (0: only the means).")
    ] = DEFAULT_TOP,
    show_all: Annotated[bool, typer.Option(
        "--all", metavar="", help="Show every image, worst first.")] = False,
    json_path: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE",
        help="Write {psnr, ssim, count, per_image} as JSON ('-': to stdout, alone).",
        show_default=False)] = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", metavar="FILE", help="Write stem,psnr,ssim rows as CSV ('-': to stdout, alone).",
        show_default=False)] = None,
    overwrite: Overwrite = False,
    force: ForceAlias = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, metavar="N", help="Scoring threads (default: one per core).",
        show_default=False)] = None,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Score predictions like the AIM 2022 CodaLab scorer (same PSNR/SSIM), pairing files by stem."""
    overwrite = common.overwrite_flags(overwrite=overwrite, force=force)
    to_stdout = [p for p in (json_path, csv_path) if p is not None and str(p) == STDOUT]
    if len(to_stdout) > 1:
        common.usage_error("only one of --json and --csv can go to stdout ('-')", "--json")
    _check_output(json_path, overwrite, "--json")
    _check_output(csv_path, overwrite, "--csv")

    from rgb2raw import metrics, scoring  # numpy (and OpenCV, if needed): only now
    from rgb2raw.raw import CHALLENGE_WHITE_LEVEL

    if metrics.native is None:
        log.info("the C extension rgb2raw._ssim is not built: SSIM runs through OpenCV, "
                 "about 2.5x slower (reinstall with a C compiler to build it)")

    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        shown: list[tuple[progress.Bars, int]] = []  # the bar, once it is drawn

        def advance(done: int, total: int) -> None:
            if total < PROGRESS_MIN_IMAGES:
                return
            if not shown:
                if time.monotonic() - started < PROGRESS_DELAY_S:
                    return
                bars = stack.enter_context(progress.bars("count"))
                shown.append((bars, bars.task("score")))
            bars, task = shown[0]
            bars.update(task, completed=done, total=total)

        result = scoring.score(pred, gt, white_level=white_level or CHALLENGE_WHITE_LEVEL,
                               allow_missing=allow_missing,
                               allow_multiple_folders=allow_multiple_folders, workers=workers,
                               on_progress=advance if progress.is_enabled() else None)
    if result.missing:
        log.warning("%d ground-truth files have no prediction (not scored): %s",
                    len(result.missing), ", ".join(result.missing[:8]))
    if result.extra:
        log.warning("%d predictions have no ground truth (not scored): %s",
                    len(result.extra), ", ".join(result.extra[:8]))

    documents = [(json_path, _json_text), (csv_path, _csv_text)]
    if to_stdout:  # stdout carries that document alone, so it can be piped
        _print(next(render(result) for path, render in documents
                    if path is not None and str(path) == STDOUT))
    else:
        lines = table_lines(result, None if show_all else top) if (show_all or top) else []
        _print("\n".join([*lines, summary_line(result)]) + "\n")
    for path, render in documents:
        if path is not None and str(path) != STDOUT:
            _write_file(path, render(result), overwrite)
