"""A straightforward re-implementation of the AIM 2022 official scoring computation.

This is the comparison point for `rgb2raw score`: the parity tests check our fast metrics
against it, and `bench_score.py` times both side by side. It is written from the facts in
FORMAT.md (not copied from the organisers' program) and deliberately keeps the official
program's shape, including its quirks:

- every file is loaded with ``np.load(...).astype(float) / 1024`` and must lie in [0, 1]
  (the official program aborts otherwise; here an AssertionError naming the file);
- PSNR is ``10 * log10(1 / mse)`` over all channels, exactly 999 when mse == 0;
- SSIM is computed per channel with ``scipy.ndimage.gaussian_filter`` (sigma 1.5, the
  defaults truncate=4.0 and mode='reflect'), population covariance, K1=0.01, K2=0.03,
  data range 1, the map's mean taken after cropping 5 pixels from every border; the image's
  SSIM is the mean over channels;
- files are paired by SORTED ORDER of names containing 'npy' (never by name), and a result
  that is an unzipped submission is read from its first sub-folder.

It uses one core and no tricks on purpose. Import it from tests or benchmarks by putting
this folder on sys.path.
"""

from __future__ import annotations

import math
import os

import numpy as np
from scipy.ndimage import gaussian_filter

SIGMA = 1.5
K1 = 0.01
K2 = 0.03
CROP = 5  # (win_size - 1) // 2 for the 11-pixel window the Gaussian SSIM is defined with
SCALE = 1024.0


def load_scaled(path: str) -> np.ndarray:
    """Load a `.npy` the official way: as float64 divided by 1024, asserting [0, 1]."""
    image = np.load(path).astype(float) / SCALE
    assert image.min() >= 0 and image.max() <= 1, f"{path}: values outside [0, 1024]"
    return image


def psnr(result: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of two [0, 1] images; 999 for identical images."""
    mse = np.mean((result - reference) ** 2)
    if mse == 0:
        return 999.0
    return float(10 * math.log10(1.0 / mse))


def ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """Gaussian-weighted SSIM of one channel, the mean taken after a 5-pixel border crop."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    ux = gaussian_filter(x, sigma=SIGMA)
    uy = gaussian_filter(y, sigma=SIGMA)
    uxx = gaussian_filter(x * x, sigma=SIGMA)
    uyy = gaussian_filter(y * y, sigma=SIGMA)
    uxy = gaussian_filter(x * y, sigma=SIGMA)
    vx = uxx - ux * ux  # population covariance: no N / (N - 1) factor
    vy = uyy - uy * uy
    vxy = uxy - ux * uy
    c1 = (K1 * 1.0) ** 2
    c2 = (K2 * 1.0) ** 2
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux**2 + uy**2 + c1) * (vx + vy + c2)
    ssim_map = numerator / denominator
    return float(ssim_map[CROP:-CROP, CROP:-CROP].mean())


def ssim(result: np.ndarray, reference: np.ndarray) -> float:
    """SSIM of two (H, W, C) images: the mean of the per-channel SSIMs."""
    return float(np.mean([ssim_channel(result[:, :, c], reference[:, :, c])
                          for c in range(result.shape[2])]))


def result_folder(result_dir: str) -> str:
    """The folder the official program reads: the first sub-folder of the unzipped result."""
    subfolders = sorted(name for name in os.listdir(result_dir)
                        if os.path.isdir(os.path.join(result_dir, name)))
    if not subfolders:
        raise FileNotFoundError(f"{result_dir}: no sub-folder in the submission")
    return os.path.join(result_dir, subfolders[0])


def npy_names(folder: str) -> list[str]:
    """Names the official program scores: every entry containing 'npy', sorted."""
    return sorted(name for name in os.listdir(folder) if "npy" in name)


def score_folders(result_dir: str, reference_dir: str) -> dict[str, object]:
    """Score two folders the official way: pair by sorted order, per-image and mean numbers.

    Returns {"psnr", "ssim", "count", "per_image": {result stem: {"psnr", "ssim"}}}.
    """
    result_names = npy_names(result_dir)
    reference_names = npy_names(reference_dir)
    assert len(result_names) == len(reference_names), "result and reference counts differ"
    per_image: dict[str, dict[str, float]] = {}
    psnrs: list[float] = []
    ssims: list[float] = []
    for result_name, reference_name in zip(result_names, reference_names, strict=True):
        result = load_scaled(os.path.join(result_dir, result_name))
        reference = load_scaled(os.path.join(reference_dir, reference_name))
        image_psnr = psnr(result, reference)
        image_ssim = ssim(result, reference)
        psnrs.append(image_psnr)
        ssims.append(image_ssim)
        per_image[os.path.splitext(result_name)[0]] = {"psnr": image_psnr, "ssim": image_ssim}
    return {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "count": len(psnrs),
        "per_image": per_image,
    }


def score_submission(unzipped_dir: str, reference_dir: str) -> dict[str, object]:
    """Score an unzipped submission: its first sub-folder against the reference folder."""
    return score_folders(result_folder(unzipped_dir), reference_dir)


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/official_reference.py PRED GT [--json OUT]``: the means, as a script.

    bench_e2e.py times this as a fresh process next to `rgb2raw score`, so both columns pay
    for their own interpreter start-up and imports.
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Score like the AIM 2022 program (reference).")
    parser.add_argument("pred")
    parser.add_argument("gt")
    parser.add_argument("--json", help="also write the per-image numbers to this file")
    args = parser.parse_args(argv)
    result = score_folders(args.pred, args.gt)
    print(f"mean PSNR {result['psnr']:.4f} dB  SSIM {result['ssim']:.6f}  ({result['count']} images)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
