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

A model whose receptive field is known (its card's ``context``: how far, in RGB pixels, an output
block's inputs reach beyond the block) needs no blending: tiles overlap by twice the context and
each output pixel is taken from the one tile that owns it, a tile owning only pixels at least
``context`` away from its inner edges. That is exact (tiled == untiled, bit for bit) and costs
no weight map; a pixel-wise model (context 0) gets tiles that do not overlap at all, written
straight into the output.

An image whose side is not a multiple of the size multiple is treated as if reflect-padded at
its bottom and right to the next multiple (exactly what the untiled path does), and the extra
output is cropped away. Only the tiles touching that border are padded, one at a time.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
# A model light enough that tiles of at least MIN_AUTO_TILE pixels keep the working sets of
# all tiles in flight within this much memory gets such tiles: each operation's output is then
# still in the CPU's cache when the next one reads it. Measured with the parametric graph
# (48 bytes/pixel), two tiles in flight, on a 2-core EPYC (1 MiB L2 per core, 32 MiB L3):
# 256-320 px tiles took 0.055 s per 12 MP, 590 px 0.09 s, 1024 px 0.12 s.
CACHE_BUDGET = 8 * _MIB
#: Models needing at most this many bytes per pixel are memory-bound chains of cheap operators:
#: splitting each operator between threads gains little, so whole tiles run in parallel.
LIGHT_BYTES_PER_PIXEL = 128


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
    """Where the tiles of one (height, width) image go.

    `exact`: the overlap covers the model's known context, so tiles are stitched by ownership
    (see `axis_owned`) instead of blended.
    """

    rows: AxisPlan
    cols: AxisPlan
    exact: bool = False

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


def context_overlap(context: int, multiple: int) -> int:
    """The smallest overlap (RGB pixels, a multiple of `multiple`) that lets tiles of a model
    with receptive-field radius `context` be stitched exactly: twice the context, made even."""
    return round_up(2 * round_up(max(0, context), 2), multiple)


def plan_tiles(height: int, width: int, *, tile: int | tuple[int, int],
               overlap: int | None = None, size_multiple: int = 1,
               context: int | None = None) -> TilePlan:
    """Plan tiles for an (height, width) RGB image; `tile` <= 0 means one tile (untiled).

    `context` is the model's receptive-field radius (None: unknown). `overlap` None picks what
    the model needs: `context_overlap` when the context is known, else `DEFAULT_OVERLAP`. The
    plan is exact (stitched, not blended) whenever the overlap covers a known context.
    """
    multiple = tile_multiple(size_multiple)
    needed = None if context is None else context_overlap(context, multiple)
    if overlap is None:
        overlap = DEFAULT_OVERLAP if needed is None else needed
    tile_h, tile_w = (tile, tile) if isinstance(tile, int) else tile
    exact = needed is not None and round_up(max(0, overlap), multiple) >= needed
    return TilePlan(plan_axis(height, tile_h, overlap, multiple),
                    plan_axis(width, tile_w, overlap, multiple), exact=exact)


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


def axis_owned(axis: AxisPlan, index: int) -> slice:
    """The part of tile `index`'s output (packed resolution, tile coordinates) it owns.

    Neighbouring tiles split their overlap at an even offset near its middle, so every pixel is
    owned by exactly one tile and lies at least half the overlap, rounded down to even, from
    the owning tile's inner edges: with an overlap of `context_overlap`, at least the context.
    """
    starts = axis.starts

    def boundary(i: int) -> int:  # RGB offset where tile i takes over from tile i - 1
        shared = starts[i - 1] + axis.tile - starts[i]
        return starts[i] + (shared // 2 - (shared // 2) % 2)

    low = 0 if index == 0 else boundary(index) - starts[index]
    high = axis.tile if index == len(starts) - 1 else boundary(index + 1) - starts[index]
    return slice(low // 2, high // 2)


def extract_tile(rgb: np.ndarray, y: int, x: int, tile_h: int, tile_w: int) -> np.ndarray:
    """The (tile_h, tile_w, 3) tile at (y, x), reflect-padded where it passes the border."""
    height, width = rgb.shape[:2]
    piece = rgb[y: y + tile_h, x: x + tile_w]
    pad_bottom, pad_right = y + tile_h - min(height, y + tile_h), x + tile_w - min(width, x + tile_w)
    if pad_bottom or pad_right:
        piece = np.pad(piece, ((0, pad_bottom), (0, pad_right), (0, 0)), mode="reflect")
    return piece


def infer_tiled(rgb: np.ndarray, run_batch: BatchRunner, plan: TilePlan, *,
                batch_size: int = 1, workers: int = 1,
                on_tiles: Callable[[int], None] | None = None,
                prepare: Callable[[np.ndarray, np.ndarray], None] | None = None) -> np.ndarray:
    """Run `run_batch` over the tiles of `rgb` (H, W, 3): float32 (H/2, W/2, 4).

    `prepare(tile, out)` writes one (h, w, 3) tile of `rgb` into its (3, h, w) float32 slot of
    the batch (e.g. converting integer pixels); by default the tile is copied as it is.

    Tiles go to the runner `batch_size` at a time as (N, 3, h, w) float32; `on_tiles(n)` is
    called after each batch with the number of tiles done in it. An exact plan copies each
    tile's owned part into the output; otherwise tiles are blended, which costs two
    accumulators (the output itself and an (H/2, W/2) weight map). Either way peak memory
    beyond the input and the output is one batch of tiles per worker (and the weight map).

    `workers` > 1 runs that many batches of an exact plan at once in threads (the runner must
    be thread-safe, as ONNX Runtime sessions are; numpy copies and the runtime release the
    GIL). Tiles write disjoint regions, so the output does not depend on it. Blended plans run
    one batch at a time: float sums in a varying order would differ in the last bit.
    """
    height, width = rgb.shape[:2]
    out_h, out_w = height // 2, width // 2
    tile_h, tile_w = plan.tile_shape
    if plan.exact:
        # Every pixel is written exactly once, so the output needs no initialisation.
        accum = np.empty((out_h, out_w, 4), dtype=np.float32)
        row_owned = [axis_owned(plan.rows, i) for i in range(len(plan.rows.starts))]
        col_owned = [axis_owned(plan.cols, j) for j in range(len(plan.cols.starts))]
    else:
        accum = np.zeros((out_h, out_w, 4), dtype=np.float32)
        weight_sum = np.zeros((out_h, out_w), dtype=np.float32)
        row_windows = [axis_window(plan.rows, i) for i in range(len(plan.rows.starts))]
        col_windows = [axis_window(plan.cols, j) for j in range(len(plan.cols.starts))]

    def place(i: int, j: int, y: int, x: int, output: np.ndarray) -> None:
        """Copy the owned part of one (4, h, w) tile output into the output."""
        oy, ox = y // 2, x // 2
        rows, cols = row_owned[i], col_owned[j]
        rows = slice(rows.start, min(rows.stop, out_h - oy))  # the padded border is cropped
        cols = slice(cols.start, min(cols.stop, out_w - ox))
        accum[oy + rows.start: oy + rows.stop, ox + cols.start: ox + cols.stop] = (
            output[:, rows, cols].transpose(1, 2, 0))

    def blend(i: int, j: int, y: int, x: int, output: np.ndarray) -> None:
        """Add one (4, h, w) tile output, weighted by its window, to the accumulators."""
        oy, ox = y // 2, x // 2
        keep_h, keep_w = min(tile_h // 2, out_h - oy), min(tile_w // 2, out_w - ox)
        window = np.outer(row_windows[i][:keep_h], col_windows[j][:keep_w])
        accum[oy: oy + keep_h, ox: ox + keep_w] += (
            output[:, :keep_h, :keep_w].transpose(1, 2, 0) * window[..., None])
        weight_sum[oy: oy + keep_h, ox: ox + keep_w] += window

    def run_group(group: list[tuple[int, int, int, int]]) -> int:
        """Extract, run and store one batch of tiles; returns how many."""
        batch = np.empty((len(group), 3, tile_h, tile_w), dtype=np.float32)
        for index, (_, _, y, x) in enumerate(group):
            tile = extract_tile(rgb, y, x, tile_h, tile_w)
            if prepare is None:
                batch[index] = tile.transpose(2, 0, 1)
            else:
                prepare(tile, batch[index])
        outputs = np.asarray(run_batch(batch), dtype=np.float32)
        expected = (len(group), 4, tile_h // 2, tile_w // 2)
        if outputs.shape != expected:
            raise ValueError(f"the model returned shape {outputs.shape}, expected {expected}")
        for (i, j, y, x), output in zip(group, outputs, strict=True):
            (place if plan.exact else blend)(i, j, y, x, output)
        return len(group)

    batch_size = max(1, int(batch_size))
    tiles = list(plan.tiles())
    groups = [tiles[start: start + batch_size] for start in range(0, len(tiles), batch_size)]
    workers = max(1, min(int(workers), len(groups))) if plan.exact else 1
    if workers == 1:
        done: Iterator[int] = map(run_group, groups)
        for count in done:
            if on_tiles is not None:
                on_tiles(count)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="rgb2raw-tile") as pool:
            for count in pool.map(run_group, groups):  # in order; re-raises a worker's error
                if on_tiles is not None:
                    on_tiles(count)
    if not plan.exact:
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


def is_light(bytes_per_pixel: int | None) -> bool:
    """Whether a model of this memory per pixel (None: unknown) runs tiles in parallel."""
    return bytes_per_pixel is not None and bytes_per_pixel <= LIGHT_BYTES_PER_PIXEL


def tile_workers(bytes_per_pixel: int | None, threads: int = 0) -> int:
    """Tiles in flight at once: `threads` (0: every CPU) for a light model, else 1 (a heavy
    model's runtime spreads each operator over the threads instead)."""
    if not is_light(bytes_per_pixel):
        return 1
    return max(1, threads if threads > 0 else (os.cpu_count() or 1))


def auto_tile_size(size_multiple: int = 1, *, batch_size: int = 1,
                   bytes_per_pixel: int = DEFAULT_BYTES_PER_PIXEL,
                   memory: int | None = None, workers: int = 1) -> int:
    """A tile side that keeps one batch's forward pass within a quarter of free memory.

    Bounded to [256, 1024] pixels and a 2 GiB budget: smaller tiles waste time on overlap;
    larger ones were slower on CPU in benchmarks (cache misses) and cost gigabytes. A light
    model whose batch fits `CACHE_BUDGET` at a side of at least 256 gets the largest side that
    fits it (see `CACHE_BUDGET`); `workers` batches are in flight at once.
    """
    free = available_memory() if memory is None else memory
    budget = min(max(free // 4, 128 * _MIB), 2048 * _MIB)
    per_pixel = max(1, batch_size) * max(1, bytes_per_pixel) * max(1, workers)
    side = int(math.sqrt(budget / per_pixel))
    cache_side = int(math.sqrt(CACHE_BUDGET / per_pixel))
    if cache_side >= MIN_AUTO_TILE:
        side = min(side, cache_side)
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
    "axis_owned",
    "axis_window",
    "context_overlap",
    "extract_tile",
    "infer_tiled",
    "is_light",
    "plan_axis",
    "plan_tiles",
    "round_up",
    "tile_multiple",
    "tile_workers",
]
