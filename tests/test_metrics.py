"""Parity of rgb2raw.metrics with a straightforward scipy re-implementation of the official scorer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
official_reference = pytest.importorskip("official_reference")  # needs scipy (test extra)

from rgb2raw import metrics  # noqa: E402

SCALE = 1024.0


def _pair(rng: np.random.Generator, shape: tuple[int, ...] = (40, 36, 4), noise: float = 20.0):
    gt = rng.integers(0, 1025, shape).astype(np.uint16)
    pred = np.clip(gt + rng.normal(0, noise, shape), 0, 1024).astype(np.uint16)
    return pred, gt


def _reference(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    x = pred.astype(float) / SCALE
    y = gt.astype(float) / SCALE
    return official_reference.psnr(x, y), official_reference.ssim(x, y)


def test_kernel_is_scipys_13_tap_gaussian() -> None:
    from scipy.ndimage import gaussian_filter

    impulse = np.zeros(31)
    impulse[15] = 1.0
    kernel = metrics.gaussian_kernel_1d()
    assert kernel.size == 13
    np.testing.assert_allclose(gaussian_filter(impulse, 1.5)[9:22], kernel, rtol=0, atol=1e-15)


@pytest.mark.parametrize("seed", range(5))
def test_uint16_parity_with_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred, gt = _pair(rng, noise=[1.0, 5.0, 30.0, 100.0, 300.0][seed])
    ref_psnr, ref_ssim = _reference(pred, gt)
    assert metrics.psnr(pred, gt, data_range=SCALE) == pytest.approx(ref_psnr, abs=1e-9)
    assert metrics.ssim(pred, gt, data_range=SCALE) == pytest.approx(ref_ssim, abs=1e-12)


def test_float_and_mixed_dtypes_match_reference() -> None:
    rng = np.random.default_rng(7)
    gt = rng.integers(0, 1025, (30, 30, 4)).astype(np.uint16)
    pred = np.clip(gt + rng.normal(0, 9, gt.shape), 0, 1024).astype(np.float32)
    ref_psnr, ref_ssim = _reference(pred, gt)
    assert metrics.psnr(pred, gt, data_range=SCALE) == pytest.approx(ref_psnr, abs=1e-9)
    assert metrics.ssim(pred, gt, data_range=SCALE) == pytest.approx(ref_ssim, abs=1e-12)
    int32_pred = pred.round().astype(np.int32)
    assert metrics.ssim(int32_pred, gt, data_range=SCALE) == pytest.approx(
        _reference(int32_pred, gt)[1], abs=1e-12)


def test_unit_range_inputs_and_single_channel() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((25, 27))
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1)
    expected = official_reference.ssim(x[:, :, None], y[:, :, None])
    assert metrics.ssim(x, y) == pytest.approx(expected, abs=1e-12)
    assert metrics.psnr(x, y) == pytest.approx(official_reference.psnr(x, y), abs=1e-9)


def test_identical_images_give_999_and_ssim_1() -> None:
    image = np.random.default_rng(1).integers(0, 1025, (20, 20, 4)).astype(np.uint16)
    assert metrics.psnr(image, image.copy(), data_range=SCALE) == 999.0
    assert metrics.ssim(image, image.copy(), data_range=SCALE) == pytest.approx(1.0, abs=1e-15)


def test_saturated_and_flat_images() -> None:
    gt = np.full((24, 24, 4), 1024, np.uint16)
    pred = gt.copy()
    pred[3:9, 3:9] = 1000
    ref_psnr, ref_ssim = _reference(pred, gt)
    assert metrics.psnr(pred, gt, data_range=SCALE) == pytest.approx(ref_psnr, abs=1e-9)
    assert metrics.ssim(pred, gt, data_range=SCALE) == pytest.approx(ref_ssim, abs=1e-12)


def test_batch_helpers_and_workspace_reuse() -> None:
    rng = np.random.default_rng(11)
    pairs = [_pair(rng, (32, 32, 4)) for _ in range(3)]
    preds = np.stack([p for p, _ in pairs])
    gts = np.stack([g for _, g in pairs])
    expected = [_reference(p, g) for p, g in pairs]
    np.testing.assert_allclose(metrics.psnr_batch(preds, gts, data_range=SCALE),
                               [e[0] for e in expected], atol=1e-9)
    np.testing.assert_allclose(metrics.ssim_batch(preds, gts, data_range=SCALE),
                               [e[1] for e in expected], atol=1e-12)
    workspace = metrics.SsimWorkspace(32, 32)
    first = metrics.ssim(preds[0], gts[0], data_range=SCALE, workspace=workspace)
    metrics.ssim(preds[1], gts[1], data_range=SCALE, workspace=workspace)
    assert metrics.ssim(preds[0], gts[0], data_range=SCALE, workspace=workspace) == first


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.ssim(np.zeros((20, 20, 4)), np.zeros((20, 22, 4)))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((20, 20)), np.zeros((20, 21)))


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_any_channel_count_matches_reference(channels: int) -> None:
    rng = np.random.default_rng(channels)
    pred, gt = _pair(rng, (24, 26, channels), noise=12.0)
    assert metrics.ssim(pred, gt, data_range=SCALE) == pytest.approx(_reference(pred, gt)[1], abs=1e-12)
