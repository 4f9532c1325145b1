"""The tone prior behind the calibrated defaults (benchmarks/tone_prior.py, tone_curves.py).

Invariants:
- every family's table inverts its forward curve, is monotone and runs from 0 to 1;
- a mixture is one pixel-wise model whose output is exactly the weighted sum of its
  components' (before highlight fade and clipping): the weights are all it adds;
- the weights recover a known mixture from its own data, and follow the data: the emphasised
  data set, made by one component, puts the weight on that component and is fitted to its
  noise floor (negative control: emphasis elsewhere leaves it far from that floor);
- highlight gains fade only where the frame shows bright pixels; without any, none;
- sites weighted zero (`real_content`) do not vote, and scores weighted to real content count
  each level by the target's shares (weights of 1 give the plain score).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import tone_curves as tc  # noqa: E402
import tone_prior as tp  # noqa: E402

from rgb2raw import bayer  # noqa: E402
from rgb2raw.cameras import get_camera  # noqa: E402
from rgb2raw.inverse import InverseParams, table_levels  # noqa: E402


@pytest.mark.parametrize("name", sorted(tc.FAMILIES))
def test_family_tables_invert_their_curves(name: str) -> None:
    table = tc.inverse_table(tc.FAMILIES[name])
    assert table.shape == (65536,)
    assert table[0] == pytest.approx(0.0, abs=1e-6) and table[-1] == pytest.approx(1.0)
    assert np.all(np.diff(table) >= 0)
    forward = tc.FAMILIES[name]
    top = float(forward(np.array(1.0)))
    levels = table_levels()[::997]
    back = np.asarray(forward(table[::997].astype(np.float64))) / top
    assert np.max(np.abs(back - levels)) < 2e-3


def _components() -> list[InverseParams]:
    base = InverseParams.from_camera(get_camera("s7"))
    names = ("srgb", "hable-4", "log-16")
    return [tp.with_table(base, tc.inverse_table(tc.FAMILIES[n]), s)
            for n, s in zip(names, (0.4, 0.7, 0.25), strict=True)]


def _observations(n: int = 4000, seed: int = 0) -> tp.Observations:
    rng = np.random.default_rng(seed)
    rgb = rng.uniform(0.02, 0.95, (n, 3)).astype(np.float32)
    channel = rng.integers(0, 3, n)
    ones = np.ones(n, np.float32)
    return tp.Observations(rgb, channel, np.zeros(n, np.float32), ones, ones)


def _with_raw(data: tp.Observations, raw: np.ndarray, black: float) -> tp.Observations:
    return tp.Observations(data.rgb, data.channel, (black + raw).astype(np.float32), data.shading,
                           data.weight)


def test_mixture_is_exactly_the_weighted_sum() -> None:
    components = _components()
    weights = np.array([0.5, 0.2, 0.3])
    data = _observations()
    expected = weights @ tp._predictions(components, data)
    mixed = tp.mix(components, weights)
    (got,) = tp._predictions([mixed], data)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-3)
    # A single component at weight 1 is that component.
    alone = tp.mix(components, np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(alone.tables, components[1].tables, atol=1e-6)
    np.testing.assert_allclose(alone.gains, components[1].gains, rtol=1e-5)


def test_weights_recover_a_known_mixture() -> None:
    components = _components()
    truth = np.array([0.6, 0.0, 0.4])
    data = _observations()
    black = components[0].black_level
    raw = truth @ tp._predictions(components, data)
    weights = tp.mixture_weights(components, [_with_raw(data, raw, black)], [1.0])
    np.testing.assert_allclose(weights, truth, atol=1e-3)


@pytest.mark.parametrize("source", [0, 1, 2])
def test_weights_follow_the_data_that_is_emphasised(source: int) -> None:
    components = _components()
    black = components[0].black_level
    data = _observations(seed=1)
    predictions = tp._predictions(components, data)
    # Noise gives every data set an error floor: without one, mean PSNR is unbounded at any
    # set fitted exactly, and even emphasis would pick a corner too.
    noise = np.random.default_rng(3).normal(0.0, 2.0, predictions.shape)
    sets = [_with_raw(data, predictions[k] + noise[k], black) for k in range(3)]
    emphasis = [1000.0 if k == source else 1.0 for k in range(3)]
    weights = tp.mixture_weights(components, sets, emphasis)
    assert int(np.argmax(weights)) == source

    def error(w: np.ndarray) -> float:  # RMS error on the source's set, DN
        return float(np.sqrt(np.mean(np.square(w @ predictions - predictions[source] - noise[source]))))

    assert error(weights) < 2.5  # the noise floor is 2 DN
    # Negative control: emphasis on another set leaves this one far from its floor.
    other = tp.mixture_weights(components, sets, emphasis[1:] + emphasis[:1])
    assert error(other) > 10.0


def _figure(rgb: np.ndarray, raw: np.ndarray) -> tp.FigureData:
    h, w = rgb.shape[:2]
    return tp.FigureData(rgb.astype(np.float32), raw.astype(np.float32), np.ones((h, w), bool),
                         np.ones((h, w, 3), np.float32))


def test_no_highlights_in_the_frame_means_no_fade() -> None:
    params = replace(_components()[0], highlight_gains=np.ones(3, np.float32))
    rgb = np.random.default_rng(2).uniform(0.05, 0.6, (64, 64, 3))
    span = params.white_level - params.black_level
    raw = params.black_level + params.camera_rgb(rgb.astype(np.float32)) * span
    out = tp.with_highlights(params, _figure(rgb, raw))
    np.testing.assert_allclose(out.highlight_gains, params.gains)


def test_bright_pixels_over_white_raw_keep_a_fade() -> None:
    params = _components()[0]
    rgb = np.ones((64, 64, 3))
    rgb[:, :32] = 0.3
    raw = np.full((64, 64, 3), params.white_level)  # clipped white over RAW white
    span = params.white_level - params.black_level
    raw[:, :32] = params.black_level + params.camera_rgb(rgb[:, :32].astype(np.float32)) * span
    out = tp.with_highlights(params, _figure(rgb, raw))
    assert np.all(out.highlight_gains > params.gains * 1.5)


def test_sites_weighted_zero_do_not_vote() -> None:
    components = _components()
    truth = np.array([0.6, 0.0, 0.4])
    data = _observations(seed=4)
    black = components[0].black_level
    raw = truth @ tp._predictions(components, data)
    bright = data.rgb.max(axis=1) > 0.8
    raw = np.where(bright, raw * 3.0, raw)  # the bright sites lie
    lying = _with_raw(data, raw, black)
    ignored = replace(lying, weight=np.where(bright, 0.0, 1.0).astype(np.float32))
    np.testing.assert_allclose(tp.mixture_weights(components, [ignored], [1.0]), truth, atol=1e-3)
    # Negative control: counted, the lying sites move the weights.
    assert np.abs(tp.mixture_weights(components, [lying], [1.0]) - truth).max() > 0.05


def _pairs(params: InverseParams, error_where_bright: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pictures and the RAW `params` makes of them, off by `error_where_bright` DN under
    near-white pixels and by 1 DN elsewhere."""
    rng = np.random.default_rng(5)
    span = params.white_level - params.black_level
    out = []
    for _ in range(2):
        jpeg = rng.uniform(0.05, 0.8, (32, 48, 3)).astype(np.float32)
        jpeg[:, :8] = 1.0
        raw = np.rint(params.black_level + params.apply(jpeg) * span)
        bright = bayer.pack(jpeg.max(axis=-1)) > 0.99
        out.append((jpeg, raw + np.where(bright, error_where_bright, 1.0)))
    return out


def test_pair_psnr_weighted_to_real_content() -> None:
    import real_content as rc

    params = _components()[0]
    pairs = _pairs(params, 40.0)
    plain = tp.pair_psnr(params, pairs)
    # Target shares equal to the pairs' own: every weight is 1, the same score.
    own = rc.shares([j for j, _ in pairs])
    assert tp.pair_psnr(params, pairs, own) == pytest.approx(plain, abs=1e-9)
    # Real-like shares with almost no white: the error under white counts for little.
    fewer_white = own.copy()
    fewer_white[-1] = own[-1] / 100
    fewer_white /= fewer_white.sum()
    assert tp.pair_psnr(params, pairs, fewer_white) > plain + 10.0
    # Negative control: an error that is the same everywhere does not depend on the weights.
    flat = _pairs(params, 1.0)
    assert tp.pair_psnr(params, flat, fewer_white) == pytest.approx(tp.pair_psnr(params, flat),
                                                                    abs=1e-9)
