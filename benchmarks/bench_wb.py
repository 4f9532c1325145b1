"""How neutral `visualize`'s white balance is: the sample chart and, optionally, real crops.

For the project's own chart (`rgb2raw.sample`), per camera: the chart goes through `infer`
with the bundled parametric model, and the RAW is rendered with each white-balance choice.
Printed: the white patch's 8-bit RGB and the mean grey-patch cast (mean |R - G| + |B - G| over
the six neutral patches, 8-bit levels; 0 is neutral). A third case scales the S7 RAW's red
and blue as another light would, to show whether the estimate follows the light.

With ``--real DIR`` (folders of phone JPEGs, e.g. the S7 and P20 crops in ../shared, never
committed), each JPEG goes the same way and the render is compared with the JPEG itself: the
RAW was made from it with the camera's daylight gains, so a white balance that brings the
picture back to the JPEG's own colours is the right one. Printed: the mean CIELAB colour
difference (a*, b* only; brightness is the exposure's business) per choice.

    python benchmarks/bench_wb.py [--real ../shared/data/real-inputs/s7 ...] [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rgb2raw import isp, pipeline
from rgb2raw import visualize as viz
from rgb2raw.cameras import get_camera
from rgb2raw.rgb import read_rgb
from rgb2raw.sample import make_chart

RESULTS = Path(__file__).resolve().parent / "results" / "wb.json"
GREY_PATCHES = range(18, 24)  # the chart's bottom row: white to black


def patch_centres(width: int, height: int) -> list[tuple[int, int]]:
    """(x, y) of the 24 patch centres, as `make_chart` places them."""
    rows, cols = 4, 6
    ramp_top = int(height * 0.88)
    cell = min(width * 0.8 / cols, height * 0.75 / rows)
    left, top = (width - cell * cols) / 2, (ramp_top - cell * rows) / 2
    return [(int(left + (i % cols + 0.5) * cell), int(top + (i // cols + 0.5) * cell))
            for i in range(24)]


def render(raw_dn: np.ndarray, camera_name: str, wb: str) -> np.ndarray:
    camera = get_camera(camera_name)
    linear = isp.linearize(raw_dn, camera)
    gains = viz.render_wb_gains(linear, camera, wb)  # type: ignore[arg-type]
    exposure = isp.resolve_exposure(linear, gains, "auto")
    return isp.render(raw_dn, camera, wb=gains, exposure=exposure)


def to_raw(rgb01: np.ndarray, camera: str) -> np.ndarray:
    model = pipeline.load_model(camera=camera)
    return pipeline.infer_image(rgb01, model)


def chart_rows(choices: list[str]) -> list[dict[str, object]]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "chart.png"
        cv2.imwrite(str(path), cv2.cvtColor(make_chart(), cv2.COLOR_RGB2BGR))
        rgb = read_rgb(path)
    height, width = rgb.shape[:2]
    centres = patch_centres(width, height)
    for camera, cast_gains in (("s7", None), ("p20", None), ("s7", (0.7, 1.3))):
        raw = to_raw(rgb, camera)
        label = f"chart {camera}"
        if cast_gains is not None:  # another light: red weaker, blue stronger than daylight
            profile = get_camera(camera)
            signal = raw.astype(np.float64) - profile.black_level
            signal[..., 0] *= cast_gains[0]
            signal[..., 3] *= cast_gains[1]
            raw = np.clip(np.rint(signal + profile.black_level), 0, profile.white_level
                          ).astype(np.uint16)
            label += f", light cast R x{cast_gains[0]} B x{cast_gains[1]}"
        for wb in choices:
            picture = render(raw, camera, wb).astype(np.float64)
            patches = [picture[y - 8: y + 8, x - 8: x + 8].reshape(-1, 3).mean(axis=0)
                       for x, y in centres]
            cast = float(np.mean([abs(p[0] - p[1]) + abs(p[2] - p[1])
                                  for p in (patches[i] for i in GREY_PATCHES)]))
            white = [round(float(v)) for v in patches[18]]
            rows.append({"set": label, "wb": wb, "white_patch": white,
                         "grey_cast": round(cast, 2)})
    return rows


def chroma_difference(a_rgb8: np.ndarray, b_rgb8: np.ndarray) -> float:
    lab_a = cv2.cvtColor(a_rgb8, cv2.COLOR_RGB2LAB).astype(np.float64)
    lab_b = cv2.cvtColor(b_rgb8, cv2.COLOR_RGB2LAB).astype(np.float64)
    # OpenCV's 8-bit Lab stores a*, b* offset by 128 at unit scale.
    return float(np.hypot(*(lab_a[..., 1:] - lab_b[..., 1:]).reshape(-1, 2).T).mean())


def real_rows(folders: list[Path], choices: list[str]) -> list[dict[str, object]]:
    rows = []
    for folder in folders:
        camera = "p20" if "p20" in folder.name.lower() else "s7"
        files = sorted(folder.glob("*.jpg"))
        totals = {wb: [] for wb in choices}
        for path in files:
            rgb = read_rgb(path)
            raw = to_raw(rgb, camera)
            jpeg = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
            for wb in choices:
                totals[wb].append(chroma_difference(render(raw, camera, wb), jpeg))
        for wb in choices:
            values = np.asarray(totals[wb])
            rows.append({"set": f"{folder.name} ({len(files)} crops)", "wb": wb,
                         "mean_chroma_diff": round(float(values.mean()), 2),
                         "worst_chroma_diff": round(float(values.max()), 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, action="append", default=[])
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args(argv)
    choices = ["grayworld", "auto", "camera"]
    rows = chart_rows(choices) + real_rows(args.real, choices)
    for row in rows:
        print(json.dumps(row))
    if args.record:
        RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
