"""The forward direction of an `InverseParams`: RAW-like camera RGB -> the picture it inverts.

Tests and benchmarks of calibration need pairs from a KNOWN pipeline: take linear camera RGB,
render the picture an `InverseParams` would map back to it (`render`), and mosaic the camera
RGB as the RAW (`mosaic_dn`). Away from clipping, ``params.apply(render(params, rgb, g))``
returns ``mosaic(rgb)`` for gains ``g`` (up to the picture's quantisation).
"""

from __future__ import annotations

import numpy as np

from rgb2raw import bayer
from rgb2raw.inverse import InverseParams, table_levels


def invert_table(table: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """The encoded level in [0, 1] whose table value is `linear` (a monotone table's inverse)."""
    levels = table_levels()
    values = np.asarray(table, np.float64)
    # Flat stretches of the table have many preimages; np.interp needs strictly increasing xp.
    keep = np.concatenate([[True], np.diff(values) > 0])
    return np.interp(np.asarray(linear, np.float64), values[keep], levels[keep])


def render(params: InverseParams, camera_rgb: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """The (H, W, 3) encoded picture in [0, 1] whose inverse is `camera_rgb` (H, W, 3) under
    `params` with `gains` instead of its typical gains (highlight fade ignored), clipped."""
    balanced = np.asarray(camera_rgb, np.float64) / np.asarray(gains, np.float64)
    linear = np.einsum("...c,dc->...d", balanced, np.linalg.inv(params.matrix.astype(np.float64)))
    encoded = np.stack([invert_table(params.tables[c], linear[..., c]) for c in range(3)], axis=-1)
    return np.clip(encoded, 0.0, 1.0).astype(np.float32)


def mosaic_dn(camera_rgb: np.ndarray, black: float, white: float) -> np.ndarray:
    """Packed RAW in DN (float) of (2H, 2W, 3) camera RGB in [0, 1]."""
    packed = bayer.mosaic_rgb(np.clip(np.asarray(camera_rgb, np.float32), 0.0, 1.0))
    return (black + packed * np.float32(white - black)).astype(np.float32)


__all__ = ["invert_table", "mosaic_dn", "render"]
