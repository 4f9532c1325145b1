"""Lens shading for a picture whose place in its frame is unknown, judged on the real P20 figure.

    RGB2RAW_SHARED=/work/shared python benchmarks/shading_place.py

`calibrated-p20` carries the P20 lens's fall-off, a gain by position in the sensor frame. A
picture that is neither a named challenge crop nor a whole frame could sit anywhere in its
frame. This cuts square crops at random places out of the real P20 figure (its RAW known and
aligned, `real_pairs.py`) and scores four ways of treating them:

- `as a whole frame`: the frame's fall-off squeezed into the crop (the old policy);
- `frame mean gain`: one constant per channel, the frame's average gain;
- `no shading`: the pixel-wise model alone (`rgb2raw.stitch.shading_place`'s choice);
- `true place`: the frame's gains cut at the crop's real place (what a known place gets).

PSNR on values / 1024 at 1/4 packed resolution, mean over crops. Writes
benchmarks/results/shading-place.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import calibrate_defaults as cd  # noqa: E402
import real_pairs as rp  # noqa: E402

from rgb2raw.metrics import psnr  # noqa: E402
from rgb2raw.nets.build_defaults import load_calibration  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: Crop sides as fractions of the frame's height, and crops drawn for each.
SIDES = (1.0, 0.75, 0.5, 0.33, 0.25)
CROPS = 150
SEED = 1


def main() -> int:
    params, shading = load_calibration(ROOT / "models" / "calibrated-p20.npz")
    assert shading is not None, "calibrated-p20 has no lens shading"
    figure = rp.load("p20")
    pred, raw = rp.aligned(figure, cd.predict_dn(params, None, figure.jpeg))
    black, top = params.black_level / 1024.0, params.white_level / 1024.0  # planes are DN / 1024
    h, w = pred.shape[:2]
    planes = [0, 1, 3]  # the comparison grid's R, mean G, B
    frame = shading.gain_map((h, w))[..., planes]
    mean = frame.reshape(-1, 3).mean(axis=0)
    rng = np.random.default_rng(SEED)
    lines = ["# Lens shading for pictures of unknown place (real P20 figure)", "",
             "`python benchmarks/shading_place.py`: square crops at random places of the real "
             "P20 figure, PSNR dB (values / 1024, 1/4 packed resolution), mean over crops.", "",
             "| crop side / frame height | crops | as a whole frame | frame mean gain "
             "| no shading | true place |", "| --- | --- | --- | --- | --- | --- |"]
    for fraction in SIDES:
        side = int(h * fraction) // 2 * 2
        count = CROPS if side < h else CROPS // 5  # full height: only the column varies
        scores: dict[str, list[float]] = {k: [] for k in ("whole", "mean", "none", "true")}
        for _ in range(count):
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            window = (slice(y, y + side), slice(x, x + side))
            signal, truth = pred[window] - black, raw[window]
            gains = {"whole": shading.gain_map((side, side))[..., planes], "mean": mean,
                     "none": np.float64(1.0), "true": frame[window]}
            for key, gain in gains.items():
                scores[key].append(psnr(np.clip(black + signal * gain, 0.0, top), truth))
        cells = " | ".join(f"{np.mean(scores[k]):.2f}" for k in ("whole", "mean", "none", "true"))
        lines.append(f"| {fraction:.2f} | {count} | {cells} |")
        print(lines[-1], flush=True)
    lines.append("")
    out = ROOT / "benchmarks" / "results" / "shading-place.md"
    out.write_text("\n".join(lines))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
