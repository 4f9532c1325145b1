"""Derive the bundled calibrated defaults from the two real phone figures, reproducibly.

    python benchmarks/fetch_photos.py                # once: the licensed photo cache
    python benchmarks/calibrate_defaults.py          # writes models/calibrated-*.npz, then
    python -m rgb2raw.nets.build_defaults            # builds their ONNX graphs and cards

The only real phone RAW in reach are the challenge README's two figures (`real_pairs.py`): one
S7 frame and one P20 frame. For each, `rgb2raw.calibrate.fit_arrays` (the fit behind
`rgb2raw calibrate`) fits the pixel-wise inverse ISP to the JPEG half against the RAW half on
the comparison grid (1/4 packed resolution), starting from the camera's uncalibrated formula;
the P20 RAW is first warped onto the JPEG by the figure's affine alignment. Lens shading is
fitted on the same frame as a radial gain and kept only when it improves the held-out half.

That figure-only fit is then combined with a prior over ISP tone curves (`tone_prior.py`):
textbook curves and both phones' real ones, each matched to this figure's exposure, mixed
with the figure counted `emphasis` times as much as each simulated family. The simulated
pixels count their levels as the real phone crops of `../shared/data/real-inputs` do
(`real_content.py`: only their level histogram is read; they have no RAW). The emphasis is
chosen by real data alone: each half-frame fit makes a default that is scored on the other
half, and the emphasis with the best mean wins. Every family is also held out of the prior in
turn and the default made without it is scored on its simulations, the estimate of what the
default does on an ISP it has never seen.

What one frame per camera can tell: the tone curve over the levels the scene contains, the
shot's white balance and exposure, the black level. What it cannot: how exposure and white
balance vary from shot to shot (the defaults use this shot's), local tone mapping of other
scenes, or colours the scene does not contain. So the honest score is not the fit's own:
each camera is also fitted on one half of the frame and scored on the other (left/right, then
top/bottom), and those held-out numbers go into the report beside the in-sample ones.

`generic` (photos of unknown phones) gets the mean of the two cameras' calibrations in linear
light, the generic profile's matrix and levels: no real frame stands behind it.

This script reads ../shared (the figures and the real crops) and the photo cache (never shipped, never needed by a test) and
writes models/calibrated-<camera>.npz (parameters and lens shading) plus
benchmarks/results/calibrated-defaults.{json,md}.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import real_content as rc  # noqa: E402
import real_pairs as rp  # noqa: E402
import tone_prior as tp  # noqa: E402

from rgb2raw.calibrate.core import fit_arrays, fit_shading  # noqa: E402
from rgb2raw.calibrate.fit import FitOptions  # noqa: E402
from rgb2raw.cameras import get_camera  # noqa: E402
from rgb2raw.inverse import InverseParams  # noqa: E402
from rgb2raw.metrics import psnr, ssim  # noqa: E402
from rgb2raw.nets.build_defaults import save_calibration  # noqa: E402
from rgb2raw.shading import RadialShading  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
RESULTS = ROOT / "benchmarks" / "results"
#: Black levels are facts, not fits: S7 challenge RAW has its pedestal removed (FORMAT.md);
#: the P20 DNG says BlackLevel 64 (CAMERAS.md; the figure's fitted pedestal is 65).
BLACK = {"s7": 0.0, "p20": 64.0}
WHITE = 1023.0
#: A coarse table (one knot per 8 levels): one frame holds too few pixels per level for more.
#: The colour matrix is held at the camera profile's (`matrix_prior`) and the three channels
#: share one tone curve (`channel_tie`), white balance being the per-channel gains: one scene
#: holds too few colours to pin a 3x3 matrix, and a free fit bends it into rows that mix
#: channels no sensor mixes (S7's red row drawn mostly from green), which hurts other scenes.
OPTIONS = FitOptions(knots=32, matrix_prior=1e3, channel_tie=1e3)
#: Weights of the real figure against each simulated family tried; `calibrate` keeps the one
#: whose defaults score best on held-out halves of the real frame.
EMPHASES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 1e4, 1e5)
#: Alternations of mixture and lens shading (`mixture_with_shading`).
SHADING_ROUNDS = 2
#: Columns (or rows) of the comparison grid between the fitting half and the scored half.
GAP = 8


def grids(figure: rp.Figure) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(picture on the grid, picture at 2x the grid, RAW planes in DN on the picture's grid,
    mask of usable grid pixels)."""
    raw = figure.raw_planes * rp.SCALE
    h, w = raw.shape[:2]
    picture = rp.reduce(figure.jpeg.astype(np.float64), 2 * rp.REDUCE)[:h, :w].astype(np.float32)
    picture2 = rp.reduce(figure.jpeg.astype(np.float64), rp.REDUCE)[: 2 * h, : 2 * w]
    valid = np.ones((h, w), bool)
    if figure.warp is not None:  # the RAW onto the JPEG's grid: the inverse of scoring's warp
        raw = cv2.warpAffine(raw.astype(np.float32), figure.warp, (w, h),
                             borderMode=cv2.BORDER_REPLICATE)
        valid = cv2.warpAffine(np.ones((h, w), np.float32), figure.warp, (w, h)) > 0.999
    m = rp.MARGIN
    valid[:m], valid[-m:], valid[:, :m], valid[:, -m:] = False, False, False, False
    return picture, picture2.astype(np.float32), raw.astype(np.float32), valid


