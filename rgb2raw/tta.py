"""Test-time augmentation (self-ensemble) over flips and transposes, Bayer-correctly.

Flipping an RGB image moves the Bayer phase: with an even width, column 0 (a red column) lands
on column W-1 (a green one), so a network that always puts red at even columns would sample
the flipped image's red at the original's odd columns. Un-flipping its packed output would then
mix up sites. The exact fix used here: after flipping an axis, reflect-pad ONE pixel at both ends
of it. Pixel x of the padded flipped image is original pixel W - x, which has the same parity as
x, so every red site of the padded image is a red site of the original (and green stays green,
blue stays blue). The network's mosaic output is then cropped by one pixel at both ends,
flipped back, and is an estimate of the original's mosaic at the original's sites.

A transpose keeps red and blue sites where they are and swaps the two greens (Gr <-> Gb); doing
the inverse transpose in mosaic space, then packing, puts each green back in its own channel.

Averages are exact sums in float64 over the passes; a network that is exactly equivariant (a
per-pixel mosaic model) gives exactly its plain output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rgb2raw import bayer

#: Maps an (H, W, 3) RGB image to its packed (H/2, W/2, 4) RAW prediction (float32).
ImagePredictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Transform:
    """One element of the dihedral group: transpose first, then flips."""

    transpose: bool = False
    flip_rows: bool = False  # vertical flip (upside down)
    flip_cols: bool = False  # horizontal flip (mirror)

    @property
    def name(self) -> str:
        parts = [n for n, on in (("T", self.transpose), ("V", self.flip_rows), ("H", self.flip_cols)) if on]
        return "+".join(parts) or "identity"


IDENTITY = Transform()
#: All eight flips/transposes.
DIHEDRAL: tuple[Transform, ...] = tuple(
    Transform(t, v, h) for t in (False, True) for v in (False, True) for h in (False, True)
)


def transforms(passes: int) -> tuple[Transform, ...]:
    """The first `passes` transforms: 1 (none), 2 (+ mirror), 4 (all flips) or 8 (+ transposes)."""
    if passes not in (1, 2, 4, 8):
        raise ValueError(f"tta passes must be 1, 2, 4 or 8, got {passes}")
    order = (IDENTITY, Transform(flip_cols=True), Transform(flip_rows=True),
             Transform(flip_rows=True, flip_cols=True))
    if passes <= 4:
        return order[:passes]
    return order + tuple(Transform(True, v, h) for v in (False, True) for h in (False, True))


def forward_image(rgb: np.ndarray, transform: Transform) -> np.ndarray:
    """The image the network sees for `transform`: transposed, flipped, phase-restored."""
    image = rgb.transpose(1, 0, 2) if transform.transpose else rgb
    pad_rows = (1, 1) if transform.flip_rows else (0, 0)
    pad_cols = (1, 1) if transform.flip_cols else (0, 0)
    if transform.flip_rows:
        image = image[::-1]
    if transform.flip_cols:
        image = image[:, ::-1]
    if transform.flip_rows or transform.flip_cols:
        # The one-pixel pad moves every pixel to a position of the original parity.
        image = np.pad(image, (pad_rows, pad_cols, (0, 0)), mode="reflect")
    return np.ascontiguousarray(image)


def inverse_output(packed: np.ndarray, transform: Transform) -> np.ndarray:
    """Map the network's packed output for `transform` back to the original's sites."""
    if transform == IDENTITY:
        return packed
    mosaic = bayer.unpack(packed, "RGGB")
    if transform.flip_rows:
        mosaic = mosaic[1:-1][::-1]
    if transform.flip_cols:
        mosaic = mosaic[:, 1:-1][:, ::-1]
    if transform.transpose:
        mosaic = mosaic.T
    return bayer.pack(np.ascontiguousarray(mosaic), "RGGB")


def predict_tta(rgb: np.ndarray, predict: ImagePredictor, passes: int = 8) -> np.ndarray:
    """Mean of `predict` over `passes` Bayer-correct flips/transposes of `rgb` (float32)."""
    chosen = transforms(passes)
    total: np.ndarray | None = None
    for transform in chosen:
        output = inverse_output(predict(forward_image(rgb, transform)), transform)
        # float64: the sum of up to 8 float32 values is then exact, so equal passes average
        # to exactly the plain output.
        if total is None:
            total = np.array(output, dtype=np.float64, copy=True)
        else:
            total += output
    assert total is not None
    total /= len(chosen)
    return total.astype(np.float32)


__all__ = ["DIHEDRAL", "IDENTITY", "ImagePredictor", "Transform", "forward_image",
           "inverse_output", "predict_tta", "transforms"]
