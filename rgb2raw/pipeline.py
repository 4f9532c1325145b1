"""Inference on images: the engine behind `rgb2raw infer`, usable from Python.

    rgb (H, W, 3) in [0, 1] --tiles/TTA--> backend --blend--> v (H/2, W/2, 4) in model units
      --[noise]--> DN = black + v * (white - black), rounded once, clipped --> uint16

A model is a `LoadedModel`: a `Backend` plus the `ModelContract` read from its `ModelCard`
(input range, size multiple, whole frame or tiles, output levels). `load_model` builds one from
a zoo name, a card, an ``.onnx`` file or a torch checkpoint; `infer_image` runs one image;
`infer_paths` runs files and folders (see `rgb2raw.batch`) and returns a `BatchReport`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from rgb2raw import tiling, tta
from rgb2raw.backends import LoadedModel, ModelContract, load_model
from rgb2raw.batch import (
    InputFile,
    Job,
    discover_inputs,
    file_seed,
    find_collisions,
    output_rel,
    plan_jobs,
    shard_jobs,
)
from rgb2raw.cameras import CameraProfile
from rgb2raw.errors import OutputExists, Rgb2RawError
from rgb2raw.raw import write_raw
from rgb2raw.rgb import DEFAULT_MAX_PIXELS, read_rgb
from rgb2raw.stitch import crop_slices, frame_shape, split_frame

log = logging.getLogger("rgb2raw.pipeline")

# ----------------------------------------------------------------------------- one image


@dataclass(frozen=True)
class RunSettings:
    """How to run the network on one image (not what to do with the result)."""

    #: Tile side in RGB pixels; 0 picks one from free memory; -1 runs the whole image at once.
    tile: int = 0
    #: Tile overlap in RGB pixels; None: what the model needs (its card's context, stitched
    #: exactly), or `tiling.DEFAULT_OVERLAP` with blending when the context is unknown.
    overlap: int | None = None
    #: Tiles per backend call.
    batch_size: int = 1
    #: Self-ensemble passes: 1 (off), 2, 4 or 8.
    tta: int = 1


def _tile_for(model: LoadedModel, settings: RunSettings) -> int | tuple[int, int]:
    """Tile size for `plan_tiles`: 0 (whole image) for full-frame models or --tile -1."""
    if model.contract.full_frame or settings.tile < 0:
        return 0
    fixed = getattr(model.backend, "fixed_hw", None)
    if fixed is not None:  # a graph exported for one input size: tiles of exactly that size
        return int(fixed[0]), int(fixed[1])
    if settings.tile == 0:
        bytes_per_pixel = model.contract.bytes_per_pixel or tiling.DEFAULT_BYTES_PER_PIXEL
        return tiling.auto_tile_size(model.contract.size_multiple, batch_size=settings.batch_size,
                                     bytes_per_pixel=bytes_per_pixel, workers=model.workers)
    return settings.tile


def predict(rgb: np.ndarray, model: LoadedModel, settings: RunSettings | None = None,
            *, on_tiles: Callable[[int], None] | None = None) -> np.ndarray:
    """The model's packed output for an (H, W, 3) [0, 1] image: float32 (H/2, W/2, 4), v units."""
    settings = settings or RunSettings()
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] % 2 or rgb.shape[1] % 2:
        raise ValueError(f"expected (H, W, 3) RGB with even sides, got shape {rgb.shape}")
    contract = model.contract
    if contract.full_frame and settings.tta > 1:
        raise Rgb2RawError(None, f"model {contract.name} depends on the frame position; "
                                 "--tta is not available for it")
    scale = np.float32(contract.rgb_range)

    def run_batch(batch: np.ndarray) -> np.ndarray:
        if scale != 1:
            batch = batch * scale
        return model.backend.run(batch)

    def predict_one(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        plan = tiling.plan_tiles(height, width, tile=_tile_for(model, settings),
                                 overlap=settings.overlap, size_multiple=contract.size_multiple,
                                 context=contract.context)
        return tiling.infer_tiled(image, run_batch, plan, batch_size=settings.batch_size,
                                  workers=model.workers, on_tiles=on_tiles)

    if settings.tta > 1:
        return tta.predict_tta(rgb, predict_one, settings.tta)
    return predict_one(rgb)


def to_dn(values: np.ndarray, contract: ModelContract, *, low: float | None = None) -> np.ndarray:
    """Model units -> uint16 DN: ``black + v * (white - black)``, rounded once, clipped.

    Clipped to [black, white] by default; `low` lowers the floor (noise may dip below black).
    Works through the values in cache-sized chunks, so a 12 MP image costs no full-size float
    temporary and each element is read from memory once.
    """
    black, white = contract.black_level, contract.white_level
    span, offset = np.float32(white - black), np.float32(black)
    floor = black if low is None else low
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    result = np.empty(flat.shape, dtype=np.uint16)
    scratch = np.empty(min(flat.size, _DN_CHUNK), dtype=np.float32)
    for start in range(0, flat.size, _DN_CHUNK):
        chunk = flat[start: start + _DN_CHUNK]
        dn = scratch[: chunk.size]
        np.multiply(chunk, span, out=dn)
        # NaN and inf stay NaN or inf through the sum; check the whole chunk only then.
        if not np.isfinite(dn.sum(dtype=np.float64)) and not np.isfinite(chunk).all():
            raise Rgb2RawError(None, f"model {contract.name} produced NaN or infinite values")
        dn += offset
        np.rint(dn, out=dn)
        np.clip(dn, floor, white, out=dn)
        result[start: start + chunk.size] = dn
    return result.reshape(np.shape(values))


# Elements per chunk of `to_dn`: 1 MiB of float32, well inside a core's L2 cache.
_DN_CHUNK = 1 << 18


def add_camera_noise(values: np.ndarray, contract: ModelContract, camera: CameraProfile, *,
                     iso: float | None, rng: np.random.Generator) -> np.ndarray:
    """Add the camera's shot/read noise to model-unit values, in the camera's linear signal.

    The model's levels and the camera's may differ (a model trained on challenge data outputs
    DN/1024 with the black offset included), so values go to DN, then to the camera's [0, 1]
    signal, get noise (`rgb2raw.isp.add_noise`), and come back.
    """
    from rgb2raw.isp import add_noise

    black, white = contract.black_level, contract.white_level
    span = camera.white_level - camera.black_level
    signal = (black + values * (white - black) - camera.black_level) / span
    noisy = add_noise(signal.astype(np.float32), camera, iso=iso, rng=rng, clip=False)
    dn = noisy * span + camera.black_level
    return ((dn - black) / (white - black)).astype(np.float32)


def infer_image(rgb: np.ndarray, model: LoadedModel, settings: RunSettings | None = None, *,
                camera: CameraProfile | None = None, noise: bool = False,
                iso: float | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """RAW for one (H, W, 3) [0, 1] RGB image: packed (H/2, W/2, 4) uint16 DN in model levels."""
    values = predict(rgb, model, settings)
    if not noise:
        return to_dn(values, model.contract)
    if camera is None or rng is None:
        raise ValueError("noise needs a camera profile and a random generator")
    noisy = add_camera_noise(values, model.contract, camera, iso=iso, rng=rng)
    return to_dn(noisy, model.contract, low=0.0)


# ----------------------------------------------------------------------------- files and batches

OutputFormat = Literal["packed", "unpacked", "dng"]
OUTPUT_FORMATS: tuple[str, ...] = ("packed", "unpacked", "dng")
StitchMode = Literal["auto", "off"]
Status = Literal["written", "skipped", "failed"]


@dataclass(frozen=True)
class OutputSettings:
    """What to write: format, optional noise, and what to do about existing outputs."""

    format: OutputFormat = "packed"
    noise: bool = False
    #: ISO for the noise model; None means the camera's base ISO.
    iso: float | None = None
    seed: int = 0
    skip_existing: bool = False
    overwrite: bool = False

    @property
    def suffix(self) -> str:
        return ".dng" if self.format == "dng" else ".npy"


@dataclass(frozen=True)
class FileResult:
    """The outcome for one input file."""

    path: Path
    output: Path | None
    status: Status
    problem: str = ""
    #: RGB pixels processed (0 when skipped or failed).
    pixels: int = 0
    #: The error behind a failure, when it was one of ours (`OutputExists` for a kept output).
    error: Rgb2RawError | None = None


class BatchProgress(Protocol):
    """Receives the batch's size, then one result per input file (e.g. a progress bar)."""

    def start(self, total: int) -> None: ...

    def advance(self, result: FileResult) -> None: ...


@dataclass
class BatchReport:
    """Every file's outcome and the wall time of the run."""

    results: list[FileResult]
    seconds: float
    model: str

    def count(self, status: Status) -> int:
        return sum(result.status == status for result in self.results)

    @property
    def failures(self) -> list[FileResult]:
        return [result for result in self.results if result.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def megapixels(self) -> float:
        return sum(result.pixels for result in self.results) / 1e6


def should_stitch(model: LoadedModel, camera: CameraProfile, mode: StitchMode) -> bool:
    """`auto`: stitch complete scenes when the model needs frames, or when a crop's side is not
    a multiple of the model's (each crop would be padded at its borders; the frame needs none)."""
    if mode == "off":
        return False
    multiple = tiling.tile_multiple(model.contract.size_multiple)
    return model.contract.full_frame or camera.rgb_crop % multiple != 0


def _write(path: Path, dn: np.ndarray, settings: OutputSettings, camera: CameraProfile) -> None:
    overwrite = settings.overwrite or settings.skip_existing
    if settings.format == "dng":
        from rgb2raw.dng import write_dng

        write_dng(path, dn, camera, overwrite=overwrite)
    else:
        write_raw(path, dn, layout=settings.format, overwrite=overwrite)


class _BatchRun:
    """State shared by the jobs of one `infer_paths` call."""

    def __init__(self, model: LoadedModel, camera: CameraProfile, run: RunSettings,
                 out: OutputSettings, max_pixels: int, output_for: Callable[[InputFile], Path]):
        self.model, self.camera, self.run, self.out = model, camera, run, out
        self.max_pixels = max_pixels
        self.output_for = output_for

    def existing(self, entry: InputFile) -> FileResult | None:
        """A skip or failure result when the output exists, else None (go ahead)."""
        target = self.output_for(entry)
        if not target.exists() or self.out.overwrite:
            return None
        if self.out.skip_existing:
            return FileResult(entry.path, target, "skipped")
        error = OutputExists(target)
        return FileResult(entry.path, target, "failed", str(error), error=error)

    def finish(self, entry: InputFile, values: np.ndarray) -> FileResult:
        """Noise, levels and write for one file's model output."""
        target = self.output_for(entry)
        if self.out.noise:
            rng = np.random.default_rng(file_seed(self.out.seed, entry.rel))
            values = add_camera_noise(values, self.model.contract, self.camera,
                                      iso=self.out.iso, rng=rng)
            dn = to_dn(values, self.model.contract, low=0.0)
        else:
            dn = to_dn(values, self.model.contract)
        _write(target, dn, self.out, self.camera)
        return FileResult(entry.path, target, "written", pixels=4 * values.shape[0] * values.shape[1])

    def one(self, entry: InputFile) -> list[FileResult]:
        return [self.single(entry)]

    def single(self, entry: InputFile) -> FileResult:
        early = self.existing(entry)
        if early is not None:
            return early
        rgb = read_rgb(entry.path, max_pixels=self.max_pixels)
        return self.finish(entry, predict(rgb, self.model, self.run))

    def scene(self, job: Job) -> list[FileResult]:
        pending = {entry.rel: self.existing(entry) for entry in job.files}
        todo = [entry for entry in job.files if pending[entry.rel] is None]
        if not todo:
            return [result for result in pending.values() if result is not None]
        grid = self.camera.crop_grid
        first = read_rgb(job.files[0].path, max_pixels=self.max_pixels)
        frame = np.empty(frame_shape(grid, first.shape), dtype=np.float32)
        for index, entry in enumerate(job.files):
            crop = first if index == 0 else read_rgb(entry.path, max_pixels=self.max_pixels)
            if crop.shape != first.shape:
                problem = (f"is {crop.shape[1]}x{crop.shape[0]} but {job.files[0].path.name} is "
                           f"{first.shape[1]}x{first.shape[0]}; scene {job.scene} cannot be stitched")
                if self.model.contract.full_frame:
                    raise Rgb2RawError(entry.path, problem)
                log.warning("%s: %s; running its crops one by one", entry.path, problem)
                return [self.guarded(functools.partial(self.one, e), [e])[0] for e in job.files]
            frame[crop_slices(index, grid, first.shape[:2])] = crop
        del first
        values = predict(frame, self.model, self.run)
        del frame
        pieces = dict(zip((e.rel for e in job.files), split_frame(values, grid), strict=True))
        return [pending[entry.rel] or self.finish(entry, pieces[entry.rel]) for entry in job.files]

    def guarded(self, work: Callable[[], list[FileResult]],
                files: Sequence[InputFile]) -> list[FileResult]:
        """Run `work`; any error becomes a failure of each of `files` (the batch goes on)."""
        error: Rgb2RawError | None = None
        try:
            return work()
        except Rgb2RawError as exc:
            problem, error = (exc.problem if exc.path is None else str(exc)), exc
        except MemoryError:
            problem = "out of memory (try a smaller --tile)"
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return [FileResult(entry.path, None, "failed", problem, error=error) for entry in files]


def infer_paths(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
                model: LoadedModel, camera: CameraProfile, *,
                run: RunSettings | None = None, out: OutputSettings | None = None,
                stitch: StitchMode = "auto", recursive: bool = False, pattern: str | None = None,
                shard: tuple[int, int] = (0, 1), max_pixels: int = DEFAULT_MAX_PIXELS,
                progress: BatchProgress | None = None) -> BatchReport:
    """Run `model` on files and folders, writing one RAW per image under `output`.

    `output` is a folder mirroring the inputs' sub-folders, or, for a single input file, may
    be the output file itself (``.npy``/``.dng``). Failures are collected, not raised: the
    report lists them and every other file is still processed. Problems with the run as a
    whole (no inputs, a bad output path) raise `Rgb2RawError`.
    """
    started = time.perf_counter()
    run = run or RunSettings()
    out = out or OutputSettings()
    if out.format not in OUTPUT_FORMATS:
        raise Rgb2RawError(None, f"unknown output format {out.format!r}")
    files = discover_inputs(inputs, recursive=recursive, pattern=pattern)
    if not files:
        raise Rgb2RawError(None, "no input images found")
    target = Path(output)
    single_target = (len(inputs) == 1 and Path(inputs[0]).is_file()
                     and target.suffix.lower() in (".npy", ".dng"))
    if single_target and target.suffix.lower() != out.suffix:
        raise Rgb2RawError(target, f"--format {out.format} writes {out.suffix} files")
    if not single_target and target.suffix.lower() in (".npy", ".dng") and not target.is_dir():
        raise Rgb2RawError(target, "names a file, but the inputs need an output folder")
    if not single_target and target.exists() and not target.is_dir():
        raise Rgb2RawError(target, "exists and is not a folder")

    def output_for(entry: InputFile) -> Path:
        return target if single_target else target / output_rel(entry.rel, out.suffix)

    collisions = find_collisions(files, out.suffix)
    stitching = should_stitch(model, camera, stitch)
    if model.contract.full_frame and not stitching:
        log.warning("model %s needs whole frames but --stitch off runs crops one by one",
                    model.contract.name)
    jobs = plan_jobs([f for f in files if f.rel not in collisions],
                     crops_per_frame=camera.crops_per_frame, stitch=stitching,
                     require_frames=model.contract.full_frame)
    jobs += [Job((f,), problem=collisions[f.rel]) for f in files if f.rel in collisions]
    jobs = shard_jobs(jobs, *shard)
    if progress is not None:
        progress.start(sum(len(job.files) for job in jobs))
    state = _BatchRun(model, camera, run, out, max_pixels, output_for)
    results: list[FileResult] = []
    for job in jobs:
        if job.problem is not None:
            job_results = [FileResult(f.path, None, "failed", job.problem) for f in job.files]
        elif job.scene is not None:
            job_results = state.guarded(functools.partial(state.scene, job), job.files)
        else:
            job_results = state.guarded(functools.partial(state.one, job.files[0]), job.files)
        for result in job_results:
            results.append(result)
            if progress is not None:
                progress.advance(result)
    return BatchReport(results, time.perf_counter() - started, model.description)


__all__ = [
    "OUTPUT_FORMATS",
    "BatchProgress",
    "BatchReport",
    "FileResult",
    "LoadedModel",
    "ModelContract",
    "OutputFormat",
    "OutputSettings",
    "RunSettings",
    "StitchMode",
    "add_camera_noise",
    "infer_image",
    "infer_paths",
    "load_model",
    "predict",
    "should_stitch",
    "to_dn",
]
