"""`rgb2raw calibrate DATA -o OUT --camera NAME`: fit a camera's inverse ISP from pairs.

stdout: the before/after score and every fitted parameter. stderr: a progress bar per stage.
The run folder OUT is a model: `rgb2raw infer --model OUT`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rgb2raw.cameras import CAMERA_NAMES
from rgb2raw.cli._app import app, reports_errors
from rgb2raw.errors import Rgb2RawError


@app.command(rich_help_panel="Reconstruct RAW")
@reports_errors
def calibrate(
    data: Annotated[Path, typer.Argument(
        help="Pairs: a challenge-layout folder (DATA/train or DATA with {scene}_{k}.jpg + "
             ".npy) or a folder of DNG + JPEG pairs with the same stem.", show_default=False)],
    out: Annotated[Path, typer.Option(
        "--output", "-o", help="Run folder to write: model.onnx + model.json (a model for "
                               "infer --model), params.npz, fit.json.", show_default=False)],
    camera: Annotated[str, typer.Option(
        "--camera", help="Name of the camera being calibrated (recorded in the model).",
        show_default=False)],
    base: Annotated[str, typer.Option(
        "--base", help=f"Camera profile to start from and compare with: "
                       f"{', '.join(CAMERA_NAMES)}.")] = "generic",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing run folder.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out split and sampling.")] = 0,
) -> None:
    """Fit a camera's pixel-wise inverse ISP from RAW + JPEG pairs; writes a model for infer."""
    from rgb2raw.calibrate.run import calibrate as run_calibration

    if base not in CAMERA_NAMES:
        raise Rgb2RawError(None, f"--base {base!r}: choose one of {', '.join(CAMERA_NAMES)}")
    if not camera.strip():
        raise Rgb2RawError(None, "--camera: give the camera a name")
    if out.exists() and not overwrite:
        raise Rgb2RawError(out, "already exists (use --overwrite to replace it)")
    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    tasks: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)

    with progress:
        result = run_calibration(data, out, camera_name=camera, base=base, overwrite=overwrite,
                                 seed=seed, progress=on_progress)
    for line in result.lines:
        typer.echo(line)
    typer.echo(f"wrote {result.out} (use: rgb2raw infer --model {result.out} ...)")
