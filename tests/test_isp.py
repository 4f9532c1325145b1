"""Tests for rgb2raw.isp: forward render, Brooks et al. unprocess, noise model."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rgb2raw import bayer, isp
from rgb2raw.cameras import GENERIC, P20, S7, CameraProfile


def smooth_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """A colourful but smooth RGB image in [0.05, 0.85]: demosaicing barely loses anything."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    channels = []
    for _ in range(3):
        a, b, phase = rng.uniform(0.5, 2.0, size=3)
        channels.append(0.45 + 0.4 * np.sin(a * 3 * xx + b * 2 * yy + phase))
    return np.stack(channels, axis=-1).astype(np.float32)


def test_levels_round_trip_and_endpoints() -> None:
    assert isp.to_dn(np.float32(0.0), P20) == pytest.approx(P20.black_level)
    assert isp.to_dn(np.float32(1.0), P20) == pytest.approx(P20.white_level)
    signal = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(isp.linearize(isp.to_dn(signal, P20), P20), signal, atol=1e-6)
    # Below black and above white clip instead of going out of range.
    np.testing.assert_array_equal(isp.linearize(np.array([0.0, 2000.0]), P20), [0.0, 1.0])


def test_demosaic_keeps_channel_order_and_flat_colours() -> None:
    colour = np.array([0.8, 0.4, 0.1], dtype=np.float32)
    image = np.broadcast_to(colour, (16, 16, 3)).copy()
    out = isp.demosaic(bayer.mosaic_rgb(image))
    assert out.shape == (16, 16, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, image, atol=1e-4)


def test_demosaic_recovers_a_smooth_image() -> None:
    image = smooth_image()
    out = isp.demosaic(bayer.mosaic_rgb(image))
    # Interior only: border interpolation is cruder.
    assert np.abs(out - image)[2:-2, 2:-2].mean() < 0.01


def test_srgb_gamma_matches_the_standard_and_inverts() -> None:
    # Reference values from the sRGB definition: 0.5 linear encodes to 0.735357.
    assert float(isp.srgb_gamma(np.float32(0.5))) == pytest.approx(0.735357, abs=1e-5)
    assert float(isp.srgb_gamma(np.float32(0.0031308))) == pytest.approx(0.04045, abs=1e-5)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(isp.inverse_srgb_gamma(isp.srgb_gamma(x)), x, atol=2e-6)


def test_tone_curve_values_and_closed_form_inverse() -> None:
    assert float(isp.tone_curve(np.float32(0.25))) == pytest.approx(3 / 16 - 2 / 64)
    assert float(isp.tone_curve(np.float32(0.5))) == pytest.approx(0.5)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(isp.inverse_tone_curve(isp.tone_curve(x)), x, atol=2e-4)


def test_ccm_round_trip_and_white_stays_white() -> None:
    rgb = smooth_image(8)
    there_and_back = isp.apply_ccm(isp.apply_ccm(rgb, S7.rgb_to_cam), S7.cam_to_rgb)
    np.testing.assert_allclose(there_and_back, rgb, atol=1e-5)
    np.testing.assert_allclose(isp.apply_ccm(np.ones((1, 1, 3)), P20.rgb_to_cam), 1.0, atol=1e-6)


def test_white_balance_uses_green_gain_for_both_greens() -> None:
    packed = np.ones((2, 2, 4), dtype=np.float32)
    np.testing.assert_allclose(isp.white_balance(packed, (2.0, 1.5, 3.0))[0, 0], [2, 1.5, 1.5, 3])
    with pytest.raises(ValueError):
        isp.white_balance(np.ones((2, 2, 2)), (1, 1, 1))


def test_safe_inverse_gains_divides_midtones_and_keeps_white_white() -> None:
    gains = (2.0, 1.0, 1.6)
    midtone = np.full((1, 1, 3), 0.4, dtype=np.float32)
    np.testing.assert_allclose(isp.safe_inverse_gains(midtone, gains)[0, 0], [0.2, 0.4, 0.25])
    white = np.ones((1, 1, 3), dtype=np.float32)
    np.testing.assert_allclose(isp.safe_inverse_gains(white, gains), 1.0)
    # In between the inverse gain is never below the plain inverse.
    bright = np.full((1, 1, 3), 0.95, dtype=np.float32)
    assert (isp.safe_inverse_gains(bright, gains) >= bright / np.array(gains) - 1e-7).all()


