"""`rgb2raw visualize`: render RAW files as PNGs, or as comparison panels with --rgb / --gt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rgb2raw import isp
from rgb2raw.cameras import CAMERA_NAMES, get_camera
from rgb2raw.cli._app import app, reports_errors
from rgb2raw.errors import Rgb2RawError
from rgb2raw.visualize import plan, run_job


def _parse_wb(text: str) -> isp.WhiteBalance:
    if text in ("auto", "camera"):
        return text  # type: ignore[return-value]
    try:
        gains = [float(part) for part in text.split(",")]
    except ValueError:
        gains = []
    if len(gains) != 3 or min(gains) <= 0:
        raise Rgb2RawError(None, f"--wb {text!r}: expected auto, camera or three gains like 2.1,1,1.6")
    return gains


def _parse_exposure(text: str) -> isp.Exposure:
    if text == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise Rgb2RawError(None, f"--exposure {text!r}: expected auto or a number of stops") from None


@app.command(rich_help_panel="Look at RAW")
@reports_errors
def visualize(
    raw: Annotated[list[str], typer.Argument(
        help="RAW .npy files, folders of them, or glob patterns.", show_default=False)],
    out_dir: Annotated[Path, typer.Option(
        "--out", "-o", help="Folder for the PNGs ({stem}.png).", show_default=False)],
    camera: Annotated[str, typer.Option(
        "--camera", "-c", help=f"Camera profile: {', '.join(CAMERA_NAMES)}.")] = "generic",
    rgb: Annotated[Path | None, typer.Option(
        "--rgb", help="Input image to show beside the RAW (a folder: matched by file name).",
        show_default=False)] = None,
    gt: Annotated[Path | None, typer.Option(
        "--gt", help="Ground-truth RAW to compare with: error map, PSNR and SSIM (a folder: "
        "matched by file name).", show_default=False)] = None,
    white_level: Annotated[float | None, typer.Option(
        "--white-level", min=1.0,
        help="DN of full scale in the files: normalises PSNR/SSIM (default 1024, the challenge "
        "scorer's) and, when given, overrides the camera's white level for rendering.",
        show_default=False)] = None,
    wb: Annotated[str, typer.Option(
        "--wb", help="White balance: auto (gray world), camera (the profile's daylight gains) "
        "or R,G,B gains.")] = "auto",
    exposure: Annotated[str, typer.Option(
        "--exposure", help="Brightening in EV stops, or auto.")] = "auto",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace existing PNGs.")] = False,
) -> None:
    """Render RAW .npy files as PNG pictures, optionally as labelled comparison panels."""
    profile = get_camera(camera)
    wb_choice = _parse_wb(wb)
    exposure_choice = _parse_exposure(exposure)
    jobs = plan(raw, out_dir, rgb=rgb, gt=gt, overwrite=overwrite)
    results = []
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True, disable=len(jobs) < 2,
    )
    with progress:
        task = progress.add_task("visualize", total=len(jobs))
        for job in jobs:
            results.append(run_job(job, profile, white_level=white_level, wb=wb_choice,
                                   exposure=exposure_choice, overwrite=overwrite))
            progress.advance(task)
    scored = [r for r in results if r.psnr is not None and r.ssim is not None]
    summary = f"wrote {len(results)} PNG{'s' if len(results) != 1 else ''} to {out_dir}"
    if scored:
        mean_psnr = sum(r.psnr for r in scored if r.psnr is not None) / len(scored)
        mean_ssim = sum(r.ssim for r in scored if r.ssim is not None) / len(scored)
        summary += f" (mean PSNR {mean_psnr:.2f} dB, SSIM {mean_ssim:.4f} over {len(scored)})"
    typer.echo(summary)
