"""`rgb2raw visualize`: render RAW files as PNGs, or as comparison panels with --rgb / --gt.

A bad file or an existing PNG does not stop the batch: each is reported on stderr, the rest
is rendered, and the exit code is 1 at the end. numpy and OpenCV are imported when it runs.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from rgb2raw.cli import common
from rgb2raw.cli._app import app, command_options, reports_errors
from rgb2raw.cli.common import CameraName, Overwrite, Quiet, SkipExisting, Verbose
from rgb2raw.errors import OutputExists, Rgb2RawError

if TYPE_CHECKING:
    from rgb2raw.visualize import PanelSizing

log = logging.getLogger("rgb2raw.cli")

# Brightening beyond this many stops turns any RAW into white (or black) noise; a value past
# it is a typo (1e6), not a wish.
MAX_EXPOSURE_EV = 16.0


def parse_wb(text: str) -> str | tuple[float, float, float]:
    """``auto``, ``camera``, ``grayworld`` or three positive gains ``R,G,B``; anything else is
    a usage error."""
    lowered = text.strip().lower()
    if lowered in ("auto", "camera", "grayworld"):
        return lowered
    try:
        gains = [float(part) for part in text.split(",")]
    except ValueError:
        gains = []
    if len(gains) != 3 or not all(math.isfinite(g) and g > 0 for g in gains):
        raise typer.BadParameter(f"{text!r}: expected auto, camera, grayworld or three "
                                 "positive gains R,G,B such as 2.1,1,1.6")
    return gains[0], gains[1], gains[2]


def parse_exposure(text: str) -> Literal["auto"] | float:
    """``auto`` or a finite number of stops within +-16."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected auto or a number of stops") from None
    if not math.isfinite(value) or abs(value) > MAX_EXPOSURE_EV:
        raise typer.BadParameter(f"{text!r}: expected a finite number of stops between "
                                 f"-{MAX_EXPOSURE_EV:g} and {MAX_EXPOSURE_EV:g}")
    return value


def _check_wb(text: str) -> str:
    parse_wb(text)
    return text


def _check_exposure(text: str) -> str:
    parse_exposure(text)
    return text


