"""Scoring a fitted model on pairs, and the human-readable summary of a fit.

Scores follow the challenge's conventions: the model's output becomes DN exactly as
`rgb2raw infer` writes it (``black + v * (white - black)``, rounded, clipped to the levels)
and PSNR is taken on DN divided by the next power of two above the white level (1024 for
10-bit RAW, the scorer's divisor), one value per pair (crop), then averaged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rgb2raw import metrics
from rgb2raw.calibrate.core import ShadingFit
from rgb2raw.calibrate.fit import InverseFit
from rgb2raw.inverse import InverseParams
from rgb2raw.shading import FrameBox, RadialShading


def score_scale(white: float) -> float:
    """The divisor of DN for scores: 1024 for 10-bit data, 4096 for 12-bit, ..."""
    return float(2 ** math.ceil(math.log2(max(white, 1.0) + 1.0)))


def predict_dn(params: InverseParams, rgb01: np.ndarray, *,
               shading: RadialShading | None = None, box: FrameBox | None = None) -> np.ndarray:
    """The RAW `rgb2raw infer` writes for this picture, as float DN (rounded, clipped); with
    `shading`, multiplied in by frame position `box` (None: the picture is the frame) after
    the pixel-wise model, as the engine does."""
    values = params.apply(rgb01)
    if shading is not None:
        values = shading.apply(values, box)
    span = params.white_level - params.black_level
    dn = np.rint(params.black_level + values.astype(np.float64) * span)
    return np.clip(dn, params.black_level, params.white_level)


@dataclass(frozen=True)
class Scored:
    """A pair to score: picture on the RAW's grid, RAW DN, valid mask (None: all), and where
    the pair sits in its frame (None: it is its own frame)."""

    name: str
    picture: np.ndarray
    raw: np.ndarray
    mask: np.ndarray | None
    box: FrameBox | None = None


@dataclass(frozen=True)
class PairScore:
    name: str
    psnr: float
    ssim: float | None  # None where the pair is only partly valid (warped onto the RAW)


def score_pairs(params: InverseParams, pairs: Sequence[Scored], scale: float, *,
                shading: RadialShading | None = None) -> list[PairScore]:
    """Per-pair PSNR (and SSIM where the whole pair is valid) of `params` (with `shading`);
    pixels outside a pair's mask do not count."""
    scores = []
    for pair in pairs:
        name, picture, raw, mask = pair.name, pair.picture, pair.raw, pair.mask
        pred = predict_dn(params, picture, shading=shading, box=pair.box) / scale
        truth = raw.astype(np.float64) / scale
        if mask is None or mask.all():
            psnr = metrics.psnr(pred, truth)
            ssim: float | None = metrics.ssim(pred, truth) if min(raw.shape[:2]) > 10 else None
        elif mask.any():
            psnr = metrics.psnr(pred[mask], truth[mask])
            ssim = None
        else:
            continue
        scores.append(PairScore(name, psnr, ssim))
    return scores


def mean_score(scores: Sequence[PairScore]) -> dict[str, Any]:
    psnrs = [s.psnr for s in scores]
    ssims = [s.ssim for s in scores if s.ssim is not None]
    return {"pairs": len(scores), "psnr": round(float(np.mean(psnrs)), 4) if psnrs else None,
            "ssim": round(float(np.mean(ssims)), 4) if ssims else None}


def gain_summary(fit: InverseFit) -> dict[str, Any]:
    """Exposure and white balance over the pairs: per-pair values, typical value and spread.

    Exposure is the green gain (RAW green per linear picture green, in [0, 1] units of the
    black-to-white span); white balance the forward gains green/red and green/blue, as a
    camera's AsShotNeutral inverted. The illuminant locus is the principal direction of the
    pairs' (log R/G, log B/G) white-balance points.
    """
    seen = np.all(np.isfinite(fit.unit_gains), axis=1) & np.all(fit.unit_gains > 0, axis=1)
    gains = fit.unit_gains[seen]
    if gains.size == 0:
        return {"pairs": 0}
    exposure = gains[:, 1]
    wb_red, wb_blue = gains[:, 1] / gains[:, 0], gains[:, 1] / gains[:, 2]
    log_ev = np.log2(exposure)
    locus: dict[str, Any] = {}
    if gains.shape[0] >= 3:
        points = np.stack([np.log(wb_red), np.log(wb_blue)], axis=1)
        centred = points - points.mean(axis=0)
        _, spread, directions = np.linalg.svd(centred, full_matrices=False)
        locus = {"direction_log_r_log_b": np.round(directions[0], 4).tolist(),
                 "spread_along": round(float(spread[0] / math.sqrt(len(points))), 4),
                 "spread_across": round(float(spread[-1] / math.sqrt(len(points))), 4)}

    def stats(values: np.ndarray) -> dict[str, float]:
        return {"median": round(float(np.median(values)), 5),
                "p10": round(float(np.percentile(values, 10)), 5),
                "p90": round(float(np.percentile(values, 90)), 5)}

    typical = fit.params.gains
    return {
        "pairs": int(gains.shape[0]),
        "exposure": {**stats(exposure), "typical": round(float(typical[1]), 5),
                     "spread_ev": round(float(np.std(log_ev)), 4)},
        "wb_gains_r_b": {"red": stats(wb_red), "blue": stats(wb_blue),
                         "typical": [round(float(typical[1] / typical[0]), 5),
                                     round(float(typical[1] / typical[2]), 5)]},
        "illuminant_locus": locus,
        "per_pair": np.round(gains, 5).tolist(),
    }


