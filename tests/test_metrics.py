"""Parity of rgb2raw.metrics with a straightforward scipy re-implementation of the official scorer.

Every test runs twice: through the C extension rgb2raw._ssim (skipped where it is not built)
and through the OpenCV path that replaces it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
official_reference = pytest.importorskip("official_reference")  # needs scipy (test extra)

from rgb2raw import metrics  # noqa: E402

SCALE = 1024.0


@pytest.fixture(autouse=True, params=["native", "opencv"])
def metrics_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "native":
        if metrics._native_module is None:
            pytest.skip("the C extension rgb2raw._ssim is not built")
        monkeypatch.setattr(metrics, "native", metrics._native_module)
    else:
        monkeypatch.setattr(metrics, "native", None)
    return str(request.param)


def _pair(rng: np.random.Generator, shape: tuple[int, ...] = (40, 36, 4), noise: float = 20.0):
    gt = rng.integers(0, 1025, shape).astype(np.uint16)
    pred = np.clip(gt + rng.normal(0, noise, shape), 0, 1024).astype(np.uint16)
    return pred, gt


def _reference(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    x = pred.astype(float) / SCALE
    y = gt.astype(float) / SCALE
    return official_reference.psnr(x, y), official_reference.ssim(x, y)


def _assert_matches_reference(pred: np.ndarray, gt: np.ndarray) -> None:
    """Our PSNR (to 1e-9) and SSIM (to 1e-12) equal the reference's; a 2-D pair is one channel
    to the reference."""
    ref_psnr, ref_ssim = _reference(pred[..., None] if pred.ndim == 2 else pred,
                                    gt[..., None] if gt.ndim == 2 else gt)
    assert metrics.psnr(pred, gt, data_range=SCALE) == pytest.approx(ref_psnr, abs=1e-9)
    assert metrics.ssim(pred, gt, data_range=SCALE) == pytest.approx(ref_ssim, abs=1e-12)


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
    _assert_matches_reference(pred, gt)


def test_float_and_mixed_dtypes_match_reference() -> None:
    rng = np.random.default_rng(7)
    gt = rng.integers(0, 1025, (30, 30, 4)).astype(np.uint16)
    pred = np.clip(gt + rng.normal(0, 9, gt.shape), 0, 1024).astype(np.float32)
    _assert_matches_reference(pred, gt)
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
    _assert_matches_reference(pred, gt)


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


@pytest.mark.parametrize("shape", [(11, 11, 4), (11, 40), (40, 11, 2), (13, 97, 4), (64, 12, 1)])
def test_smallest_and_lopsided_shapes_match_reference(shape: tuple[int, ...]) -> None:
    """The crop leaves 1 pixel at 11: every border reflection is exercised."""
    rng = np.random.default_rng(sum(shape))
    pred, gt = _pair(rng, shape, noise=40.0)
    _assert_matches_reference(pred, gt)


def test_views_fractional_values_and_a_16_bit_white_level() -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 65536, (50, 60, 4)).astype(np.uint16)
    noisy = np.clip(base + rng.normal(0, 900, base.shape), 0, 65535).astype(np.uint16)
    pred, gt = noisy[::2, 5:45], base[::2, 5:45]  # not contiguous
    x, y = pred.astype(float) / 65535, gt.astype(float) / 65535
    assert metrics.psnr(pred, gt, data_range=65535) == pytest.approx(
        official_reference.psnr(x, y), abs=1e-9)
    assert metrics.ssim(pred, gt, data_range=65535) == pytest.approx(
        official_reference.ssim(x, y), abs=1e-12)
    fractional = gt.astype(np.float64) / 65535 + rng.normal(0, 1e-3, gt.shape)
    assert metrics.ssim(fractional, y) == pytest.approx(
        official_reference.ssim(fractional, y), abs=1e-12)


def test_threads_score_concurrently_and_correctly() -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    pairs = [_pair(rng, (30, 34, 4), noise=n) for n in (2.0, 20.0, 200.0, 60.0)]
    expected = [_reference(p, g)[1] for p, g in pairs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda pair: metrics.ssim(*pair, data_range=SCALE), pairs * 3))
    np.testing.assert_allclose(got, expected * 3, rtol=0, atol=1e-12)


def test_extension_refuses_inconsistent_arguments(metrics_path: str) -> None:
    if metrics_path != "native":
        pytest.skip("a check of the C extension itself")
    module = metrics._native_module
    assert module is not None
    image = np.zeros((12, 12, 4), np.uint16)
    kernel, c1, c2 = metrics._HALF_KERNEL, 1.0, 1.0
    with pytest.raises(ValueError, match="kind"):
        module.ssim(image, image, "f", 12, 12, 4, kernel, c1, c2)
    with pytest.raises(ValueError, match="sizes"):
        module.ssim(image, image, "H", 12, 12, 3, kernel, c1, c2)
    with pytest.raises(ValueError, match="sizes"):
        module.ssim(image, image[:6], "H", 12, 12, 4, kernel, c1, c2)
    with pytest.raises(ValueError, match="small"):
        module.ssim(image[:10], image[:10], "H", 10, 12, 4, kernel, c1, c2)
    with pytest.raises(ValueError, match="differ"):
        module.squared_error(image, image[:6], "H")
    with pytest.raises(ValueError, match="contiguous"):  # numpy refuses the buffer
        module.squared_error(image[:, ::2], image[:, ::2], "H")
