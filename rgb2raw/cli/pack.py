"""`rgb2raw pack PRED -o submission.zip`: a CodaLab zip that cannot be rejected.

Every file is validated first; the zip (top-level folder ``submission/``, readme.txt beside
the .npy files) is checked again after writing, and a summary goes to stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from rgb2raw import __version__
from rgb2raw.cli import common
from rgb2raw.cli._app import app, command_options, reports_errors
from rgb2raw.cli.common import CameraName, ForceAlias, Overwrite, Quiet, Verbose

MeasuredOn = Literal["cpu", "gpu"]


def _size(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes >= 1e5 else f"{num_bytes / 1e3:.1f} kB"


def _one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        raise typer.BadParameter("must be a single line (readme.txt has one line for it)")
    return text


@app.command(**command_options("pack"))
@reports_errors
def pack(
    pred: Annotated[Path, typer.Argument(
        metavar="PRED", help="Folder of predicted .npy files, one per validation JPEG.",
        show_default=False)],
    output: Annotated[Path, common.output_option("The submission .zip to write.", "ZIP")],
    runtime: Annotated[float, typer.Option(
        "--runtime", min=0.0, metavar="SECONDS",
        help="Runtime per frame in seconds, reported in readme.txt.", show_default=False)],
    measured_on: Annotated[MeasuredOn, typer.Option(
        "--measured-on", case_sensitive=False,
        help="Where the runtime was measured (readme's CPU/GPU line).")] = "cpu",
    device: Annotated[MeasuredOn | None, typer.Option(
        "--device", hidden=True, case_sensitive=False,
        help="Old spelling of --measured-on.")] = None,
    extra_data: Annotated[bool, typer.Option(
        "--extra-data/--no-extra-data", metavar="",
        help="Whether training used data beyond the challenge's.")] = False,
    description: Annotated[str, typer.Option(
        "--description", metavar="TEXT", callback=_one_line,
        help="One line about the method, for readme.txt.")] = f"rgb2raw {__version__}",
    camera: Annotated[CameraName | None, common.camera_option(
        "Challenge track (s7 or p20): require its RAW shape and validation count (480/720).",
        short=False)] = None,
    expect: Annotated[int | None, typer.Option(
        "--expect", min=1, metavar="N",
        help="Require exactly N .npy files (overrides the camera's count).")] = None,
    rgb_dir: Annotated[Path | None, typer.Option(
        "--rgb-dir", metavar="FOLDER",
        help="Folder of the input JPEGs: each needs its .npy, and no other .npy may exist.")
    ] = None,
    overwrite: Overwrite = False,
    force: ForceAlias = False,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Validate predictions and write a deterministic CodaLab submission zip."""
    overwrite = common.overwrite_flags(overwrite=overwrite, force=force)
    where = device or measured_on
    common.check_output_file(output, overwrite=overwrite, suffixes=(".zip",))

    from rgb2raw import submission

    info = submission.SubmissionInfo(runtime=runtime, device=where, extra_data=extra_data,
                                     description=description)
    summary = submission.pack(pred, output, info, camera=camera, expect=expect, rgb_dir=rgb_dir,
                              overwrite=overwrite)
    shape = "x".join(str(n) for n in summary.shape)
    typer.echo(f"files      {summary.count} .npy, each {shape} uint16")
    typer.echo(f"values     {summary.value_min} .. {summary.value_max}")
    if summary.float_files:
        typer.echo(f"rounded    {summary.float_files} float files, rounded and clipped to uint16 [0, 1024]")
    if summary.ignored:
        shown = ", ".join(summary.ignored[:5]) + (" ..." if len(summary.ignored) > 5 else "")
        typer.echo(f"ignored    {len(summary.ignored)} non-.npy files ({shown})")
    typer.echo(f"readme     runtime {runtime:g} s, {where}, "
               f"{'extra data' if extra_data else 'no extra data'}")
    typer.echo(f"wrote      {summary.path} ({_size(summary.zip_bytes)}, folder "
               f"{submission.SUBMISSION_FOLDER}/, checked as the scorer reads it)")
