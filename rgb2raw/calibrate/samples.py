"""Observations for fitting: one RAW value and the picture's RGB at the same place, per row.

A pixel-wise inverse ISP predicts each Bayer site from the RGB of its own pixel, so the fit
pairs exactly those: the red site of every 2x2 block with the RGB pixel at that site, and so on
(`site_samples`). When the RAW is given at the picture's resolution instead (low-resolution
planes, as a figure compared at 1/4 of the packed size is), every RAW plane pairs with the RGB
pixel at the same place.

Which observations vote, in one place (`usable`):
- RAW at or near the white level is clipped: its value says "at least this" and would pull
  gains and tables down;
- an RGB channel at or near 255 is clipped the same way in the picture (the highlight gains
  are fitted on those separately), and so, nearly, are its neighbours: JPEG ringing spreads a
  clipped highlight's error over its 8x8 block, so pixels within `CLIP_REACH` of a clipped one
  read too dark for their RAW and would bend the tables' top;
- a channel at 0 in a pixel that is not black is an out-of-gamut colour clipped at black,
  censored like a highlight (and treated alike);
- an all-black picture pixel says little about the RAW beyond "dark": noise around the black
  level, which would bias the black level and the first table steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rgb2raw.errors import Rgb2RawError

#: Camera channel of each packed plane R, Gr, Gb, B.
SITE_CHANNELS = (0, 1, 1, 2)
#: Picture levels at or above this (of 1) count as clipped.
RGB_CLIP = 252.5 / 255.0
#: A picture channel at or below this is clipped at black (an out-of-gamut colour).
RGB_LOW_CLIP = 0.5 / 255.0
#: A picture pixel whose brightest channel is at or below this counts as black.
RGB_BLACK = 1.5 / 255.0
#: RAW within this share of the black-to-white span below white counts as clipped.
RAW_CLIP_MARGIN = 0.02
#: Picture pixels this close (in picture pixels) to a clipped one count as near-clipped.
CLIP_REACH = 8


@dataclass(frozen=True)
class Samples:
    """N observations: RGB (N, 3) in [0, 1], RAW value (N,), camera channel, unit, weight."""

    rgb: np.ndarray  # (N, 3) float32
    raw: np.ndarray  # (N,) float32, in the RAW's own unit (DN)
    channel: np.ndarray  # (N,) int8: 0 R, 1 G, 2 B
    unit: np.ndarray  # (N,) int32: which pair (or frame) it came from
    weight: np.ndarray  # (N,) float32
    near_clip: np.ndarray  # (N,) bool: the picture is clipped at or near this pixel
    #: (N,) float32: distance from the frame's centre over its half-diagonal (as
    #: `rgb2raw.shading.RadialShading` measures it), NaN where the frame position is unknown
    radius: np.ndarray

    def __len__(self) -> int:
        return int(self.raw.shape[0])

    def subset(self, keep: np.ndarray) -> Samples:
        return Samples(self.rgb[keep], self.raw[keep], self.channel[keep], self.unit[keep],
                       self.weight[keep], self.near_clip[keep], self.radius[keep])


def concat(parts: Sequence[Samples]) -> Samples:
    """One `Samples` holding all of `parts`, in order."""
    if not parts:
        return Samples(np.zeros((0, 3), np.float32), np.zeros(0, np.float32),
                       np.zeros(0, np.int8), np.zeros(0, np.int32), np.zeros(0, np.float32),
                       np.zeros(0, bool), np.zeros(0, np.float32))
    return Samples(*(np.concatenate([getattr(p, name) for p in parts]) for name in
                     ("rgb", "raw", "channel", "unit", "weight", "near_clip", "radius")))


def near_clipped(rgb01: np.ndarray, reach: int = CLIP_REACH) -> np.ndarray:
    """(H, W) bool: a channel is clipped (at white, or at black in a pixel that is not black
    all over) within `reach` pixels (a square neighbourhood)."""
    import cv2

    rgb = np.asarray(rgb01)
    clipped = ((rgb.max(axis=2) >= RGB_CLIP) | (rgb.min(axis=2) <= RGB_LOW_CLIP)
               & (rgb.max(axis=2) > RGB_BLACK)).astype(np.uint8)
    if reach <= 0 or not clipped.any():
        return clipped.astype(bool)
    kernel = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    return cv2.dilate(clipped, kernel).astype(bool)


def site_samples(rgb01: np.ndarray, raw: np.ndarray, unit: int, *,
                 mask: np.ndarray | None = None, limit: int | None = None,
                 rng: np.random.Generator | None = None,
                 radius: np.ndarray | None = None) -> Samples:
    """Observations from one pair.

    `rgb01` is (H, W, 3) in [0, 1]. `raw` is packed (H/2, W/2, 4) R, Gr, Gb, B (each site pairs
    with the RGB pixel at that site), or (H, W, 4) / (H, W, 3) planes at the picture's
    resolution (R, Gr, Gb, B or R, G, B; each plane pairs with the pixel at the same place).
    `mask` (at the RAW's resolution, True = use) drops pixels, e.g. outside an alignment's
    overlap. `limit` keeps at most that many observations, drawn at random with `rng`.
    `radius` (at the RAW's resolution) is each pixel's frame radius, for lens shading.
    """
    rgb = np.asarray(rgb01, dtype=np.float32)
    planes = np.asarray(raw, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise Rgb2RawError(None, f"pair {unit}: picture must be (H, W, 3), got {rgb.shape}")
    if planes.ndim != 3 or planes.shape[2] not in (3, 4):
        raise Rgb2RawError(None, f"pair {unit}: RAW must be (h, w, 4) or (h, w, 3), got {planes.shape}")
    h, w = planes.shape[:2]
    near = near_clipped(rgb)
    if rgb.shape[:2] == (2 * h, 2 * w) and planes.shape[2] == 4:
        # Site s of each 2x2 block sits at (dy, dx) = divmod(s, 2) in RGGB order.
        offsets = ((0, 0), (0, 1), (1, 0), (1, 1))
        site_rgb = [rgb[dy::2, dx::2] for dy, dx in offsets]
        site_near = [near[dy::2, dx::2] for dy, dx in offsets]
        channels: Sequence[int] = SITE_CHANNELS
    elif rgb.shape[:2] == (h, w):
        site_rgb = [rgb] * planes.shape[2]
        site_near = [near] * planes.shape[2]
        channels = SITE_CHANNELS if planes.shape[2] == 4 else (0, 1, 2)
    else:
        raise Rgb2RawError(None, f"pair {unit}: picture {rgb.shape[1]}x{rgb.shape[0]} does not "
                                 f"match RAW {w}x{h} (expected twice or equal the RAW's size)")
    keep = np.ones((h, w), bool) if mask is None else np.asarray(mask, bool)
    if keep.shape != (h, w):
        raise Rgb2RawError(None, f"pair {unit}: mask {keep.shape} does not match RAW {(h, w)}")
    index = np.flatnonzero(keep.reshape(-1))
    count = index.size * len(channels)
    if limit is not None and count > limit:
        rng = rng or np.random.default_rng(0)
        pick = np.sort(rng.choice(count, size=limit, replace=False))
    else:
        pick = np.arange(count)
    site, position = np.divmod(pick, index.size)
    pixel = index[position]
    flat_rgb = np.stack([s.reshape(-1, 3) for s in site_rgb])  # (sites, h*w, 3)
    flat_near = np.stack([s.reshape(-1) for s in site_near])
    values = planes.reshape(-1, planes.shape[2])
    return Samples(
        rgb=flat_rgb[site, pixel],
        raw=values[pixel, site],
        channel=np.asarray(channels, np.int8)[site],
        unit=np.full(pick.size, unit, np.int32),
        weight=np.ones(pick.size, np.float32),
        near_clip=flat_near[site, pixel],
        radius=(np.full(pick.size, np.nan, np.float32) if radius is None
                else np.asarray(radius, np.float32).reshape(-1)[pixel]),
    )


def usable(samples: Samples, black: float, white: float) -> np.ndarray:
    """Which observations vote in the main fit (see the module docstring)."""
    raw_clipped = samples.raw >= white - RAW_CLIP_MARGIN * (white - black)
    rgb_clipped = samples.near_clip | (samples.rgb.max(axis=1) >= RGB_CLIP)
    rgb_black = samples.rgb.max(axis=1) <= RGB_BLACK
    return ~(raw_clipped | rgb_clipped | rgb_black)


__all__ = ["SITE_CHANNELS", "Samples", "concat", "site_samples", "usable"]