def fit(camera: str, mask: np.ndarray | None = None) -> tuple[InverseParams, RadialShading | None,
                                                              dict[str, Any]]:
    """Fit one camera on the figure's pixels where `mask` (grid-sized) is True."""
    figure = rp.load(camera)
    picture, picture2, raw, valid = grids(figure)
    use = valid if mask is None else valid & mask
    base = InverseParams.from_camera(get_camera(camera))
    result = fit_arrays([picture], [raw], [use], base=base, black=BLACK[camera], white=WHITE,
                        options=OPTIONS)
    params = result.params
    planes4 = raw[..., [0, 1, 1, 2]]
    shading_fit = fit_shading([picture2], [planes4], [use], params, [params.gains])
    details = {"gains": params.gains.round(4).tolist(), "black": params.black_level,
               "rmse_dn": [round(x, 3) for x in result.rmse_history]}
    shading = None
    if shading_fit is not None:
        shading = shading_fit.shading
        details["shading_corner_gain"] = shading.gain(np.array(1.0)).round(3).tolist()
    details["highlight_observations"] = result.highlight_observations
    return params, shading, details


def predict_dn(params: InverseParams, shading: RadialShading | None, jpeg: np.ndarray) -> np.ndarray:
    """Packed RAW in DN as `rgb2raw infer` computes it for a whole frame."""
    v = params.apply(jpeg)
    if shading is not None:
        v = np.clip(shading.apply(v), 0.0, 1.0)
    return params.black_level + v * (params.white_level - params.black_level)


def region_scores(camera: str, params: InverseParams, shading: RadialShading | None,
                  region: np.ndarray | None) -> tuple[float, float]:
    """PSNR/SSIM on the figure's comparison grid, inside `region` (grid-sized) only."""
    figure = rp.load(camera)
    pred, raw = rp.aligned(figure, predict_dn(params, shading, figure.jpeg))
    if region is None:
        return psnr(pred, raw), ssim(pred, raw)
    m = rp.MARGIN
    inner = region[m:-m, m:-m]
    rows, cols = np.nonzero(inner)
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
    return psnr(pred[box], raw[box]), ssim(pred[box], raw[box])


