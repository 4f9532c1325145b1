"""Calibration from arrays in memory: the library entry points under the folder/CLI layer.

`fit_arrays(pictures, raws, masks=...)` fits an `InverseParams` to pairs already on one grid
(aligned); `detect_white` reads the white level off the data; `fit_shading` measures lens
shading on whole frames against a fitted model. `rgb2raw.calibrate.run` wires them to folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from rgb2raw.calibrate.fit import FitOptions, InverseFit, Progress, fit_samples
from rgb2raw.calibrate.samples import Samples, concat, near_clipped, site_samples
from rgb2raw.errors import Rgb2RawError
from rgb2raw.inverse import InverseParams

#: Observations kept for the fit, over all pairs: enough for 128-knot tables (thousands per
#: knot), few enough for seconds per round on a laptop.
DEFAULT_BUDGET = 1_200_000
#: A white level is read off the data when at least this share of RAW values sits at the top.
SATURATION_SHARE = 1e-4


def detect_white(raws: Sequence[np.ndarray], default: float) -> float:
    """The RAW's white level: its top value when enough values pile up there (clipped
    highlights), else `default` (or the top value, if the data goes above `default`)."""
    top = max(float(np.max(raw)) for raw in raws)
    total = sum(raw.size for raw in raws)
    at_top = sum(int(np.count_nonzero(raw >= top - 0.5)) for raw in raws)
    if at_top >= SATURATION_SHARE * total and top > 0.5 * default:
        return top
    return max(default, top)


def collect(pictures: Sequence[np.ndarray], raws: Sequence[np.ndarray],
            masks: Sequence[np.ndarray | None] | None = None, *, budget: int = DEFAULT_BUDGET,
            seed: int = 0) -> Samples:
    """Observations from every pair (see `samples.site_samples`), at most `budget` in all,
    shared evenly between the pairs."""
    if len(pictures) != len(raws):
        raise Rgb2RawError(None, f"{len(pictures)} pictures but {len(raws)} RAW images")
    masks = list(masks) if masks is not None else [None] * len(raws)
    rng = np.random.default_rng(seed)
    share = max(1, budget // max(1, len(raws)))
    return concat([site_samples(p, r, i, mask=m, limit=share, rng=rng)
                   for i, (p, r, m) in enumerate(zip(pictures, raws, masks, strict=True))])


def fit_arrays(pictures: Sequence[np.ndarray], raws: Sequence[np.ndarray],
               masks: Sequence[np.ndarray | None] | None = None, *, base: InverseParams,
               black: float | None = None, white: float | None = None,
               options: FitOptions | None = None, budget: int = DEFAULT_BUDGET, seed: int = 0,
               progress: Progress | None = None) -> InverseFit:
    """Fit a pixel-wise inverse ISP to aligned pairs held in memory.

    `pictures`: (H, W, 3) RGB in [0, 1]. `raws`: the RAW in DN (any unit; the fitted levels
    are in the same unit), packed (H/2, W/2, 4) RGGB, or planes at the picture's resolution:
    (H, W, 4) R, Gr, Gb, B or (H, W, 3) R, G, B (low-resolution data, e.g. 1/4 of the packed
    size, works the same way). `masks` (at the RAW's resolution, True = use) drop pixels.
    `black` fixes the black level (None: fitted); `white` fixes the white level (None: read
    off the data, `detect_white`, with `base`'s as the default). Each pair gets its own gains;
    the model's are their typical values (`fit.typical_gains`).
    """
    if len(raws) < 1:
        raise Rgb2RawError(None, "no pairs to fit")
    level = detect_white(raws, base.white_level) if white is None else float(white)
    samples = collect(pictures, raws, masks, budget=budget, seed=seed)
    return fit_samples(samples, len(raws), base=base, black=black, white=level,
                       options=options, progress=progress)


@dataclass(frozen=True)
class Shading:
    """Lens shading relative to a fitted model: RAW / prediction = 1 + a1 r^2 + a2 r^4 per
    camera channel (R, G, B), r the distance from the frame's centre over its half-diagonal
    (1 at the corners). `corner` is the gain at r = 1; `frames` how many frames it saw."""

    coefficients: np.ndarray  # (3, 2): a1, a2 per channel
    frames: int
    rms_before: float  # of RAW / prediction - 1 over the frames' blocks, before and after
    rms_after: float

    @property
    def corner(self) -> np.ndarray:
        return 1.0 + self.coefficients.sum(axis=1)

    def gain_map(self, shape: tuple[int, int]) -> np.ndarray:
        """(h, w, 4) packed gain map for a frame of `shape` (h, w)."""
        r2 = _radius2(shape)
        per_channel = 1.0 + self.coefficients[:, 0] * r2[..., None] + \
            self.coefficients[:, 1] * (r2 * r2)[..., None]
        return per_channel[..., [0, 1, 1, 2]].astype(np.float32)

    def to_dict(self) -> dict[str, object]:
        return {"model": "1 + a1 r^2 + a2 r^4 per channel (R, G, B); r = 1 at the corners",
                "a1_a2": np.round(self.coefficients, 5).tolist(),
                "corner_gain": np.round(self.corner, 4).tolist(), "frames": self.frames,
                "ratio_rms_before": round(self.rms_before, 5),
                "ratio_rms_after": round(self.rms_after, 5)}


def _radius2(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    y = (np.arange(h) + 0.5 - h / 2) / (h / 2)
    x = (np.arange(w) + 0.5 - w / 2) / (w / 2)
    # Normalised so the corners are at r = 1: (x*w/2)^2 + (y*h/2)^2 over the half-diagonal^2.
    diag2 = (w / 2) ** 2 + (h / 2) ** 2
    return ((x[None, :] * w / 2) ** 2 + (y[:, None] * h / 2) ** 2) / diag2


#: Shading is measured on blocks of this many packed pixels a side.
SHADING_BLOCK = 16


def fit_shading(pictures: Sequence[np.ndarray], raws: Sequence[np.ndarray],
                masks: Sequence[np.ndarray | None], params: InverseParams,
                gains: Sequence[np.ndarray]) -> Shading | None:
    """Lens shading from whole frames: the smooth radial gain that takes `params`' prediction
    (with each frame's own `gains`) to the RAW, by least squares on block means of unclipped
    pixels. None without frames."""
    if not pictures:
        return None
    rows_y: list[np.ndarray] = []
    rows_p: list[np.ndarray] = []
    rows_r: list[np.ndarray] = []
    rows_c: list[np.ndarray] = []
    span = params.white_level - params.black_level
    for picture, raw, mask, gain in zip(pictures, raws, masks, gains, strict=True):
        frame_params = InverseParams(
            tables=params.tables, matrix=params.matrix, gains=np.asarray(gain, np.float32),
            highlight_gains=np.maximum(params.highlight_gains, gain).astype(np.float32),
            knee=params.knee, black_level=params.black_level, white_level=params.white_level)
        pred = frame_params.apply(picture) * np.float32(span)
        measured = raw.astype(np.float32) - np.float32(params.black_level)
        h, w = raw.shape[:2]
        good = np.ones((h, w), bool) if mask is None else mask.copy()
        near = near_clipped(picture).reshape(h, 2, w, 2).any(axis=(1, 3))
        good &= ~near & (raw.max(axis=2) < params.white_level - 0.02 * span)
        bh, bw = h // SHADING_BLOCK, w // SHADING_BLOCK
        if bh < 2 or bw < 2:
            continue
        cut = (slice(0, bh * SHADING_BLOCK), slice(0, bw * SHADING_BLOCK))
        weight = cv2.resize(good[cut].astype(np.float32), (bw, bh), interpolation=cv2.INTER_AREA)
        r2 = cv2.resize(_radius2((h, w))[cut].astype(np.float32), (bw, bh),
                        interpolation=cv2.INTER_AREA)
        for plane, channel in ((0, 0), (1, 1), (2, 1), (3, 2)):
            y = cv2.resize((measured[..., plane] * good)[cut], (bw, bh), interpolation=cv2.INTER_AREA)
            p = cv2.resize((pred[..., plane] * good)[cut], (bw, bh), interpolation=cv2.INTER_AREA)
            ok = (weight > 0.5) & (p > 0.02 * span * weight)
            rows_y.append(y[ok] / weight[ok])
            rows_p.append(p[ok] / weight[ok])
            rows_r.append(r2[ok])
            rows_c.append(np.full(int(ok.sum()), channel))
    if not rows_y:
        return None
    y, p, r2, channel = (np.concatenate(v) for v in (rows_y, rows_p, rows_r, rows_c))
    coefficients = np.zeros((3, 2))
    for c in range(3):
        pick = channel == c
        if pick.sum() < 8:
            continue
        # y = (1 + a1 r^2 + a2 r^4) p, weighted by p^2 (signal, not ratio, residuals).
        design = np.stack([p[pick] * r2[pick], p[pick] * r2[pick] ** 2], axis=1)
        solution, *_ = np.linalg.lstsq(design, y[pick] - p[pick], rcond=None)
        coefficients[c] = solution
    ratio = y / np.maximum(p, 1e-9)
    model = 1.0 + coefficients[channel, 0] * r2 + coefficients[channel, 1] * r2 * r2
    return Shading(coefficients, len(pictures), float(np.sqrt(np.mean((ratio - 1) ** 2))),
                   float(np.sqrt(np.mean((ratio / model - 1) ** 2))))


__all__ = ["DEFAULT_BUDGET", "Shading", "collect", "detect_white", "fit_arrays", "fit_shading"]
