"""The plain-script floor for `rgb2raw infer`: decode each JPEG, write an output-sized RAW .npy.

    python benchmarks/baseline_decode_write.py INPUT_FOLDER_OR_JPEG OUTPUT_FOLDER

For every JPEG it does the least any inverse ISP must do: decode it (OpenCV), build the packed
(H/2, W/2, 4) uint16 array `rgb2raw infer` writes (here by sampling the RGGB positions, no
model), and save it with `np.save`. One process, one image after another, as a user's own
script would. Written for bench_e2e.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np


def decode_and_write(jpeg: Path, out_dir: Path) -> None:
    bgr = cv2.imread(str(jpeg), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"{jpeg}: cannot decode")
    height, width = bgr.shape[0] // 2 * 2, bgr.shape[1] // 2 * 2
    packed = np.empty((height // 2, width // 2, 4), np.uint16)
    packed[..., 0] = bgr[0:height:2, 0:width:2, 2]  # R
    packed[..., 1] = bgr[0:height:2, 1:width:2, 1]  # Gr
    packed[..., 2] = bgr[1:height:2, 0:width:2, 1]  # Gb
    packed[..., 3] = bgr[1:height:2, 1:width:2, 0]  # B
    packed <<= 2  # 8-bit to 10-bit DN
    np.save(out_dir / f"{jpeg.stem}.npy", packed)


def main() -> int:
    source, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    jpegs = sorted(source.glob("*.jpg")) if source.is_dir() else [source]
    for jpeg in jpegs:
        decode_and_write(jpeg, out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
