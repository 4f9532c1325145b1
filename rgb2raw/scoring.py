"""Score predicted RAW `.npy` files against ground truth, by stem, like CodaLab but faster.

The official scorer pairs files by sorted order, so one missing file silently shifts every
pair; here files are paired by stem (``10_0.npy`` with ``10_0.npy``) and missing or extra
files are an error unless explicitly allowed. The numbers themselves follow the official
semantics exactly (see `rgb2raw.metrics`), including its checks: a value below 0, above the
white level, or NaN rejects the file.

Predictions may be a folder or a submission `.zip` (read in memory, never unpacked to disk).
A zip whose `.npy` files sit in more than one folder is refused unless allowed: the official
program reads one folder, so scoring them as one set would not be what CodaLab prints.

Images are scored on a thread pool: the metrics (C extension or OpenCV) and numpy release
the GIL, so each worker thread keeps a core busy. Threads, not processes: fork-based pools
have deadlocked inside OpenCV. Each thread owns the memory its files are read into (and, on
the OpenCV path, its SSIM scratch planes), so the steady state allocates nothing per image
(fresh pages cost more than the arithmetic on some virtual machines).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from rgb2raw import metrics
from rgb2raw.discovery import is_junk_name, list_files
from rgb2raw.errors import InvalidParameter, Rgb2RawError
from rgb2raw.metrics import PSNR_IDENTICAL, SSIM_CROP, SsimWorkspace, psnr, ssim
from rgb2raw.raw import CHALLENGE_WHITE_LEVEL, ReusableBuffer, check_raw_values, load_npy, read_npy

ProgressCallback = Callable[[int, int], None]
# Names list in error messages stop after this many, with "and N more".
_MAX_LISTED = 8


@dataclass(frozen=True)
class ImageScore:
    """The official PSNR (dB) and SSIM of one prediction."""

    stem: str
    psnr: float
    ssim: float


@dataclass(frozen=True)
class ScoreResult:
    """Per-image scores (sorted by stem) and their means, plus what could not be paired."""

    per_image: tuple[ImageScore, ...]
    missing: tuple[str, ...] = ()  # ground-truth stems with no prediction
    extra: tuple[str, ...] = ()  # prediction stems with no ground truth
    white_level: float = CHALLENGE_WHITE_LEVEL

    @property
    def count(self) -> int:
        return len(self.per_image)

    @property
    def psnr(self) -> float:
        """Mean PSNR over images; 999 entries for identical pairs count, as officially."""
        return float(np.mean([s.psnr for s in self.per_image]))

    @property
    def ssim(self) -> float:
        return float(np.mean([s.ssim for s in self.per_image]))

    def worst_first(self, top: int | None = None) -> list[ImageScore]:
        """Images from the lowest PSNR up (SSIM breaks ties), at most `top` of them."""
        ranked = sorted(self.per_image, key=lambda s: (s.psnr, s.ssim, s.stem))
        return ranked if top is None else ranked[:top]

    def to_dict(self) -> dict[str, object]:
        """The JSON shape `rgb2raw score --json` writes."""
        return {
            "psnr": self.psnr,
            "ssim": self.ssim,
            "count": self.count,
            "per_image": {s.stem: {"psnr": s.psnr, "ssim": s.ssim} for s in self.per_image},
        }


def load_npy_bytes(data: bytes, label: str, *, reuse: ReusableBuffer | None = None) -> np.ndarray:
    """Load a `.npy` held in memory (a zip member), refusing pickles; errors name `label`."""
    return read_npy(io.BytesIO(data), label, reuse=reuse)


@dataclass
class NpySource:
    """A set of `.npy` files keyed by stem: a folder, or the members of a zip."""

    location: Path
    entries: dict[str, str]  # stem -> file path (folder) or member name (zip)
    _zip: zipfile.ZipFile | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def label(self, stem: str) -> str:
        """How errors name one file: its path, or ``archive.zip:member``."""
        if self._zip is None:
            return self.entries[stem]
        return f"{self.location}:{self.entries[stem]}"

    def load(self, stem: str, reuse: ReusableBuffer | None = None) -> np.ndarray:
        """The array stored for `stem`; with `reuse`, valid until that buffer's next read."""
        if self._zip is None:
            return load_npy(self.entries[stem], reuse=reuse)
        member = self._zip.getinfo(self.entries[stem])
        try:
            # Streamed, with the member's declared size, so a header that claims more than
            # the member holds is refused before anything is allocated or decompressed.
            # zipfile serialises the reads of the shared file, so decompression runs in
            # parallel; opening and closing are ours to serialise (zipfile counts the
            # shared file's users without a lock).
            with self._lock:
                stream = self._zip.open(member)
            try:
                return read_npy(stream, self.label(stem), reuse=reuse, size=member.file_size)
            finally:
                with self._lock:
                    stream.close()
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                RuntimeError) as exc:  # RuntimeError: an encrypted member
            raise Rgb2RawError(self.label(stem), f"cannot be read from the zip ({exc})") from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _folder_entries(location: Path) -> dict[str, str]:
    try:
        files = list_files(location, suffixes=(".npy",))
    except OSError as exc:
        raise Rgb2RawError(location, f"cannot be listed ({exc.strerror or exc})") from None
    return {path.stem: str(path) for path in files}