def test_unprocess_shape_range_and_bayer_sites() -> None:
    red = np.zeros((8, 8, 3), dtype=np.float32)
    red[..., 0] = 0.9
    packed = isp.unprocess(red, GENERIC)
    assert packed.shape == (4, 4, 4) and packed.dtype == np.float32
    assert packed.min() >= 0 and packed.max() <= 1
    r, gr, gb, b = (packed[..., c].mean() for c in range(4))
    assert r > 5 * b and r > 2 * gr and gr == pytest.approx(gb)
    with pytest.raises(ValueError):
        isp.unprocess(np.zeros((7, 8, 3), dtype=np.float32), GENERIC)


@pytest.mark.parametrize("camera", [S7, P20, GENERIC], ids=lambda c: c.name)
def test_render_inverts_unprocess(camera: CameraProfile) -> None:
    image = smooth_image()
    gains = (1.9, 1.0, 1.7)
    packed = isp.unprocess(image, camera, wb_gains=gains, exposure_ev=1.0)
    rendered = isp.render(isp.to_dn(packed, camera), camera, wb=gains, exposure=1.0)
    assert rendered.dtype == np.uint8 and rendered.shape == image.shape
    error = np.abs(rendered / 255.0 - image)[2:-2, 2:-2]
    assert error.mean() < 0.01


def test_render_without_mosaic_is_an_exact_inverse() -> None:
    """Forward steps on the unmosaicked camera RGB reproduce the image to float precision."""
    image = smooth_image(16)
    camera_rgb = isp.unprocess_rgb(image, S7)
    linear = np.clip(isp.white_balance(camera_rgb, S7.wb_gains), 0, 1)
    back = isp.tone_curve(isp.srgb_gamma(np.clip(isp.apply_ccm(linear, S7.cam_to_rgb), 0, 1)))
    np.testing.assert_allclose(back, image, atol=2e-3)


def test_estimate_wb_gains_recovers_gains_of_a_gray_scene() -> None:
    # Neutral levels constant over each 2x2 Bayer block, so every site sees the same grey.
    levels = np.random.default_rng(3).uniform(0.2, 0.8, size=(16, 16)).astype(np.float32)
    gray = np.repeat(np.repeat(levels, 2, axis=0), 2, axis=1)[..., None].repeat(3, axis=2)
    gains = (1.8, 1.0, 2.1)
    packed = isp.unprocess(gray, GENERIC, wb_gains=gains)
    estimate = isp.estimate_wb_gains(packed)
    assert estimate == pytest.approx(gains, rel=0.02)
    # "auto" adapts part of the way from the camera's daylight gains towards the estimate.
    auto = isp.resolve_wb_gains(packed, GENERIC, "auto")
    for prior, est, got in zip(GENERIC.wb_gains, estimate, auto, strict=True):
        assert min(prior, est) - 1e-6 <= got <= max(prior, est) + 1e-6
    assert isp.resolve_wb_gains(packed, GENERIC, "camera") == GENERIC.wb_gains
    with pytest.raises(ValueError):
        isp.resolve_wb_gains(packed, GENERIC, (1.0, -1.0, 1.0))


def test_auto_exposure_brightens_dark_raw_and_never_darkens() -> None:
    dark = np.full((8, 8, 4), 0.02, dtype=np.float32)
    assert isp.estimate_exposure(dark, (1, 1, 1)) > 2.0
    bright = np.full((8, 8, 4), 0.7, dtype=np.float32)
    assert isp.estimate_exposure(bright, (1, 1, 1)) == 0.0
    assert isp.resolve_exposure(dark, (1, 1, 1), -1.5) == -1.5


def test_add_noise_matches_the_variance_model() -> None:
    camera = replace(GENERIC, noise_shot=1e-3, noise_read=1e-5)
    signal = np.full((200, 200, 4), 0.3, dtype=np.float32)
    iso = 200
    noisy = isp.add_noise(signal, camera, iso=iso, rng=np.random.default_rng(7))
    gain = iso / camera.base_iso
    expected_variance = 1e-3 * gain * 0.3 + 1e-5 * gain**2  # written out, not via the profile
    assert noisy.var() == pytest.approx(expected_variance, rel=0.03)
    assert noisy.mean() == pytest.approx(0.3, abs=1e-3)
    again = isp.add_noise(signal, camera, iso=iso, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(noisy, again)


def test_add_noise_grows_with_signal_and_clips() -> None:
    camera = replace(GENERIC, noise_shot=1e-2, noise_read=0.0)
    rng = np.random.default_rng(1)
    low = isp.add_noise(np.full((100, 100, 4), 0.05, np.float32), camera, rng=rng, clip=False)
    high = isp.add_noise(np.full((100, 100, 4), 0.5, np.float32), camera, rng=rng, clip=False)
    assert high.var() / low.var() == pytest.approx(10.0, rel=0.1)
    clipped = isp.add_noise(np.full((10, 10, 4), 0.99, np.float32), camera, rng=rng)
    assert clipped.max() <= 1.0
