"""Bayer mosaics and their packed 4-plane form.

A Bayer mosaic is a (2H, 2W) array where each 2x2 block holds one red, two green and one blue
sample. Its layout is named by the colours of the block read row by row: RGGB, GRBG, GBRG or
BGGR. rgb2raw, like the AIM 2022 challenge, stores RAW *packed*: an (H, W, 4) array whose
channels are always in the canonical order

    0: R      1: Gr (the green on the red row)      2: Gb (the green on the blue row)      3: B

so a packed array means the same thing whatever sensor it came from. For an RGGB mosaic this
is simply ``planes[..., 0] = mosaic[0::2, 0::2]``, ``[..., 1] = mosaic[0::2, 1::2]``,
``[..., 2] = mosaic[1::2, 0::2]``, ``[..., 3] = mosaic[1::2, 1::2]`` (docs/conventions.md).

Converting a mosaic from one pattern to another moves samples only *within* each 2x2 block,
so it is exact and loses nothing at the borders.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

CfaPattern = Literal["RGGB", "GRBG", "GBRG", "BGGR"]
CFA_PATTERNS: tuple[CfaPattern, ...] = ("RGGB", "GRBG", "GBRG", "BGGR")

# Canonical packed channel names, in order.
PACKED_CHANNELS = ("R", "Gr", "Gb", "B")

# For each pattern: the (row, col) offset inside the 2x2 block of R, Gr, Gb and B.
# Gr is the green that shares a row with red; Gb the one that shares a row with blue.
_SITES: dict[str, tuple[tuple[int, int], ...]] = {
    "RGGB": ((0, 0), (0, 1), (1, 0), (1, 1)),
    "GRBG": ((0, 1), (0, 0), (1, 1), (1, 0)),
    "GBRG": ((1, 0), (1, 1), (0, 0), (0, 1)),
    "BGGR": ((1, 1), (1, 0), (0, 1), (0, 0)),
}


def check_pattern(pattern: str) -> CfaPattern:
    """Return `pattern` upper-cased if it names a Bayer pattern, else raise ValueError."""
    upper = pattern.upper()
    if upper not in _SITES:
        raise ValueError(f"unknown CFA pattern {pattern!r}; expected one of {', '.join(CFA_PATTERNS)}")
    return upper  # type: ignore[return-value]


def pack(mosaic: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Split a (2H, 2W) mosaic of the given pattern into canonical (H, W, 4) planes."""
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise ValueError(f"a Bayer mosaic must be 2-D with even sides, got shape {mosaic.shape}")
    sites = _SITES[check_pattern(pattern)]
    return np.stack([mosaic[dy::2, dx::2] for dy, dx in sites], axis=-1)


def unpack(planes: np.ndarray, pattern: str = "RGGB") -> np.ndarray:
    """Interleave canonical (H, W, 4) planes into a (2H, 2W) mosaic of the given pattern."""
    if planes.ndim != 3 or planes.shape[2] != 4:
        raise ValueError(f"packed RAW must have shape (H, W, 4), got {planes.shape}")
    height, width = planes.shape[:2]
    mosaic = np.empty((2 * height, 2 * width), dtype=planes.dtype)
    for channel, (dy, dx) in enumerate(_SITES[check_pattern(pattern)]):
        mosaic[dy::2, dx::2] = planes[..., channel]
    return mosaic


def convert_mosaic(mosaic: np.ndarray, source: str, target: str) -> np.ndarray:
    """Re-lay a mosaic from pattern `source` to `target`, moving samples within each block."""
    return unpack(pack(mosaic, source), target)


def mosaic_rgb(rgb: np.ndarray) -> np.ndarray:
    """Sample an (2H, 2W, 3) RGB image onto the Bayer grid, returned packed as (H, W, 4).

    Each site keeps only its own colour: R from the red site, G from both green sites, B from
    the blue site. This is the "naive mosaic" baseline of the challenge's sample submission
    when applied to the JPEG itself.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] % 2 or rgb.shape[1] % 2:
        raise ValueError(f"expected an (2H, 2W, 3) RGB image with even sides, got {rgb.shape}")
    return np.stack(
        [rgb[0::2, 0::2, 0], rgb[0::2, 1::2, 1], rgb[1::2, 0::2, 1], rgb[1::2, 1::2, 2]], axis=-1
    )
