"""One quality table: every offline model on the real phone figures and on held-out ISP families.

    python benchmarks/bench_quality.py [--photos ~/.cache/rgb2raw-photos/photos] \
        [--learned runs/learned-{camera}] [--family aces --family local] [--spread-ev 0.3]

Columns:
- **real S7 / real P20**: the two real JPEG + RAW figures, scored by the lead's module
  `benchmarks/real_pairs.py` (``score_model(camera, fn)``: 1/4 packed resolution, P20 aligned
  by one fixed affine transform for every model). When that module or ../shared is missing the
  cells say so (``n/a``) and the simulated columns are still written;
- **<camera> / <family>**: pairs simulated by `rgb2raw.train.isp_families` from the corpus's
  ``test`` photos (never used in training; `benchmarks/fetch_photos.py` writes them) through
  the families in `HELD_OUT_FAMILIES` (never simulated in training), with a fixed seed, scored
  like the challenge (DN rounded, clipped to [0, 1024], / 1024) at full packed resolution.
  The simulation is centred on the bundled ``calibrated-<camera>`` (its forward is the
  centre ISP, its lens shading the sensor's);
- **exposure spread** (a second table): the same test views through the centre ISP itself
  with every other spread at zero and only the RAW exposure drawn from N(0, ``--spread-ev``)
  around the calibrated level, once with a fixed ISP (the JPEG's brightness follows the
  exposure) and once with an auto-exposing one (the ISP's digital gain undoes it, so the JPEG
  does not show it).

Rows (each run as `rgb2raw infer` runs it, on whole images): ``naive`` (the JPEG sampled
onto the Bayer grid), ``formula`` (``parametric-<camera>``), ``calibrated``
(``calibrated-<camera>``, the simulation's centre), ``learned`` (``learned-<camera>`` from
models/, or ``--learned`` run folders), and every zoo
model that is already in the cache (``--zoo``, never downloaded here). Cells: PSNR dB / SSIM.
Writes ``benchmarks/results/quality.json`` and ``quality.md``, with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rgb2raw import bayer, metrics
from rgb2raw._atomic import atomic_write
from rgb2raw.train.isp_families import (
    FAMILIES,
    HELD_OUT_FAMILIES,
    REFERENCE_GREEN,
    IspFamily,
    SensorRanges,
    random_view,
    simulate,
)
from rgb2raw.train.learned_recipe import photo_entries

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT_PHOTOS = Path.home() / ".cache" / "rgb2raw-photos" / "photos"
BENCH_SEED = 90922  # fixed: the benchmark pairs are the same on every run
SCORER_WHITE = 1024.0
ZOO_CANDIDATES = ("mialgo-{camera}", "aim22-unet-{camera}")
# A method: JPEG RGB (H, W, 3) float32 [0, 1] -> packed RAW in DN (the real_pairs convention).
Method = Callable[[np.ndarray], np.ndarray]


def naive(rgb01: np.ndarray) -> np.ndarray:
    return bayer.mosaic_rgb(rgb01) * np.float32(1023.0)


def engine_method(model: str, camera: str) -> Method:
    """`model` (a zoo name, an .onnx file or a run folder with its card) through the engine,
    on the whole image at once (as full-frame models need)."""
    from rgb2raw.pipeline import RunSettings, infer_image, load_model

    loaded = load_model(model, camera=camera)
    settings = RunSettings(tile=-1)
    return lambda rgb01: infer_image(rgb01, loaded, settings).astype(np.float32)


def methods_for(camera: str, args: argparse.Namespace) -> dict[str, Method]:
    from rgb2raw import zoo

    methods: dict[str, Method] = {"naive": naive,
                                  "formula": engine_method(f"parametric-{camera}", camera)}
    names = {card.name for card in zoo.list_models()}
    if f"calibrated-{camera}" in names:
        methods["calibrated"] = engine_method(f"calibrated-{camera}", camera)
    for spec in args.learned:
        label, _, path = spec.rpartition("=")
        methods[label or "learned"] = engine_method(path.replace("{camera}", camera), camera)
    if not args.learned and f"learned-{camera}" in names:
        methods["learned"] = engine_method(f"learned-{camera}", camera)
    if args.zoo:
        for template in ZOO_CANDIDATES:
            name = template.format(camera=camera)
            if name in names and zoo.is_cached(name):
                methods[name.replace(f"-{camera}", "")] = engine_method(name, camera)
    return methods


def test_photos(photos_dir: Path) -> list[tuple[str, np.ndarray]]:
    found = []
    for entry in photo_entries(photos_dir, "test"):
        bgr = cv2.imread(str(photos_dir / entry["file"]), cv2.IMREAD_COLOR)
        found.append((entry["name"], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
    return found


def make_pairs(photos: list[tuple[str, np.ndarray]], camera: str, family: str, per_photo: int,
               size: tuple[int, int], sensor: SensorRanges | None = None,
               variant: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed (JPEG uint8, RAW DN) pairs of one camera and family (`sensor`: other
    priors; `variant` keeps their seeds apart)."""
    pairs = []
    ispf: IspFamily = FAMILIES[family]
    if sensor is not None:  # the spread tables: the centre ISP with nothing else drawn
        ispf = replace(ispf, sharpen=(0.0, 0.0), awb_adaptation=(1.0, 1.0), ae_error_ev=0.0)
    for index, (_, photo) in enumerate(photos):
        for view in range(per_photo):
            key = [BENCH_SEED, list(FAMILIES).index(family), list(REFERENCE_GREEN).index(camera),
                   index, view, variant]
            rng = np.random.default_rng(key)
            jpeg, raw_dn, _ = simulate(random_view(photo, rng, size), camera, ispf, rng, sensor)
            pairs.append((jpeg, raw_dn))
    return pairs


