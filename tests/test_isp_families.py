"""The ISP-family camera simulation: shapes and levels, its centre, exposure priors, hold-out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rgb2raw import metrics
from rgb2raw.cameras import get_camera
from rgb2raw.inverse import InverseParams
from rgb2raw.train import isp_families as F


def _photo(height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth colourful picture with some texture (no files read)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(x / 9.0), 0.5 + 0.3 * np.cos(y / 7.0),
                     0.4 + 0.3 * np.sin((x + y) / 11.0)], axis=-1)
    base += rng.normal(0.0, 0.03, base.shape).astype(np.float32)
    return np.clip(np.rint(base * 255.0), 0, 255).astype(np.uint8)


def _score(params: InverseParams, jpeg: np.ndarray, raw_dn: np.ndarray) -> float:
    span = params.white_level - params.black_level
    prediction = np.clip(np.rint(params.black_level + params.apply(jpeg / 255.0) * span), 0, 1024)
    return metrics.psnr((prediction / 1024).astype(np.float32),
                        (np.clip(raw_dn, 0, 1024) / 1024).astype(np.float32))


@pytest.mark.parametrize("family", sorted(F.FAMILIES))
@pytest.mark.parametrize("camera", ["s7", "p20"])
def test_every_family_makes_a_pair_within_the_camera_levels(camera: str, family: str) -> None:
    profile = get_camera(camera)
    jpeg, raw_dn, settings = F.simulate(_photo(), camera, family, np.random.default_rng(1))
    assert jpeg.shape == (64, 96, 3) and jpeg.dtype == np.uint8
    assert raw_dn.shape == (32, 48, 4) and raw_dn.dtype == np.float32
    assert raw_dn.min() >= profile.black_level and raw_dn.max() <= profile.white_level
    assert np.array_equal(raw_dn, np.rint(raw_dn))
    assert settings.family == family
    assert 20 < jpeg.mean() < 235  # a picture, not a black or white frame


def test_the_same_seed_makes_the_same_pair_and_another_seed_another() -> None:
    first = F.simulate(_photo(), "s7", "local", np.random.default_rng(5))
    again = F.simulate(_photo(), "s7", "local", np.random.default_rng(5))
    other = F.simulate(_photo(), "s7", "local", np.random.default_rng(6))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_the_centre_inverse_recovers_a_centre_pair_and_the_formula_does_not() -> None:
    # With every spread at zero the pair is made exactly at the calibrated centre, so the
    # centre's inverse must recover its RAW closely and the uncalibrated formula must not.
    still = F.SensorRanges(photo_gamma=(1.0, 1.0), illuminant_sigma=0.0, tint_sigma=0.0,
                           alpha=(0.0, 0.0), exposure_sigma_ev=0.0, headroom=(50.0, 50.0),
                           iso=(50.0, 50.0))
    family = dataclasses.replace(F.FAMILIES["brooks"], tone_param=(1.0, 1.0), sharpen=(0.0, 0.0),
                                 saturation=(1.0, 1.0), awb_adaptation=(1.0, 1.0),
                                 ae_error_ev=0.0, jpeg_quality=(98, 98))
    for camera in ("s7", "p20"):
        jpeg, raw_dn, settings = F.simulate(_photo(), camera, family, np.random.default_rng(2),
                                            still)
        assert settings.exposure_ev == 0.0
        centre = _score(F.CENTRES[camera].inverse(), jpeg, raw_dn)
        formula = _score(InverseParams.from_camera(get_camera(camera)), jpeg, raw_dn)
        assert centre > 38.0, (camera, centre)
        assert formula < centre - 8.0, (camera, formula, centre)


def test_sensor_exposure_brightens_dark_scenes_and_protects_highlights() -> None:
    dark = np.full((8, 8, 3), 0.05, np.float32)
    bright = np.full((8, 8, 3), 0.6, np.float32)
    args = dict(gain=0.39, reference=0.2, alpha=0.5, error_ev=0.0, headroom=100.0)
    assert F.sensor_exposure_ev(dark, **args) == pytest.approx(0.5 * np.log2(0.2 / 0.05))
    assert F.sensor_exposure_ev(bright, **args) < 0
    capped = F.sensor_exposure_ev(dark, **{**args, "headroom": 0.01})
    assert capped == pytest.approx(np.log2(0.01 / (0.05 * 0.39)))


def test_held_out_families_are_disjoint_from_training_and_training_uses_only_its_own() -> None:
    assert set(F.HELD_OUT_FAMILIES).isdisjoint(F.TRAIN_FAMILIES)
    assert set(F.HELD_OUT_FAMILIES) | set(F.TRAIN_FAMILIES) == set(F.FAMILIES)
    assert F.HELD_OUT_FAMILIES and F.TRAIN_FAMILIES


def test_the_training_bank_never_simulates_a_held_out_family(monkeypatch: pytest.MonkeyPatch) -> None:
    from rgb2raw.train import learned_recipe

    seen: list[str] = []
    real = learned_recipe.simulate

    def spy(photo, camera, family, rng, sensor=None):  # type: ignore[no-untyped-def]
        seen.append(family if isinstance(family, str) else family.name)
        return real(photo, camera, family, rng, sensor)

    monkeypatch.setattr(learned_recipe, "simulate", spy)
    recipe = learned_recipe.Recipe(camera="s7", views_per_photo=4, view=(32, 48))
    jpegs, raws = learned_recipe.make_bank([_photo(), _photo(seed=1)], recipe)
    assert jpegs.shape == (8, 32, 48, 3) and raws.shape == (8, 16, 24, 4)
    assert set(seen) == set(F.TRAIN_FAMILIES)


def test_random_view_has_the_requested_size() -> None:
    rng = np.random.default_rng(0)
    for size in ((32, 48), (48, 32), (64, 96)):
        assert F.random_view(_photo(), rng, size).shape == (*size, 3)
