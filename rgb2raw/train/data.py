"""Training data: the challenge layout with a scene-disjoint split, and synthetic pairs.

Both datasets are plain map-style datasets (``len`` and ``[index]``; torch's DataLoader takes
them as they are) returning ``(rgb, target)`` float32 CHW arrays: RGB in [0, 1] and the packed
RAW normalised by `Levels`. All randomness of item ``i`` in epoch ``e`` comes from a generator
seeded with ``(seed, e, i)``, so a batch is the same whatever process or worker builds it and
whenever it is built: the basis of exact `--resume` and of identical data under DDP.

Corrupt pairs are found up front by `scan_pairs` (both files fully decoded and checked), so
the dataset is fixed before training starts and the user's `--on-bad-pair` choice applies once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from rgb2raw.cameras import CameraProfile
from rgb2raw.discovery import list_files
from rgb2raw.errors import Rgb2RawError
from rgb2raw.levels import Levels
from rgb2raw.raw import read_raw
from rgb2raw.rgb import IMAGE_SUFFIXES, read_rgb
from rgb2raw.stitch import parse_crop_stem
from rgb2raw.train.augment import center_crop_pair, random_pair_crop
from rgb2raw.train.simulate import DEFAULT_RANGES, SimulationRanges, simulate_pair


@dataclass(frozen=True)
class Pair:
    """One challenge training pair: the JPEG, its RAW `.npy`, and the scene it was cut from."""

    scene: str
    rgb_path: Path
    raw_path: Path


@dataclass(frozen=True)
class BadPair:
    """A pair that cannot be used, and why (reported whatever the policy)."""

    path: Path
    problem: str


def scene_of(stem: str) -> str:
    """The scene id of a crop: ``"10"`` for ``10_47``; a stem without ``_k`` is its own scene."""
    parsed = parse_crop_stem(stem)  # the one reading of `{scene}_{k}` (rgb2raw.stitch)
    return stem if parsed is None else parsed[0]


def find_pairs(data_dir: str | Path) -> tuple[list[Pair], list[BadPair]]:
    """The pairs of a challenge-layout folder (``DATA/train`` if it exists, else ``DATA``).

    An image without its ``.npy`` (or a ``.npy`` without its image) is a bad pair.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise Rgb2RawError(root, "no such folder")
    folder = root / "train" if (root / "train").is_dir() else root
    images = {p.stem: p for p in list_files(folder, suffixes=IMAGE_SUFFIXES)}
    raws = {p.stem: p for p in list_files(folder, suffixes=(".npy",))}
    pairs = [Pair(scene_of(stem), images[stem], raws[stem]) for stem in sorted(images)
             if stem in raws]
    bad = [BadPair(images[s], "no matching .npy") for s in sorted(images) if s not in raws]
    bad += [BadPair(raws[s], "no matching image") for s in sorted(raws) if s not in images]
    if not pairs and not bad:
        raise Rgb2RawError(folder, "holds no image + .npy training pairs")
    return pairs, bad


def split_by_scene(pairs: Sequence[Pair], val_fraction: float, seed: int
                   ) -> tuple[list[Pair], list[Pair]]:
    """Split into (train, validation) so that no scene has crops on both sides.

    The scenes are shuffled with `seed` and the first ``round(val_fraction * n_scenes)`` (at
    least one when there are two or more scenes and the fraction is positive) go to validation.
    """
    scenes = sorted({pair.scene for pair in pairs})
    order = np.random.default_rng(seed).permutation(len(scenes))
    n_val = int(round(val_fraction * len(scenes)))
    if val_fraction > 0 and len(scenes) >= 2:
        n_val = min(max(n_val, 1), len(scenes) - 1)
    held_out = {scenes[i] for i in order[:n_val]}
    train = [pair for pair in pairs if pair.scene not in held_out]
    val = [pair for pair in pairs if pair.scene in held_out]
    return train, val


