"""Challenge crops <-> full frames.

The AIM 2022 data cut every photo into 48 crops named ``{scene}_{k}.jpg``, k = 0..47, on a
6 rows x 8 columns grid numbered row-major (docs/conventions.md). Stitching a scene's crops back gives the
network the whole frame (context across crop borders, and a frame-position-dependent model such
as a learned lens-shading mask sees true positions); the packed output is then split back into
one RAW crop per input crop. Crops tile the frame exactly (no overlap), so both ways are copies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rgb2raw.shading import FrameBox

if TYPE_CHECKING:
    from rgb2raw.cameras import CameraProfile

_CROP_STEM = re.compile(r"^(?P<scene>.+)_(?P<index>\d+)$")


def parse_crop_stem(stem: str) -> tuple[str, int] | None:
    """(scene, k) for a stem like ``"101_7"``; None if the name is not a challenge crop name."""
    match = _CROP_STEM.match(stem)
    if match is None:
        return None
    index = match.group("index")
    if len(index) > 1 and index.startswith("0"):
        return None  # "12_07" is not a name the challenge uses; do not guess
    return match.group("scene"), int(index)


def crop_slices(index: int, grid: tuple[int, int], crop_hw: tuple[int, int]) -> tuple[slice, slice]:
    """The (rows, columns) slices of crop `index` inside the frame, for crops of `crop_hw`."""
    rows, cols = grid
    if not 0 <= index < rows * cols:
        raise ValueError(f"crop index {index} is outside a {rows}x{cols} grid")
    row, col = divmod(index, cols)
    height, width = crop_hw
    return slice(row * height, (row + 1) * height), slice(col * width, (col + 1) * width)


def frame_shape(grid: tuple[int, int], crop_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the frame made of `grid` crops of `crop_shape` (trailing axes kept)."""
    return (grid[0] * crop_shape[0], grid[1] * crop_shape[1], *crop_shape[2:])


def stitch_crops(crops: Sequence[np.ndarray], grid: tuple[int, int]) -> np.ndarray:
    """Assemble ``crops[k]`` (all one shape, k row-major) into the full frame."""
    rows, cols = grid
    if len(crops) != rows * cols:
        raise ValueError(f"a {rows}x{cols} grid needs {rows * cols} crops, got {len(crops)}")
    shape = crops[0].shape
    if any(crop.shape != shape for crop in crops):
        raise ValueError("all crops of a frame must have the same shape")
    frame = np.empty(frame_shape(grid, shape), dtype=crops[0].dtype)
    for index, crop in enumerate(crops):
        frame[crop_slices(index, grid, shape[:2])] = crop
    return frame


def split_frame(frame: np.ndarray, grid: tuple[int, int]) -> list[np.ndarray]:
    """Cut a frame into ``grid`` equal crops, row-major (views into `frame`)."""
    rows, cols = grid
    height, width = frame.shape[:2]
    if height % rows or width % cols:
        raise ValueError(f"a {height}x{width} frame does not split into a {rows}x{cols} grid")
    crop_hw = (height // rows, width // cols)
    return [frame[crop_slices(index, grid, crop_hw)] for index in range(rows * cols)]


def crop_box(stem: str, crop_hw: tuple[int, int], grid: tuple[int, int],
             expected_hw: tuple[int, int]) -> FrameBox | None:
    """Where a lone challenge crop sits in its frame, in packed pixels, or None.

    Only a file named like a crop (``{scene}_{k}``) whose size is the camera's crop size
    (`expected_hw`) is placed; anything else is its own frame.
    """
    parsed = parse_crop_stem(stem)
    if parsed is None or tuple(crop_hw) != tuple(expected_hw):
        return None
    index = parsed[1]
    if not 0 <= index < grid[0] * grid[1]:
        return None
    rows, cols = crop_slices(index, grid, crop_hw)
    height, width = frame_shape(grid, crop_hw)[:2]
    return FrameBox(rows.start // 2, cols.start // 2, height // 2, width // 2)


#: How far (relative) a picture's long-to-short side ratio may be from its frame's and still
#: count as a whole frame (a phone's own photo, or one resized).
FRAME_ASPECT_TOLERANCE = 0.02


def shading_place(stem: str, picture_hw: tuple[int, int], camera: CameraProfile
                  ) -> tuple[bool, FrameBox | None]:
    """Where a lone picture sits in its sensor frame, for lens shading: (known, box).

    - a challenge crop (`crop_box`): known, at its box;
    - a picture with the frame's shape, either way round: known, the whole frame (box None);
    - anything else (a square crop, a cut-out of unknown origin): not known, and no shading
      should be applied. Measured (`benchmarks/shading_place.py`) on square crops of the real
      P20 figure at random places, a quarter to three quarters of the frame's height: without
      shading 31.9-33.4 dB, with the shading of a whole frame 30.2-30.8 dB, with the frame's
      mean gain 31.1-33.3 dB (the largest square, of the frame's full height, loses 1.0 dB
      without shading: 30.2 against 31.1).
    """
    box = crop_box(stem, picture_hw, camera.crop_grid, (camera.rgb_crop, camera.rgb_crop))
    if box is not None:
        return True, box
    height, width = picture_hw
    frame_w, frame_h = camera.frame_size
    ratio = max(height, width) / max(min(height, width), 1)
    frame_ratio = max(frame_w, frame_h) / min(frame_w, frame_h)
    return abs(ratio / frame_ratio - 1.0) <= FRAME_ASPECT_TOLERANCE, None


__all__ = ["FRAME_ASPECT_TOLERANCE", "crop_box", "crop_slices", "frame_shape", "parse_crop_stem",
           "shading_place", "split_frame", "stitch_crops"]
