"""A sample photo the project makes itself: a colour chart with smooth gradients.

Used by the README's first commands, so a new user can run `infer` and `visualize` without
finding data first. The 24 patch colours are the widely published sRGB values of the classic
ColorChecker chart; the background holds a hue/brightness sweep and a grey ramp, which show
colour casts and tone-curve problems at a glance.

    python -m rgb2raw.sample chart.jpg [--width 1008 --height 756]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from rgb2raw.errors import Rgb2RawError
from rgb2raw.rgb import write_rgb

# Classic 24-patch ColorChecker, sRGB 8-bit, row by row (4 rows of 6).
COLORCHECKER_SRGB = (
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177), (103, 189, 170),
    (214, 126, 44), (80, 91, 166), (193, 90, 99), (94, 60, 108), (157, 188, 64), (224, 163, 46),
    (56, 61, 150), (70, 148, 73), (175, 54, 60), (231, 199, 31), (187, 86, 149), (8, 133, 161),
    (243, 243, 242), (200, 200, 200), (160, 160, 160), (122, 122, 121), (85, 85, 85), (52, 52, 52),
)


def make_chart(width: int = 1008, height: int = 756) -> np.ndarray:
    """The chart as an (height, width, 3) uint8 RGB image."""
    if width < 96 or height < 96:
        raise ValueError("the chart needs at least 96x96 pixels")
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    # Background: hue sweeps left to right, brightness top to bottom.
    hsv = np.stack([x / width * 179, np.full_like(x, 140), 60 + 170 * (1 - y / height)], axis=-1)
    image = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    # A grey ramp along the bottom.
    ramp_top = int(height * 0.88)
    image[ramp_top:] = (x[ramp_top:, :, None] / (width - 1) * 255).astype(np.uint8)
    # The patches, centred, with dark gaps like the real chart.
    rows, cols = 4, 6
    cell = min(width * 0.8 / cols, height * 0.75 / rows)
    left, top = (width - cell * cols) / 2, (ramp_top - cell * rows) / 2
    cv2.rectangle(image, (int(left - cell * 0.1), int(top - cell * 0.1)),
                  (int(left + cell * (cols + 0.1)), int(top + cell * (rows + 0.1))), (20, 20, 20), -1)
    for index, colour in enumerate(COLORCHECKER_SRGB):
        r, c = divmod(index, cols)
        x0, y0 = int(left + c * cell + cell * 0.08), int(top + r * cell + cell * 0.08)
        x1, y1 = int(left + (c + 1) * cell - cell * 0.08), int(top + (r + 1) * cell - cell * 0.08)
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, -1)
    return image


def write_chart(path: str | os.PathLike[str], *, width: int = 1008, height: int = 756,
                overwrite: bool = False, quality: int = 92) -> Path:
    """Write the chart as a JPEG (or PNG, by suffix), atomically; refuse to overwrite."""
    return write_rgb(path, make_chart(width, height), overwrite=overwrite, jpeg_quality=quality)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rgb2raw.sample", description=__doc__.splitlines()[0])
    parser.add_argument("output", help="where to write the chart (.jpg or .png)")
    parser.add_argument("--width", type=int, default=1008)
    parser.add_argument("--height", type=int, default=756)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        print(write_chart(args.output, width=args.width, height=args.height, overwrite=args.overwrite))
    except (Rgb2RawError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
