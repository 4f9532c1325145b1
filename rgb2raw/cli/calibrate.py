"""`rgb2raw calibrate DATA -o OUT --camera NAME`: fit a camera's inverse ISP from pairs.

stdout: the before/after score and every fitted parameter. stderr: a progress bar per stage.
The run folder OUT is a model: `rgb2raw infer --model OUT`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rgb2raw.cli import common
from rgb2raw.cli._app import app, command_options, reports_errors
from rgb2raw.cli.common import CameraName, Overwrite, Quiet, Verbose
from rgb2raw.errors import OutputExists


@app.command(**command_options("calibrate"))
@reports_errors
def calibrate(
    data: Annotated[Path, typer.Argument(
        metavar="DATA",
        help="Pairs: a challenge-layout folder (DATA/train or DATA with {scene}_{k}.jpg + "
             ".npy) or a folder of DNG + JPEG pairs with the same stem.", show_default=False)],
    output: Annotated[Path, common.output_option(
        "Run folder to write: model.onnx + model.json (a model for infer --model), "
        "params.npz, fit.json.", "FOLDER")],
    camera: Annotated[str, typer.Option(
        "--camera", metavar="NAME", help="Name of the camera being calibrated (recorded in "
                                         "the model).", show_default=False)],
    base: Annotated[CameraName, typer.Option(
        "--base", case_sensitive=False,
        help="Camera profile to start from and to compare with (its uncalibrated formula).")
    ] = "generic",
    seed: Annotated[int, typer.Option(
        "--seed", metavar="INTEGER", help="Seed of the held-out split and of the sampling.")] = 0,
    overwrite: Overwrite = False,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Fit a camera's pixel-wise inverse ISP from RAW + JPEG pairs; writes a model for infer."""
    if not camera.strip():
        common.usage_error("give the camera a name", "--camera")
    common.check_output_folder(output)
    if output.exists() and not overwrite:
        raise OutputExists(output)

    from rgb2raw import progress
    from rgb2raw.calibrate.run import calibrate as run_calibration

    with progress.bars("count") as bars:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        result = run_calibration(data, output, camera_name=camera, base=base.lower(),
                                 overwrite=overwrite, seed=seed, progress=on_progress)
    for line in result.lines:
        typer.echo(line)
    typer.echo(f"wrote {result.out} (use: rgb2raw infer --model {result.out} ...)")
