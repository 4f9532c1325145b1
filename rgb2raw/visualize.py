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

from rgb2raw import isp, metrics, panels
from rgb2raw.cameras import CameraProfile
from rgb2raw.discovery import is_junk_name, list_files
from rgb2raw.errors import OutputExists, Rgb2RawError
from rgb2raw.raw import CHALLENGE_WHITE_LEVEL, read_raw
from rgb2raw.rgb import IMAGE_SUFFIXES, read_rgb, write_rgb

log = logging.getLogger("rgb2raw")


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


# ---------------------------------------------------------------------------------------------
# White balance for pictures
# ---------------------------------------------------------------------------------------------

#: Widths (in log gain) of the neutral-pixel weighting, narrowed pass by pass.
_NEUTRAL_WIDTHS = (0.35, 0.2, 0.12, 0.08)
#: The estimate may move this far (factor) from the camera's daylight gains.
_NEUTRAL_RANGE = 2.0
#: Moves from daylight smaller than this (log gain, R and B together) are taken for the
#: scene's own tints and ignored; larger ones are followed, less this much. Measured with
#: benchmarks/bench_wb.py: on RAW made from 192 real phone crops the estimate's median move
#: is 0.05 (p90 0.19), while a light 0.44 away from daylight must be followed.
_NEUTRAL_DEAD_ZONE = 0.15

WhiteBalanceChoice = isp.WhiteBalance


def neutral_wb_gains(packed01: np.ndarray, camera: CameraProfile) -> tuple[float, float, float]:
    """White-balance gains (R, G, B), G = 1, from the pixels that are nearly neutral.

    Gray world averages every pixel, so a colourful scene (a blue sky, a green lawn) pulls the
    picture towards the opposite cast. Here only pixels that already look nearly grey vote:
    starting from the camera's daylight gains, each pass weights pixels by how close to neutral
    they are once balanced (a Gaussian in log chroma, narrower each pass) and re-estimates the
    gains from those. Dark (noisy) and clipped pixels do not vote. The move away from daylight
    is then shrunk by `_NEUTRAL_DEAD_ZONE`: a RAW made with the daylight gains (as `infer`
    makes them) keeps them even when its near-greys are beige walls, and a RAW taken under
    another light moves most of the way to its greys.
    """
    planes = packed01.reshape(-1, 4).astype(np.float64)
    rgb = np.stack([planes[:, 0], 0.5 * (planes[:, 1] + planes[:, 2]), planes[:, 3]], axis=1)
    usable = (rgb.max(axis=1) < 0.95) & (rgb.min(axis=1) > 0.01)
    prior = np.asarray(camera.wb_gains, dtype=np.float64)
    if usable.sum() < 64:
        return camera.wb_gains
    rgb = rgb[usable]
    gains = prior.copy()
    for width in _NEUTRAL_WIDTHS:
        balanced = rgb * gains
        log_r = np.log(balanced[:, 0] / balanced[:, 1])
        log_b = np.log(balanced[:, 2] / balanced[:, 1])
        weight = np.exp(-(log_r**2 + log_b**2) / (2 * width**2)) * rgb[:, 1]
        if weight.sum() < 1e-6 * rgb.shape[0] or (weight > 0.05 * weight.max()).sum() < 32:
            break  # no grey to speak of: keep what we have
        sums = (weight[:, None] * rgb).sum(axis=0)
        gains = np.array([sums[1] / sums[0], 1.0, sums[1] / sums[2]])
        gains = np.clip(gains, prior / _NEUTRAL_RANGE, prior * _NEUTRAL_RANGE)
    move = np.log(gains / prior)
    distance = float(np.hypot(move[0], move[2]))
    keep = max(0.0, 1.0 - _NEUTRAL_DEAD_ZONE / distance) if distance > 0 else 0.0
    gains = prior * np.exp(move * keep)
    return (float(gains[0]), 1.0, float(gains[2]))


def render_wb_gains(packed01: np.ndarray, camera: CameraProfile,
                    wb: isp.WhiteBalance | str) -> tuple[float, float, float]:
    """Gains for a picture: "auto" (`neutral_wb_gains`), "grayworld" (the ISP's partial gray
    world), "camera" (daylight) or explicit (R, G, B) gains."""
    if isinstance(wb, str) and wb == "auto":
        return neutral_wb_gains(packed01, camera)
    if isinstance(wb, str) and wb == "grayworld":
        return isp.resolve_wb_gains(packed01, camera, "auto")
    return isp.resolve_wb_gains(packed01, camera, wb)  # type: ignore[arg-type]