@app.command(**command_options("visualize"))
@reports_errors
def visualize(
    raw: Annotated[list[str], typer.Argument(
        metavar="RAW", help="RAW .npy files, folders of them, or glob patterns.",
        show_default=False)],
    output: Annotated[Path | None, common.output_option(
        "Folder for the PNGs ({stem}.png).", "FOLDER")] = None,
    out_alias: Annotated[Path | None, typer.Option(
        "--out", hidden=True, parser=common.output_path, help="Old spelling of --output.")
    ] = None,
    camera: Annotated[CameraName, common.camera_option("Camera profile.")] = "generic",
    rgb: Annotated[Path | None, typer.Option(
        "--rgb", metavar="PATH", help="Input image to show beside the RAW (a folder: "
        "matched by file name).", show_default=False)] = None,
    gt: Annotated[Path | None, typer.Option(
        "--gt", metavar="PATH", help="Ground-truth RAW to compare with: error map, PSNR and "
        "SSIM (a folder: matched by file name).", show_default=False)] = None,
    white_level: Annotated[float | None, typer.Option(
        "--white-level", min=1.0, metavar="DN",
        help="DN of full scale in the files: normalises PSNR/SSIM (default 1024, the challenge "
        "scorer's) and, when given, overrides the camera's white level for rendering.",
        show_default=False)] = None,
    wb: Annotated[str, typer.Option(
        "--wb", metavar="auto|camera|grayworld|R,G,B", callback=_check_wb,
        help="White balance: auto (the camera's daylight gains, moved towards the RAW's "
        "near-grey pixels when they clearly disagree), camera (daylight gains), grayworld "
        "(average of all pixels) or R,G,B gains.")] = "auto",
    exposure: Annotated[str, typer.Option(
        "--exposure", metavar="auto|EV", callback=_check_exposure,
        help="Brightening in EV stops (-16..16), or auto.")] = "auto",
    width: Annotated[str | None, typer.Option(
        "--width", metavar="SIZE", help="Width of each picture: pixels (1200), or inches/cm "
        "with --dpi (3.5in, 8.5cm) for a paper column. Text scales with it.",
        show_default=False)] = None,
    dpi: Annotated[int | None, typer.Option(
        "--dpi", min=50, max=2400, metavar="DPI", help="Print resolution stored in the PNG "
        "and used for --width in inches or cm; text is then 8 pt (default 300 with a "
        "physical --width).", show_default=False)] = None,
    overwrite: Overwrite = False,
    skip_existing: SkipExisting = False,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Render RAW .npy files as PNG pictures, optionally as labelled comparison panels."""
    out_dir = output or out_alias
    if out_dir is None:
        common.usage_error("the folder for the PNGs is required", "--output")
    common.overwrite_flags(overwrite=overwrite, skip_existing=skip_existing)
    wb_choice = parse_wb(wb)
    exposure_choice = parse_exposure(exposure)
    sizing = _sizing(width, dpi)
    common.check_output_folder(out_dir)

    from rgb2raw import progress
    from rgb2raw.cameras import get_camera
    from rgb2raw.visualize import plan, run_job

    profile = get_camera(camera)
    jobs = plan(raw, out_dir, rgb=rgb, gt=gt)
    results = []
    failures = 0
    existing: list[Path] = []
    skipped = 0
    with progress.bars("count", enabled=len(jobs) > 1) as bars:
        task = bars.task("visualize", total=len(jobs))
        for job in jobs:
            try:
                if skip_existing and job.output.exists():
                    skipped += 1
                    continue
                results.append(run_job(job, profile, white_level=white_level,
                                       wb=wb_choice,
                                       exposure=exposure_choice,
                                       overwrite=overwrite, sizing=sizing))
                log.debug("%s -> %s", job.raw, job.output)
            except OutputExists:
                existing.append(job.output)
            except Rgb2RawError as exc:
                failures += 1
                bars.echo(f"error: {job.raw}: {exc.detail(common.flag_for)}"
                          if exc.path is None or Path(exc.path) == job.raw
                          else f"error: {job.raw}: {common.describe(exc)}")
            finally:
                bars.advance(task)
    common.report_existing([(path, path) for path in existing], out_dir, "PNGs")
    scored = [r for r in results if r.psnr is not None and r.ssim is not None]
    summary = f"wrote {len(results)} PNG{'s' if len(results) != 1 else ''} to {out_dir}"
    if skipped:
        summary += f", {skipped} skipped (already there)"
    if failures or existing:
        summary += f", {failures + len(existing)} failed"
    if scored:
        mean_psnr = sum(r.psnr for r in scored if r.psnr is not None) / len(scored)
        mean_ssim = sum(r.ssim for r in scored if r.ssim is not None) / len(scored)
        summary += f" (mean PSNR {mean_psnr:.2f} dB, SSIM {mean_ssim:.4f} over {len(scored)})"
    typer.echo(summary)
    if failures or existing:
        raise typer.Exit(1)


def _sizing(width: str | None, dpi: int | None) -> PanelSizing:
    """--width/--dpi as the library's `PanelSizing`; malformed sizes are usage errors."""
    from rgb2raw.visualize import PanelSizing

    if width is None:
        return PanelSizing(width_px=None, dpi=dpi)
    text = width.strip().lower()
    per_unit = {"in": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4, "px": None}
    unit = next((u for u in per_unit if text.endswith(u)), "px")
    number_text = text[: len(text) - len(unit)] if text.endswith(unit) else text
    try:
        number = float(number_text)
    except ValueError:
        common.usage_error(f"{width!r}: expected pixels (1200) or a length (3.5in, 8.5cm)",
                           "--width")
    inches = per_unit[unit]
    if inches is None:
        pixels = number
        if pixels != int(pixels):
            common.usage_error(f"{width!r}: pixels must be a whole number", "--width")
    else:
        pixels = number * inches * (dpi or 300)
    if not math.isfinite(pixels) or not 64 <= pixels <= 30000:
        common.usage_error(f"{width!r}: gives {pixels:.0f} pixels; expected 64 to 30000",
                           "--width")
    return PanelSizing(width_px=int(round(pixels)), dpi=dpi or (300 if inches else None))
