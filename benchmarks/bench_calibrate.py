"""Quality of `rgb2raw calibrate` on a synthetic challenge-layout set from a pipeline it does
not model exactly, against that pipeline's own typical settings and the uncalibrated formula.

    python benchmarks/bench_calibrate.py --work /tmp/calib-bench [--black 0] [--zoom 0] \
        [--results benchmarks/results/calibrate-synthetic.json]

Photos: scikit-image's sample photos (``pip install scikit-image``; BSD / public-domain
images shipped with the package). Each photo becomes one scene: a frame of 6x8 crops.

The pipeline (RAW -> JPEG), per scene:
  scene linear light (the photo through inverse sRGB) -> camera RGB (the S7 colour matrix,
  perturbed) -> the scene's illuminant (white balance drawn along a locus) and light level
  -> lens vignetting (corner 0.78) -> Bayer mosaic -> shot + read noise -> 10-bit DN with a
  black level;  ISP: black, vignetting corrected, white balance, the scene's digital gain
  (exposure drawn around a typical value, 0.35 EV spread), OpenCV EA demosaic, camera -> sRGB
  matrix, clip, sRGB gamma, a tanh S-curve (not Brooks' smoothstep), 8-bit, JPEG quality 92 4:2:0;
  optionally the ISP zooms the picture (P20-like crop/zoom) before the JPEG.

Rows measured on held-out scenes (never used by calibrate): the uncalibrated formula
(`infer --camera s7`), the pipeline's own inverse at its typical settings (the oracle a
pixel-wise model can reach), and `calibrate` -> `infer --model OUT`. Whole commands run in
fresh processes; PSNR is `rgb2raw score` (official semantics).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from rgb2raw import bayer, isp
from rgb2raw.cameras import S7
from rgb2raw.inverse import InverseParams, table_levels
from rgb2raw.stitch import split_frame

GRID = (6, 8)
#: RGB crop side: the S7's, so `rgb2raw infer` places lone crops in their frame (lens shading).
CROP = 504
TRAIN = ("astronaut", "coffee")
HELD_OUT = ("chelsea", "rocket")
TYPICAL_WB = np.array([2.05, 1.0, 1.55])
TYPICAL_EXPOSURE = 2.6  # digital gain of the ISP (x), i.e. the RAW is 1.38 EV darker
TONE_STRENGTH = 2.4
VIGNETTE = 0.22


def tone(x: np.ndarray) -> np.ndarray:
    half = np.tanh(TONE_STRENGTH / 2)
    return 0.5 + 0.5 * np.tanh(TONE_STRENGTH * (np.clip(x, 0, 1) - 0.5)) / half


def pipeline_matrix() -> np.ndarray:
    """Linear sRGB -> camera RGB of the simulated sensor (rows sum to one)."""
    m = np.asarray(S7.rgb_to_cam, np.float64) + np.array(
        [[0.03, -0.02, -0.01], [0.01, 0.02, -0.03], [-0.02, 0.04, -0.02]])
    return m / m.sum(axis=1, keepdims=True)


def oracle(black: float, wb: np.ndarray = TYPICAL_WB, exposure: float = TYPICAL_EXPOSURE
           ) -> InverseParams:
    """The pipeline's own pixel-wise inverse at its typical settings (or the given ones)."""
    levels = table_levels()
    grid = np.linspace(0, 1, 4097)
    forward = tone(isp.srgb_gamma(grid))
    table = np.interp(levels, forward, grid).astype(np.float32)
    gains = (1.0 / (np.asarray(wb) * exposure)).astype(np.float32)
    return InverseParams(tables=np.stack([table] * 3), matrix=pipeline_matrix().astype(np.float32),
                         gains=gains, highlight_gains=np.maximum(gains, 1.0).astype(np.float32),
                         black_level=black, white_level=1023.0)


def photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()[..., :3]
    height, width = GRID[0] * CROP, GRID[1] * CROP
    # Cover the frame (crop to its aspect ratio, then resize).
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    resized = cv2.resize(image, (int(np.ceil(w * scale)), int(np.ceil(h * scale))),
                         interpolation=cv2.INTER_CUBIC)
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top:top + height, left:left + width].astype(np.float32) / 255.0


