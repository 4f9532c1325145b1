"""Levels and units: digital numbers (DN), normalised values, and the scorer's units, in one place.

Three kinds of numbers flow through rgb2raw:

* **DN**, what RAW files hold: integers between a black level (no light) and a white level
  (saturation), e.g. 60 and 1020 for the P20 data (`rgb2raw.cameras`);
* **normalised values** ``v``, what networks output and train on: ``dn = black + v * (white -
  black)`` for the pair of levels the model was made for (its card, `rgb2raw.zoo.cards`);
* **the scorer's units**: the challenge's official program loads a prediction with
  ``np.load(path).astype(float) / 1024.`` and asserts the result lies in [0, 1] (the AIM 2022
  Reversed ISP scoring program; docs/conventions.md lists the sources), so 1024 is the one
  full-scale value of every score.

`Levels.to_dn` is the float mapping (no rounding); `quantise` makes the uint16 DN a file holds,
rounding once and clipping where the model's convention says (`rgb2raw.nets.Contract`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rgb2raw.errors import Rgb2RawError

if TYPE_CHECKING:
    import numpy as np

    from rgb2raw.cameras import CameraProfile

#: The challenge scorer divides DN by this (not by a white level): 1024 == 1.0.
SCORER_WHITE = 1024.0

Rounding = Literal["nearest", "truncate"]

# Elements per chunk of `quantise`: 1 MiB of float32, well inside a core's L2 cache.
_CHUNK = 1 << 18


@dataclass(frozen=True)
class Levels:
    """A black and a white level in DN: normalised 0 is `black`, 1 is `white`."""

    black: float
    white: float

    @classmethod
    def of(cls, camera: CameraProfile) -> Levels:
        """The camera profile's own levels."""
        return cls(float(camera.black_level), float(camera.white_level))

    @property
    def span(self) -> float:
        return self.white - self.black

    def normalise(self, dn: np.ndarray) -> np.ndarray:
        """DN -> normalised float32 ``(dn - black) / (white - black)``; nothing clipped."""
        import numpy as np

        return ((np.asarray(dn, dtype=np.float32) - np.float32(self.black))
                / np.float32(self.span))

    def to_dn(self, values: np.ndarray) -> np.ndarray:
        """Normalised -> float32 DN ``black + v * (white - black)``; not rounded, not clipped."""
        import numpy as np

        return np.asarray(values, dtype=np.float32) * np.float32(self.span) + np.float32(self.black)


SCORER = Levels(0.0, SCORER_WHITE)


def quantise(values: np.ndarray, levels: Levels, *, low: float, high: float,
             rounding: Rounding = "nearest", name: str = "model") -> np.ndarray:
    """Normalised values -> uint16 DN: ``black + v * span``, rounded once, clipped to [low, high].

    `rounding` ``"truncate"`` drops the fraction as numpy's ``astype(uint16)`` does (after the
    clip, so it equals truncation for every value the clip keeps). Works through the values in
    cache-sized chunks: a 12 MP image costs no full-size float temporary and each element is
    read from memory once. NaN or infinite values are an error naming `name`.
    """
    import numpy as np

    span, offset = np.float32(levels.span), np.float32(levels.black)
    round_ = np.rint if rounding == "nearest" else np.trunc
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    result = np.empty(flat.shape, dtype=np.uint16)
    scratch = np.empty(min(flat.size, _CHUNK), dtype=np.float32)
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start: start + _CHUNK]
        dn = scratch[: chunk.size]
        np.multiply(chunk, span, out=dn)
        # NaN and inf stay NaN or inf through the sum; check the whole chunk only then.
        if not np.isfinite(dn.sum(dtype=np.float64)) and not np.isfinite(chunk).all():
            raise Rgb2RawError(None, f"model {name} produced NaN or infinite values")
        dn += offset
        round_(dn, out=dn)
        np.clip(dn, low, high, out=dn)
        result[start: start + chunk.size] = dn
    return result.reshape(np.shape(values))


def scorer_units(dn: np.ndarray) -> np.ndarray:
    """DN -> what the scorer reads back from a submission: rint, clip to [0, 1024], / 1024."""
    import numpy as np

    return (np.clip(np.rint(dn), 0, SCORER_WHITE) / SCORER_WHITE).astype(np.float32)


__all__ = ["SCORER", "SCORER_WHITE", "Levels", "Rounding", "quantise", "scorer_units"]
