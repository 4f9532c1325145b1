"""Crops, flips and rotations of (RGB, packed RAW) training pairs that keep the Bayer layout.

A pair is an RGB image (2H, 2W, 3) and its packed RGGB RAW (H, W, 4): RAW pixel (i, j) is the
2x2 RGB block at (2i, 2j). Two rules keep them consistent:

- **Even offsets.** A crop starting at an odd RGB row or column would split the 2x2 blocks, so
  crops start at even offsets and RAW is cut at half those offsets.
- **Bayer-correct flips and rotations.** Flipping an RGGB mosaic left-right turns it into
  GRBG: the red site moves to an odd column. We therefore cut one extra RAW pixel (two RGB
  pixels) per side, apply the same transform to the RGB and to the *unpacked* mosaic, and then
  re-crop both by one pixel on each axis whose phase moved, so the mosaic starts with red again
  (the one-pixel shift is applied to the RGB too, so the pixels stay aligned). Transposing a
  mosaic keeps red and blue on the diagonal, so it needs no shift.

The eight transforms of the square (identity, flips, transposes, rotations by 90, 180, 270
degrees) are numbered 0..7 by the bits (transpose, vertical flip, horizontal flip).
"""

from __future__ import annotations

import numpy as np

from rgb2raw import bayer

N_TRANSFORMS = 8


def transform_image(image: np.ndarray, op: int) -> np.ndarray:
    """Apply dihedral transform `op` (0..7) to the first two axes: transpose, then flips."""
    if not 0 <= op < N_TRANSFORMS:
        raise ValueError(f"transform number must be in 0..7, got {op}")
    transpose, flip_v, flip_h = bool(op & 4), bool(op & 2), bool(op & 1)
    out = image
    if transpose:
        out = np.swapaxes(out, 0, 1)
    if flip_v:
        out = out[::-1]
    if flip_h:
        out = out[:, ::-1]
    return out


def red_phase(op: int) -> tuple[int, int]:
    """Where the red site lands in the first 2x2 block of an RGGB mosaic after `op`.

    A flip of an even-sized axis moves every sample from an even to an odd index (and back);
    a transpose swaps the axes but leaves red at (0, 0).
    """
    return (int(bool(op & 2)), int(bool(op & 1)))


def transform_pair(rgb: np.ndarray, raw: np.ndarray, op: int) -> tuple[np.ndarray, np.ndarray]:
    """Transform a pair exactly; the result is one RAW pixel smaller on each shifted axis.

    `rgb` is (2H, 2W, 3), `raw` packed (H, W, 4). Returns RGB (2H', 2W', 3) and packed RGGB RAW
    (H', W', 4) that match pixel for pixel, with H' = H - dy, W' = W - dx for the red phase
    (dy, dx) of `op`. Callers that need a fixed size cut one RAW pixel more beforehand.
    """
    if rgb.shape[:2] != (2 * raw.shape[0], 2 * raw.shape[1]):
        raise ValueError(f"RGB {rgb.shape} does not match packed RAW {raw.shape}")
    mosaic = transform_image(bayer.unpack(raw, "RGGB"), op)
    picture = transform_image(rgb, op)
    dy, dx = red_phase(op)
    rows = mosaic.shape[0] - 2 * dy
    cols = mosaic.shape[1] - 2 * dx
    mosaic = mosaic[dy : dy + rows, dx : dx + cols]
    picture = picture[dy : dy + rows, dx : dx + cols]
    return np.ascontiguousarray(picture), bayer.pack(np.ascontiguousarray(mosaic), "RGGB")


def random_pair_crop(
    rgb: np.ndarray, raw: np.ndarray, size: int, rng: np.random.Generator, *, augment: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A random `size` x `size` RGB crop at an even offset and its (size/2)^2 RAW crop.

    With `augment`, one of the eight transforms is drawn and applied Bayer-correctly (a crop
    one RAW pixel larger is cut first, then trimmed by `transform_pair`). `size` must be even
    and the pair at least ``size + 2`` RGB pixels on each side when augmenting.
    """
    if size % 2:
        raise ValueError(f"crop size must be even, got {size}")
    need = size + (2 if augment else 0)
    height, width = rgb.shape[:2]
    if height < need or width < need:
        raise ValueError(f"image {width}x{height} is smaller than the {need}x{need} crop")
    top = 2 * int(rng.integers(0, (height - need) // 2 + 1))
    left = 2 * int(rng.integers(0, (width - need) // 2 + 1))
    rgb_crop = rgb[top : top + need, left : left + need]
    raw_crop = raw[top // 2 : (top + need) // 2, left // 2 : (left + need) // 2]
    if not augment:
        return np.ascontiguousarray(rgb_crop), np.ascontiguousarray(raw_crop)
    op = int(rng.integers(0, N_TRANSFORMS))
    rgb_out, raw_out = transform_pair(rgb_crop, raw_crop, op)
    half = size // 2
    # Axes that were not shifted are one RAW pixel too large: drop the last one.
    return np.ascontiguousarray(rgb_out[:size, :size]), np.ascontiguousarray(raw_out[:half, :half])


def center_crop_pair(rgb: np.ndarray, raw: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    """The largest central crop whose RGB sides are multiples of `multiple` (even offsets).

    Used for validation, where a network needs sizes that are multiples of its own
    `size_multiple` (e.g. 16 for LiteISPNet-S, which a 504-pixel S7 crop is not).
    """
    step = max(2, multiple)
    if step % 2:
        step *= 2
    height, width = rgb.shape[:2]
    new_h, new_w = height - height % step, width - width % step
    if new_h == 0 or new_w == 0:
        raise ValueError(f"image {width}x{height} is smaller than one {step}-pixel block")
    top = ((height - new_h) // 2) & ~1
    left = ((width - new_w) // 2) & ~1
    return (
        np.ascontiguousarray(rgb[top : top + new_h, left : left + new_w]),
        np.ascontiguousarray(raw[top // 2 : (top + new_h) // 2, left // 2 : (left + new_w) // 2]),
    )
