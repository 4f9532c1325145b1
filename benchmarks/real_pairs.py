"""The two real phone JPEG + RAW figures, as data to calibrate and judge models on.

The AIM 2022 challenge README shows one S7 and one P20 shot as a figure: the phone ISP's JPEG on
the left, the same shot's RAW drawn on the right (`../shared/data/real-pairs/README.md`). These
are the only real RAW in reach, so they decide what "looks like the camera" means here. They are
read from ../shared at run time only: never shipped, never needed by a test.

How the RAW half was drawn, and so how it is undone (facts from the starter kit):
- the packed RAW / 1024 was reduced to R, mean(Gr, Gb), B planes and resized x2 (bilinear);
- each plane went through ``clip(smoothstep(x ** (1 / 2.2)), 0, 1)``, then 8-bit JPEG;
- so ``x = (0.5 - sin(asin(1 - 2v) / 3)) ** 2.2`` recovers the planes (values / 1024, black
  pedestal included) to 8-bit precision, blurred by the resize and the JPEG.

Comparisons happen at 1/4 of the packed resolution (area averaging), where that blur and the
8-bit steps drop out. The P20 JPEG is cropped and zoomed relative to its RAW (like every P20
training pair): an affine transform, estimated once per figure by ECC on log green between the
formula's prediction and the recovered RAW, maps predictions onto the RAW before scoring; the
same transform is used for every model, so no model is aligned in its own favour.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rgb2raw.metrics import psnr, ssim

SHARED = Path(os.environ.get("RGB2RAW_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FIGURES = {"s7": "s7-figure.jpg", "p20": "p20-figure.jpg"}
#: Reduction from the packed RAW to the comparison grid (the issue's "1/4 packed resolution").
REDUCE = 4
#: Pixels of the comparison grid ignored at each border after warping (edge effects, warp fill).
MARGIN = 6
#: The scorer's scale: RAW values are compared as DN / 1024.
SCALE = 1024.0

# A model, as this module sees it: JPEG RGB (H, W, 3) float32 in [0, 1] -> packed RAW in DN.
ModelFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Figure:
    """One real pair: the phone JPEG and its RAW's R, mean G, B planes on the comparison grid."""

    camera: str
    jpeg: np.ndarray  # (H, W, 3) float32 RGB in [0, 1], the phone ISP's output, full size
    raw_planes: np.ndarray  # (H / 2 / REDUCE, W / 2 / REDUCE, 3) float64, DN / 1024
    warp: np.ndarray | None  # 2x3 affine: comparison grid of the prediction -> RAW, or None


def undo_drawing(drawn: np.ndarray) -> np.ndarray:
    """The starter kit's RAW drawing undone: 8-bit drawn values -> RAW / 1024."""
    v = np.clip(drawn.astype(np.float64) / 255.0, 0.0, 1.0)
    return np.clip(0.5 - np.sin(np.arcsin(1.0 - 2.0 * v) / 3.0), 0.0, 1.0) ** 2.2


def reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-average an (H, W, C) image by an integer factor (H, W cropped to multiples)."""
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, -1)
    return blocks.mean(axis=(1, 3))


def planes(packed_dn: np.ndarray) -> np.ndarray:
    """Packed RAW in DN -> R, mean G, B planes / 1024 on the comparison grid."""
    packed = np.asarray(packed_dn, dtype=np.float64) / SCALE
    rgb = np.stack([packed[..., 0], 0.5 * (packed[..., 1] + packed[..., 2]), packed[..., 3]], -1)
    return reduce(rgb, REDUCE)


def _estimate_warp(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """Affine ECC on log green (the planes' middle channel), moving -> fixed."""
    def log_green(p: np.ndarray) -> np.ndarray:
        g = np.log(np.clip(p[..., 1], 1e-4, None))
        return ((g - g.mean()) / (g.std() + 1e-9)).astype(np.float32)

    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 500, 1e-7)
    _, warp = cv2.findTransformECC(log_green(fixed), log_green(moving), warp,
                                   cv2.MOTION_AFFINE, criteria, None, 5)
    return warp


def apply_warp(image: np.ndarray, warp: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Resample `image` onto the RAW's comparison grid (identity when `warp` is None)."""
    if warp is None:
        return image[: shape[0], : shape[1]]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(image.astype(np.float32), warp, (shape[1], shape[0]), flags=flags,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float64)


@functools.cache
def load(camera: str) -> Figure:
    """Read one figure from ../shared (set RGB2RAW_SHARED to look elsewhere)."""
    path = SHARED / "data" / "real-pairs" / FIGURES[camera]
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"{path}: the real figure is not there (set RGB2RAW_SHARED)")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    half = rgb.shape[1] // 2
    jpeg = (rgb[:, :half].astype(np.float32) / 255.0)
    # The drawn RAW is at the JPEG's size (packed x2): reduce by 2 * REDUCE for the grid.
    raw_planes = reduce(undo_drawing(rgb[:, half:]), 2 * REDUCE)
    warp = None
    if camera == "p20":
        from rgb2raw.cameras import get_camera
        from rgb2raw.inverse import InverseParams

        params = InverseParams.from_camera(get_camera(camera))
        guess = planes(params.black_level + params.apply(jpeg) * (params.white_level - params.black_level))
        warp = _estimate_warp(guess, raw_planes)
    return Figure(camera=camera, jpeg=jpeg, raw_planes=raw_planes, warp=warp)


def aligned(figure: Figure, packed_dn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, RAW) planes on the RAW's grid, borders cut: ready to compare."""
    pred = apply_warp(planes(packed_dn), figure.warp, figure.raw_planes.shape[:2])
    m = MARGIN
    return pred[m:-m, m:-m], figure.raw_planes[m:-m, m:-m]


def score(figure: Figure, packed_dn: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of a predicted packed RAW (DN) against the figure's RAW, values / 1024."""
    pred, raw = aligned(figure, packed_dn)
    return psnr(pred, raw), ssim(pred, raw)


def score_model(camera: str, model: ModelFn) -> tuple[float, float]:
    """Run `model` on the figure's JPEG and score it."""
    figure = load(camera)
    return score(figure, model(figure.jpeg))


def naive_model(rgb01: np.ndarray) -> np.ndarray:
    """The naive mosaic: the JPEG's own values sampled onto the Bayer grid, as 10-bit DN."""
    from rgb2raw import bayer

    return bayer.mosaic_rgb(rgb01) * 1023.0


def rgb2raw_model(name: str | None, camera: str) -> ModelFn:
    """A model as `rgb2raw infer` runs it (`name` None: the camera's default)."""
    from rgb2raw.cameras import get_camera
    from rgb2raw.pipeline import RunSettings, infer_image, load_model

    loaded = load_model(name, camera=camera)
    profile = get_camera(camera)
    return lambda rgb: infer_image(rgb, loaded, RunSettings(), camera=profile)


if __name__ == "__main__":
    import sys

    for cam in ("s7", "p20"):
        for label, fn in (("naive", naive_model), ("default", rgb2raw_model(None, cam)),
                          *((m, rgb2raw_model(m.replace("CAMERA", cam), cam)) for m in sys.argv[1:])):
            p, s = score_model(cam, fn)
            print(f"{cam:4s} {label:24s} PSNR {p:6.2f} dB  SSIM {s:.4f}")
