"""Pictures of RAW for people: plain renders and labelled comparison panels.

`plan` turns the command line's inputs (files, folders, globs) into one `VisualizeJob` per
RAW file, checking everything that can be checked before any work starts (missing partners,
name clashes, existing outputs), so a batch never fails half-way for a reason known up front.
`run_job` then renders one RAW and writes `{stem}.png`:

- alone: the RAW rendered by `isp.render` (2x the packed size);
- with an input image and/or a ground-truth RAW: a side-by-side panel
  ``input JPEG | RAW render | ground-truth render | |error| heat map`` with a title bar on each
  tile, a colour scale bar for the heat map and PSNR/SSIM in the caption.

Both RAW renders in a panel use the white balance and exposure resolved on the ground truth
(or on the RAW if there is none), so colour differences in the picture are real differences
in the data, not two different auto white balances.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from rgb2raw import isp, metrics
from rgb2raw.cameras import CameraProfile
from rgb2raw.discovery import is_junk_name, list_files
from rgb2raw.errors import OutputExists, Rgb2RawError
from rgb2raw.raw import CHALLENGE_WHITE_LEVEL, read_raw
from rgb2raw.rgb import IMAGE_SUFFIXES, read_rgb, write_rgb

log = logging.getLogger("rgb2raw")

# Layout of comparison panels, in pixels (tests compute expected sizes from these).
MARGIN = 8  # around and between tiles
TITLE_HEIGHT = 30  # dark bar above each tile holding its label
CAPTION_HEIGHT = 30  # line of text under the tiles
COLORBAR_GAP = 6  # between the heat map and its scale bar
COLORBAR_WIDTH = 14
COLORBAR_LABELS = 64  # room for tick labels right of the bar
COLORBAR_EXTRA = COLORBAR_GAP + COLORBAR_WIDTH + COLORBAR_LABELS

_BACKGROUND = (255, 255, 255)
_TITLE_BAR = (38, 38, 38)
_TITLE_TEXT = (255, 255, 255)
_CAPTION_TEXT = (20, 20, 20)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class VisualizeJob:
    """One RAW file to draw, its optional partners, and where the PNG goes."""

    raw: Path
    output: Path
    rgb: Path | None = None
    gt: Path | None = None


@dataclass(frozen=True)
class PanelSizing:
    """How big a picture should come out: its width in pixels and the print resolution.

    None keeps the natural size (the RAW render's). With `dpi`, text is 8 pt at that
    resolution, and the PNG records it (pHYs), so a paper column gets the intended size.
    """

    width_px: int | None = None
    dpi: int | None = None


@dataclass(frozen=True)
class VisualizeResult:
    """What `run_job` wrote, and the scores when a ground truth was given."""

    output: Path
    width: int
    height: int
    psnr: float | None = None
    ssim: float | None = None


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def _has_glob_magic(text: str) -> bool:
    return any(char in text for char in "*?[")


def expand_raw_inputs(specs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files, folders (their *.npy, sorted) and glob patterns -> RAW file paths, in order.

    Globs are expanded here so that quoted patterns (and shells that do not expand them)
    work. A pattern matching nothing, a missing path and an empty folder are errors.
    """
    found: list[Path] = []
    for spec in specs:
        text = os.fspath(spec)
        path = Path(text)
        if path.is_dir():
            members = list_files(path, suffixes=(".npy",))
            if not members:
                raise Rgb2RawError(path, "folder holds no .npy files")
            found.extend(members)
        elif path.exists():
            found.append(path)
        elif _has_glob_magic(text):
            matches = [m for m in sorted(glob.glob(text)) if not is_junk_name(Path(m).name)]
            if not matches:
                raise Rgb2RawError(text, "no files match this pattern")
            found.extend(expand_raw_inputs(matches))
        else:
            raise Rgb2RawError(path, "no such file or folder")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _find_image(folder: Path, stem: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _partner(spec: Path | None, raw: Path, *, several: bool, kind: str) -> Path | None:
    """The --rgb / --gt file for one RAW: the file itself, or `{stem}.*` inside a folder."""
    if spec is None:
        return None
    flag = "--rgb" if kind == "image" else "--gt"
    if spec.is_dir():
        match = _find_image(spec, raw.stem) if kind == "image" else spec / f"{raw.stem}.npy"
        if match is None or not match.is_file():
            wanted = f"{raw.stem}.jpg/.png/..." if kind == "image" else f"{raw.stem}.npy"
            raise Rgb2RawError(spec, f"has no {wanted} to pair with {raw}")
        return match
    if not spec.exists():
        raise Rgb2RawError(spec, "no such file or folder")
    if several:
        raise Rgb2RawError(spec, f"{flag} must be a folder (matched by name) for several RAW inputs")
    return spec


def plan(
    raw_specs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    rgb: str | os.PathLike[str] | None = None,
    gt: str | os.PathLike[str] | None = None,
) -> list[VisualizeJob]:
    """Resolve inputs and partners into jobs; raise before any work if the run cannot succeed.

    Existing outputs are not checked here: whether to keep, skip or replace one is the
    caller's choice per job (see `run_job`'s `overwrite`).
    """
    raws = expand_raw_inputs(raw_specs)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise Rgb2RawError(out, "exists and is not a folder")
    rgb_spec = None if rgb is None else Path(rgb)
    gt_spec = None if gt is None else Path(gt)
    several = len(raws) > 1
    jobs: list[VisualizeJob] = []
    by_output: dict[Path, Path] = {}
    for raw in raws:
        output = out / f"{raw.stem}.png"
        if output in by_output:
            raise Rgb2RawError(raw, f"has the same name as {by_output[output]}; both would write {output}")
        by_output[output] = raw
        jobs.append(VisualizeJob(
            raw=raw,
            output=output,
            rgb=_partner(rgb_spec, raw, several=several, kind="image"),
            gt=_partner(gt_spec, raw, several=several, kind="raw"),
        ))
    return jobs


def _scores(pred01: np.ndarray, gt01: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of [0, 1] packed RAW, as the challenge's scorer computes them."""
    return metrics.psnr(pred01, gt01), metrics.ssim(pred01, gt01)


# ---------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------


def _text_scale(width: int) -> float:
    """Font scale that keeps labels readable from 250 to 1000+ pixel wide tiles."""
    return float(np.clip(width / 800.0, 0.45, 0.8))


def _put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float,
              color: tuple[int, int, int]) -> None:
    cv2.putText(image, text, origin, _FONT, scale, color, 1, cv2.LINE_AA)


def _fit_text(text: str, scale: float, width: int) -> float:
    """Shrink `scale` until `text` fits in `width` pixels (long file names)."""
    while scale > 0.3 and cv2.getTextSize(text, _FONT, scale, 1)[0][0] > width:
        scale *= 0.9
    return scale


def titled_tile(image: np.ndarray, label: str) -> np.ndarray:
    """Put a dark title bar with `label` in white above an RGB uint8 tile."""
    height, width = image.shape[:2]
    tile = np.empty((TITLE_HEIGHT + height, width, 3), dtype=np.uint8)
    tile[:TITLE_HEIGHT] = _TITLE_BAR
    tile[TITLE_HEIGHT:] = image
    scale = _fit_text(label, _text_scale(width) + 0.1, width - 12)
    (_, text_h), _ = cv2.getTextSize(label, _FONT, scale, 1)
    _put_text(tile, label, (8, (TITLE_HEIGHT + text_h) // 2), scale, _TITLE_TEXT)
    return tile


def _nice_ceiling(value: float) -> float:
    """Smallest of 1, 2, 2.5, 5 x 10^k not below `value` (a round top for a colour scale)."""
    value = max(float(value), 1e-3)
    base = 10.0 ** np.floor(np.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if step * base >= value - 1e-9:
            return float(step * base)
    return float(10.0 * base)


def error_map_dn(pred_dn: np.ndarray, gt_dn: np.ndarray) -> np.ndarray:
    """Mean absolute error over the 4 packed channels, per pixel, in DN: (H, W) float32."""
    return np.abs(pred_dn.astype(np.float32) - gt_dn.astype(np.float32)).mean(axis=-1)


def heatmap(error: np.ndarray, size: tuple[int, int], vmax: float) -> np.ndarray:
    """Colour an error map with the inferno scale on [0, vmax], resized to (height, width)."""
    levels = np.clip(error / vmax * 255.0, 0, 255).astype(np.uint8)
    # Nearest neighbour: each packed pixel is a 2x2 Bayer block; do not invent smoothness.
    resized = cv2.resize(levels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.applyColorMap(resized, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def colorbar(height: int, vmax: float, unit: str = "DN") -> np.ndarray:
    """A vertical inferno scale bar (0 at the bottom) with tick labels, on white."""
    bar = np.full((height, COLORBAR_EXTRA, 3), _BACKGROUND, dtype=np.uint8)
    ramp = np.linspace(255, 0, height).astype(np.uint8)[:, None].repeat(COLORBAR_WIDTH, axis=1)
    colours = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    left = COLORBAR_GAP
    bar[:, left : left + COLORBAR_WIDTH] = colours
    scale = 0.4
    text_x = left + COLORBAR_WIDTH + 4
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = int(round((1.0 - fraction) * (height - 1)))
        bar[y, left + COLORBAR_WIDTH : left + COLORBAR_WIDTH + 3] = _CAPTION_TEXT
        label = f"{fraction * vmax:g}" + (f" {unit}" if fraction == 1.0 else "")
        (_, text_h), _ = cv2.getTextSize(label, _FONT, scale, 1)
        baseline_y = int(np.clip(y + text_h // 2, text_h + 1, height - 2))
        _put_text(bar, label, (text_x, baseline_y), scale, _CAPTION_TEXT)
    return bar


def compose_panel(tiles: Sequence[tuple[str, np.ndarray]], caption: str,
                  colorbar_image: np.ndarray | None = None) -> np.ndarray:
    """Lay labelled RGB uint8 tiles of equal size side by side, on white, with a caption.

    `colorbar_image` (as made by `colorbar`) goes right of the last tile, under no title.
    Width: MARGIN + n * (tile width + MARGIN), plus COLORBAR_EXTRA with a colour bar.
    """
    heights = {image.shape[:2] for _, image in tiles}
    if len(heights) != 1:
        raise ValueError(f"panel tiles must share one size, got {sorted(heights)}")
    tile_h, tile_w = tiles[0][1].shape[:2]
    extra = 0 if colorbar_image is None else colorbar_image.shape[1]
    width = MARGIN + len(tiles) * (tile_w + MARGIN) + extra
    height = MARGIN + TITLE_HEIGHT + tile_h + CAPTION_HEIGHT
    panel = np.full((height, width, 3), _BACKGROUND, dtype=np.uint8)
    x = MARGIN
    for label, image in tiles:
        panel[MARGIN : MARGIN + TITLE_HEIGHT + tile_h, x : x + tile_w] = titled_tile(image, label)
        x += tile_w + MARGIN
    if colorbar_image is not None:
        top = MARGIN + TITLE_HEIGHT
        x_bar = x - MARGIN  # hug the heat map, the margin is inside the bar's gap
        panel[top : top + tile_h, x_bar : x_bar + extra] = colorbar_image[:tile_h]
    scale = _fit_text(caption, _text_scale(width), width - 2 * MARGIN)
    (_, text_h), _ = cv2.getTextSize(caption, _FONT, scale, 1)
    baseline = MARGIN + TITLE_HEIGHT + tile_h + (CAPTION_HEIGHT + text_h) // 2
    _put_text(panel, caption, (MARGIN, baseline), scale, _CAPTION_TEXT)
    return panel


# ---------------------------------------------------------------------------------------------
# One job
# ---------------------------------------------------------------------------------------------


def run_job(
    job: VisualizeJob,
    camera: CameraProfile,
    *,
    white_level: float | None = None,
    wb: isp.WhiteBalance = "auto",
    exposure: isp.Exposure = "auto",
    overwrite: bool = False,
    sizing: PanelSizing | None = None,
) -> VisualizeResult:
    """Render one RAW (alone or as a comparison panel) to `job.output`.

    `white_level`: the DN of full scale in these files. It normalises PSNR/SSIM (default
    1024, the challenge scorer's) and, when given, replaces the profile's white level for
    rendering (for 12- or 14-bit data).
    """
    if job.output.exists() and not overwrite:  # before any work
        raise OutputExists(job.output)
    if white_level is not None:
        camera = replace(camera, white_level=float(white_level))
    scale = CHALLENGE_WHITE_LEVEL if white_level is None else float(white_level)
    raw_dn = read_raw(job.raw, white_level=None)
    gt_dn = None if job.gt is None else read_raw(job.gt, white_level=None)
    if gt_dn is not None and gt_dn.shape != raw_dn.shape:
        raise Rgb2RawError(job.gt, f"shape {gt_dn.shape} differs from {job.raw}'s {raw_dn.shape}")

    reference = isp.linearize(raw_dn if gt_dn is None else gt_dn, camera)
    gains = isp.resolve_wb_gains(reference, camera, wb)
    exposure_ev = isp.resolve_exposure(reference, gains, exposure)
    raw_render = isp.render(raw_dn, camera, wb=gains, exposure=exposure_ev)
    if job.rgb is None and gt_dn is None:
        write_rgb(job.output, raw_render, overwrite=overwrite)
        return VisualizeResult(job.output, raw_render.shape[1], raw_render.shape[0])

    tile_h, tile_w = raw_render.shape[:2]
    tiles: list[tuple[str, np.ndarray]] = []
    if job.rgb is not None:
        rgb = read_rgb(job.rgb)
        if rgb.shape[:2] != (tile_h, tile_w):
            log.warning("%s: %dx%d resized to %dx%d to match the RAW render", job.rgb,
                        rgb.shape[1], rgb.shape[0], tile_w, tile_h)
            rgb = cv2.resize(rgb, (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        kind = "JPEG" if job.rgb.suffix.lower() in (".jpg", ".jpeg") else "image"
        rgb_tile = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
        tiles.append((f"input {kind}", rgb_tile))
    tiles.append(("RAW render", raw_render))
    caption = (f"{job.raw.stem}   camera {camera.name}   WB R {gains[0]:.2f} B {gains[2]:.2f}"
               f"   exposure {exposure_ev:+.1f} EV")
    bar = None
    psnr = ssim = None
    if gt_dn is not None:
        tiles.append(("ground-truth render", isp.render(gt_dn, camera, wb=gains,
                                                        exposure=exposure_ev)))
        error = error_map_dn(raw_dn, gt_dn)
        vmax = _nice_ceiling(np.percentile(error, 99))
        tiles.append(("|RAW - GT|, mean of 4 channels", heatmap(error, (tile_h, tile_w), vmax)))
        bar = colorbar(tile_h, vmax)
        psnr, ssim = _scores(np.clip(raw_dn / scale, 0, 1), np.clip(gt_dn / scale, 0, 1))
        caption = (f"{job.raw.stem}   PSNR {psnr:.2f} dB   SSIM {ssim:.4f}   "
                   f"(DN / {scale:g}; error scale in DN)   camera {camera.name}")
    panel = compose_panel(tiles, caption, bar)
    write_rgb(job.output, panel, overwrite=overwrite)
    return VisualizeResult(job.output, panel.shape[1], panel.shape[0], psnr, ssim)
