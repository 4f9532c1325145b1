"""A run's human-readable records: the per-epoch CSV log and a PNG plot of the curves.

The plot is drawn with OpenCV (no plotting library is a dependency): training loss on the
left, validation PSNR on the right, one point per epoch. Both files are rewritten whole and
atomically after every epoch from the history kept in the checkpoint, so a resumed run's
files are the same as an uninterrupted run's.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import cv2
import numpy as np

from rgb2raw._atomic import atomic_write


@dataclass(frozen=True)
class EpochRecord:
    """One row of the log. Validation fields are NaN for epochs without validation."""

    epoch: int
    steps: int
    lr: float
    train_loss: float
    val_psnr: float
    val_ssim: float
    images_per_s: float
    seconds: float


CSV_COLUMNS = tuple(f.name for f in fields(EpochRecord))


def write_csv(path: str | os.PathLike[str], history: Sequence[EpochRecord]) -> None:
    """Write the whole history as CSV (header + one row per epoch)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                         for k, v in asdict(record).items()})
    with atomic_write(path) as handle:
        handle.write(text.getvalue().encode("utf-8"))


def _panel(values: Sequence[float], title: str, size: tuple[int, int],
           colour: tuple[int, int, int]) -> np.ndarray:
    """One line chart on white, with the min/max of the axis and the epoch count labelled."""
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 60, 15, 30, 35
    cv2.rectangle(image, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (left, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    points = [(i, v) for i, v in enumerate(values, start=1) if math.isfinite(v)]
    if not points:
        cv2.putText(image, "no data", (left + 10, height // 2), font, 0.5, (0, 0, 0), 1)
        return image
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    last_epoch = max(len(values), 2)

    def to_pixel(epoch: int, value: float) -> tuple[int, int]:
        x = left + (epoch - 1) / (last_epoch - 1) * (width - right - left)
        y = (height - bottom) - (value - low) / (high - low) * (height - bottom - top)
        return int(round(x)), int(round(y))

    pixels = [to_pixel(epoch, value) for epoch, value in points]
    for start, end in zip(pixels[:-1], pixels[1:], strict=True):
        cv2.line(image, start, end, colour, 2, cv2.LINE_AA)
    for pixel in pixels:
        cv2.circle(image, pixel, 3, colour, -1, cv2.LINE_AA)
    cv2.putText(image, f"{high:.4g}", (2, top + 5), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"{low:.4g}", (2, height - bottom), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "epoch 1", (left, height - 12), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"{last_epoch}", (width - right - 20, height - 12), font, 0.4, (0, 0, 0),
                1, cv2.LINE_AA)
    return image


def plot_curves(path: str | os.PathLike[str], history: Sequence[EpochRecord]) -> Path:
    """Write a PNG with the training loss and validation PSNR per epoch."""
    loss = _panel([r.train_loss for r in history], "training loss", (420, 300), (200, 60, 20))
    psnr = _panel([r.val_psnr for r in history], "validation PSNR (dB)", (420, 300), (20, 120, 20))
    ok, encoded = cv2.imencode(".png", np.concatenate([loss, psnr], axis=1))
    if not ok:
        raise RuntimeError("OpenCV could not encode the curves plot")
    with atomic_write(path) as handle:
        handle.write(encoded.tobytes())
    return Path(path)
