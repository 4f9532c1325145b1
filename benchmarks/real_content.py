"""How much a simulated pixel counts: real phone JPEGs' share of its level over the simulations'.

Why this exists. The prior's simulations (`tone_prior.py`) draw their scenes from licensed
photos, which are wallpapers: about 8 % of their pixels are near white (the brightest channel at
0.95 or more), against 0.8 % in the challenge's real phone-ISP crops
(`../shared/data/real-inputs/`, both tracks). Near-white pixels are where the ISP families
disagree most (a strong highlight roll-off against none), so they held most of every family's
squared error, and unweighted simulations let the highlights of wallpapers decide both the
mixture and the held-out scores. Reweighting each simulated pixel by the real crops' share of
its level band, over the simulations' share, makes the simulated sets count levels as real
phone pictures do. The real crops have no ground truth; only their level histogram is used.

A pixel's level is the largest of its R, G, B values in [0, 1]. The bands are a tenth wide
below 0.9, where scene content varies from scene to scene and the families agree, and finer
above, where they do not.

Benchmark code: reads ../shared at build time only (through `real_pairs.SHARED`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rgb2raw.rgb import read_rgb

#: Upper edges are exclusive; the last band holds the clipped JPEG white (255).
EDGES = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99,
                  254.5 / 255, 1.01])


def bands(rgb: np.ndarray) -> np.ndarray:
    """The band index of each pixel of an (..., 3) picture in [0, 1]."""
    return np.clip(np.digitize(np.max(rgb, axis=-1), EDGES) - 1, 0, len(EDGES) - 2)


def shares(pictures: Iterable[np.ndarray]) -> np.ndarray:
    """Each band's share of all the pixels of `pictures` (sums to 1)."""
    counts = np.zeros(len(EDGES) - 1)
    for picture in pictures:
        counts += np.bincount(bands(picture).ravel(), minlength=counts.size)
    if counts.sum() == 0:
        raise ValueError("no pixels to count")
    return counts / counts.sum()


@dataclass(frozen=True)
class Content:
    """Per-band weights that give `pictures` the target shares (`reweighting`)."""

    ratio: np.ndarray  # (bands,)

    @classmethod
    def reweighting(cls, target: np.ndarray, pictures: Iterable[np.ndarray]) -> Content:
        """Weights under which `pictures` have the band shares `target`. A band the pictures
        lack gets weight 0 (nothing there to reweight)."""
        own = shares(pictures)
        return cls(np.where(own > 0, target / np.maximum(own, 1e-300), 0.0))

    @classmethod
    def uniform(cls) -> Content:
        return cls(np.ones(len(EDGES) - 1))

    def weight(self, rgb: np.ndarray) -> np.ndarray:
        """The weight of each pixel of an (..., 3) picture."""
        return self.ratio[bands(rgb)]


def real_shares(shared: Path) -> np.ndarray:
    """The band shares of every real phone-ISP crop in ``shared/data/real-inputs`` (both tracks)."""
    folder = shared / "data" / "real-inputs"
    files = sorted(folder.glob("*/*.jpg"))
    if not files:
        raise SystemExit(f"{folder}: no real phone JPEGs (set RGB2RAW_SHARED)")

    return shares(read_rgb(path, even=False) for path in files)
