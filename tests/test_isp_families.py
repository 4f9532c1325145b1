"""The ISP-family simulation centred on a calibrated camera: its forward, its centre, priors,
hold-out. The centre is a synthetic `InverseParams` built here (no file read)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rgb2raw import metrics
from rgb2raw.cameras import get_camera
from rgb2raw.inverse import InverseParams, table_from_curve
from rgb2raw.shading import RadialShading
from rgb2raw.train import isp_families as F
from rgb2raw.train import isp_tones


def _centre(shading: bool = False, black: float = 0.0) -> F.Centre:
    """A calibrated-looking camera: gamma-like tables (a little different per channel), a
    well-conditioned matrix, white balance x exposure gains fading to 1 in the highlights."""
    codes = np.linspace(0.0, 1.0, 256)
    tables = np.stack([table_from_curve(codes, codes ** p) for p in (2.1, 2.2, 2.3)])
    params = InverseParams(
        tables=tables,
        matrix=np.array([[0.72, 0.17, 0.11], [0.10, 0.76, 0.14], [0.04, 0.23, 0.73]]),
        gains=np.array([0.23, 0.49, 0.26]), highlight_gains=np.ones(3), knee=0.9,
        black_level=black, white_level=1023.0)
    lens = RadialShading.from_rgb([[1.0, -0.3, 0.0, 0.0]] * 3) if shading else None
    return F.Centre("test", params, lens, reference_green=0.08)


def _photo(height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth colourful picture with some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(x / 9.0), 0.5 + 0.3 * np.cos(y / 7.0),
                     0.4 + 0.3 * np.sin((x + y) / 11.0)], axis=-1)
    base += rng.normal(0.0, 0.03, base.shape).astype(np.float32)
    return np.clip(np.rint(base * 255.0), 0, 255).astype(np.uint8)


def _score(where: F.Centre, params: InverseParams, jpeg: np.ndarray, raw_dn: np.ndarray) -> float:
    """PSNR of `params` (with the centre's lens shading) on a pair, challenge-style."""
    span = params.white_level - params.black_level
    packed = params.apply(jpeg / 255.0) * where.shading_map(raw_dn.shape[:2])
    prediction = np.clip(np.rint(params.black_level + packed * span), 0, 1024)
    return metrics.psnr((prediction / 1024).astype(np.float32),
                        (np.clip(raw_dn, 0, 1024) / 1024).astype(np.float32))


def test_the_forward_tone_inverts_the_tables() -> None:
    where = _centre()
    levels = np.linspace(0.02, 1.0, 200)
    linear = np.stack([np.interp(levels, np.linspace(0, 1, 65536), t) for t in where.params.tables],
                      axis=-1)
    np.testing.assert_allclose(where.forward_tone(linear), np.stack([levels] * 3, -1), atol=2e-4)


def test_undo_gains_inverts_the_gains_and_their_highlight_fade() -> None:
    where = _centre()
    rng = np.random.default_rng(0)
    camera = rng.uniform(0.0, 1.0, (500, 3)).astype(np.float32)
    camera[:100] = rng.uniform(0.9, 1.0, (100, 3))  # above the knee: the gains fade
    p = where.params
    mean = camera.mean(axis=-1, keepdims=True)
    weight = np.square(np.clip((mean - p.knee) / (1 - p.knee), 0, 1))
    gained = camera * (p.gains + weight * (p.highlight_gains - p.gains))
    np.testing.assert_allclose(where.undo_gains(gained), camera, atol=1e-4)


@pytest.mark.parametrize("family", sorted(F.FAMILIES))
def test_every_family_makes_a_pair_within_the_centre_levels(family: str) -> None:
    where = _centre(shading=True, black=64.0)
    jpeg, raw_dn, settings = F.simulate(_photo(), "p20", family, np.random.default_rng(1),
                                        where=where)
    assert jpeg.shape == (64, 96, 3) and jpeg.dtype == np.uint8
    assert raw_dn.shape == (32, 48, 4) and raw_dn.dtype == np.float32
    assert raw_dn.min() >= 64.0 and raw_dn.max() <= 1023.0
    assert np.array_equal(raw_dn, np.rint(raw_dn))
    assert settings.family == family
    assert 20 < jpeg.mean() < 235  # a picture, not a black or white frame


def test_the_default_centre_is_the_bundled_calibrated_camera() -> None:
    from rgb2raw.nets.build_defaults import load_calibration
    from rgb2raw.zoo import models_dir

    params, shading = load_calibration(models_dir() / "calibrated-p20.npz")
    where = F.centre("p20")
    assert np.array_equal(where.params.tables, params.tables)
    assert (where.shading is None) == (shading is None)
    jpeg, raw_dn, _ = F.simulate(_photo(), "p20", "centre", np.random.default_rng(0))
    assert raw_dn.min() >= params.black_level and raw_dn.max() <= params.white_level


def test_the_same_seed_makes_the_same_pair_and_another_seed_another() -> None:
    where = _centre()
    first = F.simulate(_photo(), "s7", "local", np.random.default_rng(5), where=where)
    again = F.simulate(_photo(), "s7", "local", np.random.default_rng(5), where=where)
    other = F.simulate(_photo(), "s7", "local", np.random.default_rng(6), where=where)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("shading", [False, True])
def test_a_pair_at_the_centre_is_recovered_by_the_calibrated_inverse_itself(shading: bool) -> None:
    # Every spread zero: the pair is the calibrated camera's own forward, so its inverse (with
    # its lens shading applied by position, as the engine does) recovers the RAW closely and
    # the uncalibrated formula does not.
    where = _centre(shading=shading)
    family = dataclasses.replace(F.FAMILIES["centre"], sharpen=(0.0, 0.0),
                                 awb_adaptation=(1.0, 1.0), ae_error_ev=0.0, jpeg_quality=(98, 98))
    jpeg, raw_dn, settings = F.simulate(_photo(), "s7", family, np.random.default_rng(2),
                                        F.SensorRanges.still(), where=where)
    assert settings.exposure_ev == 0.0 and settings.digital_ev == 0.0
    own = _score(where, where.params, jpeg, raw_dn)
    formula = _score(where, InverseParams.from_camera(get_camera("s7")), jpeg, raw_dn)
    assert own > 40.0, own
    assert formula < own - 10.0, (formula, own)


def test_the_flat_target_divides_the_lens_shading_out() -> None:
    where = _centre(shading=True, black=64.0)
    raw_dn = np.full((10, 14, 4), 500.0, np.float32)
    flat = F.flat_target(raw_dn, where)
    unit = (500.0 - 64.0) / (1023.0 - 64.0)
    np.testing.assert_allclose(flat * where.shading_map((10, 14)), unit, rtol=1e-5)
    assert flat[0, 0, 0] > flat[5, 7, 0]  # corners were darker, so they are lifted more


def test_a_fixed_isp_shows_the_exposure_in_the_jpeg_and_an_auto_exposing_one_hides_it() -> None:
    where = _centre()
    family = dataclasses.replace(F.FAMILIES["centre"], sharpen=(0.0, 0.0),
                                 awb_adaptation=(1.0, 1.0), ae_error_ev=0.0, jpeg_quality=(98, 98))
    means = {}
    for compensation in (0.0, 1.0):
        sensor = F.SensorRanges.still(exposure_sigma_ev=0.3, ae_compensation=(compensation, compensation))
        for seed in range(4):
            jpeg, raw_dn, settings = F.simulate(_photo(), "s7", family, np.random.default_rng(seed),
                                                sensor, where=where)
            means[compensation, seed] = (settings.exposure_ev, float(jpeg.mean()),
                                         _score(where, where.params, jpeg, raw_dn))
    for seed in range(4):
        ev, fixed_mean, fixed_psnr = means[0.0, seed]
        _, auto_mean, auto_psnr = means[1.0, seed]
        assert abs(ev) > 0.01
        assert (fixed_mean - auto_mean) * ev > 0  # brighter RAW, brighter fixed-ISP JPEG
        assert fixed_psnr > 37.0  # the pixel-wise inverse follows a fixed ISP
        assert fixed_psnr > auto_psnr + 3.0


def test_sensor_exposure_brightens_dark_scenes_and_protects_highlights() -> None:
    dark = np.full((8, 8, 3), 0.02, np.float32)
    bright = np.full((8, 8, 3), 0.3, np.float32)
    args = dict(reference=0.08, alpha=0.5, error_ev=0.0, headroom=100.0)
    assert F.sensor_exposure_ev(dark, **args) == pytest.approx(0.5 * np.log2(0.08 / 0.02))
    assert F.sensor_exposure_ev(bright, **args) < 0
    capped = F.sensor_exposure_ev(dark, **{**args, "headroom": 0.03})
    assert capped == pytest.approx(np.log2(0.03 / 0.02))


@pytest.mark.parametrize("kind", ["filmic", "reinhard", "aces", "shadowlift"])
def test_tone_operators_at_zero_strength_are_the_calibrated_forward(kind: str) -> None:
    where = _centre()
    linear = np.random.default_rng(0).uniform(0.0, 1.0, (16, 16, 3)).astype(np.float32)
    rng = np.random.default_rng(0)
    neutral = isp_tones.apply_tone(kind, linear, 0.0, where.forward_tone, rng)
    np.testing.assert_allclose(neutral, where.forward_tone(linear), atol=1e-6)
    strong = isp_tones.apply_tone(kind, linear, 0.6, where.forward_tone, rng)
    assert np.abs(strong - neutral).max() > 0.01


def test_held_out_families_are_disjoint_from_training_and_include_a_local_operator() -> None:
    assert set(F.HELD_OUT_FAMILIES).isdisjoint(F.TRAIN_FAMILIES)
    assert set(F.HELD_OUT_FAMILIES) | set(F.TRAIN_FAMILIES) == set(F.FAMILIES)
    assert "local" in F.HELD_OUT_FAMILIES and "aces" in F.HELD_OUT_FAMILIES


def test_the_training_bank_never_simulates_a_held_out_family(monkeypatch: pytest.MonkeyPatch) -> None:
    from rgb2raw.train import learned_recipe

    seen: list[str] = []
    real = learned_recipe.simulate

    def spy(photo, camera, family, rng, sensor=None, where=None):  # type: ignore[no-untyped-def]
        seen.append(family if isinstance(family, str) else family.name)
        return real(photo, camera, family, rng, sensor, where=where)

    monkeypatch.setattr(learned_recipe, "simulate", spy)
    monkeypatch.setattr(learned_recipe, "centre", lambda camera: _centre(shading=True))
    recipe = learned_recipe.Recipe(camera="s7", views_per_photo=6, view=(32, 48))
    jpegs, raws = learned_recipe.make_bank([_photo(), _photo(seed=1)], recipe)
    assert jpegs.shape == (12, 32, 48, 3) and raws.shape == (12, 16, 24, 4)
    assert set(seen) == set(F.TRAIN_FAMILIES)


def test_random_view_has_the_requested_size() -> None:
    rng = np.random.default_rng(0)
    for size in ((32, 48), (48, 32), (64, 96)):
        assert F.random_view(_photo(), rng, size).shape == (*size, 3)
