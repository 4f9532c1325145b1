"""Benchmark `rgb2raw score` against a straightforward re-implementation of the official scorer.

Makes N synthetic 252x252x4 uint16 prediction/ground-truth pairs (default 480, the S7
validation set's size) in a temporary folder, then in one run and alternating, times

- the reference (`official_reference.score_folders`: one core, scipy, the official arithmetic), and
- the library path `rgb2raw.scoring.score` (one thread per core; the C extension
  rgb2raw._ssim where it is built, else OpenCV: recorded as `metrics_path`),

in-process, so start-up is not included (bench_e2e.py times the whole command),

checks every per-image and mean number agrees to 1e-6 (exit 1 otherwise), prints the ratio
of the best times, and records the figures with machine info in benchmarks/results/score.json.

    python benchmarks/bench_score.py [--pairs 480] [--repeats 2] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import official_reference  # noqa: E402

from rgb2raw import metrics, scoring  # noqa: E402
from rgb2raw._atomic import atomic_write  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "score.json"
TOLERANCE = 1e-6


def max_deviation(reference: dict, ours: scoring.ScoreResult) -> float:
    per_image = reference["per_image"]
    assert isinstance(per_image, dict)
    if set(per_image) != {s.stem for s in ours.per_image}:
        raise SystemExit("reference and rgb2raw scored different images")
    deviations = [abs(reference["psnr"] - ours.psnr), abs(reference["ssim"] - ours.ssim)]
    for image in ours.per_image:
        deviations += [abs(per_image[image.stem]["psnr"] - image.psnr),
                       abs(per_image[image.stem]["ssim"] - image.ssim)]
    return max(deviations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=480)
    parser.add_argument("--repeats", type=int, default=2, help="alternating timed runs of each")
    parser.add_argument("--no-record", action="store_true", help="do not write results/score.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rgb2raw-bench-") as tmp:
        pred_dir, gt_dir = common.make_score_pairs(Path(tmp), args.pairs)
        load_before = os.getloadavg()
        reference_times, ours_times = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            reference = official_reference.score_folders(str(pred_dir), str(gt_dir))
            reference_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            ours = scoring.score(pred_dir, gt_dir)
            ours_times.append(time.perf_counter() - start)
        load_after = os.getloadavg()

    deviation = max_deviation(reference, ours)
    best_reference, best_ours = min(reference_times), min(ours_times)
    figures = {
        "pairs": args.pairs,
        "shape": [252, 252, 4],
        "reference_seconds": reference_times,
        "rgb2raw_seconds": ours_times,
        "speedup_best": best_reference / best_ours,
        "reference_ms_per_image": 1000 * best_reference / args.pairs,
        "rgb2raw_ms_per_image": 1000 * best_ours / args.pairs,
        "max_abs_deviation": deviation,
        "workers": scoring.default_workers(),
        "metrics_path": ("C extension rgb2raw._ssim" if metrics.native is not None
                         else "OpenCV (rgb2raw._ssim not built)"),
        "loadavg_before_after": [load_before[0], load_after[0]],
        "mean_psnr": ours.psnr,
        "mean_ssim": ours.ssim,
        "machine": common.machine_info(),
    }
    print(f"pairs              {args.pairs} x 252x252x4 uint16")
    print(f"reference          {', '.join(f'{t:.2f}' for t in reference_times)} s "
          f"({figures['reference_ms_per_image']:.2f} ms/image, best)")
    print(f"rgb2raw score      {', '.join(f'{t:.2f}' for t in ours_times)} s "
          f"({figures['rgb2raw_ms_per_image']:.2f} ms/image, best, {figures['workers']} workers, "
          f"{figures['metrics_path']})")
    print(f"speedup            {figures['speedup_best']:.1f}x")
    print(f"max |deviation|    {deviation:.3e} (tolerance {TOLERANCE:g})")
    print(f"load average       {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    if not args.no_record:
        with atomic_write(RESULTS) as handle:
            handle.write((json.dumps(figures, indent=2) + "\n").encode("utf-8"))
        print(f"recorded           {RESULTS}")
    return 0 if deviation <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
