"""Fitting a pixel-wise inverse ISP (`rgb2raw.inverse.InverseParams`) to RAW + picture pairs.

The model of one observation (a Bayer site of camera channel c, in pair u, whose picture pixel
is x = (x_R, x_G, x_B)) is

    raw = black + A[u, c] * sum_j M[c, j] * T_j(x_j)

with per-channel tone tables T_j (piecewise linear on `knots` levels, T_j(0) = 0, monotone),
a 3x3 matrix M and a gain A[u, c] per pair and channel in DN (white balance x exposure x the
black-to-white span). Given two of (A and black, M, T) the third is a linear least-squares
problem, so the fit alternates between them; per-pair gains keep one bright and one dark photo
from bending the shared tables (the brief's "robust to per-image gain").

Gauges (the product is all the data can tell): each table ends at T_j(1) = 1, so the tables are
"linear light relative to the picture's white", and each matrix row sums to one, so a grey in
linear RGB stays grey in camera RGB before white balance (the DNG convention `cameras.py` uses)
and all of the level sits in the gains, where exposure and white balance can be read off.

The tables are solved as non-negative increments (monotone by construction; an active-set
solver, `solve.nonneg_qp`) with a light second-difference penalty, which also carries them smoothly
over levels the data never shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rgb2raw.calibrate import solve
from rgb2raw.calibrate._blas import single_threaded
from rgb2raw.calibrate.samples import RGB_BLACK, Samples, usable
from rgb2raw.errors import Rgb2RawError
from rgb2raw.inverse import DEFAULT_KNEE, TABLE_LEVELS, InverseParams, table_from_curve

#: Fewer usable observations than this cannot pin 3 tables, a matrix and gains.
MIN_OBSERVATIONS = 2000
#: Knots of the fitted tables. Linear interpolation between 128 knots misses a smooth inverse
#: tone curve (second derivative up to about 5) by under 5e-5, a twentieth of a 10-bit DN,
#: and the solve is 8 times cheaper than at one knot per 8-bit level.
DEFAULT_KNOTS = 128

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class FitOptions:
    knots: int = DEFAULT_KNOTS
    iterations: int = 20
    #: Stop when the RMS residual improves by less than this share between rounds.
    tolerance: float = 1e-5
    #: Second-difference penalty on the tables, relative to the mean data weight per knot.
    smoothness: float = 10.0
    #: Penalty on differences between the three channels' tables (most ISPs apply one tone
    #: curve to all channels; the data must show otherwise), relative like `smoothness`.
    channel_tie: float = 0.0
    #: Ridge pulling each matrix row towards the base model's, relative to the row's data
    #: weight: a scene of few colours cannot pin a 3x3 matrix, and the tables would bend to
    #: whatever matrix the noise picked.
    matrix_prior: float = 0.0
    #: Fit the black level (else keep the given one).
    fit_black: bool = True


@dataclass
class InverseFit:
    """A fitted inverse ISP and what the fit saw."""

    params: InverseParams
    unit_gains: np.ndarray  # (U, 3): per-pair gains (v units, like params.gains); NaN if unseen
    unit_weight: np.ndarray  # (U,): usable observations per pair
    knots: np.ndarray  # (K,) encoded levels of the table knots
    knot_values: np.ndarray  # (3, K) the fitted tables at the knots
    knot_counts: np.ndarray  # (3, K) usable observations at each knot (interpolation weights)
    rmse_history: list[float] = field(default_factory=list)  # DN, per round
    highlight_observations: int = 0
    observations: int = 0


# ------------------------------------------------------------------------------ the fit


def _typical(values: np.ndarray, weight: np.ndarray) -> float:
    """A robust weighted centre: the weighted mean of the values within 5 standard deviations
    (estimated from the median absolute deviation; at least 0.25, a third of a stop in log
    gain) of the weighted median. With two values it is their mean (a median would pick one);
    gross outliers (a crop of sky, a failed pair) do not move it."""
    ok = np.isfinite(values) & (weight > 0)
    if not ok.any():
        return float("nan")
    v, w = values[ok], weight[ok]
    order = np.argsort(v)
    cumulative = np.cumsum(w[order])
    median = v[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])]
    spread = max(5.0 * 1.4826 * float(np.median(np.abs(v - median))), 0.25)
    near = np.abs(v - median) <= spread
    return float(np.sum(w[near] * v[near]) / np.sum(w[near]))


def typical_gains(unit_gains: np.ndarray, unit_weight: np.ndarray) -> np.ndarray:
    """The gains a model uses for a photo it knows nothing about: exposure (the green gain) and
    white balance (green over red and over blue), each a robust weighted centre (`_typical`)
    of the pairs' values in log space."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log(unit_gains)
    exposure = _typical(log[:, 1], unit_weight)
    red = _typical(log[:, 1] - log[:, 0], unit_weight)
    blue = _typical(log[:, 1] - log[:, 2], unit_weight)
    return np.exp(np.array([exposure - red, exposure, exposure - blue]))


