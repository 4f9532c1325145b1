"""PSNR and SSIM with the exact semantics of the AIM 2022 official scorer, computed fast.

The official program (see docs/conventions.md) divides values by 1024, computes PSNR as
``10 * log10(1 / mse)`` over all channels (exactly 999 for identical images) and SSIM per
channel with a Gaussian window (sigma 1.5, scipy's ``gaussian_filter`` defaults: truncate 4.0,
i.e. 13 taps, mode 'reflect'), population covariance, K1 = 0.01, K2 = 0.03, data range 1,
the SSIM map averaged after cropping 5 pixels from every border, then the mean over channels.

These functions reproduce those numbers to ~1e-13 while doing much less work:

- Values stay in their own units (DN); the constants are scaled by ``data_range**2``
  instead. For the challenge's 1024 (a power of two) this is bit-for-bit the same arithmetic
  as dividing first, and it saves a conversion pass.
- SSIM needs only four filtered planes, not five: G(x), G(y), G(x^2 + y^2), G(xy), because
  the variances only ever appear as the sum ``var_x + var_y``.
- Where the optional C extension `rgb2raw._ssim` is built (pyproject.toml `ext-modules`; any C compiler), one call
  per image filters row by row into small rings and sums the cropped SSIM map as it goes,
  filtering only the pixels the crop keeps: about 2.5x faster than the OpenCV path, which
  does one full-plane call per filtering and about ten more passes for the formula.
- Otherwise the separable Gaussian runs through ``cv2.sepFilter2D`` in float64 with
  ``BORDER_REFLECT``, which is scipy's 'reflect' (half-sample symmetric, ``d c b a | a b c d``;
  not ``BORDER_REFLECT_101``). uint16 and float32 inputs are widened inside OpenCV, exactly.
  All its scratch memory lives in a reusable `SsimWorkspace`: fresh multi-megabyte arrays per
  image cost more than the arithmetic on some virtual machines (page faults).

Both paths release the GIL, so threads can score images in parallel (see `scoring`).
Inputs: (H, W) or (H, W, C) arrays of any real dtype, in [0, data_range].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType

import numpy as np

_native_module: ModuleType | None
try:
    from rgb2raw import _ssim as _native_module
except ImportError:  # not built (no C compiler at install): the OpenCV path below
    _native_module = None
# Module state rather than a constant so that tests and benchmarks can run the OpenCV path.
native: ModuleType | None = _native_module

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# skimage's (and so the official program's) crop: (win_size - 1) // 2 for the 11-pixel
# window that Gaussian-weighted SSIM is nominally defined with.
SSIM_CROP = 5
PSNR_IDENTICAL = 999.0  # what the official program reports when mse == 0

# Dtypes OpenCV filters and multiplies natively (exactly widened to float64 inside);
# anything else is converted to float64 first.
_CV_NATIVE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32),
                     np.dtype(np.float64))


def gaussian_kernel_1d(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
    """The normalised 1-D Gaussian scipy's ``gaussian_filter`` uses (radius int(t*s + 0.5))."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 / sigma**2 * offsets**2)
    return weights / weights.sum()