def _scores(pred01: np.ndarray, gt01: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of [0, 1] packed RAW, as the challenge's scorer computes them."""
    return metrics.psnr(pred01, gt01), metrics.ssim(pred01, gt01)


# ---------------------------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------------------------


def error_map_dn(pred_dn: np.ndarray, gt_dn: np.ndarray) -> np.ndarray:
    """Mean absolute error over the 4 packed channels, per pixel, in DN: (H, W) float32."""
    return np.abs(pred_dn.astype(np.float32) - gt_dn.astype(np.float32)).mean(axis=-1)


def heatmap(error: np.ndarray, size: tuple[int, int], vmax: float) -> np.ndarray:
    """Colour an error map with the inferno scale on [0, vmax], resized to (height, width)."""
    levels = np.clip(error / vmax * 255.0, 0, 255).astype(np.uint8)
    # Nearest neighbour: each packed pixel is a 2x2 Bayer block; do not invent smoothness.
    resized = cv2.resize(levels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(cv2.applyColorMap(resized, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def _resized(image: np.ndarray, width: int) -> np.ndarray:
    """`image` scaled to `width` pixels wide, aspect kept (area averaging when shrinking)."""
    height, old_width = image.shape[:2]
    if width == old_width:
        return image
    new_height = max(1, round(height * width / old_width))
    method = cv2.INTER_AREA if width < old_width else cv2.INTER_LANCZOS4
    return cv2.resize(image, (width, new_height), interpolation=method)


def _error_vmax(error: np.ndarray) -> float:
    """The colour scale's top: a round number at or above the 99th percentile of the error."""
    top, _ = panels.nice_ticks(float(np.percentile(error, 99)))
    return top


@dataclass(frozen=True)
class _Panel:
    """What goes into a comparison panel, before it is sized and drawn."""

    tiles: list[tuple[str, np.ndarray]]
    caption: list[str]
    error: np.ndarray | None = None
    vmax: float | None = None


def _draw(panel: _Panel, sizing: PanelSizing) -> np.ndarray:
    """Size and draw a panel: tiles scaled so the whole is `sizing.width_px` wide (if given),
    text and colour bar scaled with it."""
    count = len(panel.tiles)
    tile_h, tile_w = panel.tiles[0][1].shape[:2]
    width = sizing.width_px
    style = panels.PanelStyle(panels.font_px_for(width or count * tile_w, sizing.dpi))
    labels: list[str] = []
    if panel.vmax is not None:
        _, ticks = panels.nice_ticks(panel.vmax)
        labels = [panels.tick_label(t) + " DN" for t in ticks]
    extra = style.bar_extra(labels) if labels else 0
    tiles = panel.tiles
    if width is not None:
        new_w = panels.tile_width_for(width, count, style, extra)
        tiles = [(label, _resized(image, new_w)) for label, image in tiles]
        if panel.error is not None:  # redraw the heat map at the new size, nearest neighbour
            size = tiles[0][1].shape[:2]
            tiles[-1] = (tiles[-1][0], heatmap(panel.error, size, panel.vmax or 1.0))
    bar = None
    if panel.vmax is not None:
        bar = panels.colorbar(tiles[0][1].shape[0], panel.vmax, style)
    return panels.compose(tiles, panel.caption, style, bar, width=width)


def run_job(
    job: VisualizeJob,
    camera: CameraProfile,
    *,
    white_level: float | None = None,
    wb: isp.WhiteBalance | str = "auto",
    exposure: isp.Exposure = "auto",
    overwrite: bool = False,
    sizing: PanelSizing | None = None,
) -> VisualizeResult:
    """Render one RAW (alone or as a comparison panel) to `job.output`.

    `white_level`: the DN of full scale in these files. It normalises PSNR/SSIM (default
    1024, the challenge scorer's) and, when given, replaces the profile's white level for
    rendering (for 12- or 14-bit data). `sizing`: the picture's width and print resolution.
    """
    sizing = sizing or PanelSizing()
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
    gains = render_wb_gains(reference, camera, wb)
    exposure_ev = isp.resolve_exposure(reference, gains, exposure)
    raw_render = isp.render(raw_dn, camera, wb=gains, exposure=exposure_ev)
    if job.rgb is None and gt_dn is None:
        picture = raw_render if sizing.width_px is None else _resized(raw_render, sizing.width_px)
        write_rgb(job.output, picture, overwrite=overwrite, dpi=sizing.dpi)
        return VisualizeResult(job.output, picture.shape[1], picture.shape[0])

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
    settings = [f"WB R {gains[0]:.2f} B {gains[2]:.2f}", f"exposure {exposure_ev:+.1f} EV",
                f"camera {camera.name}"]
    psnr = ssim = None
    if gt_dn is None:
        panel = _Panel(tiles, [job.raw.stem, *settings])
    else:
        tiles.append(("ground-truth render", isp.render(gt_dn, camera, wb=gains,
                                                        exposure=exposure_ev)))
        error = error_map_dn(raw_dn, gt_dn)
        vmax = _error_vmax(error)
        tiles.append(("|RAW - GT|, mean of 4 channels", heatmap(error, (tile_h, tile_w), vmax)))
        psnr, ssim = _scores(np.clip(raw_dn / scale, 0, 1), np.clip(gt_dn / scale, 0, 1))
        panel = _Panel(tiles, [job.raw.stem, f"PSNR {psnr:.2f} dB", f"SSIM {ssim:.4f}",
                               f"(DN / {scale:g}; error in DN)", *settings], error, vmax)
    picture = _draw(panel, sizing)
    write_rgb(job.output, picture, overwrite=overwrite, dpi=sizing.dpi)
    return VisualizeResult(job.output, picture.shape[1], picture.shape[0], psnr, ssim)
