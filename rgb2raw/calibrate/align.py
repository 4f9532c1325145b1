"""Global alignment of a picture to its RAW: one affine transform per frame (or pair).

Some phones crop and zoom inside the ISP (every Huawei P20 pair of the challenge is about 1.4 %
larger than its RAW, and shifted by a few pixels), so a pixel-wise fit must first put the
picture on the RAW's grid. The transform is found on the green planes at the packed resolution, with
the RAW's green remapped to the picture's histogram (its tone curve undone globally, so only
geometry is left for the ECC criterion, OpenCV's `findTransformECC`): translation by phase
correlation on the
coarsest level of a pyramid, then an affine ECC refinement level by level.

Aligned data (the S7's) is recognised on the way: when the estimate at a level of about 500
pixels is the identity to within half a RAW pixel, the finer levels and the resampling are
skipped, so the fit uses the picture exactly as `rgb2raw infer` will see it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: The pyramid stops coarsening at this side (packed pixels).
COARSEST_SIDE = 160
#: ... and never refines beyond this side (the finest level is cheap enough below it).
FINEST_SIDE = 1024
#: Levels at least this large may decide that the pair is aligned.
DECIDE_SIDE = 400
#: Aligned means: every point of the RAW grid moves by less than this many packed pixels.
ALIGNED_PX = 0.5
#: Picture pixels dropped along the overlap's border after warping.
BORDER_MARGIN = 8


@dataclass(frozen=True)
class Alignment:
    """Where each RAW-grid point (packed pixels, x right, y down) falls in the picture.

    ``matrix`` (2x3) maps packed RAW coordinates to packed picture coordinates; `aligned` says
    the identity was kept; `converged` is False when ECC failed at some level (the estimate of
    the last good level is kept).
    """

    matrix: np.ndarray
    aligned: bool
    correlation: float
    converged: bool = True

    @property
    def scale(self) -> float:
        """Mean linear scale of the transform (1.014 for a picture zoomed by 1.4 %)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    @property
    def shift(self) -> tuple[float, float]:
        return float(self.matrix[0, 2]), float(self.matrix[1, 2])

    def to_dict(self) -> dict[str, object]:
        return {"aligned": self.aligned, "scale": round(self.scale, 6),
                "shift_px": [round(v, 3) for v in self.shift],
                "matrix": np.round(self.matrix, 6).tolist(),
                "correlation": round(self.correlation, 4), "converged": self.converged}


IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def log_green(rgb01: np.ndarray, raw: np.ndarray, black: float, white: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """The RAW's green (mean of the two greens) and the picture's (2x2 means) at the packed
    resolution, on one intensity scale: the RAW's green is mapped through the monotone curve
    that gives it the picture green's histogram (float32, both).

    That curve is the ISP's global tone response read off the data, so the two planes differ
    only by the geometry (and noise): ECC's affine intensity model could not follow a tone
    curve, and on smooth content a small false zoom would absorb the mismatch. (The name
    keeps the usual "log green" idea: a logarithm would also be a monotone remapping.)
    """
    del white  # the histogram match needs no scale
    raw_green = (raw[..., 1] + raw[..., 2]) * 0.5 - black
    h, w = raw.shape[:2]
    picture_green = cv2.resize(np.ascontiguousarray(rgb01[..., 1]), (w, h),
                               interpolation=cv2.INTER_AREA).astype(np.float32)
    order = np.argsort(raw_green, axis=None, kind="stable")
    matched = np.empty(raw_green.size, np.float32)
    matched[order] = np.sort(picture_green, axis=None)
    return matched.reshape(h, w), picture_green


def _correlation(template: np.ndarray, target: np.ndarray, matrix: np.ndarray) -> float:
    """Correlation coefficient of `template` and `target` resampled by `matrix`, over the
    template's interior (a tenth of each side dropped, so borders do not count)."""
    h, w = template.shape
    moved = cv2.warpAffine(target, matrix.astype(np.float32), (w, h),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT)
    inner = (slice(h // 10, h - h // 10), slice(w // 10, w - w // 10))
    a, b = template[inner].ravel(), moved[inner].ravel()
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


#: A transform must raise the correlation by more than this over the identity to be used.
MIN_GAIN = 0.002


def _rescale(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The same transform in coordinates scaled by `factor` (cv2.resize's pixel centres)."""
    offset = 0.5 * factor - 0.5
    s = np.array([[factor, 0.0, offset], [0.0, factor, offset], [0.0, 0.0, 1.0]])
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return (s @ full @ np.linalg.inv(s))[:2]


def _max_displacement(matrix: np.ndarray, shape: tuple[int, int]) -> float:
    """Largest distance any corner of an (h, w) grid moves under `matrix`."""
    h, w = shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    moved = corners @ matrix.T
    return float(np.abs(moved - corners[:, :2]).max())


def estimate(rgb01: np.ndarray, raw: np.ndarray, black: float, white: float) -> Alignment:
    """The affine transform from the RAW's grid to the picture (see the module docstring)."""
    template, target = log_green(rgb01, raw, black, white)
    full_shape = template.shape
    pyramid = [(template, target, 1.0)]
    while max(pyramid[-1][0].shape) > COARSEST_SIDE:
        t, p, factor = pyramid[-1]
        size = (max(1, t.shape[1] // 2), max(1, t.shape[0] // 2))
        pyramid.append((cv2.resize(t, size, interpolation=cv2.INTER_AREA),
                        cv2.resize(p, size, interpolation=cv2.INTER_AREA),
                        factor * size[0] / t.shape[1]))
    levels = [level for level in reversed(pyramid) if max(level[0].shape) <= FINEST_SIDE]
    if not levels:
        levels = [pyramid[-1]]
    coarse_t, coarse_p, coarse_factor = levels[0]
    window = cv2.createHanningWindow(coarse_t.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(coarse_t, coarse_p, window)
    warp = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    warp_full = _rescale(warp, 1.0 / coarse_factor)
    correlation, converged = 0.0, True
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 60, 1e-6)
    for t, p, factor in levels:
        guess = _rescale(warp_full, factor).astype(np.float32)
        try:
            correlation, found = cv2.findTransformECC(t, p, guess, cv2.MOTION_AFFINE, criteria)
        except cv2.error:
            converged = False
            continue
        warp_full = _rescale(found.astype(np.float64), 1.0 / factor)
        deciding = max(t.shape) >= DECIDE_SIDE or factor == 1.0
        if deciding and _max_displacement(warp_full, full_shape) < ALIGNED_PX:
            return Alignment(IDENTITY.copy(), True, float(correlation), converged)
    aligned = _max_displacement(warp_full, full_shape) < ALIGNED_PX
    if not aligned:
        # ECC can settle on a small false warp (noise, flat content): keep the identity
        # unless the warp clearly correlates better at the finest level.
        gain = (_correlation(template, target, warp_full)
                - _correlation(template, target, IDENTITY))
        aligned = gain <= MIN_GAIN
    return Alignment(IDENTITY.copy() if aligned else warp_full, aligned, float(correlation),
                     converged)


def warp_picture(rgb01: np.ndarray, alignment: Alignment, *, margin: int = BORDER_MARGIN
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The picture resampled onto the RAW's grid and the packed (h, w) mask of RAW pixels whose
    whole 2x2 block lies inside the picture, at least `margin` picture pixels from its edge."""
    height, width = rgb01.shape[:2]
    h, w = height // 2, width // 2
    if alignment.aligned:
        return rgb01, np.ones((h, w), bool)
    # A packed pixel p covers picture pixels 2p .. 2p+1; its centre is 2p + 0.5.
    to_full = np.array([[2.0, 0.0, 0.5], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]])
    packed = np.vstack([alignment.matrix, [0.0, 0.0, 1.0]])
    full = (to_full @ packed @ np.linalg.inv(to_full))[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(rgb01, full, (width, height), flags=flags,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    inside = cv2.warpAffine(np.ones((height, width), np.uint8), full, (width, height),
                            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if margin > 0:
        inside = cv2.erode(inside, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8),
                           borderType=cv2.BORDER_CONSTANT, borderValue=0)
    mask = inside.reshape(h, 2, w, 2).min(axis=(1, 3)).astype(bool)
    return np.clip(warped, 0.0, 1.0), mask


__all__ = ["Alignment", "estimate", "log_green", "warp_picture"]
