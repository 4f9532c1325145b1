"""Tone operators of the simulated ISP families, as perturbations of a calibrated forward curve.

Each operator maps linear RGB (>= 0) to display-encoded [0, 1] given the camera's own forward
tone curve `forward` (the calibrated tables inverted, per channel) and one parameter. With the
parameter at its neutral value the result is exactly ``forward(clip(linear, 0, 1))``, so every
family is centred on the calibrated camera:

- ``identity``: the calibrated forward itself;
- ``contrast``: an S-curve of strength `param` (negative: flatter) and a small random power on
  the encoded values;
- ``rolloff``: linear highlights above the knee `param` rolled off smoothly (no clipping);
- ``filmic``: Hable's filmic curve blended in with weight `param`;
- ``reinhard``: an extended Reinhard curve on luminance (chroma kept), weight `param`;
- ``shadowlift``: a smooth local gain that lifts dark regions (blurred luminance to the power
  ``-param``), a simple local operator;
- ``aces``: Narkowicz's ACES fit blended in with weight `param`;
- ``local``: log luminance split into a blurred base, compressed by `param`, and detail,
  boosted, anchored at the base's 70th percentile.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Forward = Callable[[np.ndarray], np.ndarray]


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def _hable(x: np.ndarray | float) -> np.ndarray:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    x = np.asarray(x, dtype=np.float32)
    return ((x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f)) - e / f


def _narkowicz(x: np.ndarray | float) -> np.ndarray:
    v = np.asarray(x, dtype=np.float32)
    return (v * (2.51 * v + 0.03)) / (v * (2.43 * v + 0.59) + 0.14)


def _blend(x: np.ndarray, curve: np.ndarray, weight: float) -> np.ndarray:
    return (1.0 - weight) * x + weight * curve


def _identity(x: np.ndarray, param: float, rng: np.random.Generator) -> np.ndarray:
    return x


def _rolloff(x: np.ndarray, knee: float, rng: np.random.Generator) -> np.ndarray:
    span = 1.0 - knee
    rolled = knee + span * np.tanh((x - knee) / span)
    return np.where(x > knee, rolled, x)


def _filmic(x: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    # Normalised so that linear 1 stays 1 (white point at exposure 6).
    curve = _hable(6.0 * x) / _hable(6.0)
    return _blend(x, curve, weight)


def _reinhard(x: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    lum = np.maximum(_luminance(x), 1e-6)[..., None]
    key, white = 1.2, 1.2
    scaled = key * lum
    mapped = scaled * (1.0 + scaled / (white * white)) / (1.0 + scaled)
    return _blend(x, x * mapped / lum, weight)


def _aces(x: np.ndarray, weight: float, rng: np.random.Generator) -> np.ndarray:
    curve = _narkowicz(1.6 * x) / _narkowicz(1.6)
    return _blend(x, curve, weight)


def _shadowlift(x: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    lum = np.maximum(_luminance(x), 1e-4)
    sigma = 0.06 * max(x.shape[:2])
    blurred = cv2.GaussianBlur(lum, (0, 0), sigmaX=sigma)
    anchor = float(np.percentile(blurred, 60))
    gain = np.clip((np.maximum(blurred, 1e-4) / anchor) ** -strength, 1.0, 4.0)
    return x * gain[..., None]


def _local(x: np.ndarray, compression: float, rng: np.random.Generator) -> np.ndarray:
    lum = np.maximum(_luminance(x), 1e-5)
    log_lum = np.log(lum)
    sigma = 0.04 * max(x.shape[:2])
    base = cv2.GaussianBlur(log_lum, (0, 0), sigmaX=sigma)
    anchor = float(np.percentile(base, 70))
    new_log = anchor + compression * (base - anchor) + 1.15 * (log_lum - base)
    return x * np.exp(new_log - log_lum)[..., None]


#: Operators on linear RGB before the forward curve (``contrast`` acts after it).
_LINEAR = {"identity": _identity, "rolloff": _rolloff, "filmic": _filmic,
           "reinhard": _reinhard, "aces": _aces, "shadowlift": _shadowlift, "local": _local}
TONES: tuple[str, ...] = (*_LINEAR, "contrast")


def apply_tone(kind: str, linear: np.ndarray, param: float, forward: Forward,
               rng: np.random.Generator) -> np.ndarray:
    """Linear RGB (>= 0) -> encoded [0, 1] float32 through operator `kind` (module docstring)."""
    x = np.clip(np.asarray(linear, dtype=np.float32), 0.0, None)
    if kind == "contrast":
        y = forward(np.clip(x, 0.0, 1.0))
        power = float(np.exp(rng.normal(0.0, 0.08)))
        y = np.power(np.clip(y, 0.0, 1.0), np.float32(power))
        y = y + np.float32(param) * y * (1.0 - y) * (y - 0.5) * 2.0
        return np.clip(y, 0.0, 1.0).astype(np.float32)
    if kind not in _LINEAR:
        raise ValueError(f"unknown tone operator {kind!r}")
    mapped = _LINEAR[kind](x, float(param), rng)
    return np.clip(forward(np.clip(mapped, 0.0, 1.0)), 0.0, 1.0).astype(np.float32)