def open_source(path: str | os.PathLike[str], *, allow_multiple_folders: bool = False) -> NpySource:
    """Index a folder's `*.npy` files (not recursive) or a zip's `.npy` members by stem.

    A zip's members must all sit in one folder (or all at its top), as in a submission,
    unless `allow_multiple_folders`; stems must then still be unique across folders.
    """
    location = Path(path)
    if location.is_dir():
        return NpySource(location, _folder_entries(location))
    if not location.exists():
        raise Rgb2RawError(location, "no such file or folder")
    try:
        if not zipfile.is_zipfile(location):
            raise Rgb2RawError(location, "is neither a folder nor a .zip file")
        archive = zipfile.ZipFile(location)
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise Rgb2RawError(location, f"not a readable zip ({exc})") from None
    entries: dict[str, str] = {}
    for name in sorted(names):
        if name.endswith("/") or is_junk_name(name) or not name.lower().endswith(".npy"):
            continue
        stem = PurePosixPath(name).stem
        if stem in entries:
            archive.close()
            raise Rgb2RawError(location, f"two members named {stem}.npy ({entries[stem]}, {name})")
        entries[stem] = name
    folders = sorted({str(PurePosixPath(name).parent) for name in entries.values()})
    if len(folders) > 1 and not allow_multiple_folders:
        archive.close()
        shown = _listing([f"{f}/" if f != "." else "(top level)" for f in folders])
        raise Rgb2RawError(location, f"holds .npy files in {len(folders)} folders ({shown}); "
                                     "the official scorer reads one",
                           param="allow_multiple_folders", hint="{param} scores them as one set")
    return NpySource(location, entries, archive)


def _listing(stems: list[str]) -> str:
    shown = ", ".join(stems[:_MAX_LISTED])
    more = len(stems) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def pair_stems(pred: NpySource, gt: NpySource) -> tuple[list[str], list[str], list[str]]:
    """(paired, missing, extra) stems, each sorted."""
    pred_stems, gt_stems = set(pred.entries), set(gt.entries)
    return (sorted(pred_stems & gt_stems), sorted(gt_stems - pred_stems),
            sorted(pred_stems - gt_stems))


def check_scorable(array: np.ndarray, label: str, white_level: float) -> None:
    """Raise unless the official scorer would accept `array`: real numbers in [0, white]."""
    kind = array.dtype.kind
    if kind not in "uif":
        raise Rgb2RawError(label, f"dtype {array.dtype} is not an integer or float type")
    if array.ndim not in (2, 3) or min(array.shape[:2]) <= 2 * SSIM_CROP or array.size == 0:
        raise Rgb2RawError(label, f"shape {array.shape} is not an (H, W[, C]) image")
    if kind == "u":  # the usual uint16: one pass, nothing can be negative
        if array.max() <= white_level:
            return
        check_raw_values(array, label, max_value=white_level)
    low, high = array.min(), array.max()
    # `not (...)` so that NaN (which compares False) is rejected too, as officially.
    if not (low >= 0 and high <= white_level):
        check_raw_values(array, label, max_value=white_level)  # raises with the precise problem
        raise Rgb2RawError(label, f"values outside [0, {white_level:g}]")


_CHUNK = 4  # images per worker task: a short tail when the last tasks run


class _ThreadState:
    """What one scoring thread reuses from image to image."""

    def __init__(self) -> None:
        self.pred_memory = ReusableBuffer()
        self.gt_memory = ReusableBuffer()
        self.workspace: SsimWorkspace | None = None