def halves(shape: tuple[int, int]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, fitting mask, scored mask) for left/right and top/bottom splits with a gap."""
    h, w = shape
    out = []
    for axis, size in ((1, w), (0, h)):
        index = np.arange(size)
        first, second = index < size // 2 - GAP // 2, index >= size // 2 + GAP // 2
        for name, fit_part, score_part in (("a", first, second), ("b", second, first)):
            def grid(part: np.ndarray, axis: int = axis) -> np.ndarray:
                return np.broadcast_to(part[None, :] if axis == 1 else part[:, None], (h, w))

            label = ("left->right", "right->left", "top->bottom", "bottom->top")[
                (0 if axis == 1 else 2) + (0 if name == "a" else 1)]
            out.append((label, grid(fit_part).copy(), grid(score_part).copy()))
    return out


def figure_data(camera: str, shading: RadialShading | None,
                mask: np.ndarray | None = None) -> tp.FigureData:
    """The figure as `tone_prior` fits on it: grid picture, RAW (DN), usable mask, shading."""
    picture, _, raw, valid = grids(rp.load(camera))
    gain = (np.ones_like(raw) if shading is None
            else shading.gain_map(raw.shape[:2])[..., [0, 1, 3]].astype(np.float32))
    return tp.FigureData(picture, raw, valid if mask is None else valid & mask, gain)


Calibration = tuple[InverseParams, RadialShading | None, dict[str, Any]]


def mixture_with_shading(prior: tp.Prior, camera: str, params: InverseParams,
                         shading: RadialShading | None, mask: np.ndarray | None, emphasis: float,
                         real_tables: dict[str, np.ndarray] | None = None
                         ) -> tuple[InverseParams, RadialShading | None, dict[str, float]]:
    """The prior's default for the fit `params` on the figure (where `mask`), with the lens
    shading refitted for the default's own table (`SHADING_ROUNDS` alternations, ending with a
    shading fitted to the returned table). The shading of the figure-only fit belongs to that
    fit's table: under the mixture's, it left the P20's corners too dark (corner gains 0.20 /
    0.17 / 0.00 for R / G / B; refitted, 0.40 / 0.43 / 0.24) and cost 0.5 dB on the frame."""
    model, weights = prior.fit(params, figure_data(camera, shading, mask), emphasis, real_tables)
    if shading is None:
        return model, None, weights
    _, picture2, raw, valid = grids(rp.load(camera))
    use = valid if mask is None else valid & mask
    for round_ in range(SHADING_ROUNDS):
        refit = fit_shading([picture2], [raw[..., [0, 1, 1, 2]]], [use], model, [model.gains])
        if refit is None:
            break
        shading = refit.shading
        if round_ + 1 < SHADING_ROUNDS:
            model, weights = prior.fit(params, figure_data(camera, shading, mask), emphasis,
                                       real_tables)
    return model, shading, weights


def calibrate(camera: str, fitted: dict[str, Calibration], content: np.ndarray) -> Calibration:
    """Score `camera`'s figure-only fits on held-out halves, then make the default from the
    tone prior (module docstring). `fitted` holds every camera's whole-frame `fit`: each real
    curve joins the prior of every camera. `content` is the real phone crops' level shares
    (`real_content`), to which the simulated families are weighted."""
    figure = rp.load(camera)
    shape = figure.raw_planes.shape[:2]
    formula = InverseParams.from_camera(get_camera(camera))
    report: dict[str, Any] = {"camera": camera, "held_out": []}
    keep_shading = []
    split_fits = []
    for label, fit_mask, score_mask in halves(shape):
        params, shading, _ = fit(camera, fit_mask)
        before = region_scores(camera, formula, None, score_mask)
        plain = region_scores(camera, params, None, score_mask)
        shaded = region_scores(camera, params, shading, score_mask) if shading else plain
        keep_shading.append(shaded[0] - plain[0])
        split_fits.append((label, fit_mask, score_mask, params, shading))
        report["held_out"].append({"split": label, "formula": before, "calibrated": plain,
                                   "calibrated_with_shading": shaded})
        print(f"{camera} {label:12s} formula {before[0]:6.2f}  calibrated {plain[0]:6.2f}  "
              f"with shading {shaded[0]:6.2f} dB", file=sys.stderr, flush=True)
    params, shading, details = fitted[camera]
    use_shading = shading is not None and float(np.mean(keep_shading)) > 0.1
    report["shading_kept"] = bool(use_shading)
    report["shading_gain_held_out_db"] = round(float(np.mean(keep_shading)), 3)
    final_shading = shading if use_shading else None
    real = {tp.REAL_FAMILY.format(c): f[0].tables[1] for c, f in fitted.items()}
    whole = figure_data(camera, final_shading)
    prior = tp.Prior.build(camera, params, whole, real, content=content)
    own = tp.REAL_FAMILY.format(camera)

    # The figure's weight against the simulated families, chosen by real data alone: each
    # half-frame fit makes a default from the prior, scored on the other half.
    by_emphasis: dict[float, list[float]] = {e: [] for e in EMPHASES}
    figure_only = []
    for label, fit_mask, score_mask, half, half_shading in split_fits:
        half_shading = half_shading if use_shading else None
        data = figure_data(camera, half_shading, fit_mask)
        figure_only.append(region_scores(camera, tp.with_highlights(half, data), half_shading,
                                         score_mask)[0])
        for emphasis in EMPHASES:
            model, model_shading, _ = mixture_with_shading(
                prior, camera, half, half_shading, fit_mask, emphasis, {own: half.tables[1]})
            by_emphasis[emphasis].append(region_scores(camera, model, model_shading,
                                                       score_mask)[0])
        print(f"{camera} {label:12s} figure only {figure_only[-1]:6.2f}  with prior "
              + " ".join(f"{e:g}:{v[-1]:.2f}" for e, v in by_emphasis.items()),
              file=sys.stderr, flush=True)
    emphasis = max(EMPHASES, key=lambda e: float(np.mean(by_emphasis[e])))
    robust, robust_shading, weights = mixture_with_shading(prior, camera, params, final_shading,
                                                           None, emphasis)
    if robust_shading is not None:
        report["shading_corner_gain"] = robust_shading.gain(np.array(1.0)).round(3).tolist()
    report["prior"] = {
        "emphasis_held_out_db": {f"{e:g}": round(float(np.mean(v)), 3)
                                 for e, v in by_emphasis.items()},
        "figure_only_held_out_db": round(float(np.mean(figure_only)), 3),
        "emphasis": emphasis, "weights": {n: round(w, 4) for n, w in weights.items()},
        "families": held_out_families(prior, params, figure_data(camera, robust_shading),
                                      emphasis, formula),
    }
    report["in_sample"] = {"formula": region_scores(camera, formula, None, None),
                           "figure_only": region_scores(camera, params, final_shading, None),
                           "calibrated": region_scores(camera, robust, robust_shading, None)}
    report["fit"] = details
    info = {"kind": "calibrated", "camera": camera,
            "source": "benchmarks/calibrate_defaults.py on the AIM22 README figure, with the "
                      "tone prior of benchmarks/tone_prior.py",
            "black_level_source": "fact (FORMAT.md / CAMERAS.md), not fitted"}
    robust = InverseParams(**{**robust.__dict__, "info": info})
    return robust, robust_shading, report


def held_out_families(prior: tp.Prior, params: InverseParams, whole: tp.FigureData,
                      emphasis: float, formula: InverseParams) -> list[dict[str, Any]]:
    """Each family left out of the prior in turn; the default made without it, scored on its
    simulated test pairs, beside the formula, the figure-only fit and the family's own inverse
    (which knows the ISP but not each shot's exposure and white balance)."""
    rows = []
    figure_only = tp.with_highlights(params, whole)
    for name, pairs in prior.test.items():
        model, _ = prior.fit(params, whole, emphasis, exclude=name)
        row: dict[str, Any] = {"family": name}
        for key, content in (("", None), ("_real_content", prior.content)):
            row |= {f"formula{key}": tp.pair_psnr(formula, pairs, content),
                    f"figure_only{key}": tp.pair_psnr(figure_only, pairs, content),
                    f"calibrated_held_out{key}": tp.pair_psnr(model, pairs, content),
                    f"own_inverse{key}": tp.pair_psnr(prior.families[name], pairs, content)}
        rows.append({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()})
        print(f"{prior.camera} family {name:16s} " + " ".join(
            f"{k} {v:.2f}" for k, v in row.items() if k != "family"), file=sys.stderr, flush=True)
    return rows


def mean_calibration(s7: InverseParams, p20: InverseParams) -> InverseParams:
    """The generic camera: mean linear response of the two phones, generic matrix and levels."""
    generic = get_camera("generic")
    base = InverseParams.from_camera(generic)
    # Each camera's green response to a neutral input, as a curve of the encoded level.
    curves = [p.tables * p.gains[1] for p in (s7, p20)]
    tables = np.mean(curves, axis=0).astype(np.float32)
    shared = tables.mean(axis=0)
    # White balance: the generic profile's daylight gains, inverted, relative to green.
    gains = (base.gains / base.gains[1]).astype(np.float32)
    return InverseParams(tables=np.stack([shared] * 3), matrix=base.matrix, gains=gains,
                         highlight_gains=gains, knee=base.knee, black_level=0.0,
                         white_level=WHITE,
                         info={"kind": "calibrated", "camera": "generic",
                               "source": "mean of calibrated-s7 and calibrated-p20"})


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                       time.gmtime())}


