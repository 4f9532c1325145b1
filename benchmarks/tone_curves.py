"""Tone curves from public formulas, as forward curves (linear -> encoded) and as the tables
that invert them: the families of `tone_prior`.

Each curve maps linear light in [0, 1] (1 = the picture's white) to an encoded level in [0, 1]
and is monotone; `inverse_table` samples its inverse onto the 65536 levels of
`rgb2raw.inverse.InverseParams`' tables. The formulas are public facts (sRGB's transfer
function, Brooks et al.'s smoothstep, Hable's and Narkowicz's filmic fits, Reinhard's extended
operator, log and gamma encodings); white points and strengths span mild to strong highlight
roll-off.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rgb2raw.inverse import table_levels

Curve = Callable[[np.ndarray], np.ndarray]



def srgb_encode(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.asarray(x, np.float64), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _smoothstep(s: np.ndarray) -> np.ndarray:
    return s * s * (3.0 - 2.0 * s)


def _hable(x: np.ndarray) -> np.ndarray:  # Hable's filmic operator (Uncharted 2), public formula
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return ((x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f)) - e / f


def _aces(x: np.ndarray) -> np.ndarray:  # Narkowicz's fit of the ACES film curve
    return (x * (2.51 * x + 0.03)) / (x * (2.43 * x + 0.59) + 0.14)


def _normalised(operator: Curve, white: float) -> Curve:
    """`operator` applied to linear x in [0, 1] scaled so that 1 maps to `white`, then scaled
    back so that 1 stays 1, then sRGB-encoded."""
    top = float(operator(np.array(white)))
    return lambda x: srgb_encode(operator(np.asarray(x, np.float64) * white) / top)


def _reinhard(white: float) -> Curve:
    def forward(x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, np.float64) * white
        return srgb_encode(v * (1.0 + v / white**2) / (1.0 + v))
    return forward


FAMILIES: dict[str, Curve] = {
    "srgb": srgb_encode,
    "gamma-2.2": lambda x: np.clip(np.asarray(x, np.float64), 0, 1) ** (1 / 2.2),
    "brooks": lambda x: _smoothstep(srgb_encode(x)),
    "half-smoothstep": lambda x: 0.5 * (srgb_encode(x) + _smoothstep(srgb_encode(x))),
    "hable-2": _normalised(_hable, 2.0),
    "hable-4": _normalised(_hable, 4.0),
    "hable-11": _normalised(_hable, 11.2),
    "aces-1": _normalised(_aces, 1.0),
    "aces-3": _normalised(_aces, 3.0),
    "reinhard-2": _reinhard(2.0),
    "reinhard-4": _reinhard(4.0),
    "reinhard-8": _reinhard(8.0),
    "log-4": lambda x: np.log1p(4.0 * np.clip(np.asarray(x, np.float64), 0, 1)) / np.log1p(4.0),
    "log-16": lambda x: np.log1p(16.0 * np.clip(np.asarray(x, np.float64), 0, 1)) / np.log1p(16.0),
    "log-64": lambda x: np.log1p(64.0 * np.clip(np.asarray(x, np.float64), 0, 1)) / np.log1p(64.0),
    "gamma-2.6": lambda x: np.clip(np.asarray(x, np.float64), 0, 1) ** (1 / 2.6),
}
def inverse_table(forward: Curve) -> np.ndarray:
    """The (65536,) encoded -> linear table of a monotone forward curve, ending at 1."""
    x = np.linspace(0.0, 1.0, 40001) ** 2  # dense in the shadows, where curves are steep
    y = np.maximum.accumulate(np.asarray(forward(x), np.float64))
    y = (y - y[0]) / (y[-1] - y[0])
    table = np.interp(table_levels(), y + np.arange(y.size) * 1e-13, x)
    table[-1] = 1.0  # a curve flat at its top (smoothstep) reaches 1 before x does
    return table.astype(np.float32)
