"""The pixel-wise inverse ISP as data: `InverseParams`.

Every offline model rgb2raw bundles, and every camera `rgb2raw calibrate` fits, is one instance
of the same small function of each 2x2 block of the picture:

    per-channel table (inverse tone curve and gamma in one)  ->  3x3 matrix to camera RGB
    -> clip to [0, 1]  ->  per-channel gains (white balance undone, exposure), fading to
    `highlight_gains` above `knee`  ->  clip to [0, 1]  ->  each Bayer site keeps its colour

and its output in [0, 1] maps to DN as ``black + v * (white - black)``.

`InverseParams.from_camera(camera)` is Brooks et al.'s unprocessing with the camera profile's
constants (the formula `rgb2raw.isp.unprocess` computes); a calibrated camera replaces the
table, matrix and gains by fitted ones. `apply` is the numpy reference;
`rgb2raw.nets.parametric_graph.build_graph` runs the same numbers as a fast ONNX graph.

Invariants, checked on construction:
- `tables` is (3, TABLE_LEVELS), finite and non-decreasing along each row (a tone curve never
  darkens a brighter input);
- `matrix` is (3, 3), `gains` and `highlight_gains` are (3,), all finite, gains positive;
- 0 <= knee < 1 and black < white.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rgb2raw import bayer
from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import CameraProfile
from rgb2raw.errors import Rgb2RawError

#: One table entry per 16-bit level, so 8- and 16-bit inputs land on entries exactly.
TABLE_LEVELS = 65536
#: Brooks et al.'s highlight knee: above this mean camera level the gains fade.
DEFAULT_KNEE = 0.9

# The sRGB transfer curve (IEC 61966-2-1).
_SRGB_LINEAR_THRESHOLD = 0.04045
_SRGB_LINEAR_SLOPE = 12.92
_SRGB_OFFSET = 0.055
_SRGB_SCALE = 1.055
_SRGB_EXPONENT = 2.4


def brooks_linearize(encoded: np.ndarray) -> np.ndarray:
    """Inverse smoothstep tone curve, then inverse sRGB gamma, in float64.

    The function the uncalibrated formula's table samples (the torch reference module
    `ParametricInverseISP` computes the same in float32).
    """
    y = np.clip(np.asarray(encoded, dtype=np.float64), 0.0, 1.0)
    tone = np.clip(0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0), 0.0, 1.0)
    return np.where(tone <= _SRGB_LINEAR_THRESHOLD, tone / _SRGB_LINEAR_SLOPE,
                    ((tone + _SRGB_OFFSET) / _SRGB_SCALE) ** _SRGB_EXPONENT)


def table_levels() -> np.ndarray:
    """The encoded value of every table entry, ``k / 65535``, float64 (TABLE_LEVELS,)."""
    return np.arange(TABLE_LEVELS, dtype=np.float64) / (TABLE_LEVELS - 1)


def table_index(rgb01: np.ndarray) -> np.ndarray:
    """The table entry of each encoded value: ``floor(clip(x, 0, 1) * 65535 + 0.5)`` in float32,
    as the ONNX graph rounds (half up); int32 of the input's shape."""
    scaled = np.clip(np.asarray(rgb01, np.float32), np.float32(0.0), np.float32(1.0))
    scaled *= np.float32(TABLE_LEVELS - 1)
    scaled += np.float32(0.5)
    return scaled.astype(np.int32)


