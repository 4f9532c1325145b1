"""`calibrate(DATA, OUT, ...)`: fit a camera from a folder of pairs and write a run folder.

The run folder is a model `rgb2raw infer --model OUT` runs like a bundled one:

* ``model.onnx`` - the fitted `InverseParams` as the pixel-wise graph
  (`rgb2raw.nets.parametric_graph.build_graph`);
* ``model.json`` - its card (`rgb2raw.zoo` format: context 0, tiles, the fitted levels);
* ``params.npz`` - the fitted `InverseParams` (`InverseParams.load`);
* ``fit.json`` - what was fitted and how well: levels, per-pair gains (the exposure and white
  balance distributions), tables, matrix, alignment of every unit, lens shading, and the PSNR
  on held-out scenes before (the base camera's formula) and after.

Scores are honest about what they saw: the model scored on held-out scenes is fitted without
them (the shipped model is then refitted on every scene); with one scene only, the score is
on the fitting data and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rgb2raw._atomic import TEMP_PREFIX, atomic_write
from rgb2raw.calibrate import align, data, report
from rgb2raw.calibrate.core import (
    DEFAULT_BUDGET,
    ShadingFit,
    TopStats,
    deshade,
    fit_shading,
    frame_radius,
    white_level,
)
from rgb2raw.calibrate.fit import FitOptions, InverseFit, Progress, fit_samples
from rgb2raw.calibrate.samples import Samples, concat, site_samples
from rgb2raw.cameras import get_camera
from rgb2raw.errors import OutputExists, Rgb2RawError
from rgb2raw.inverse import InverseParams
from rgb2raw.shading import RadialShading
from rgb2raw.stitch import crop_box

ONNX_NAME = "model.onnx"
CARD_NAME = "model.json"
PARAMS_NAME = "params.npz"
REPORT_NAME = "fit.json"
#: Share of scenes held out for the before/after score (at least one of two or more).
HOLDOUT_SHARE = 0.25
#: At most this many held-out pairs are kept in memory and scored.
MAX_SCORED_PAIRS = 96
#: At most this many whole frames are kept for the lens-shading fit.
MAX_SHADING_FRAMES = 2
#: Peak graph memory per RGB pixel, as the bundled parametric models declare (same graph).
BYTES_PER_PIXEL = 48

#: Called with (stage, done, total).
StageProgress = Callable[[str, int, int], None]


@dataclass
class _UnitData:
    scene: str
    samples: Samples
    alignment: align.Alignment
    top: TopStats
    black: float | None
    white: float | None
    crops: list[str]
    # Kept only for held-out scoring / shading: (name, picture, raw, mask) per crop, and the
    # whole frame (picture, raw, mask).
    scored: list[report.Scored] = field(default_factory=list)
    frame: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


@dataclass
class CalibrationResult:
    out: Path
    params: InverseParams
    report: dict[str, Any]
    lines: list[str]


#: Lens shading enters the model only if it raises the score by more than this.
SHADING_MIN_GAIN_DB = 0.05


@dataclass
class _Fitted:
    """A fit without lens shading (`plain`), the shading measured against it
    (`first_shading`), and, when frames show shading, the refit with the fall-off divided
    out of the RAW (`shaded`) and the shading measured against that (`shading`)."""

    plain: InverseFit
    first_shading: ShadingFit | None = None
    shaded: InverseFit | None = None
    shading: ShadingFit | None = None


def _frames_shading(selected: Sequence[_UnitData], fit: InverseFit) -> ShadingFit | None:
    frames = [(i, u.frame) for i, u in enumerate(selected) if u.frame is not None]
    if not frames:
        return None
    return fit_shading([f[0] for _, f in frames], [f[1] for _, f in frames],
                       [f[2] for _, f in frames], fit.params,
                       [fit.unit_gains[i] for i, _ in frames])


def _fit_units(selected: Sequence[_UnitData], base: InverseParams, black: float | None,
               white: float, options: FitOptions | None, step: Progress) -> _Fitted:
    samples = _relabel([u.samples for u in selected])
    plain = fit_samples(samples, len(selected), base=base, black=black, white=white,
                        options=options, progress=step)
    first = _frames_shading(selected, plain)
    if first is None:
        return _Fitted(plain)
    flat = deshade(samples, first.normalised, plain.params.black_level)
    shaded = fit_samples(flat, len(selected), base=base, black=black, white=white,
                         options=options, progress=step)
    return _Fitted(plain, first, shaded, _frames_shading(selected, shaded))


def split_scenes(scenes: Sequence[str], share: float, seed: int) -> set[str]:
    """The held-out scenes: a seeded choice of ``round(share * n)``, at least one of two or
    more scenes and never all of them."""
    ordered = sorted(set(scenes))
    if len(ordered) < 2 or share <= 0:
        return set()
    count = min(max(int(round(share * len(ordered))), 1), len(ordered) - 1)
    order = np.random.default_rng(seed).permutation(len(ordered))
    return {ordered[i] for i in order[:count]}


def _relabel(samples: Sequence[Samples]) -> Samples:
    return concat([replace(part, unit=np.full(len(part), index, np.int32))
                   for index, part in enumerate(samples)])


def _white(units: Sequence[_UnitData], default: float) -> float:
    known = [u.white for u in units if u.white is not None]
    if known:
        return float(np.median(known))
    return white_level([u.top for u in units], default)


def _black(units: Sequence[_UnitData]) -> float | None:
    known = [u.black for u in units if u.black is not None]
    return float(np.median(known)) if known and len(known) == len(units) else None


def write_card(out: Path, params: InverseParams, *, camera_name: str, base: str,
               reported: dict[str, Any] | None, pairs: int,
               shading: RadialShading | None = None) -> Path:
    """The run's model card, through the one card writer (`rgb2raw.zoo.cards.write_card`).

    A pixel-wise graph: context 0 and tiles (not the whole frame), like the bundled
    parametric models; the output levels are the fitted ones, and `shading` (if any) is the
    lens fall-off the engine multiplies in by frame position.
    """
    from rgb2raw.zoo.cards import ModelCard, Reported, file_entry
    from rgb2raw.zoo.cards import write_card as write_model_card

    card = ModelCard(
        name=Path(CARD_NAME).stem, camera=base, arch="parametric",
        description=(f"pixel-wise inverse ISP of camera {camera_name!r} fitted by `rgb2raw "
                     f"calibrate` on {pairs} RAW + picture pairs (base profile {base}): "
                     "per-channel tone tables, colour matrix, typical exposure and white "
                     "balance, highlight gains, fitted levels"),
        files=(file_entry(out / ONNX_NAME, "onnx"),),
        size_multiple=2, full_frame=False, context=0, bytes_per_pixel=BYTES_PER_PIXEL,
        black_level=params.black_level, white_level=params.white_level,
        source="local calibration run (rgb2raw calibrate)",
        shading=None if shading is None else shading.to_dict(),
        reported=None if reported is None else Reported(str(reported["set"]),
                                                        float(reported["psnr"]),
                                                        float(reported["ssim"])))
    return write_model_card(out / CARD_NAME, card)


def _read_units(plan: Sequence[Sequence[data.PairFiles]], grid: tuple[int, int],
                crop_side: int, score_scenes: set[str], budget: int, seed: int,
                progress: StageProgress | None) -> list[_UnitData]:
    rng = np.random.default_rng(seed)
    share = max(1, budget // max(1, len(plan)))
    units: list[_UnitData] = []
    scored = frames = 0
    for index, members in enumerate(plan):
        if progress is not None:
            progress("reading and aligning", index, len(plan))
        unit = data.read_unit(members, grid if len(members) > 1 else None)
        # Alignment works on log green above black; before the fit, the darkest RAW values
        # stand in for an unknown black level (log is not invariant to an offset).
        black = unit.black if unit.black is not None else float(
            np.percentile(unit.raw[..., 1:3], 0.1))
        white = unit.white if unit.white is not None else float(unit.raw.max())
        alignment = align.estimate(unit.rgb, unit.raw, black, white)
        picture, mask = align.warp_picture(unit.rgb, alignment)
        record = _UnitData(
            scene=unit.scene,
            samples=site_samples(picture, unit.raw, index, mask=mask, limit=share, rng=rng,
                                 radius=frame_radius(unit.raw.shape[:2]) if unit.is_frame
                                 else None),
            alignment=alignment, top=TopStats.of(unit.raw), black=unit.black, white=unit.white,
            crops=[name for name, _ in unit.crops])
        if unit.scene in score_scenes and scored < MAX_SCORED_PAIRS:
            height, width = unit.raw.shape[:2]
            for name, (rows, cols) in unit.crops:
                top, left = rows.start or 0, cols.start or 0
                bottom, right = rows.stop or height, cols.stop or width
                crop = unit.raw[top:bottom, left:right]
                # Where `rgb2raw infer` puts the crop in its frame for lens shading: a
                # pixel-wise model runs crops one by one, placed by name when their size is
                # the base camera's crop size (else each is its own frame); a whole photo
                # (DNG) is its frame.
                box = (None if len(unit.crops) == 1 and unit.is_frame
                       else crop_box(name, (2 * crop.shape[0], 2 * crop.shape[1]), grid,
                                     (crop_side, crop_side)))
                cut = mask[top:bottom, left:right]
                record.scored.append(report.Scored(
                    name, picture[2 * top:2 * bottom, 2 * left:2 * right].copy(), crop.copy(),
                    None if cut.all() else cut.copy(), box))
                scored += 1
        if unit.is_frame and frames < MAX_SHADING_FRAMES:
            record.frame = (picture, unit.raw, mask)
            frames += 1
        units.append(record)
    if progress is not None:
        progress("reading and aligning", len(plan), len(plan))
    return units


def calibrate(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
              camera_name: str, base: str = "generic", overwrite: bool = False,
              holdout: float = HOLDOUT_SHARE, budget: int = DEFAULT_BUDGET, seed: int = 0,
              options: FitOptions | None = None,
              progress: StageProgress | None = None) -> CalibrationResult:
    """Fit camera `camera_name` from the pairs in `source` and write the run folder `out`.

    `base` names the camera profile whose uncalibrated formula starts the fit and is the
    "before" score (its crop grid also says how crops make frames). Raises `Rgb2RawError`
    for bad data (no or too few pairs, sizes that do not match, nothing usable) and when `out`
    exists and `overwrite` is False; nothing is written then.
    """
    target = Path(out)
    if target.exists() and not overwrite:
        raise OutputExists(target)
    if target.exists() and not target.is_dir():
        raise Rgb2RawError(target, "exists and is not a folder")
    profile = get_camera(base)
    base_params = InverseParams.from_camera(profile)
    pairs = data.find_pair_files(source)
    plan = data.plan_units(pairs, profile.crop_grid)
    held_out = split_scenes([p.scene for p in pairs], holdout, seed)
    # With nothing held out, the fitting data itself is scored (and the report says so).
    score_scenes = held_out or {p.scene for p in pairs}
    units = _read_units(plan, profile.crop_grid, profile.rgb_crop, score_scenes, budget, seed,
                        progress)
    white = _white(units, profile.white_level)
    black = _black(units)

    def fit(selected: Sequence[_UnitData], stage: str) -> _Fitted:
        def step(done: int, total: int) -> None:
            if progress is not None:
                progress(stage, done, total)
        return _fit_units(selected, base_params, black, white, options, step)

    scored = [pair for unit in units for pair in unit.scored]
    train_units = [u for u in units if u.scene not in held_out]
    final = fit(units, "fitting")
    if held_out:
        check = fit(train_units, "fitting without the held-out scenes")
        score_set = "held-out scenes (fitted without them)"
    else:
        check = final
        score_set = "the fitting data itself (one scene: nothing to hold out)"
    scale = report.score_scale(white)
    before = report.mean_score(report.score_pairs(base_params, scored, scale))
    after = report.mean_score(report.score_pairs(check.plain.params, scored, scale))
    after_shaded = None
    if check.shaded is not None and check.shading is not None:
        after_shaded = report.mean_score(report.score_pairs(
            check.shaded.params, scored, scale, shading=check.shading.shading))
    # Lens shading goes into the model only when it scores better on what was scored.
    use_shading = (after_shaded is not None and final.shaded is not None
                   and final.shading is not None and after["psnr"] is not None
                   and after_shaded["psnr"] is not None
                   and after_shaded["psnr"] > after["psnr"] + SHADING_MIN_GAIN_DB)
    chosen = final.shaded if use_shading and final.shaded is not None else final.plain
    shading = final.shading if use_shading else final.first_shading
    card_shading = final.shading.shading if use_shading and final.shading is not None else None
    params = replace(chosen.params, info={
        "kind": "calibrated", "camera": camera_name, "base": base, "pairs": len(pairs),
        "scenes": len({p.scene for p in pairs}),
        "shading": None if card_shading is None else card_shading.to_dict()})
    fit_report = {
        "camera": camera_name, "base": base, "source": str(source), "pairs": len(pairs),
        "units": [{"scene": u.scene, "pairs": len(u.crops), "alignment": u.alignment.to_dict()}
                  for u in units],
        "held_out_scenes": sorted(held_out),
        "score": {"set": score_set, "divisor": scale, "before": before, "after": after,
                  "after_with_shading": after_shaded, "shading_in_model": use_shading,
                  "before_model": f"uncalibrated formula of {base}"},
        "levels": {"black": params.black_level, "white": params.white_level,
                   "black_fitted": black is None},
        "gains": params.gains.tolist(), "highlight_gains": params.highlight_gains.tolist(),
        "knee": params.knee, "matrix": params.matrix.tolist(),
        "exposure_white_balance": report.gain_summary(chosen),
        "tone_tables": report.table_summary(chosen),
        "shading": shading.to_dict() if shading is not None else None,
        "fit": {"observations": chosen.observations, "rounds": len(chosen.rmse_history),
                "rmse_dn": chosen.rmse_history[-1] if chosen.rmse_history else None,
                "highlight_observations": chosen.highlight_observations},
    }
    shown = after_shaded if use_shading and after_shaded is not None else after
    reported = None
    if shown["psnr"] is not None and shown["ssim"] is not None:
        reported = {"set": f"rgb2raw calibrate: {score_set}", "psnr": shown["psnr"],
                    "ssim": shown["ssim"]}
    _write_run(target, params, fit_report, camera_name=camera_name, base=base,
               reported=reported, pairs=len(pairs), overwrite=overwrite, shading=card_shading)
    lines = report.summary_lines(params, fit_report, before, after, after_shaded, use_shading,
                           score_set, shading)
    return CalibrationResult(target, params, fit_report, lines)


def _write_run(target: Path, params: InverseParams, fit_report: dict[str, Any], *,
               camera_name: str, base: str, reported: dict[str, Any] | None, pairs: int,
               overwrite: bool, shading: RadialShading | None) -> None:
    """Write every file into a temporary folder beside `target`, then move it into place, so
    a failed run leaves no half-written run folder (and an overwritten one stays whole until
    the new one is complete)."""
    from rgb2raw.nets.parametric_graph import build_graph

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
    try:
        with atomic_write(staging / ONNX_NAME) as handle:
            handle.write(build_graph(params, f"calibrated-{camera_name}").SerializeToString())
        params.save(staging / PARAMS_NAME)
        with atomic_write(staging / REPORT_NAME) as handle:
            handle.write((json.dumps(fit_report, indent=2) + "\n").encode("utf-8"))
        write_card(staging, params, camera_name=camera_name, base=base, reported=reported,
                   pairs=pairs, shading=shading)
        os.chmod(staging, 0o777 & ~_umask())
        if target.exists():
            if not overwrite:
                raise OutputExists(target)
            old = target.parent / f"{TEMP_PREFIX}old-{target.name}"
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


__all__ = ["CARD_NAME", "CalibrationResult", "ONNX_NAME", "PARAMS_NAME", "REPORT_NAME",
           "calibrate", "split_scenes", "write_card"]