def table_summary(fit: InverseFit, points: int = 9) -> dict[str, Any]:
    """The tone tables at a few levels, and the level range each channel's data covered."""
    levels = np.linspace(0.0, 1.0, points)
    covered = []
    for j in range(3):
        seen = np.flatnonzero(fit.knot_counts[j] >= 1.0)
        covered.append([round(float(fit.knots[seen.min()]), 4), round(float(fit.knots[seen.max()]), 4)]
                       if seen.size else None)
    return {"levels": np.round(levels, 4).tolist(),
            "linear": [np.round(np.interp(levels, fit.knots, fit.knot_values[j]), 5).tolist()
                       for j in range(3)],
            "data_range": covered}


def format_params(params: InverseParams) -> list[str]:
    """One line per fitted parameter, for stdout."""
    m = params.matrix
    wb = params.gains[1] / params.gains
    return [
        f"levels        black {params.black_level:.2f}  white {params.white_level:.2f} DN",
        f"gains         R {params.gains[0]:.4f}  G {params.gains[1]:.4f}  B {params.gains[2]:.4f}"
        f"  (exposure {params.gains[1]:.4f} = {math.log2(params.gains[1]):+.2f} EV; "
        f"white balance R {wb[0]:.3f} B {wb[2]:.3f})",
        f"highlights    R {params.highlight_gains[0]:.4f}  G {params.highlight_gains[1]:.4f}  "
        f"B {params.highlight_gains[2]:.4f}  above knee {params.knee:.2f}",
        *(f"matrix row {c}  {m[c, 0]:+.4f} {m[c, 1]:+.4f} {m[c, 2]:+.4f}" for c in range(3)),
        "tone table    " + "  ".join(
            f"{name} " + " ".join(f"{params.tables[j][int(round(x * 65535))]:.3f}"
                                  for x in (0.25, 0.5, 0.75))
            for j, name in enumerate("RGB")) + "  (linear at 1/4, 1/2, 3/4)",
    ]


def summary_lines(params: InverseParams, fit_report: dict[str, Any], before: dict[str, Any],
                   after: dict[str, Any], after_shaded: dict[str, Any] | None,
                   use_shading: bool, score_set: str, shading: ShadingFit | None) -> list[str]:
    """What `rgb2raw calibrate` prints: the scores, then every fitted parameter."""
    def score(s: dict[str, Any]) -> str:
        ssim = "" if s["ssim"] is None else f"  SSIM {s['ssim']:.4f}"
        return "n/a" if s["psnr"] is None else f"PSNR {s['psnr']:.2f} dB{ssim}"

    gains = fit_report["exposure_white_balance"]
    lines = [f"score on {score_set}, {before['pairs']} pairs:",
             f"  before ({fit_report['score']['before_model']}): {score(before)}",
             f"  after  (calibrated): {score(after)}",
             *([f"  after, with lens shading: {score(after_shaded)}"
                + ("  (kept in the model)" if use_shading else "  (not kept: no gain)")]
               if after_shaded is not None else []),
             "fitted:"]
    lines += ["  " + line for line in format_params(params)]
    if gains.get("pairs"):
        exposure = gains["exposure"]
        lines.append(f"  exposure over {gains['pairs']} units: median {exposure['median']:.4f}, "
                     f"10-90 % {exposure['p10']:.4f}-{exposure['p90']:.4f}, spread "
                     f"{exposure['spread_ev']:.3f} EV")
        wb = gains["wb_gains_r_b"]
        lines.append(f"  white balance R {wb['red']['median']:.3f} "
                     f"({wb['red']['p10']:.3f}-{wb['red']['p90']:.3f}), B {wb['blue']['median']:.3f} "
                     f"({wb['blue']['p10']:.3f}-{wb['blue']['p90']:.3f})")
    moved = [u for u in fit_report["units"] if not u["alignment"]["aligned"]]
    lines.append(f"  alignment: {len(fit_report['units']) - len(moved)} of "
                 f"{len(fit_report['units'])} units aligned as given" +
                 (f"; others scaled {min(u['alignment']['scale'] for u in moved):.4f}-"
                  f"{max(u['alignment']['scale'] for u in moved):.4f}" if moved else ""))
    if shading is not None:
        corner = ", ".join(f"{c:.3f}" for c in (shading.corner / shading.centre)[[0, 1, 3]])
        where = ("in the model card, applied by frame position" if use_shading
                 else "measured, not in the model")
        lines.append(f"  lens shading ({where}): corner/centre gain R, G, B {corner} over "
                     f"{shading.frames} frames; RAW/prediction RMS {shading.rms_before:.4f} -> "
                     f"{shading.rms_after:.4f}")
    else:
        lines.append("  lens shading: not measured (no whole frames)")
    return lines


__all__ = ["PairScore", "Scored", "format_params", "gain_summary", "mean_score", "predict_dn",
           "score_pairs", "score_scale", "summary_lines", "table_summary"]