#: Black picture pixels needed to bound the black level from above.
MIN_BLACK_PIXELS = 500


def _black_cap(samples: Samples) -> float | None:
    """The median RAW under all-black picture pixels (an upper bound of the black level: those
    sites received at most a little light), or None when too few are black."""
    black = samples.rgb.max(axis=1) <= RGB_BLACK
    if int(black.sum()) < MIN_BLACK_PIXELS:
        return None
    return float(np.median(samples.raw[black]))


def fit_samples(samples: Samples, units: int, *, base: InverseParams,
                black: float | None, white: float, options: FitOptions | None = None,
                progress: Progress | None = None) -> InverseFit:
    """Fit an `InverseParams` to observations (see the module docstring).

    `base` starts the tables and matrix (the uncalibrated formula, say); `black` fixes the black
    level (None fits it); `white` is the RAW's white level. Raises `Rgb2RawError` when too few
    observations are usable.
    """
    with single_threaded():
        return _fit(samples, units, base=base, black=black, white=white, options=options,
                    progress=progress)


def _fit(samples: Samples, units: int, *, base: InverseParams, black: float | None,
         white: float, options: FitOptions | None = None,
         progress: Progress | None = None) -> InverseFit:
    options = options or FitOptions()
    knots = options.knots
    start_black = base.black_level if black is None else black
    keep = usable(samples, start_black, white)
    if int(keep.sum()) < MIN_OBSERVATIONS:
        raise Rgb2RawError(None, f"only {int(keep.sum())} usable RAW/picture observations "
                                 f"(need {MIN_OBSERVATIONS}): the pairs are saturated, black "
                                 "or too small")
    black_cap = _black_cap(samples)
    data = samples.subset(keep)
    lower, frac = solve.knot_features(data.rgb, knots)
    channel = data.channel.astype(np.int64)
    group = data.unit.astype(np.int64) * 3 + channel
    groups = units * 3
    raw = data.raw.astype(np.float64)
    base_weight = data.weight.astype(np.float64)
    weight = base_weight
    knot_levels = np.arange(knots) / (knots - 1)
    base_index = np.rint(knot_levels * (TABLE_LEVELS - 1)).astype(np.int64)
    tables = base.tables[:, base_index].astype(np.float64)
    tables -= tables[:, :1]
    tables /= np.maximum(tables[:, -1:], 1e-12)
    matrix = base.matrix.astype(np.float64) * base.tables[:, -1].astype(np.float64)[None, :]
    matrix /= matrix.sum(axis=1, keepdims=True)
    prior_matrix = matrix.copy()
    counts = np.zeros((3, knots))
    for j in range(3):
        counts[j] = np.bincount(lower[:, j], weights=1.0 - frac[:, j], minlength=knots)[:knots]
        counts[j] += np.bincount(lower[:, j] + 1, weights=frac[:, j], minlength=knots)[:knots]
    cumulative = solve.cumulative(knots)
    penalty = (options.smoothness * solve.second_difference(knots)
               + options.channel_tie * solve.channel_tie(knots))
    delta = np.diff(tables, axis=1).reshape(-1)
    history: list[float] = []
    fit_black = options.fit_black and black is None
    level = start_black
    gains = np.ones(groups)
    for round_index in range(options.iterations):
        linear = solve.linear(lower, frac, tables)
        pred = np.einsum("nj,nj->n", linear, matrix[channel])
        # The model clips camera RGB at 0: an observation predicted below it is censored for
        # this round's linear steps.
        weight = np.where(pred > 0, base_weight, 0.0)
        gains, level = solve.solve_gains(pred, raw, weight, group, groups,
                                    None if fit_black else start_black)
        a = np.nan_to_num(gains[group])
        # Matrix rows, then renormalise them into the gains.
        target = (raw - level) / np.where(a != 0, a, 1.0)
        matrix = solve.solve_matrix(linear, target, weight * a * a, channel, prior_matrix,
                               options.matrix_prior)
        rows = matrix.sum(axis=1)
        if np.any(rows <= 1e-6):
            raise Rgb2RawError(None, "the colour matrix is undetermined: the pairs show too "
                                     "few colours")
        matrix /= rows[:, None]
        gains = gains * np.tile(rows, units)
        a = np.nan_to_num(gains[group])
        # Tables as non-negative increments, and the black level with them: a black level
        # and the tables' first steps trade against each other, so solving them apart would
        # crawl along that valley for many rounds.
        safe = np.where(a != 0, a, 1.0)
        offset = np.where(a != 0, 1.0 / safe, 0.0) if fit_black else None
        target = (raw - (0.0 if fit_black else level)) / safe
        normal, rhs, cross = solve.table_normal(lower, frac, matrix[channel], target,
                                           weight * a * a, knots, offset)
        scale = max(float(np.trace(normal)) / (3 * knots), 1e-12)
        normal = normal + scale * penalty
        q = cumulative.T @ normal @ cumulative
        q += np.eye(q.shape[0]) * 1e-10 * scale
        r = cumulative.T @ rhs
        if cross is None:
            delta = solve.nonneg_qp(q, r, delta)
        else:
            size = q.shape[0]
            joint = np.zeros((size + 1, size + 1))
            joint[:size, :size] = q
            joint[:size, size] = joint[size, :size] = cumulative.T @ cross[:-2]
            joint[size, size] = cross[-2] + 1e-12
            solution = solve.nonneg_qp(joint, np.append(r, cross[-1]), np.append(delta, level))
            delta, level = solution[:size], float(solution[size])
            if black_cap is not None and level > black_cap:
                # The data cannot tell the black level from an offset of the tables (few
                # exposures); it is at most what black picture pixels read.
                level, fit_black, start_black = black_cap, False, black_cap
        tables = solve.increments_to_tables(delta, knots)
        ends = np.maximum(tables[:, -1], 1e-12)
        tables /= ends[:, None]
        delta = np.diff(tables, axis=1).reshape(-1)
        matrix = matrix * ends[None, :]
        rows = matrix.sum(axis=1)
        matrix /= rows[:, None]
        gains = gains * np.tile(rows, units)
        pred = np.einsum("nj,nj->n", solve.linear(lower, frac, tables), matrix[channel])
        residual = raw - level - np.nan_to_num(gains[group]) * pred
        history.append(float(np.sqrt(np.sum(weight * residual**2) / np.sum(weight))))
        if progress is not None:
            progress(round_index + 1, options.iterations)
        if len(history) > 1 and history[-2] - history[-1] < options.tolerance * history[-2]:
            break
    if progress is not None:
        progress(options.iterations, options.iterations)
    span = white - level
    unit_gains = (gains.reshape(units, 3) / span).astype(np.float64)
    unit_weight = np.bincount(data.unit, weights=base_weight, minlength=units)
    typical = typical_gains(unit_gains, unit_weight)
    if not np.all(np.isfinite(typical)) or np.any(typical <= 0):
        raise Rgb2RawError(None, "no pair gives a positive gain: RAW and pictures do not match")
    full_tables = np.stack([table_from_curve(knot_levels, tables[j]) for j in range(3)])
    params = InverseParams(tables=full_tables, matrix=matrix.astype(np.float32),
                           gains=typical.astype(np.float32),
                           highlight_gains=np.maximum(typical, 1.0).astype(np.float32),
                           knee=DEFAULT_KNEE, black_level=float(level), white_level=float(white),
                           info={"kind": "calibrated"})
    highlight, seen = fit_highlight_gains(params, samples)
    return InverseFit(
        params=replace(params, highlight_gains=highlight.astype(np.float32)),
        unit_gains=unit_gains, unit_weight=unit_weight, knots=knot_levels, knot_values=tables,
        knot_counts=counts, rmse_history=history, highlight_observations=seen,
        observations=len(data),
    )


