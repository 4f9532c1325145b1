"""Run a network on an image of any size in overlapping tiles, and blend the tiles back.

Why tiles: a 12-24 MP photo does not fit through a CNN in one piece on most machines, and a
model with a fixed size multiple cannot take arbitrary sizes. Three rules keep the tiled output
equal to the untiled one:

* Tile offsets are multiples of the model's size multiple (and so EVEN in RGB space): an even
  offset keeps the Bayer phase (a tile's pixel (0, 0) is still a red site) and a multiple of
  the network's downsampling factor keeps its pooling grid aligned with the whole image's.
* Near a tile's inner edges a convolution sees zero padding instead of the neighbouring pixels,
  so each tile's output is weighted by a window that is zero over a margin at those edges and
  rises with a raised-cosine (Hann) ramp to one. Edges on the image border get weight one all
  the way out (the image border has no neighbour to blend with), so every output pixel has a
  positive total weight.
* Outputs are accumulated in float32 as ``sum(weight * output)`` and ``sum(weight)`` in two
  output-sized arrays and divided once at the end; rounding to integers happens later, once.

An image whose side is not a multiple of the size multiple is treated as if reflect-padded at
its bottom and right to the next multiple (exactly what the untiled path does), and the extra
output is cropped away. Only the tiles touching that border are padded, one at a time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

#: (N, 3, h, w) float32 -> (N, 4, h/2, w/2) float32.
BatchRunner = Callable[[np.ndarray], np.ndarray]

DEFAULT_OVERLAP = 64
MIN_AUTO_TILE = 256
MAX_AUTO_TILE = 1024
# Rough peak bytes per RGB pixel of a CNN forward pass at float32, runtime arenas included.
# Measured: the official U-Net (64-256 channels) peaks near 3.5 KiB/pixel under ONNX Runtime
# (benchmarks/bench_infer.py). Only used to choose a tile size from free memory.
DEFAULT_BYTES_PER_PIXEL = 4096
_MIB = 1 << 20


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= `value`."""
    return -(-value // multiple) * multiple


def tile_multiple(size_multiple: int) -> int:
    """The step tile sizes and offsets must respect: the model's multiple and 2 (Bayer)."""
    return math.lcm(max(1, int(size_multiple)), 2)


@dataclass(frozen=True)
class AxisPlan:
    """Tiles along one axis: their common length and start offsets (RGB pixels).

    `padded` is the axis length rounded up to the multiple: the extent tiles cover.
    """

    length: int
    padded: int
    tile: int
    overlap: int
    starts: tuple[int, ...]


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of one (height, width) image go."""

    rows: AxisPlan
    cols: AxisPlan

    @property
    def tile_shape(self) -> tuple[int, int]:
        return self.rows.tile, self.cols.tile

    @property
    def count(self) -> int:
        return len(self.rows.starts) * len(self.cols.starts)

    def tiles(self) -> Iterator[tuple[int, int, int, int]]:
        """(row index, column index, y, x) of every tile, row-major."""
        for i, y in enumerate(self.rows.starts):
            for j, x in enumerate(self.cols.starts):
                yield i, j, y, x


def plan_axis(length: int, tile: int, overlap: int, multiple: int) -> AxisPlan:
    """Tile one axis of `length` RGB pixels with tiles of about `tile` pixels.

    `tile` is rounded down (and `overlap` up) to `multiple`; an axis that fits in one tile gets
    a single tile of the padded length. The last tile is moved back to end at the padded length,
    so it overlaps its neighbour by more than `overlap`; that is harmless (weights normalise).
    """
    if length <= 0 or length % 2:
        raise ValueError(f"image sides must be positive and even, got {length}")
    padded = round_up(length, multiple)
    if tile <= 0 or padded <= tile:
        return AxisPlan(length, padded, padded, 0, (0,))
    tile = max(multiple, tile - tile % multiple)
    overlap = round_up(max(0, overlap), multiple)
    # A tile must be long enough for its two blending ramps and for reflect padding of the
    # image's last partial multiple (at most multiple - 2 pixels) from its own pixels.
    tile = max(tile, 2 * overlap + multiple, 2 * multiple)
    if padded <= tile:
        return AxisPlan(length, padded, padded, 0, (0,))
    stride = tile - overlap
    starts = list(range(0, padded - tile, stride))
    starts.append(padded - tile)
    return AxisPlan(length, padded, tile, overlap, tuple(starts))


def plan_tiles(height: int, width: int, *, tile: int | tuple[int, int], overlap: int = DEFAULT_OVERLAP,
               size_multiple: int = 1) -> TilePlan:
    """Plan tiles for an (height, width) RGB image; `tile` <= 0 means one tile (untiled)."""
    multiple = tile_multiple(size_multiple)
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    return TilePlan(plan_axis(height, tile_h, overlap, multiple),
                    plan_axis(width, tile_w, overlap, multiple))


def axis_window(axis: AxisPlan, index: int) -> np.ndarray:
    """Blending weights (float32, packed resolution) of tile `index` along one axis.

    Inner edges: zero for a margin of a quarter of the overlap (where zero padding inside the
    network corrupts the output), then a Hann ramp over half the overlap, then one. Edges on
    the image border: one.
    """
    size = axis.tile // 2
    weights = np.ones(size, dtype=np.float32)
    half_overlap = axis.overlap // 2
    if half_overlap == 0 or len(axis.starts) == 1:
        return weights
    margin = half_overlap // 4
    ramp_length = max(1, half_overlap - 2 * margin)
    # Samples at the ramp's midpoints: strictly inside (0, 1), symmetric, so the ramps of two
    # neighbouring tiles cross at 0.5 and neither weight is ever exactly zero on the ramp.
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_length) + 0.5) / ramp_length)
    rising = np.concatenate([np.zeros(margin), ramp]).astype(np.float32)
    if index > 0:
        weights[: rising.size] = np.minimum(weights[: rising.size], rising)
    if index < len(axis.starts) - 1:
        weights[size - rising.size:] = np.minimum(weights[size - rising.size:], rising[::-1])
    return weights


def extract_tile(rgb: np.ndarray, y: int, x: int, tile_h: int, tile_w: int) -> np.ndarray:
    """The (tile_h, tile_w, 3) tile at (y, x), reflect-padded where it passes the border."""
    height, width = rgb.shape[:2]
    piece = rgb[y: y + tile_h, x: x + tile_w]
    pad_bottom, pad_right = y + tile_h - min(height, y + tile_h), x + tile_w - min(width, x + tile_w)
    if pad_bottom or pad_right:
        piece = np.pad(piece, ((0, pad_bottom), (0, pad_right), (0, 0)), mode="reflect")
    return piece


def infer_tiled(rgb: np.ndarray, run_batch: BatchRunner, plan: TilePlan, *,
                batch_size: int = 1,
                on_tiles: Callable[[int], None] | None = None) -> np.ndarray:
    """Run `run_batch` over the tiles of `rgb` (H, W, 3) and blend: float32 (H/2, W/2, 4).

    Tiles go to the runner `batch_size` at a time as (N, 3, h, w) float32; `on_tiles(n)` is
    called after each batch with the number of tiles done in it. Peak memory beyond the input
    and the output is two accumulators (the output itself and an (H/2, W/2) weight map) plus
    one batch of tiles.
    """
    height, width = rgb.shape[:2]
    out_h, out_w = height // 2, width // 2
    accum = np.zeros((out_h, out_w, 4), dtype=np.float32)
    weight_sum = np.zeros((out_h, out_w), dtype=np.float32)
    tile_h, tile_w = plan.tile_shape
    row_windows = [axis_window(plan.rows, i) for i in range(len(plan.rows.starts))]
    col_windows = [axis_window(plan.cols, j) for j in range(len(plan.cols.starts))]

    def flush(pending: list[tuple[int, int, int, int]], batch: np.ndarray) -> None:
        outputs = np.asarray(run_batch(batch), dtype=np.float32)
        expected = (len(pending), 4, tile_h // 2, tile_w // 2)
        if outputs.shape != expected:
            raise ValueError(f"the model returned shape {outputs.shape}, expected {expected}")
        for (i, j, y, x), output in zip(pending, outputs, strict=True):
            oy, ox = y // 2, x // 2
            keep_h, keep_w = min(tile_h // 2, out_h - oy), min(tile_w // 2, out_w - ox)
            window = np.outer(row_windows[i][:keep_h], col_windows[j][:keep_w])
            accum[oy: oy + keep_h, ox: ox + keep_w] += (
                output[:, :keep_h, :keep_w].transpose(1, 2, 0) * window[..., None])
            weight_sum[oy: oy + keep_h, ox: ox + keep_w] += window
        if on_tiles is not None:
            on_tiles(len(pending))

    batch_size = max(1, int(batch_size))
    batch = np.empty((min(batch_size, plan.count), 3, tile_h, tile_w), dtype=np.float32)
    pending: list[tuple[int, int, int, int]] = []
    for i, j, y, x in plan.tiles():
        batch[len(pending)] = extract_tile(rgb, y, x, tile_h, tile_w).transpose(2, 0, 1)
        pending.append((i, j, y, x))
        if len(pending) == batch.shape[0]:
            flush(pending, batch)
            pending = []
    if pending:
        flush(pending, batch[: len(pending)])
    # Every pixel has a positive weight (see axis_window); divide in place, no extra array.
    accum /= weight_sum[..., None]
    return accum


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable), or a guess of 2 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2048 * _MIB


def auto_tile_size(size_multiple: int = 1, *, batch_size: int = 1,
                   bytes_per_pixel: int = DEFAULT_BYTES_PER_PIXEL,
                   memory: int | None = None) -> int:
    """A tile side that keeps one batch's forward pass within a quarter of free memory.

    Bounded to [256, 1024] pixels and a 2 GiB budget: smaller tiles waste time on overlap;
    larger ones were slower on CPU in benchmarks (cache misses) and cost gigabytes.
    """
    free = available_memory() if memory is None else memory
    budget = min(max(free // 4, 128 * _MIB), 2048 * _MIB)
    side = int(math.sqrt(budget / (max(1, batch_size) * bytes_per_pixel)))
    side = max(MIN_AUTO_TILE, min(MAX_AUTO_TILE, side))
    multiple = tile_multiple(size_multiple)
    return max(multiple, side - side % multiple)


__all__ = [
    "DEFAULT_OVERLAP",
    "AxisPlan",
    "BatchRunner",
    "TilePlan",
    "auto_tile_size",
    "available_memory",
    "axis_window",
    "extract_tile",
    "infer_tiled",
    "plan_axis",
    "plan_tiles",
    "round_up",
    "tile_multiple",
]