def spread_sensors(sigma_ev: float) -> dict[str, SensorRanges]:
    """The exposure-spread columns: only the RAW exposure varies, N(0, sigma) EV, no scene
    dependence; the ISP either keeps its gain (fixed) or undoes the exposure (auto)."""
    return {f"exposure {sigma_ev:g} EV, fixed ISP":
            SensorRanges.still(exposure_sigma_ev=sigma_ev, iso=(50.0, 200.0), ae_compensation=(0.0, 0.0)),
            f"exposure {sigma_ev:g} EV, auto-exposing ISP":
            SensorRanges.still(exposure_sigma_ev=sigma_ev, iso=(50.0, 200.0), ae_compensation=(1.0, 1.0))}


def _units(dn: np.ndarray) -> np.ndarray:
    return (np.clip(np.rint(dn), 0, SCORER_WHITE) / SCORER_WHITE).astype(np.float32)


def score_pairs(method: Method, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    psnrs, ssims = [], []
    for jpeg, raw_dn in pairs:
        prediction = _units(method(jpeg.astype(np.float32) / 255.0))
        psnrs.append(metrics.psnr(prediction, _units(raw_dn)))
        ssims.append(metrics.ssim(prediction, _units(raw_dn)))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "pairs": len(pairs)}


def real_scorer(folder: Path) -> tuple[Callable[[str, Method], tuple[float, float]] | None, str]:
    """The lead's real-figure scorer (``real_pairs.py`` in `folder`), or None and why not."""
    sys.path.insert(0, str(folder))
    try:
        import real_pairs  # type: ignore[import-not-found]
    except ImportError as exc:
        return None, f"benchmarks/real_pairs.py not importable ({exc})"
    for camera in ("s7", "p20"):
        try:
            real_pairs.load(camera)
        except (FileNotFoundError, OSError) as exc:
            return None, f"real figures not found ({exc})"
    return real_pairs.score_model, "benchmarks/real_pairs.py (1/4 packed resolution)"


def machine_info() -> dict[str, Any]:
    import onnxruntime

    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "load_average": load, "numpy": np.__version__, "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__}