def table_from_curve(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A (TABLE_LEVELS,) float32 table interpolating a monotone curve given at sorted `codes`.

    `codes` are encoded levels in [0, 1] (for example the 256 levels of an 8-bit JPEG); outside
    their range the end values are held.
    """
    codes = np.asarray(codes, dtype=np.float64)
    values = np.maximum.accumulate(np.asarray(values, dtype=np.float64))
    return np.interp(table_levels(), codes, values).astype(np.float32)


def _vector(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32).reshape(-1)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise Rgb2RawError(None, f"inverse model: {name} must be 3 finite numbers, got {values!r}")
    return array


@dataclass(frozen=True, eq=False)  # arrays have no truth value: compare fields explicitly
class InverseParams:
    """A pixel-wise inverse ISP (see the module docstring for the function and invariants)."""

    tables: np.ndarray  # (3, TABLE_LEVELS) float32: encoded level k/65535 -> linear, per channel
    matrix: np.ndarray  # (3, 3) float32: linear RGB -> camera RGB
    gains: np.ndarray  # (3,) float32: camera RGB multipliers (inverse white balance x exposure)
    highlight_gains: np.ndarray  # (3,) float32: what `gains` fade to as the mean goes knee -> 1
    knee: float = DEFAULT_KNEE
    black_level: float = 0.0
    white_level: float = 1023.0
    # Free-form provenance (what fitted it, on what); saved with the numbers, never computed on.
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tables = np.ascontiguousarray(self.tables, dtype=np.float32)
        if tables.shape != (3, TABLE_LEVELS) or not np.all(np.isfinite(tables)):
            raise Rgb2RawError(None, f"inverse model: tables must be finite, shape (3, {TABLE_LEVELS})")
        if np.any(np.diff(tables, axis=1) < 0):
            raise Rgb2RawError(None, "inverse model: every tone table must be non-decreasing")
        matrix = np.asarray(self.matrix, dtype=np.float32)
        if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
            raise Rgb2RawError(None, "inverse model: matrix must be a finite 3x3")
        gains = _vector(self.gains, "gains")
        if np.any(gains <= 0):
            raise Rgb2RawError(None, f"inverse model: gains must be positive, got {gains.tolist()}")
        if not 0.0 <= float(self.knee) < 1.0:
            raise Rgb2RawError(None, f"inverse model: knee must be in [0, 1), got {self.knee}")
        if not float(self.black_level) < float(self.white_level):
            raise Rgb2RawError(None, "inverse model: black level must be below white level")
        object.__setattr__(self, "knee", float(self.knee))
        object.__setattr__(self, "black_level", float(self.black_level))
        object.__setattr__(self, "white_level", float(self.white_level))
        object.__setattr__(self, "tables", tables)
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "gains", gains)
        object.__setattr__(self, "highlight_gains", _vector(self.highlight_gains, "highlight_gains"))

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def from_camera(cls, camera: CameraProfile) -> InverseParams:
        """Brooks et al.'s unprocessing with `camera`'s matrix, daylight gains and levels.

        Highlight protection fades each inverse gain towards 1 (never below the plain inverse
        gain), so a clipped white stays saturated in every RAW channel.
        """
        # Cast to float32 before inverting, as `isp.safe_inverse_gains` does.
        inverse = (1.0 / np.asarray(camera.wb_gains, dtype=np.float32)).astype(np.float32)
        table = brooks_linearize(table_levels()).astype(np.float32)
        return cls(
            tables=np.stack([table] * 3),
            matrix=np.asarray(camera.rgb_to_cam, dtype=np.float32),
            gains=inverse,
            highlight_gains=np.maximum(inverse, np.float32(1.0)),
            knee=DEFAULT_KNEE,
            black_level=float(camera.black_level),
            white_level=float(camera.white_level),
            info={"kind": "formula", "camera": camera.name},
        )

    # -- evaluation ----------------------------------------------------------------------------

    def linear_rgb(self, rgb01: np.ndarray) -> np.ndarray:
        """The table step alone: (..., 3) encoded [0, 1] -> linear RGB, float32."""
        index = table_index(rgb01)
        return np.stack([self.tables[c][index[..., c]] for c in range(3)], axis=-1)

    def camera_rgb(self, rgb01: np.ndarray) -> np.ndarray:
        """Every step but the mosaic: (H, W, 3) encoded [0, 1] -> camera RGB in [0, 1]."""
        linear = self.linear_rgb(rgb01)
        camera = np.clip(np.einsum("...c,dc->...d", linear, self.matrix), 0.0, 1.0)
        mean = camera.mean(axis=-1, keepdims=True)
        weight = np.square(np.clip((mean - self.knee) / (1.0 - self.knee), 0.0, 1.0))
        gains = self.gains + weight * (self.highlight_gains - self.gains)
        return np.clip(camera * gains, 0.0, 1.0).astype(np.float32)

    def apply(self, rgb01: np.ndarray) -> np.ndarray:
        """(H, W, 3) encoded RGB in [0, 1], H and W even -> packed (H/2, W/2, 4) RGGB in [0, 1]."""
        rgb = np.asarray(rgb01)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] % 2 or rgb.shape[1] % 2:
            raise Rgb2RawError(None, f"inverse model: needs an (H, W, 3) image with even sides, got {rgb.shape}")
        return bayer.mosaic_rgb(self.camera_rgb(rgb))

    # -- storage -------------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The parameters as named arrays (what `save` writes)."""
        return {
            "tables": self.tables,
            "matrix": self.matrix,
            "gains": self.gains,
            "highlight_gains": self.highlight_gains,
            "scalars": np.array([self.knee, self.black_level, self.white_level], dtype=np.float64),
            "info": np.frombuffer(json.dumps(self.info, sort_keys=True).encode("utf-8"), np.uint8),
        }

    @classmethod
    def from_arrays(cls, arrays: Any) -> InverseParams:
        knee, black, white = (float(x) for x in np.asarray(arrays["scalars"]).reshape(3))
        info = json.loads(bytes(np.asarray(arrays["info"], dtype=np.uint8)).decode("utf-8"))
        return cls(
            tables=np.asarray(arrays["tables"]),
            matrix=np.asarray(arrays["matrix"]),
            gains=np.asarray(arrays["gains"]),
            highlight_gains=np.asarray(arrays["highlight_gains"]),
            knee=knee,
            black_level=black,
            white_level=white,
            info=info,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the parameters to an ``.npz`` file atomically; returns the path."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **self.to_arrays())  # type: ignore[arg-type]
        target = Path(path)
        with atomic_write(target) as handle:
            handle.write(buffer.getvalue())
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InverseParams:
        """Read parameters written by `save` (no pickles are ever loaded)."""
        try:
            with np.load(Path(path), allow_pickle=False) as arrays:
                return cls.from_arrays(arrays)
        except (OSError, KeyError, ValueError) as exc:
            raise Rgb2RawError(str(path), f"not a readable inverse-model file ({exc})") from None


__all__ = [
    "DEFAULT_KNEE",
    "TABLE_LEVELS",
    "InverseParams",
    "brooks_linearize",
    "table_from_curve",
    "table_levels",
]
