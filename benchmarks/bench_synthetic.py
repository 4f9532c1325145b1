"""Held-out synthetic reverse-ISP benchmark, per camera: naive mosaic vs parametric vs trained.

Photos never used for training go through the camera simulation of `rgb2raw.train.simulate`
(randomised unprocessing, sensor noise, forward ISP with demosaicing, JPEG) with a fixed seed,
giving (JPEG, RAW) pairs whose RAW is known exactly. Every method sees only the JPEG and is
scored like a challenge submission (DN rounded, clipped to [0, 1024], divided by 1024) with
`rgb2raw.metrics` (the official PSNR/SSIM semantics). ``--regime`` (repeatable) picks the
simulation ranges by name from `rgb2raw.train.simulate.REGIMES`: ``default`` (the training
ranges of `rgb2raw train --synthetic`), ``parametric`` (exactly the parametric inverse ISP's
assumptions: no tone or exposure change, the camera's daylight white balance, ISO 50) and
``harsh`` (JPEG quality 60-80, ISO 200-1600, milder tone/white-balance/exposure spread).
Methods:

- ``naive``: the JPEG sampled onto the RGGB grid as [0, 1] of 1024 (the sample submission);
- ``parametric``: the camera's bundled offline default (``parametric-<camera>``, via the same
  engine as `rgb2raw infer`);
- every ``--model LABEL=PATH``: a trained run folder (its ``model.onnx`` + ``model.json``
  levels), an ``.onnx`` file (challenge units), or a zoo model name.

Photos: ``--photos DIR``, or by default the held-out part of scikit-image's CC0/public-domain
sample photos (``pip install scikit-image``; used by this benchmark and the training recipe
only, never by rgb2raw itself). ``--write-photos DIR --split train`` writes the training part
for `rgb2raw train --synthetic DIR`.

    python benchmarks/bench_synthetic.py --regime default --regime parametric --regime harsh \
        --model learned=runs/learned-{camera}
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rgb2raw import bayer, metrics
from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import get_camera
from rgb2raw.train.data import Levels, SyntheticDataset, load_photo
from rgb2raw.train.simulate import REGIMES

RESULTS = Path(__file__).resolve().parent / "results"
# scikit-image sample photos (licences from their docstrings: public domain or CC0). The test
# photos are never used for training; the stereo motorcycle pair is left out (no licence given).
SKIMAGE_SPLITS = {
    "train": ("astronaut", "hubble_deep_field", "immunohistochemistry", "retina"),
    "test": ("chelsea", "coffee", "rocket"),
}
BENCH_SEED = 20220  # fixed: the benchmark pairs are the same on every run
SCORER_WHITE = 1024.0


def skimage_photos(split: str) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) of the scikit-image sample photos of `split`."""
    try:
        import skimage.data
    except ImportError:
        sys.exit("scikit-image is needed for the default photos: pip install scikit-image "
                 "(or pass --photos DIR)")
    return [(name, np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]))
            for name in SKIMAGE_SPLITS[split]]


