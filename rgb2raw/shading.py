"""Lens shading: the smooth gain that makes a phone's RAW darker towards the frame's corners.

A phone ISP divides the RAW by its lens's fall-off before the JPEG is made, so a reverse ISP
has to put it back. The fall-off is a property of the full sensor frame, not of a picture or a
tile: the gain of a pixel depends on where it sits in the frame. `RadialShading` models it as
an even polynomial of the distance from the frame's centre,

    gain(r) = c0 + c1 r^2 + c2 r^4 + c3 r^6,   r = |p - centre| / |corner - centre|

(circular in pixels, as a lens is; r is 1 at the corners), one coefficient row per packed RAW
channel (R, Gr, Gb, B). It multiplies the linear RAW above black, after the pixel-wise model.

Invariants:
- `gain_map(shape, box)` for a region of the frame equals the same region cut from the whole
  frame's map, so crops and tiles get exactly the frame's gains wherever they are;
- a region that is the whole frame (`box` None) has its centre at the frame's centre.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from rgb2raw.errors import Rgb2RawError

#: Powers of r^2 in the polynomial, c0 .. c3.
ORDER = 4


@dataclass(frozen=True)
class FrameBox:
    """Where a packed region sits in its sensor frame, in packed pixels."""

    top: int
    left: int
    frame_height: int
    frame_width: int


@dataclass(frozen=True, eq=False)
class RadialShading:
    """Per-channel even polynomial gains of the normalised radius (see the module docstring)."""

    coefficients: np.ndarray  # (4, ORDER) float64: one row per packed channel R, Gr, Gb, B

    def __post_init__(self) -> None:
        coefficients = np.asarray(self.coefficients, dtype=np.float64)
        if coefficients.shape == (ORDER,):
            coefficients = np.tile(coefficients, (4, 1))
        if coefficients.shape != (4, ORDER) or not np.all(np.isfinite(coefficients)):
            raise Rgb2RawError(None, f"lens shading: need {ORDER} finite coefficients per channel")
        object.__setattr__(self, "coefficients", coefficients)

    @classmethod
    def from_rgb(cls, rgb_coefficients: Any) -> RadialShading:
        """From one coefficient row per R, G, B: both greens share G's."""
        rows = np.asarray(rgb_coefficients, dtype=np.float64).reshape(3, ORDER)
        return cls(rows[[0, 1, 1, 2]])

    def gain(self, radius: np.ndarray) -> np.ndarray:
        """Gains at normalised radii: (..., ) -> (..., 4)."""
        r2 = np.square(np.asarray(radius, dtype=np.float64))[..., None]
        powers = np.stack([r2[..., 0] ** k for k in range(ORDER)], axis=-1)  # (..., ORDER)
        return powers @ self.coefficients.T

    def gain_map(self, shape: tuple[int, int], box: FrameBox | None = None) -> np.ndarray:
        """(h, w, 4) float32 gains for a packed region of `shape` placed at `box` in its frame.

        The last map is kept: a batch of same-sized pictures computes it once.
        """
        box = box or FrameBox(0, 0, shape[0], shape[1])
        return _cached_map(self.coefficients.tobytes(), (int(shape[0]), int(shape[1])), box)

    def apply(self, packed01: np.ndarray, box: FrameBox | None = None) -> np.ndarray:
        """Multiply linear packed RAW (h, w, 4), above black, by the frame's gains."""
        return np.multiply(packed01, self.gain_map(packed01.shape[:2], box), dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "radial", "coefficients": self.coefficients.round(6).tolist()}

    @classmethod
    def from_dict(cls, data: Any) -> RadialShading:
        if not isinstance(data, dict) or data.get("kind") != "radial":
            raise Rgb2RawError(None, f"lens shading: unknown description {data!r}")
        return cls(np.asarray(data["coefficients"], dtype=np.float64))


@functools.lru_cache(maxsize=1)
def _cached_map(coefficients: bytes, shape: tuple[int, int], box: FrameBox) -> np.ndarray:
    """The gain map, by Horner's rule in float32 on r^2 (one r^2 plane for all channels)."""
    rows4 = np.frombuffer(coefficients, dtype=np.float64).reshape(4, ORDER)
    height, width = shape
    # Pixel centres relative to the frame's centre; the corner of the frame has r = 1.
    cy, cx = (box.frame_height - 1) / 2.0, (box.frame_width - 1) / 2.0
    half_diagonal2 = (box.frame_height / 2.0) ** 2 + (box.frame_width / 2.0) ** 2
    y2 = ((np.arange(box.top, box.top + height) - cy) ** 2 / half_diagonal2).astype(np.float32)
    x2 = ((np.arange(box.left, box.left + width) - cx) ** 2 / half_diagonal2).astype(np.float32)
    r2 = y2[:, None] + x2[None, :]
    out = np.empty((height, width, 4), dtype=np.float32)
    done: dict[bytes, int] = {}
    for channel, row in enumerate(rows4):
        key = row.tobytes()
        if key in done:  # the greens usually share one curve
            out[..., channel] = out[..., done[key]]
            continue
        plane = np.full((height, width), np.float32(row[-1]), dtype=np.float32)
        for c in row[-2::-1]:
            plane *= r2
            plane += np.float32(c)
        out[..., channel] = plane
        done[key] = channel
    out.setflags(write=False)  # shared by every caller of the cache
    return out


__all__ = ["ORDER", "FrameBox", "RadialShading"]