def report_lines(results: dict[str, Any]) -> list[str]:
    """The markdown report: the figure-only fits on held-out halves, the emphasis choice, the
    in-sample scores, and every family held out of the prior."""
    lines = ["# Calibrated defaults from the real figures", "",
             "`python benchmarks/calibrate_defaults.py` (PSNR dB / SSIM at 1/4 packed "
             "resolution, values / 1024).", "", f"Fit options: {results['options']}.", "",
             "## Figure-only fits on held-out halves", "",
             "| camera | split (fit -> scored) | formula | figure-only fit | with shading |",
             "| --- | --- | --- | --- | --- |"]
    for camera, report in results["cameras"].items():
        for row in report["held_out"]:
            cells = [f"{row[k][0]:.2f} / {row[k][1]:.3f}"
                     for k in ("formula", "calibrated", "calibrated_with_shading")]
            lines.append(f"| {camera} | {row['split']} | " + " | ".join(cells) + " |")
    lines += ["", "## The tone prior: the real figure's weight, chosen on held-out halves", "",
              "Mean PSNR over the four held-out halves of each default made from a half "
              "(shading as kept; highlight gains by `tone_prior.with_highlights`).", ""]
    emphases = list(next(iter(results["cameras"].values()))["prior"]["emphasis_held_out_db"])
    lines += ["| camera | figure only | " + " | ".join(f"prior, weight {e}" for e in emphases)
              + " | chosen |", "|" + " --- |" * (len(emphases) + 3)]
    for camera, report in results["cameras"].items():
        prior = report["prior"]
        cells = [f"{prior['emphasis_held_out_db'][e]:.2f}" for e in emphases]
        lines.append(f"| {camera} | {prior['figure_only_held_out_db']:.2f} | "
                     + " | ".join(cells) + f" | {prior['emphasis']:g} |")
    lines += ["", "## Whole frame (in-sample: fitted on it)", "",
              "| camera | formula | figure-only fit | calibrated (shipped) | mixture weights |",
              "| --- | --- | --- | --- | --- |"]
    for camera, report in results["cameras"].items():
        ins, weights = report["in_sample"], report["prior"]["weights"]
        mixed = ", ".join(f"{n} {w:.2f}" for n, w in weights.items() if w >= 0.005)
        lines.append(f"| {camera} | " + " | ".join(f"{ins[k][0]:.2f} / {ins[k][1]:.3f}" for k in
                                                  ("formula", "figure_only", "calibrated"))
                     + f" | {mixed} |")
    keys = ("formula", "figure_only", "calibrated_held_out", "own_inverse")
    lines += ["", "## Simulated ISP families, each held out of the prior", "",
              "Each family's simulated test pairs (test photos, exposure spread "
              f"{tp.EXPOSURE_EV} EV, half fixed and half auto-exposing ISPs, ISO "
              f"{tp.ISO[0]:g}-{tp.ISO[1]:g}, JPEG {tp.JPEG_QUALITY[0]}-{tp.JPEG_QUALITY[1]}); "
              "`calibrated` is made without that family; `figure-only fit` is step 1 with the "
              "same highlight rule (`tone_prior.with_highlights`). `own inverse` knows the "
              "family but not each shot's exposure and white balance. PSNR dB, challenge "
              "scale (whole DN / 1024). Each cell is `photos' levels / real levels`: the "
              "first counts every pixel of the licensed photos alike; the second weights each "
              "pixel so that the levels count as in the real phone crops of "
              "`../shared/data/real-inputs` (`real_content.py`; the photos are about ten times "
              "as often near white), as the mixture itself is fitted.", "",
              "| camera | family | formula | figure-only fit | calibrated (family held out) "
              "| own inverse |", "| --- | --- | --- | --- | --- | --- |"]

    def cells(values: dict[str, float]) -> str:
        return " | ".join(f"{values[k]:.2f} / {values[k + '_real_content']:.2f}" for k in keys)

    for camera, report in results["cameras"].items():
        rows = report["prior"]["families"]
        for row in rows:
            lines.append(f"| {camera} | {row['family']} | {cells(row)} |")
        means = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "family"}
        lines.append(f"| {camera} | **mean** | {cells(means)} |")
    lines += ["", "Level shares of the real phone crops (band lower edge: share): "
              + ", ".join(f"{k} {v:.4f}" for k, v in results["real_content_shares"].items())
              + "."]
    lines += ["", f"Machine: {results['machine']}", ""]
    return lines


