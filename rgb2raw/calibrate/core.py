"""Calibration from arrays in memory: the library entry points under the folder/CLI layer.

`fit_arrays(pictures, raws, masks=...)` fits an `InverseParams` to pairs already on one grid
(aligned); `detect_white` reads the white level off the data; `fit_shading` measures lens
shading on whole frames against a fitted model (as `rgb2raw.shading.RadialShading`). `rgb2raw.calibrate.run` wires them to folders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from rgb2raw.calibrate.fit import FitOptions, InverseFit, Progress, fit_samples
from rgb2raw.calibrate.samples import Samples, concat, near_clipped, site_samples
from rgb2raw.errors import Rgb2RawError
from rgb2raw.inverse import InverseParams
from rgb2raw.shading import ORDER as SHADING_ORDER
from rgb2raw.shading import RadialShading

#: Observations kept for the fit, over all pairs: enough for 128-knot tables (thousands per
#: knot), few enough for seconds per round on a laptop.
DEFAULT_BUDGET = 1_200_000
#: A white level is read off the data when at least this share of RAW values sits at the top.
SATURATION_SHARE = 1e-4


@dataclass(frozen=True)
class TopStats:
    """What the white level is read from: the top RAW value, how many values sit on it, how
    many sit on the `TOP_WINDOW` levels just below it, and how many values there are."""

    top: float
    at_top: int
    below: int
    total: int

    @classmethod
    def of(cls, raw: np.ndarray) -> TopStats:
        top = float(np.max(raw))
        at_top = int(np.count_nonzero(raw >= top - 0.5))
        below = int(np.count_nonzero(raw >= top - TOP_WINDOW - 0.5)) - at_top
        return cls(top, at_top, below, int(raw.size))


#: Levels below the top that a saturation pile-up must dwarf.
TOP_WINDOW = 10


def white_level(stats: Sequence[TopStats], default: float) -> float:
    """The RAW's white level: the top value when values pile up there (clipped highlights: at
    least `SATURATION_SHARE` of all values and 16, and ten times as many as on an average
    level just below), else `default` (or the top value, if the data goes above it)."""
    top = max(s.top for s in stats)
    at_top = sum(s.at_top for s in stats if s.top >= top - 0.5)
    below = sum(s.below for s in stats if s.top >= top - 0.5)
    total = sum(s.total for s in stats)
    piled = at_top >= max(16, SATURATION_SHARE * total) and at_top > 10 * below / TOP_WINDOW
    if piled and top > 0.5 * default:
        return top
    return max(default, top)


def detect_white(raws: Sequence[np.ndarray], default: float) -> float:
    """`white_level` of RAW arrays."""
    return white_level([TopStats.of(raw) for raw in raws], default)


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
class ShadingFit:
    """Lens shading relative to a fitted model, as `rgb2raw.shading.RadialShading`, with what
    it was measured on: the RMS of RAW / prediction - 1 over the frames' blocks before and
    after applying it.

    Its gain at the centre (`centre`) is free: a model fitted without shading has absorbed
    the frame's average fall-off into its gains, so the centre reads above 1. `normalised` is
    the fall-off alone (1 at the centre), the factor to divide the RAW by before refitting.
    """

    shading: RadialShading
    frames: int
    rms_before: float
    rms_after: float

    @property
    def corner(self) -> np.ndarray:
        """Gain at the corners (r = 1) per packed channel R, Gr, Gb, B."""
        return self.shading.gain(np.ones(1))[0]

    @property
    def centre(self) -> np.ndarray:
        """Gain at the centre (r = 0) per packed channel."""
        return self.shading.gain(np.zeros(1))[0]

    @property
    def normalised(self) -> RadialShading:
        """The same fall-off with gain 1 at the centre."""
        return RadialShading(self.shading.coefficients / self.centre[:, None])

    def to_dict(self) -> dict[str, object]:
        return {**self.shading.to_dict(), "corner_gain": np.round(self.corner, 4).tolist(),
                "centre_gain": np.round(self.centre, 4).tolist(),
                "frames": self.frames, "ratio_rms_before": round(self.rms_before, 5),
                "ratio_rms_after": round(self.rms_after, 5)}


def frame_radius(shape: tuple[int, int]) -> np.ndarray:
    """(h, w) radius of every packed pixel of a whole frame, exactly as `RadialShading`
    measures it (1 at the corners)."""
    unit_r2 = RadialShading.from_rgb([[0.0, 1.0, 0.0, 0.0]] * 3)
    return np.sqrt(np.maximum(unit_r2.gain_map(shape)[..., 0], 0.0))


def deshade(samples: Samples, shading: RadialShading, black: float) -> Samples:
    """The observations with the lens fall-off divided out of the RAW above `black` (those
    with a known frame position; the rest unchanged)."""
    known = np.isfinite(samples.radius)
    if not known.any():
        return samples
    plane_of = np.array([0, 1, 3])  # a packed plane of each camera channel
    gain = np.ones(len(samples))
    gain[known] = shading.gain(samples.radius[known].astype(np.float64))[
        np.arange(int(known.sum())), plane_of[samples.channel[known]]]
    raw = (black + (samples.raw - black) / np.maximum(gain, 1e-6)).astype(np.float32)
    return replace(samples, raw=raw)


#: Shading is measured on blocks of this many packed pixels a side.
SHADING_BLOCK = 16


def _block_mean(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return cv2.resize(np.ascontiguousarray(values, dtype=np.float32), size,
                      interpolation=cv2.INTER_AREA)


def fit_shading(pictures: Sequence[np.ndarray], raws: Sequence[np.ndarray],
                masks: Sequence[np.ndarray | None], params: InverseParams,
                gains: Sequence[np.ndarray]) -> ShadingFit | None:
    """Lens shading from whole frames: the radial gain (`RadialShading`) that takes `params`'
    prediction, with each frame's own `gains`, to the RAW above black; least squares on block
    means of unclipped pixels. None without usable frames."""
    ys: list[np.ndarray] = []
    ps: list[np.ndarray] = []
    radii: list[np.ndarray] = []
    channels: list[np.ndarray] = []
    span = params.white_level - params.black_level
    for picture, raw, mask, gain in zip(pictures, raws, masks, gains, strict=True):
        frame_gain = np.asarray(gain, np.float32)
        frame_params = replace(params, gains=frame_gain,
                               highlight_gains=np.maximum(params.highlight_gains, frame_gain))
        pred = frame_params.apply(picture) * np.float32(span)
        measured = raw.astype(np.float32) - np.float32(params.black_level)
        h, w = raw.shape[:2]
        bh, bw = h // SHADING_BLOCK, w // SHADING_BLOCK
        if bh < 2 or bw < 2:
            continue
        good = np.ones((h, w), bool) if mask is None else np.asarray(mask, bool).copy()
        good &= ~near_clipped(picture).reshape(h, 2, w, 2).any(axis=(1, 3))
        good &= raw.max(axis=2) < params.white_level - 0.02 * span
        cut = (slice(0, bh * SHADING_BLOCK), slice(0, bw * SHADING_BLOCK))
        weight = _block_mean(good[cut], (bw, bh))
        radius = _block_mean(frame_radius((h, w))[cut], (bw, bh))
        for plane, camera_channel in ((0, 0), (1, 1), (2, 1), (3, 2)):
            y = _block_mean((measured[..., plane] * good)[cut], (bw, bh))
            p = _block_mean((pred[..., plane] * good)[cut], (bw, bh))
            ok = (weight > 0.5) & (p > 0.02 * span * weight)
            ys.append(y[ok] / weight[ok])
            ps.append(p[ok] / weight[ok])
            radii.append(radius[ok])
            channels.append(np.full(int(ok.sum()), camera_channel))
    if not ys:
        return None
    y, p, radius = (np.concatenate(v) for v in (ys, ps, radii))
    channel = np.concatenate(channels)
    rows = np.zeros((3, SHADING_ORDER))
    rows[:, 0] = 1.0
    for c in range(3):
        pick = channel == c
        if pick.sum() < 2 * SHADING_ORDER:
            continue
        rows[c] = _falloff(radius[pick], y[pick], p[pick])
    shading = RadialShading.from_rgb(rows)
    ratio = y / np.maximum(p, 1e-9)
    plane_of = np.array([0, 1, 3])  # a packed plane of each camera channel
    fitted = shading.gain(radius)[np.arange(radius.size), plane_of[channel]]
    return ShadingFit(shading, len(pictures), float(np.sqrt(np.mean((ratio - 1) ** 2))),
                      float(np.sqrt(np.mean((ratio / fitted - 1) ** 2))))


#: Radii at which a fitted fall-off must not rise (a lens darkens towards the corners).
_MONOTONE_CHECK = np.linspace(0.0, 1.0, 101)


def _falloff(radius: np.ndarray, y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """c0.. of ``y = (c0 + c1 r^2 + c2 r^4 + c3 r^6) p`` by least squares on the signal.

    A lens only darkens towards the corners, so the highest order whose curve never rises on
    [0, 1] is kept: one frame's scene content (a bright sky at the top, say) can otherwise
    bend a high-order fit into bumps. None rising-free (light increasing outwards): no
    fall-off, only the level c0.
    """
    r2 = radius ** 2
    for order in range(SHADING_ORDER - 1, -1, -1):
        design = np.stack([p * r2 ** k for k in range(order + 1)], axis=1)
        solution, *_ = np.linalg.lstsq(design, y, rcond=None)
        curve = sum(c * _MONOTONE_CHECK ** (2 * k) for k, c in enumerate(solution))
        if order == 0 or np.all(np.diff(curve) <= 1e-6 * abs(solution[0])):
            return np.pad(solution, (0, SHADING_ORDER - 1 - order))
    raise AssertionError("unreachable: order 0 always returns")


__all__ = ["DEFAULT_BUDGET", "ShadingFit", "TopStats", "collect", "deshade", "detect_white",
           "fit_arrays", "fit_shading", "frame_radius", "white_level"]
