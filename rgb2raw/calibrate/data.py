"""Calibration data: finding RAW + picture pairs, reading them, grouping crops into frames.

Two layouts are understood:

* a challenge-layout folder: ``{scene}_{k}.jpg`` + ``{scene}_{k}.npy`` (packed RGGB uint16,
  in ``DATA/train`` or ``DATA`` itself; `rgb2raw.train.data.find_pairs` finds them);
* a folder of DNG + picture pairs sharing a stem, as phones shoot them (``IMG_1.dng`` +
  ``IMG_1.jpg``); each is its own scene. DNGs are read with rawpy (LibRaw), imported only then.

A *unit* is what one alignment and one per-photo gain apply to: a whole frame when a scene's
crops are all there (the 6x8 challenge grid stitched back: the ISP's crop and zoom and the lens
shading are properties of the frame, not of a crop), otherwise one pair.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rgb2raw import bayer
from rgb2raw.errors import Rgb2RawError
from rgb2raw.raw import read_raw
from rgb2raw.rgb import IMAGE_SUFFIXES, read_rgb
from rgb2raw.stitch import crop_slices, parse_crop_stem, stitch_crops

#: Calibration with fewer pairs than this cannot tell a photo's settings from the camera's.
MIN_PAIRS = 2
#: How to install rawpy, for the error a DNG folder raises without it.
RAWPY_HINT = "reading DNG needs rawpy: pip install 'rgb2raw[dng]' (or pip install rawpy)"


@dataclass(frozen=True)
class PairFiles:
    """One picture and its RAW (``.npy`` or ``.dng``)."""

    scene: str
    index: int | None  # crop number in the scene's grid, None for a whole photo
    rgb_path: Path
    raw_path: Path

    @property
    def stem(self) -> str:
        return self.rgb_path.stem


@dataclass
class Unit:
    """A frame (stitched crops) or a single pair, read and ready to align.

    `raw` is packed RGGB in DN, (h, w, 4) float32, and `rgb` the (2h, 2w, 3) picture in [0, 1]
    float32 (a picture of another size is resized to that, e.g. a DNG's JPEG that the phone
    scaled). `crops` lists the pairs it holds with their RAW-grid slices, for per-crop scores.
    """

    scene: str
    rgb: np.ndarray
    raw: np.ndarray
    crops: list[tuple[str, tuple[slice, slice]]]
    black: float | None = None  # known from the file (DNG), else None
    white: float | None = None
    resized: bool = False
    #: A whole camera frame (stitched crops or a DNG), where lens shading can be measured.
    is_frame: bool = False


def find_pair_files(data: str | os.PathLike[str]) -> list[PairFiles]:
    """The pairs in `data` (see the module docstring), sorted; errors name the folder."""
    root = Path(data)
    if not root.is_dir():
        raise Rgb2RawError(root, "no such folder")
    folder = root / "train" if (root / "train").is_dir() else root
    pictures: dict[str, Path] = {}
    raws: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES and suffix not in (".tif", ".tiff"):
            pictures[path.stem] = path
        elif suffix in (".npy", ".dng"):
            if path.stem in raws:
                raise Rgb2RawError(path, f"has the same stem as {raws[path.stem].name}; keep "
                                         "one RAW per picture")
            raws[path.stem] = path
    pairs = []
    for stem in sorted(pictures):
        if stem not in raws:
            continue
        raw_path = raws[stem]
        parsed = parse_crop_stem(stem) if raw_path.suffix.lower() == ".npy" else None
        scene, index = parsed if parsed is not None else (stem, None)
        pairs.append(PairFiles(scene, index, pictures[stem], raw_path))
    if not pairs:
        raise Rgb2RawError(folder, "holds no RAW + picture pairs (expected {scene}_{k}.jpg + "
                                   ".npy, or photo.dng + photo.jpg)")
    if len(pairs) < MIN_PAIRS:
        raise Rgb2RawError(folder, f"holds {len(pairs)} RAW + picture pair; calibration needs "
                                   f"at least {MIN_PAIRS}")
    return pairs


def read_dng(path: Path) -> tuple[np.ndarray, float, float]:
    """Packed RGGB DN (h, w, 4) float32 of a DNG, with its black and white levels.

    Per-channel black levels are evened out to their mean (each site is shifted by its own
    level's difference), so one black level describes the result.
    """
    try:
        import rawpy
    except ImportError:
        raise Rgb2RawError(path, RAWPY_HINT) from None
    try:
        with rawpy.imread(str(path)) as decoded:
            mosaic = np.array(decoded.raw_image_visible, dtype=np.float32)
            pattern_index = np.array(decoded.raw_pattern)
            colors = decoded.color_desc.decode("ascii", "replace")
            blacks = np.array(decoded.black_level_per_channel, dtype=np.float32)
            white = float(decoded.white_level)
    except Exception as exc:  # noqa: BLE001 - LibRaw raises many types for a bad file
        raise Rgb2RawError(path, f"unreadable DNG ({type(exc).__name__}: {exc})") from None
    if pattern_index.shape != (2, 2) or mosaic.ndim != 2:
        raise Rgb2RawError(path, "not a Bayer DNG (rgb2raw reads 2x2 colour-filter mosaics)")
    # LibRaw's colour description is e.g. "RGBG": the second green has its own index.
    pattern = "".join(colors[i] for i in pattern_index.reshape(-1))
    if sorted(pattern) != sorted("RGGB"):
        raise Rgb2RawError(path, f"colour filter {pattern!r} is not a Bayer RGGB variant")
    height, width = (mosaic.shape[0] // 2) * 2, (mosaic.shape[1] // 2) * 2
    mosaic = mosaic[:height, :width]
    black_mosaic = np.empty((2, 2), np.float32)
    for dy in range(2):
        for dx in range(2):
            black_mosaic[dy, dx] = blacks[pattern_index[dy, dx]] if blacks.size == 4 else blacks.mean()
    mean_black = float(black_mosaic.mean())
    mosaic = mosaic - np.tile(black_mosaic, (height // 2, width // 2)) + mean_black
    return bayer.pack(mosaic, pattern), mean_black, white


def _read_picture(path: Path) -> np.ndarray:
    return read_rgb(path)


def read_unit(pairs: Sequence[PairFiles], grid: tuple[int, int] | None) -> Unit:
    """Read one scene's pairs: stitched into a frame when `grid` is given and every crop is
    there with one shape, else exactly one pair (pass one)."""
    if grid is not None and len(pairs) > 1:
        order = sorted(pairs, key=lambda p: p.index if p.index is not None else -1)
        raws = [read_raw(p.raw_path, white_level=None) for p in order]
        rgbs = [_read_picture(p.rgb_path) for p in order]
        for pair, rgb, raw in zip(order, rgbs, raws, strict=True):
            _check_sizes(pair, rgb, raw)
        shapes = {raw.shape for raw in raws}
        if len(shapes) != 1:
            raise Rgb2RawError(order[0].raw_path, "crops of scene "
                                                  f"{order[0].scene} differ in size")
        crop_hw = raws[0].shape[:2]
        crops = [(p.stem, crop_slices(int(p.index or 0), grid, crop_hw)) for p in order]
        return Unit(order[0].scene, stitch_crops(rgbs, grid), stitch_crops(raws, grid), crops,
                    is_frame=True)
    (pair,) = pairs
    rgb = _read_picture(pair.rgb_path)
    if pair.raw_path.suffix.lower() == ".dng":
        raw, black, white = read_dng(pair.raw_path)
        resized = rgb.shape[:2] != (2 * raw.shape[0], 2 * raw.shape[1])
        if resized:
            rgb = cv2.resize(rgb, (2 * raw.shape[1], 2 * raw.shape[0]),
                             interpolation=cv2.INTER_AREA)
        return Unit(pair.scene, rgb, raw, [(pair.stem, (slice(None), slice(None)))],
                    black=black, white=white, resized=resized, is_frame=True)
    raw = read_raw(pair.raw_path, white_level=None)
    _check_sizes(pair, rgb, raw)
    return Unit(pair.scene, rgb, raw, [(pair.stem, (slice(None), slice(None)))])


def _check_sizes(pair: PairFiles, rgb: np.ndarray, raw: np.ndarray) -> None:
    if raw.shape[:2] != (rgb.shape[0] // 2, rgb.shape[1] // 2):
        raise Rgb2RawError(pair.raw_path, f"RAW {raw.shape[1]}x{raw.shape[0]}x4 does not match "
                                          f"its picture {rgb.shape[1]}x{rgb.shape[0]} (expected "
                                          "half the picture's size)")


def plan_units(pairs: Sequence[PairFiles], grid: tuple[int, int]) -> list[list[PairFiles]]:
    """Group pairs into units: a scene with every crop of `grid` is one frame, any other pair
    is on its own. Sorted by scene, then crop."""
    by_scene: dict[str, list[PairFiles]] = defaultdict(list)
    for pair in pairs:
        by_scene[pair.scene].append(pair)
    units: list[list[PairFiles]] = []
    wanted = set(range(grid[0] * grid[1]))
    for scene in sorted(by_scene):
        members = sorted(by_scene[scene], key=lambda p: (p.index is None, p.index or 0, p.stem))
        if {p.index for p in members} == wanted and len(members) == len(wanted):
            units.append(members)
        else:
            units.extend([pair] for pair in members)
    return units


__all__ = ["MIN_PAIRS", "RAWPY_HINT", "PairFiles", "Unit", "find_pair_files", "plan_units",
           "read_dng", "read_unit"]