def main() -> int:
    global OPTIONS
    args = sys.argv[1:]
    dry = "--dry-run" in args  # report only, write no model files
    if "--free" in args:  # the unconstrained fit, for comparison
        OPTIONS = FitOptions(knots=32)
    results: dict[str, Any] = {"machine": machine(), "cameras": {}}
    fitted: dict[str, InverseParams] = {}
    figure_fits = {camera: fit(camera) for camera in ("s7", "p20")}
    content = rc.real_shares(rp.SHARED)
    results["real_content_shares"] = {f"{lo:.3f}": round(float(v), 5) for lo, v in
                                      zip(rc.EDGES[:-1], content, strict=True)}
    shadings: dict[str, RadialShading | None] = {}
    for camera in ("s7", "p20"):
        params, shading, report = calibrate(camera, figure_fits, content)
        fitted[camera], shadings[camera] = params, shading
        results["cameras"][camera] = report
    fitted["generic"] = mean_calibration(fitted["s7"], fitted["p20"])
    shadings["generic"] = None
    results["options"] = {"knots": OPTIONS.knots, "matrix_prior": OPTIONS.matrix_prior,
                          "channel_tie": OPTIONS.channel_tie}
    for camera, params in fitted.items():
        results.setdefault("matrices", {})[camera] = params.matrix.round(4).tolist()
        if not dry:
            print(save_calibration(MODELS / f"calibrated-{camera}.npz", params, shadings[camera]))
    stem = "calibrated-defaults" + ("-free" if "--free" in args else "") + ("-dry" if dry else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = report_lines(results)
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