#: Fewer highlight observations than this per channel keep Brooks et al.'s max(gain, 1).
MIN_HIGHLIGHT = 200


def fit_highlight_gains(params: InverseParams, samples: Samples) -> tuple[np.ndarray, int]:
    """The gains to fade to above the knee, by least squares on the bright observations.

    Uses every observation whose camera mean passes the knee, clipped RAW included (a clipped
    picture white over a clipped RAW says "predict white"). Each gain stays between the
    typical gain and 1 / knee (beyond that the output is clipped anyway). A channel with too
    few bright observations keeps max(gain, 1).
    """
    camera = np.clip(np.einsum("nc,dc->nd", params.linear_rgb(samples.rgb), params.matrix), 0, 1)
    mean = camera.mean(axis=1)
    weight = np.square(np.clip((mean - params.knee) / (1.0 - params.knee), 0.0, 1.0))
    bright = weight > 0
    span = params.white_level - params.black_level
    result = np.maximum(params.gains, 1.0).astype(np.float64)
    for c in range(3):
        pick = bright & (samples.channel == c)
        if pick.sum() < MIN_HIGHLIGHT:
            continue
        own, w = camera[pick, c], weight[pick]
        target = (samples.raw[pick] - params.black_level) / span
        rest = target - own * params.gains[c] * (1.0 - w)
        slope = own * w
        denominator = float(np.sum(slope * slope))
        if denominator > 1e-12:
            gain = float(np.sum(slope * rest) / denominator)
            result[c] = np.clip(gain, params.gains[c], 1.0 / params.knee)
    return result, int(bright.sum())


__all__ = ["DEFAULT_KNOTS", "FitOptions", "InverseFit", "MIN_OBSERVATIONS", "fit_samples",
           "fit_highlight_gains", "typical_gains"]