_KERNEL = gaussian_kernel_1d()
# The centre weight and one side: what the C extension takes (the kernel is symmetric).
_HALF_KERNEL = tuple(float(w) for w in _KERNEL[_KERNEL.size // 2:])


def _native_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Both images C-contiguous in a kind the extension reads: uint16 ('H') or float64 ('d')."""
    if pred.dtype == np.uint16 and gt.dtype == np.uint16:
        return np.ascontiguousarray(pred), np.ascontiguousarray(gt), "H"
    return (np.ascontiguousarray(pred, dtype=np.float64),
            np.ascontiguousarray(gt, dtype=np.float64), "d")


def _native_ssim(module: ModuleType, pred: np.ndarray, gt: np.ndarray, data_range: float) -> float:
    x, y, kind = _native_pair(pred, gt)
    channels = x.shape[2] if x.ndim == 3 else 1
    return float(module.ssim(x, y, kind, x.shape[0], x.shape[1], channels, _HALF_KERNEL,
                             (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2))


def _as_cv_input(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array of a dtype OpenCV takes without losing precision."""
    if array.dtype not in _CV_NATIVE_DTYPES:
        array = array.astype(np.float64)
    return np.ascontiguousarray(array)


def _as_cv_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as one cv2-native dtype (OpenCV refuses mixed types): float64 if they differ."""
    if pred.dtype != gt.dtype:
        return (np.ascontiguousarray(pred, dtype=np.float64),
                np.ascontiguousarray(gt, dtype=np.float64))
    return _as_cv_input(pred), _as_cv_input(gt)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {gt.shape}")
    if pred.ndim not in (2, 3) or pred.shape[0] <= 2 * SSIM_CROP or pred.shape[1] <= 2 * SSIM_CROP:
        raise ValueError(f"image shape {pred.shape} is too small or not (H, W[, C])")


class SsimWorkspace:
    """Scratch planes for one (H, W) plane size, reused from image to image.

    Not thread-safe: give each thread its own (`scoring` keeps one per worker thread).
    """

    def __init__(self, height: int, width: int) -> None:
        self.shape = (height, width)
        plane = (height, width)
        self.sum_sq = np.empty(plane)  # x^2 + y^2
        self.product = np.empty(plane)  # x * y
        self.mean_x = np.empty(plane)
        self.mean_y = np.empty(plane)
        self.filt_sum_sq = np.empty(plane)
        self.filt_product = np.empty(plane)
        # The SSIM map is only averaged inside the border crop, so everything after the
        # filters works on that interior alone.
        interior = (max(height - 2 * SSIM_CROP, 0), max(width - 2 * SSIM_CROP, 0))
        self.scratch = [np.empty(interior) for _ in range(4)]
        # One channel of each image at a time, extracted into these (by dtype).
        self._channel_planes: dict[np.dtype, tuple[np.ndarray, np.ndarray]] = {}

    def _planes_for(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        planes = self._channel_planes.get(dtype)
        if planes is None:
            planes = self._channel_planes[dtype] = (np.empty(self.shape, dtype),
                                                    np.empty(self.shape, dtype))
        return planes

    def _filter(self, src: np.ndarray, dst: np.ndarray) -> None:
        import cv2

        cv2.sepFilter2D(src, cv2.CV_64F, _KERNEL, _KERNEL, dst=dst, borderType=cv2.BORDER_REFLECT)

    def ssim_plane(self, x: np.ndarray, y: np.ndarray, data_range: float) -> float:
        """SSIM of one (H, W) channel pair (contiguous, cv2-native dtype), through OpenCV."""
        import cv2

        c1 = (SSIM_K1 * data_range) ** 2
        c2 = (SSIM_K2 * data_range) ** 2
        self._filter(x, self.mean_x)
        self._filter(y, self.mean_y)
        cv2.multiply(x, x, dst=self.sum_sq, dtype=cv2.CV_64F)
        cv2.accumulateSquare(y, self.sum_sq)
        cv2.multiply(x, y, dst=self.product, dtype=cv2.CV_64F)
        self._filter(self.sum_sq, self.filt_sum_sq)
        self._filter(self.product, self.filt_product)

        crop = SSIM_CROP
        inner = (slice(crop, -crop), slice(crop, -crop))
        mean_x, mean_y = self.mean_x[inner], self.mean_y[inner]
        means_sq, means_prod, numerator, denominator = self.scratch
        cv2.multiply(mean_x, mean_x, dst=means_sq)
        cv2.accumulateSquare(mean_y, means_sq)  # ux^2 + uy^2
        cv2.multiply(mean_x, mean_y, dst=means_prod)  # ux * uy
        # (var_x + var_y + C2) and (2 cov_xy + C2), each in one pass; (a*1 + b*-1) + c is
        # exactly (a - b) + c in IEEE arithmetic, as is (a*2 + b*-2) == 2 * (a - b).
        cv2.addWeighted(self.filt_sum_sq[inner], 1.0, means_sq, -1.0, c2, dst=denominator)
        cv2.addWeighted(self.filt_product[inner], 2.0, means_prod, -2.0, c2, dst=numerator)
        cv2.addWeighted(means_prod, 2.0, means_prod, 0.0, c1, dst=means_prod)  # 2 ux uy + C1
        np.add(means_sq, c1, out=means_sq)  # ux^2 + uy^2 + C1
        # The map is (luminance term) * (contrast-structure term); its mean is their dot
        # product over the pixel count, which saves two full passes over the planes. The
        # reordering changes results by rounding only (~1e-16 relative).
        cv2.divide(means_prod, means_sq, dst=means_prod)
        cv2.divide(numerator, denominator, dst=numerator)
        # einsum, not np.vdot: BLAS would start its own threads inside our worker threads.
        return float(np.einsum("ij,ij->", means_prod, numerator)) / numerator.size

    def psnr_ssim(self, pred: np.ndarray, gt: np.ndarray, data_range: float) -> tuple[float, float]:
        """(PSNR, SSIM) of one image pair; see the module docstring."""
        return psnr(pred, gt, data_range=data_range), self.ssim(pred, gt, data_range=data_range)

    def ssim(self, pred: np.ndarray, gt: np.ndarray, data_range: float) -> float:
        """Mean over channels of the per-channel SSIM."""
        _check_pair(pred, gt)
        if pred.shape[:2] != self.shape:
            raise ValueError(f"workspace is for {self.shape} planes, got {pred.shape[:2]}")
        if native is not None:
            return _native_ssim(native, pred, gt, data_range)
        import cv2

        pred, gt = _as_cv_pair(pred, gt)
        if pred.ndim == 2:
            return self.ssim_plane(pred, gt, data_range)
        if pred.shape[2] == 1:
            return self.ssim_plane(pred[:, :, 0], gt[:, :, 0], data_range)
        # Extracting into the same two planes channel after channel: cv2.split's fresh
        # arrays cost page faults (~1 ms per image) whenever the allocator has trimmed.
        x, y = self._planes_for(pred.dtype)
        total = 0.0
        for channel in range(pred.shape[2]):
            if pred.shape[2] <= 4:  # what OpenCV sees as one multi-channel image
                cv2.extractChannel(pred, channel, dst=x)
                cv2.extractChannel(gt, channel, dst=y)
            else:
                np.copyto(x, pred[:, :, channel])
                np.copyto(y, gt[:, :, channel])
            total += self.ssim_plane(x, y, data_range)
        return total / pred.shape[2]


def psnr(pred: np.ndarray, gt: np.ndarray, *, data_range: float = 1.0) -> float:
    """PSNR in dB over all pixels and channels; exactly 999.0 for identical images.

    Equal to the official ``10 * log10(1 / mse)`` on values divided by `data_range`.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {gt.shape}")
    # Both accumulate in float64; sums of squared differences of integers are exact.
    if native is not None:
        squared_error = native.squared_error(*_native_pair(pred, gt))
    else:
        import cv2

        squared_error = cv2.norm(*_as_cv_pair(pred, gt), cv2.NORM_L2SQR)
    if squared_error == 0:
        return PSNR_IDENTICAL
    mse = squared_error / pred.size
    return 10.0 * math.log10(data_range * data_range / mse)


def ssim(pred: np.ndarray, gt: np.ndarray, *, data_range: float = 1.0,
         workspace: SsimWorkspace | None = None) -> float:
    """Official-semantics SSIM of two (H, W) or (H, W, C) images (mean over channels).

    Pass a `workspace` when scoring many images of one size to reuse its memory.
    """
    _check_pair(pred, gt)
    if native is not None:  # needs no workspace
        return _native_ssim(native, pred, gt, data_range)
    if workspace is None or workspace.shape != pred.shape[:2]:
        workspace = SsimWorkspace(pred.shape[0], pred.shape[1])
    return workspace.ssim(pred, gt, data_range)


def psnr_batch(preds: Sequence[np.ndarray] | np.ndarray, gts: Sequence[np.ndarray] | np.ndarray,
               *, data_range: float = 1.0) -> np.ndarray:
    """Per-image PSNR of N pairs ((N, H, W[, C]) arrays or sequences) as a float64 array."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground truths")
    return np.array([psnr(p, g, data_range=data_range) for p, g in zip(preds, gts, strict=True)])


def ssim_batch(preds: Sequence[np.ndarray] | np.ndarray, gts: Sequence[np.ndarray] | np.ndarray,
               *, data_range: float = 1.0) -> np.ndarray:
    """Per-image SSIM of N pairs of one size, sharing one workspace, as a float64 array."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions but {len(gts)} ground truths")
    workspace: SsimWorkspace | None = None
    values = []
    for pred, gt in zip(preds, gts, strict=True):
        _check_pair(pred, gt)
        if workspace is None or workspace.shape != pred.shape[:2]:
            workspace = SsimWorkspace(pred.shape[0], pred.shape[1])
        values.append(workspace.ssim(pred, gt, data_range))
    return np.array(values, dtype=np.float64)