def _table(columns: list[str], rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for label, cells in rows.items():
        text = []
        for column in columns:
            cell = cells.get(column)
            text.append("n/a" if cell is None else f"{cell['psnr']:.2f} / {cell['ssim']:.4f}")
        lines.append(f"| {label} | " + " | ".join(text) + " |")
    return lines


def markdown(record: dict[str, Any]) -> str:
    columns = record["columns"]
    rows = record["rows"]
    lines = ["# Quality: offline models on the real figures and on held-out ISP families", "",
             f"{record['date']}; machine: {record['machine']['processor']}, "
             f"{record['machine']['cpus']} CPUs, load {record['machine']['load_average']}. "
             "Cells: PSNR dB / SSIM.", "",
             f"- real columns: {record['real_source']}",
             f"- simulated columns: {record['pairs_per_photo']} views of "
             f"{record['view'][1]}x{record['view'][0]} px per test photo "
             f"({len(record['test_photos'])} photos: never trained on) through ISP families "
             "never simulated in training; challenge scoring at full packed resolution, seed "
             f"{record['seed']}",
             "- rows: " + "; ".join(f"`{k}`: {v}" for k, v in record["row_notes"].items()),
             "- the simulation is centred on `calibrated` (its forward is the centre ISP; every "
             "family is a perturbation of it), so a calibrated-like camera is what the "
             "simulated columns assume", ""]
    lines += _table(columns, rows)
    spread = record.get("spread_columns") or []
    if spread:
        lines += ["", "## Exposure spread around the calibrated centre", "",
                  "The same test views through the centre ISP itself (no other spread, ISO "
                  "50-200, JPEG 88-98); the RAW exposure ~ N(0, "
                  f"{record['spread_ev']:g}) EV around the calibrated level, independent of the "
                  "scene. Fixed ISP: the JPEG's brightness follows the exposure. Auto-exposing "
                  "ISP: its digital gain undoes the exposure, so the JPEG does not show it.", ""]
        lines += _table(spread, rows)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--camera", action="append", choices=tuple(REFERENCE_GREEN))
    parser.add_argument("--family", action="append", choices=tuple(FAMILIES),
                        help="simulated column (repeatable; default: the held-out families)")
    parser.add_argument("--learned", action="append", default=[], metavar="[LABEL=]PATH",
                        help="a learned run folder or model name; {camera} is replaced")
    parser.add_argument("--zoo", action="store_true", help="add zoo models already cached")
    parser.add_argument("--pairs-per-photo", type=int, default=3)
    parser.add_argument("--view", type=int, nargs=2, default=(384, 512), metavar=("H", "W"))
    parser.add_argument("--spread-ev", type=float, default=0.3,
                        help="sigma of the exposure-spread table (0: no such table)")
    parser.add_argument("--no-real", action="store_true")
    parser.add_argument("--real-pairs", type=Path, default=HERE, metavar="DIR",
                        help="folder holding real_pairs.py (default: this benchmarks folder); "
                             "RGB2RAW_SHARED says where ../shared is")
    parser.add_argument("--out", type=Path, default=RESULTS / "quality.json")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    cameras = args.camera or ["s7", "p20"]
    families = args.family or list(HELD_OUT_FAMILIES)
    if not (args.photos / "manifest.json").is_file():
        print(f"error: {args.photos}: no manifest.json (run benchmarks/fetch_photos.py)",
              file=sys.stderr)
        return 1
    photos = test_photos(args.photos)
    scorer, real_source = (None, "skipped (--no-real)") if args.no_real else real_scorer(args.real_pairs)
    columns: list[str] = [f"real {c.upper()}" for c in cameras]
    columns += [f"{c} / {f}" for c in cameras for f in families]
    sensors = spread_sensors(args.spread_ev) if args.spread_ev > 0 else {}
    spread_columns = [f"{c} / {name}" for c in cameras for name in sensors]
    rows: dict[str, dict[str, Any]] = {}
    for camera in cameras:
        methods = methods_for(camera, args)
        for label, method in methods.items():
            cells = rows.setdefault(label, {})
            if scorer is not None:
                started = time.perf_counter()
                p, s = scorer(camera, method)
                cells[f"real {camera.upper()}"] = {"psnr": p, "ssim": s}
                print(f"real {camera}: {label:12s} {p:6.2f} dB {s:.4f} "
                      f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
        for family in families:
            pairs = make_pairs(photos, camera, family, args.pairs_per_photo, tuple(args.view))
            for label, method in methods.items():
                cell = rows[label][f"{camera} / {family}"] = score_pairs(method, pairs)
                print(f"{camera}/{family}: {label:12s} {cell['psnr']:6.2f} dB "
                      f"{cell['ssim']:.4f}", file=sys.stderr, flush=True)
        for variant, (name, sensor) in enumerate(sensors.items(), start=1):
            pairs = make_pairs(photos, camera, "centre", args.pairs_per_photo, tuple(args.view),
                               sensor, variant)
            for label, method in methods.items():
                cell = rows[label][f"{camera} / {name}"] = score_pairs(method, pairs)
                print(f"{camera}/{name}: {label:12s} {cell['psnr']:6.2f} dB", file=sys.stderr,
                      flush=True)
    notes = {"naive": "JPEG sampled onto the Bayer grid", "formula": "parametric-<camera>",
             "calibrated": "calibrated-<camera> (models/; fitted on these same two figures, so "
                           "its real columns are in-sample); the simulation's centre",
             "learned": "learned-<camera> / --learned"}
    record = {
        "benchmark": "quality", "columns": columns, "rows": rows,
        "spread_columns": spread_columns, "spread_ev": args.spread_ev,
        "row_notes": {k: v for k, v in notes.items() if k in rows},
        "real_source": real_source, "families": families, "seed": BENCH_SEED,
        "pairs_per_photo": args.pairs_per_photo, "view": list(args.view),
        "test_photos": [name for name, _ in photos], "learned": args.learned,
        "machine": machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    text = markdown(record)
    print(text)
    if not args.no_record:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.out) as handle:
            handle.write((json.dumps(record, indent=2) + "\n").encode("utf-8"))
        with atomic_write(args.out.with_suffix(".md")) as handle:
            handle.write(text.encode("utf-8"))
        print(f"recorded in {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