def make_scene(name: str, rng: np.random.Generator, *, black: float, zoom: float
               ) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """(JPEG-ready uint8 RGB frame, packed uint16 RAW frame, its settings) of one scene."""
    linear = isp.inverse_srgb_gamma(photo(name)).astype(np.float64)
    camera = np.einsum("...c,dc->...d", linear, pipeline_matrix())
    t = rng.normal(0.0, 0.12)
    wb = TYPICAL_WB * np.exp(np.array([t, 0.0, -0.8 * t + rng.normal(0, 0.03)]))
    exposure = TYPICAL_EXPOSURE * 2.0 ** rng.normal(0.0, 0.35)
    light = rng.uniform(0.6, 1.1) / TYPICAL_EXPOSURE
    h, w = linear.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((xx + 0.5 - w / 2) ** 2 + (yy + 0.5 - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    vignette = 1.0 - VIGNETTE * r2
    raw_rgb = np.clip(camera * light / wb * vignette[..., None], 0.0, 1.0)
    packed = bayer.mosaic_rgb(raw_rgb.astype(np.float32))
    noisy = isp.add_noise(packed, S7, iso=200, rng=rng)
    dn = np.clip(np.rint(black + noisy * (1023.0 - black)), 0, 1023).astype(np.uint16)
    # The ISP.
    signal = np.clip((dn.astype(np.float32) - black) / (1023.0 - black), 0, None)
    packed_vignette = bayer.mosaic_rgb(np.repeat(vignette[..., None], 3, axis=2).astype(np.float32))
    balanced = signal / packed_vignette * np.array([wb[0], wb[1], wb[1], wb[2]]) * exposure
    rgb = isp.demosaic(np.clip(balanced, 0, 1).astype(np.float32)).astype(np.float64)
    srgb = np.clip(np.einsum("...c,dc->...d", rgb, np.linalg.inv(pipeline_matrix())), 0, 1)
    picture = tone(isp.srgb_gamma(srgb))
    if zoom:
        centre = (w / 2 - 0.5 + rng.uniform(-3, 3), h / 2 - 0.5 + rng.uniform(-3, 3))
        warp = cv2.getRotationMatrix2D(centre, 0.0, 1.0 + zoom)
        picture = cv2.warpAffine(picture.astype(np.float32), warp, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT)
    settings = {"wb": wb.tolist(), "exposure": float(exposure)}
    return np.clip(np.rint(picture * 255), 0, 255).astype(np.uint8), dn, settings


def write_scenes(folder: Path, names: tuple[str, ...], rng: np.random.Generator, *,
                 black: float, zoom: float, index0: int) -> list[dict[str, object]]:
    folder.mkdir(parents=True, exist_ok=True)
    settings = []
    for offset, name in enumerate(names):
        picture, dn, used = make_scene(name, rng, black=black, zoom=zoom)
        settings.append({"scene": index0 + offset, "photo": name, **used})
        for k, (rgb_crop, raw_crop) in enumerate(zip(split_frame(picture, GRID),
                                                     split_frame(dn, GRID), strict=True)):
            stem = f"{index0 + offset}_{k}"
            ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(rgb_crop),
                                                            cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, 92])
            (folder / f"{stem}.jpg").write_bytes(encoded.tobytes())
            np.save(folder / f"{stem}.npy", np.ascontiguousarray(raw_crop))
    return settings


RGB2RAW = str(Path(sys.executable).parent / "rgb2raw")


def run(command: list[str]) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return done.stdout, time.perf_counter() - start


def score(pred: Path, gt: Path) -> float:
    out, _ = run([RGB2RAW, "score", str(pred), str(gt)])
    last = out.strip().splitlines()[-1]
    return float(last.split("mean PSNR")[1].split("dB")[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--black", type=float, default=0.0)
    parser.add_argument("--zoom", type=float, default=0.0, help="ISP zoom, e.g. 0.014")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", type=Path, default=None,
                        help="Also write the JSON here (appended as one more run).")
    args = parser.parse_args()
    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    rng = np.random.default_rng(args.seed)
    train = write_scenes(work / "train" / "train", TRAIN, rng, black=args.black, zoom=args.zoom,
                         index0=0)
    test = write_scenes(work / "test", HELD_OUT, rng, black=args.black, zoom=args.zoom,
                        index0=100)
    results: dict[str, object] = {"machine": platform.platform(), "python": platform.python_version(),
                                  "black": args.black, "zoom": args.zoom, "seed": args.seed,
                                  "scenes": {"train": train, "held_out": test}}
    out_cal = work / "calibrated"
    text, seconds = run([RGB2RAW, "calibrate", str(work / "train"),
                         "-o", str(out_cal), "--camera", "synthetic", "--base", "s7"])
    results["calibrate_seconds"] = round(seconds, 2)
    results["calibrate_stdout"] = text.splitlines()
    from rgb2raw.calibrate.run import ONNX_NAME, write_card
    from rgb2raw.nets.parametric_graph import build_graph

    # The training scenes' own settings, averaged in log space: the best a fit of these two
    # scenes could know about the typical exposure and white balance.
    seen_wb = np.exp(np.mean([np.log(s["wb"]) for s in train], axis=0))
    seen_exposure = float(np.exp(np.mean([np.log(s["exposure"]) for s in train])))
    oracles = {"oracle": oracle(args.black),
               "oracle-seen": oracle(args.black, seen_wb, seen_exposure)}
    for name, params in oracles.items():
        folder = work / name
        folder.mkdir()
        (folder / ONNX_NAME).write_bytes(build_graph(params, name).SerializeToString())
        write_card(folder, params, camera_name=name, base="s7", reported=None, pairs=0)
    rows = {"uncalibrated formula (infer --camera s7)": ["--camera", "s7"],
            "pipeline's own typical settings (oracle)": ["--model", str(work / "oracle")],
            "pipeline's inverse at the training scenes' mean settings":
                ["--model", str(work / "oracle-seen")],
            "calibrate -> infer --model OUT": ["--model", str(out_cal)]}
    scores = {}
    for label, flags in rows.items():
        pred = work / f"pred-{len(scores)}"
        run([RGB2RAW, "infer", str(work / "test"), "-o", str(pred), *flags])
        scores[label] = score(pred, work / "test")
    results["held_out_psnr"] = scores
    results["load_average"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(results, indent=2)
    print(text)
    if args.results is not None:
        runs = json.loads(args.results.read_text()) if args.results.exists() else []
        args.results.write_text(json.dumps([*runs, results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
