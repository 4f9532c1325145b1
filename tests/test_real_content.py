"""Content weights (benchmarks/real_content.py): simulated pixels counted as real JPEGs count levels.

Invariants:
- under `Content.reweighting(target, pictures)`, the pictures' weighted band shares are the
  target's, for every band the pictures hold; a band they lack weighs nothing;
- the weights depend on a pixel's brightest channel only;
- `Content.uniform()` weighs every pixel 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import real_content as rc  # noqa: E402


def _pictures(seed: int, white: float) -> list[np.ndarray]:
    """Random pictures in which a share `white` of the pixels is clipped white."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        rgb = rng.uniform(0.0, 0.9, (40, 50, 3)).astype(np.float32)
        rgb[rng.uniform(size=(40, 50)) < white] = 1.0
        out.append(rgb)
    return out


def _weighted_shares(content: rc.Content, pictures: list[np.ndarray]) -> np.ndarray:
    sums = np.zeros(len(rc.EDGES) - 1)
    for picture in pictures:
        np.add.at(sums, rc.bands(picture).ravel(), content.weight(picture).ravel())
    return sums / sums.sum()


def test_reweighting_gives_the_target_shares() -> None:
    real, simulated = _pictures(0, 0.01), _pictures(1, 0.2)
    target = rc.shares(real)
    content = rc.Content.reweighting(target, simulated)
    held = rc.shares(simulated) > 0  # the darkest band may be empty in one set or the other
    expected = np.where(held, target, 0.0) / target[held].sum()
    np.testing.assert_allclose(_weighted_shares(content, simulated), expected, atol=1e-12)
    # Negative control: unweighted, the simulated pictures are far from the target at white.
    white = len(rc.EDGES) - 2
    assert rc.shares(simulated)[white] > 10 * target[white]


def test_a_band_the_pictures_lack_weighs_nothing() -> None:
    dark = [np.full((8, 8, 3), 0.02, np.float32)]
    target = rc.shares([np.full((8, 8, 3), 0.5, np.float32), dark[0]])
    content = rc.Content.reweighting(target, dark)
    assert content.ratio[rc.bands(np.array([0.5, 0.5, 0.5]))] == 0.0
    np.testing.assert_allclose(content.weight(dark[0]), 0.5)  # half the target, all of dark


def test_weight_depends_on_the_brightest_channel() -> None:
    content = rc.Content(np.arange(len(rc.EDGES) - 1, dtype=np.float64))
    a = np.array([[0.97, 0.1, 0.2]])
    b = np.array([[0.3, 0.97, 0.97]])
    assert content.weight(a)[0] == content.weight(b)[0] == rc.bands(np.array([0.97, 0, 0]))
    np.testing.assert_array_equal(rc.Content.uniform().weight(_pictures(2, 0.1)[0]), 1.0)


def test_no_pixels_is_an_error() -> None:
    with pytest.raises(ValueError):
        rc.shares([])