def load_pair(pair: Pair, *, min_side: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Decode and check one pair: RGB uint8 (2H, 2W, 3) and packed RAW in DN (H, W, 4).

    Raises Rgb2RawError naming the bad file: unreadable or corrupt image or RAW, sizes that do
    not match, or an image smaller than `min_side` RGB pixels.
    """
    rgb = read_rgb(pair.rgb_path)
    raw = read_raw(pair.raw_path, white_level=None)
    if raw.shape[:2] != (rgb.shape[0] // 2, rgb.shape[1] // 2):
        raise Rgb2RawError(pair.raw_path, f"RAW {raw.shape[1]}x{raw.shape[0]}x4 does not match "
                                          f"its image {rgb.shape[1]}x{rgb.shape[0]} (expected "
                                          "half the image's size)")
    if min(rgb.shape[:2]) < min_side:
        raise Rgb2RawError(pair.rgb_path, f"{rgb.shape[1]}x{rgb.shape[0]} is smaller than the "
                                          f"{min_side}-pixel training crop")
    return np.rint(rgb * 255.0).astype(np.uint8), raw


def scan_pairs(pairs: Sequence[Pair], *, min_side: int = 2
               ) -> tuple[list[int], list[BadPair]]:
    """Decode every pair once; return the indices of usable ones and the bad ones with reasons."""
    good: list[int] = []
    bad: list[BadPair] = []
    for index, pair in enumerate(pairs):
        try:
            load_pair(pair, min_side=min_side)
        except Rgb2RawError as exc:
            bad.append(BadPair(Path(exc.path or pair.rgb_path), exc.problem))
        else:
            good.append(index)
    return good, bad


def to_chw(rgb_u8: np.ndarray, raw_dn: np.ndarray, levels: Levels
           ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 RGB and RAW in DN -> float32 CHW network input and normalised target."""
    rgb = np.ascontiguousarray(rgb_u8.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
    target = np.ascontiguousarray(levels.normalise(raw_dn).transpose(2, 0, 1))
    return rgb, target


class ChallengeDataset:
    """Random even-offset crops (with Bayer-correct augmentation) of challenge pairs.

    With ``crop=None`` each item is the whole pair centre-cropped to a multiple of
    `size_multiple` (validation). `cache` keeps decoded pairs in memory (uint8 + float32).
    """

    def __init__(self, pairs: Sequence[Pair], levels: Levels, *, crop: int | None, seed: int,
                 augment: bool = True, size_multiple: int = 2, cache: bool = False) -> None:
        self.pairs = list(pairs)
        self.levels = levels
        self.crop = crop
        self.seed = seed
        self.augment = augment
        self.size_multiple = size_multiple
        self.epoch = 0
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def set_epoch(self, epoch: int) -> None:
        """Items of a new epoch get new crops and transforms (still seeded)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        loaded = load_pair(self.pairs[index])
        if self._cache is not None:
            self._cache[index] = loaded
        return loaded

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, raw = self._load(index)
        if self.crop is None:
            rgb, raw = center_crop_pair(rgb, raw, self.size_multiple)
        else:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            rgb, raw = random_pair_crop(rgb, raw, self.crop, rng, augment=self.augment)
        return to_chw(rgb, raw, self.levels)


def find_photos(photos_dir: str | Path) -> list[Path]:
    """The images directly inside `photos_dir`, sorted by name."""
    folder = Path(photos_dir)
    if not folder.is_dir():
        raise Rgb2RawError(folder, "no such folder")
    photos = list_files(folder, suffixes=IMAGE_SUFFIXES)
    if not photos:
        raise Rgb2RawError(folder, "holds no images (jpg, png, tif, bmp)")
    return photos


def split_photos(photos: Sequence[Path], val_fraction: float, seed: int
                 ) -> tuple[list[Path], list[Path]]:
    """Photo-disjoint split: every photo is a scene of its own."""
    pairs = [Pair(str(p), p, p) for p in photos]
    train, val = split_by_scene(pairs, val_fraction, seed)
    return [p.rgb_path for p in train], [p.rgb_path for p in val]


def load_photo(path: Path, *, max_side: int, min_side: int) -> np.ndarray:
    """Read a photo as uint8 RGB, shrunk (area filter) so its longer side is <= `max_side`.

    Shrinking also averages away the source's own demosaic and compression artefacts.
    """
    rgb = read_rgb(path)
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(2, int(width * scale)) & ~1, max(2, int(height * scale)) & ~1)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if min(rgb.shape[:2]) < min_side:
        raise Rgb2RawError(path, f"{rgb.shape[1]}x{rgb.shape[0]} is smaller than the "
                                 f"{min_side}-pixel training crop")
    return np.rint(rgb * 255.0).astype(np.uint8)


def scan_photos(photos: Sequence[Path], *, max_side: int, min_side: int
                ) -> tuple[list[np.ndarray], list[Path], list[BadPair]]:
    """Load every photo once: (images, their paths, bad photos with reasons)."""
    images: list[np.ndarray] = []
    kept: list[Path] = []
    bad: list[BadPair] = []
    for path in photos:
        try:
            images.append(load_photo(path, max_side=max_side, min_side=min_side))
            kept.append(path)
        except Rgb2RawError as exc:
            bad.append(BadPair(path, exc.problem))
    return images, kept, bad


class SyntheticDataset:
    """Pairs simulated on the fly from photos: random crop and transform, then `simulate_pair`.

    The epoch has `length` items; item i uses photo ``i % n_photos``. For a fixed set (the
    validation or benchmark pairs), pass ``fixed=True``: items then ignore the epoch.
    """

    def __init__(self, photos: Sequence[np.ndarray], camera: CameraProfile, levels: Levels, *,
                 crop: int, length: int, seed: int, fixed: bool = False,
                 ranges: SimulationRanges = DEFAULT_RANGES) -> None:
        if not photos:
            raise ValueError("a synthetic dataset needs at least one photo")
        self.photos = list(photos)
        self.camera = camera
        self.levels = levels
        self.crop = crop
        self.length = length
        self.seed = seed
        self.fixed = fixed
        self.ranges = ranges
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def make_pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The (JPEG uint8, RAW DN) pair of item `index` (deterministic)."""
        epoch = 0 if self.fixed else self.epoch
        rng = np.random.default_rng([self.seed, epoch, index])
        photo = self.photos[index % len(self.photos)]
        side = min(self.crop, *photo.shape[:2]) & ~1
        top = int(rng.integers(0, photo.shape[0] - side + 1))
        left = int(rng.integers(0, photo.shape[1] - side + 1))
        patch = photo[top : top + side, left : left + side]
        op = int(rng.integers(0, 8))
        if op & 4:
            patch = patch.transpose(1, 0, 2)
        if op & 2:
            patch = patch[::-1]
        if op & 1:
            patch = patch[:, ::-1]
        jpeg, raw_dn, _ = simulate_pair(np.ascontiguousarray(patch), self.camera, rng, self.ranges)
        return jpeg, raw_dn

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        jpeg, raw_dn = self.make_pair(index)
        return to_chw(jpeg, raw_dn, self.levels)
