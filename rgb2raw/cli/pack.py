"""`rgb2raw pack PRED -o submission.zip`: a CodaLab zip that cannot be rejected.

Every file is validated first; the zip (top-level folder ``submission/``, readme.txt beside
the .npy files) is checked again after writing, and a summary goes to stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rgb2raw import __version__, submission
from rgb2raw.cli._app import app, reports_errors


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes >= 1e5 else f"{num_bytes / 1e3:.1f} kB"


@app.command(rich_help_panel="AIM 2022 challenge")
@reports_errors
def pack(
    pred: Annotated[Path, typer.Argument(help="Folder of predicted .npy files, one per validation JPEG.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The submission .zip to write.")],
    runtime: Annotated[float, typer.Option(
        "--runtime", help="Runtime per frame in seconds, reported in readme.txt.")],
    device: Annotated[submission.DeviceChoice, typer.Option(
        "--device", help="Where the runtime was measured.")] = submission.DeviceChoice.cpu,
    extra_data: Annotated[bool, typer.Option(
        "--extra-data/--no-extra-data", help="Whether training used data beyond the challenge's.")
    ] = False,
    description: Annotated[str, typer.Option(
        "--description", help="One line about the method, for readme.txt.")] = f"rgb2raw {__version__}",
    camera: Annotated[str | None, typer.Option(
        "--camera", help="s7 or p20: require that track's RAW shape and validation count (480/720).")
    ] = None,
    expect: Annotated[int | None, typer.Option(
        "--expect", min=1, help="Require exactly N .npy files (overrides the camera's count).")] = None,
    rgb_dir: Annotated[Path | None, typer.Option(
        "--rgb-dir", help="Folder of the input JPEGs: each needs its .npy, and no other .npy may exist.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing zip.")] = False,
) -> None:
    """Validate predictions and write a deterministic CodaLab submission zip."""
    info = submission.SubmissionInfo(runtime=runtime, device=device.value, extra_data=extra_data,
                                     description=description)
    summary = submission.pack(pred, output, info, camera=camera, expect=expect, rgb_dir=rgb_dir,
                              force=force)
    shape = "x".join(str(n) for n in summary.shape)
    typer.echo(f"files      {summary.count} .npy, each {shape} uint16")
    typer.echo(f"values     {summary.value_min} .. {summary.value_max}")
    if summary.float_files:
        typer.echo(f"rounded    {summary.float_files} float files, rounded and clipped to uint16 [0, 1024]")
    if summary.ignored:
        shown = ", ".join(summary.ignored[:5]) + (" ..." if len(summary.ignored) > 5 else "")
        typer.echo(f"ignored    {len(summary.ignored)} non-.npy files ({shown})")
    typer.echo(f"readme     runtime {runtime:g} s, {device.value}, "
               f"{'extra data' if extra_data else 'no extra data'}")
    typer.echo(f"wrote      {summary.path} ({_size(summary.zip_bytes)}, folder "
               f"{submission.SUBMISSION_FOLDER}/, checked as the scorer reads it)")