def write_photos(folder: Path, split: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rgb in skimage_photos(split):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        print(folder / f"{name}.png")


def load_photos(photos_dir: Path | None, crop: int, max_side: int) -> list[tuple[str, np.ndarray]]:
    if photos_dir is None:
        photos = skimage_photos("test")
        return [(name, _shrink(rgb, max_side)) for name, rgb in photos]
    paths = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return [(p.stem, load_photo(p, max_side=max_side, min_side=crop)) for p in paths]


def _shrink(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The same area-filtered shrink `rgb2raw train --synthetic` applies to its photos."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (int(width * scale) & ~1, int(height * scale) & ~1)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb[: rgb.shape[0] & ~1, : rgb.shape[1] & ~1]


def make_pairs(photos: list[tuple[str, np.ndarray]], camera_name: str, per_photo: int,
               crop: int, regime: str = "default") -> list[tuple[np.ndarray, np.ndarray]]:
    """The fixed (JPEG uint8, RAW DN) benchmark pairs for one camera and simulation regime."""
    camera = get_camera(camera_name)
    images = [rgb for _, rgb in photos]
    dataset = SyntheticDataset(images, camera, Levels(0.0, SCORER_WHITE), crop=crop,
                               length=per_photo * len(images), seed=BENCH_SEED, fixed=True,
                               ranges=REGIMES[regime])
    return [dataset.make_pair(index) for index in range(len(dataset))]


def _scorer_units(dn: np.ndarray) -> np.ndarray:
    return (np.clip(np.rint(dn), 0, SCORER_WHITE) / SCORER_WHITE).astype(np.float32)


def naive_method(jpeg: np.ndarray) -> np.ndarray:
    return bayer.mosaic_rgb(jpeg.astype(np.float32) / 255.0) * np.float32(SCORER_WHITE)


def engine_method(model: str, camera: str) -> Any:
    """A function JPEG -> DN running `model` through rgb2raw's inference engine."""
    from rgb2raw.pipeline import RunSettings, infer_image, load_model

    # A training run folder loads through its card (its levels), like a zoo name.
    loaded = load_model(model, camera=camera)
    settings = RunSettings(tile=-1)

    def run(jpeg: np.ndarray) -> np.ndarray:
        return infer_image(jpeg.astype(np.float32) / 255.0, loaded, settings).astype(np.float32)

    return run


def score(method: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    psnrs, ssims = [], []
    started = time.perf_counter()
    for jpeg, raw_dn in pairs:
        prediction = _scorer_units(method(jpeg))
        reference = _scorer_units(raw_dn)
        psnrs.append(metrics.psnr(prediction, reference))
        ssims.append(metrics.ssim(prediction, reference))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
            "pairs": len(pairs), "seconds": time.perf_counter() - started}


def machine_info() -> dict[str, Any]:
    import onnxruntime

    return {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "opencv": cv2.__version__,
            "onnxruntime": onnxruntime.__version__}


def markdown_table(record: dict[str, Any]) -> str:
    """PSNR / SSIM of every method, one row per regime and camera (the record's results)."""
    results = record["results"]
    labels: list[str] = []
    for cameras in results.values():
        for rows in cameras.values():
            labels += [label for label in rows if label not in labels]
    lines = [f"# {record['benchmark']}", "",
             f"Photos: {record['photos']}; {record['pairs_per_photo']} pairs per photo, "
             f"{record['crop']}-pixel crops, seed {record['seed']}; {record['date']}. "
             "Cells: PSNR dB / SSIM (challenge scoring).", "",
             "| regime | camera | " + " | ".join(labels) + " |",
             "|---|---|" + "---|" * len(labels)]
    for regime, cameras in results.items():
        for camera, rows in cameras.items():
            cells = [f"{rows[label]['psnr']:.2f} / {rows[label]['ssim']:.4f}" if label in rows
                     else "" for label in labels]
            lines.append(f"| {regime} | {camera} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camera", action="append", choices=("s7", "p20", "generic"))
    parser.add_argument("--regime", action="append", choices=tuple(REGIMES),
                        help="simulation regime (repeatable; default: default)")
    parser.add_argument("--photos", type=Path, help="held-out photos (default: scikit-image test split)")
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=PATH",
                        help="a trained run folder, .onnx file or zoo name (repeatable); "
                             "{camera} in PATH is replaced by each camera's name")
    parser.add_argument("--pairs-per-photo", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--max-photo-side", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=RESULTS / "synthetic.json")
    parser.add_argument("--no-record", action="store_true", help="print only (else write --out "
                        "and a markdown table next to it)")
    parser.add_argument("--write-photos", type=Path, help="write the scikit-image photos of "
                        "--split to this folder and exit")
    parser.add_argument("--split", choices=tuple(SKIMAGE_SPLITS), default="train")
    args = parser.parse_args(argv)
    if args.write_photos is not None:
        write_photos(args.write_photos, args.split)
        return 0
    cameras = args.camera or ["s7", "p20"]
    regimes = args.regime or ["default"]
    photos = load_photos(args.photos, args.crop, args.max_photo_side)
    results: dict[str, Any] = {regime: {} for regime in regimes}
    for camera in cameras:
        methods: dict[str, Any] = {"naive": naive_method,
                                   "parametric": engine_method(f"parametric-{camera}", camera)}
        for spec in args.model:
            label, _, path = spec.partition("=")
            methods[label] = engine_method(path.replace("{camera}", camera), camera)
        for regime in regimes:
            pairs = make_pairs(photos, camera, args.pairs_per_photo, args.crop, regime)
            rows = results[regime][camera] = {}
            for label, method in methods.items():
                row = rows[label] = score(method, pairs)
                print(f"{regime:10s} {camera:5s} {label:18s} PSNR {row['psnr']:7.3f} dB  "
                      f"SSIM {row['ssim']:.4f}  ({row['pairs']} pairs, {row['seconds']:.1f} s)",
                      flush=True)
    record = {
        "benchmark": "synthetic held-out reverse ISP",
        "photos": str(args.photos) if args.photos else "scikit-image: " + ", ".join(SKIMAGE_SPLITS["test"]),
        "pairs_per_photo": args.pairs_per_photo, "crop": args.crop, "seed": BENCH_SEED,
        "regimes": {regime: dataclasses.asdict(REGIMES[regime]) for regime in regimes},
        "models": args.model, "results": results, "machine": machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if not args.no_record:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(args.out) as handle:
            handle.write((json.dumps(record, indent=2) + "\n").encode("utf-8"))
        table = args.out.with_suffix(".md")
        with atomic_write(table) as handle:
            handle.write(markdown_table(record).encode("utf-8"))
        print(f"recorded in {args.out} and {table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
