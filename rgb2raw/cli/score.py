"""`rgb2raw score PRED GT`: the numbers CodaLab will print, paired by stem, fast.

stdout: a table (worst images first) and, as its last line, the means. stderr: a progress
bar for large sets (when stderr is a terminal) and warnings. Exit 1 on any bad input.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rgb2raw.cli._app import app, reports_errors
from rgb2raw.errors import Rgb2RawError

if TYPE_CHECKING:  # imported when the command runs (start-up time of --help)
    from rich.table import Table

    from rgb2raw import scoring

CHALLENGE_WHITE_LEVEL = 1024.0  # rgb2raw.raw.CHALLENGE_WHITE_LEVEL, which imports numpy

log = logging.getLogger("rgb2raw.cli")
PROGRESS_MIN_IMAGES = 50  # smaller sets finish before a bar is worth drawing


def _check_output(path: Path | None, force: bool) -> None:
    if path is not None and path.exists() and not force:
        raise Rgb2RawError(path, "already exists (use --force to replace it)")


def _write_json(path: Path, result: scoring.ScoreResult, force: bool) -> None:
    from rgb2raw._atomic import atomic_write

    with atomic_write(path, overwrite=force) as handle:
        handle.write((json.dumps(result.to_dict(), indent=2) + "\n").encode("utf-8"))


def _write_csv(path: Path, result: scoring.ScoreResult, force: bool) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    from rgb2raw._atomic import atomic_write

    writer.writerow(["stem", "psnr", "ssim"])
    for image in result.per_image:
        writer.writerow([image.stem, repr(image.psnr), repr(image.ssim)])
    with atomic_write(path, overwrite=force) as handle:
        handle.write(text.getvalue().encode("utf-8"))


def _table(result: scoring.ScoreResult, top: int | None) -> Table:
    from rich.table import Table

    shown = result.worst_first(top)
    title = f"worst {len(shown)} of {result.count}" if len(shown) < result.count else "per image, worst first"
    table = Table(title=title, title_justify="left")
    table.add_column("image")
    table.add_column("PSNR (dB)", justify="right")
    table.add_column("SSIM", justify="right")
    for image in shown:
        table.add_row(image.stem, f"{image.psnr:.4f}", f"{image.ssim:.6f}")
    return table


def summary_line(result: scoring.ScoreResult) -> str:
    """The last line of stdout."""
    return f"mean PSNR {result.psnr:.4f} dB  SSIM {result.ssim:.6f}  ({result.count} images)"


@app.command(rich_help_panel="AIM 2022 challenge")
@reports_errors
def score(
    pred: Annotated[Path, typer.Argument(help="Predicted .npy folder, or a submission .zip.")],
    gt: Annotated[Path, typer.Argument(help="Ground-truth .npy folder.")],
    white_level: Annotated[float, typer.Option(
        "--white-level", help="Values are divided by this (the challenge's scorer uses 1024).")
    ] = CHALLENGE_WHITE_LEVEL,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Score the pairs that exist instead of failing on missing/extra files.")
    ] = False,
    top: Annotated[int | None, typer.Option(
        "--top", min=0, help="Show only the N worst images in the table.")] = None,
    json_path: Annotated[Path | None, typer.Option(
        "--json", help="Also write {psnr, ssim, count, per_image} to this JSON file.")] = None,
    csv_path: Annotated[Path | None, typer.Option(
        "--csv", help="Also write stem,psnr,ssim rows to this CSV file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing --json/--csv files.")] = False,
    workers: Annotated[int | None, typer.Option(
        "--workers", min=1, help="Scoring threads (default: one per core).")] = None,
) -> None:
    """Score predictions like the AIM 2022 CodaLab scorer (same PSNR/SSIM), pairing files by stem."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from rgb2raw import scoring

    _check_output(json_path, force)
    _check_output(csv_path, force)
    stderr = Console(stderr=True)
    with Progress(TextColumn("score"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=stderr, transient=True, disable=not stderr.is_terminal) as bars:
        task = bars.add_task("score", total=None)

        def advance(done: int, total: int) -> None:
            if total >= PROGRESS_MIN_IMAGES:
                bars.update(task, completed=done, total=total)

        result = scoring.score(pred, gt, white_level=white_level, allow_missing=allow_missing,
                               workers=workers, on_progress=advance)
    if result.missing:
        log.warning("%d ground-truth files have no prediction (not scored): %s",
                    len(result.missing), ", ".join(result.missing[:8]))
    if result.extra:
        log.warning("%d predictions have no ground truth (not scored): %s",
                    len(result.extra), ", ".join(result.extra[:8]))
    if json_path is not None:
        _write_json(json_path, result, force)
    if csv_path is not None:
        _write_csv(csv_path, result, force)
    stdout = Console(soft_wrap=True)
    if top != 0:
        stdout.print(_table(result, top))
    typer.echo(summary_line(result))