class _Scorer:
    """Scores one stem at a time, with per-thread scratch memory."""

    def __init__(self, pred: NpySource, gt: NpySource, white_level: float) -> None:
        self.pred, self.gt, self.white_level = pred, gt, white_level
        self._local = threading.local()

    def __call__(self, stem: str) -> ImageScore:
        state: _ThreadState | None = getattr(self._local, "state", None)
        if state is None:
            state = self._local.state = _ThreadState()
        prediction = self.pred.load(stem, state.pred_memory)
        truth = self.gt.load(stem, state.gt_memory)
        check_scorable(prediction, self.pred.label(stem), self.white_level)
        check_scorable(truth, self.gt.label(stem), self.white_level)
        if prediction.shape != truth.shape:
            raise Rgb2RawError(self.pred.label(stem),
                               f"shape {prediction.shape} differs from the ground truth's {truth.shape}")
        workspace = state.workspace
        if metrics.native is None and (workspace is None or workspace.shape != truth.shape[:2]):
            workspace = state.workspace = SsimWorkspace(truth.shape[0], truth.shape[1])
        image_psnr = psnr(prediction, truth, data_range=self.white_level)
        image_ssim = ssim(prediction, truth, data_range=self.white_level, workspace=workspace)
        return ImageScore(stem, image_psnr, image_ssim)


@contextlib.contextmanager
def _opencv_threads(count: int) -> Iterator[None]:
    """Limit OpenCV's own thread pool while our workers run (avoids oversubscription).

    Only the OpenCV path of `metrics` needs this; with the C extension OpenCV is not even
    imported.
    """
    if metrics.native is not None:
        yield
        return
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def score(pred: str | os.PathLike[str], gt: str | os.PathLike[str], *,
          white_level: float = CHALLENGE_WHITE_LEVEL, allow_missing: bool = False,
          allow_multiple_folders: bool = False, workers: int | None = None,
          on_progress: ProgressCallback | None = None) -> ScoreResult:
    """Score a prediction folder or zip against a ground-truth folder, pairing by stem.

    Raises Rgb2RawError for missing/extra files (unless `allow_missing`), a zip with `.npy`
    files in several folders (unless `allow_multiple_folders`), unreadable files, mismatched
    shapes or values outside [0, white_level]; the first bad file in stem order is the one
    named. `on_progress(done, total)` is called after each image.
    """
    if not (white_level > 0 and white_level < float("inf")):
        raise InvalidParameter("white_level", f"must be a positive number, got {white_level}")
    pred_source = open_source(pred, allow_multiple_folders=allow_multiple_folders)
    try:
        gt_source = open_source(gt, allow_multiple_folders=allow_multiple_folders)
        try:
            return _score_sources(pred_source, gt_source, white_level, allow_missing,
                                  workers or default_workers(), on_progress)
        finally:
            gt_source.close()
    finally:
        pred_source.close()


def _score_sources(pred: NpySource, gt: NpySource, white_level: float, allow_missing: bool,
                   workers: int, on_progress: ProgressCallback | None) -> ScoreResult:
    paired, missing, extra = pair_stems(pred, gt)
    if not gt.entries:
        raise Rgb2RawError(gt.location, "holds no .npy files")
    if (missing or extra) and not allow_missing:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing ({_listing(missing)})")
        if extra:
            problems.append(f"{len(extra)} extra ({_listing(extra)})")
        raise Rgb2RawError(pred.location, "; ".join(problems) + f" compared with {gt.location}",
                           param="allow_missing", hint="{param} scores the rest")
    if not paired:
        raise Rgb2RawError(pred.location, f"no prediction matches a file in {gt.location}")
    scorer = _Scorer(pred, gt, white_level)
    scores: list[ImageScore] = []
    if workers <= 1:
        for stem in paired:
            scores.append(scorer(stem))
            if on_progress:
                on_progress(len(scores), len(paired))
    else:
        # Small runs of consecutive stems per task: less scheduling and GIL traffic than
        # one task per image, and still a steady progress bar.
        chunks = [paired[start:start + _CHUNK] for start in range(0, len(paired), _CHUNK)]
        with _opencv_threads(1), ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                # map() yields in submission order, so the first bad file by stem is raised.
                for chunk_scores in pool.map(lambda chunk: [scorer(stem) for stem in chunk], chunks):
                    scores.extend(chunk_scores)
                    if on_progress:
                        on_progress(len(scores), len(paired))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return ScoreResult(tuple(scores), tuple(missing), tuple(extra), white_level)


__all__ = [
    "ImageScore", "NpySource", "PSNR_IDENTICAL", "ScoreResult", "check_scorable", "default_workers",
    "is_junk_name", "load_npy_bytes", "open_source", "pair_stems", "score",
]
