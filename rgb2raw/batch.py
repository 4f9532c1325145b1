"""Many images: skip/overwrite, stitching, and the run loop of `infer_paths`.

What to run is planned by `rgb2raw.jobs` (discovery, scenes, shards, output paths, seeds).
`infer_paths` is then one plain loop over the jobs. Around it, a reader thread decodes the
next job while the current one computes, and a writer thread quantises and writes finished
outputs: decode, compute and write overlap, and at most `READ_AHEAD` decoded jobs and
`WRITE_BEHIND` unwritten outputs exist at once, so memory stays flat however many files.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Protocol

from rgb2raw.errors import OutputExists, Rgb2RawError
from rgb2raw.jobs import (
    InputFile,
    Job,
    discover_inputs,
    file_seed,
    find_collisions,
    output_rel,
    plan_jobs,
    shard_jobs,
)
from rgb2raw.rgb import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    import numpy as np

    from rgb2raw.cameras import CameraProfile
    from rgb2raw.loading import LoadedModel
    from rgb2raw.pipeline import RunSettings

log = logging.getLogger("rgb2raw.batch")


# ------------------------------------------------------------------------------ the run

OutputFormat = Literal["packed", "unpacked", "dng"]
OUTPUT_FORMATS: tuple[str, ...] = ("packed", "unpacked", "dng")
StitchMode = Literal["auto", "off"]
Status = Literal["written", "skipped", "failed"]
#: Jobs decoded ahead of the one computing, and outputs computed but not yet written.
READ_AHEAD = 1
WRITE_BEHIND = 2


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


#: An input file's image if it was decoded ahead of the run, else None (see `infer_paths`).
EarlyDecode = Callable[[Path], "np.ndarray | None"]


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
    from rgb2raw.tiling import tile_multiple

    if mode == "off":
        return False
    multiple = tile_multiple(model.contract.size_multiple)
    return model.contract.full_frame or camera.rgb_crop % multiple != 0


@dataclass
class _Unit:
    """What one forward pass computes: an image and the files its output goes to (a stitched
    frame's output is split back into its crops), or the problem that stopped its decoding."""

    files: tuple[InputFile, ...]
    image: np.ndarray | None = None
    problem: str | None = None


def _describe(exc: BaseException) -> str:
    """One line for a failure of one job (the batch goes on)."""
    if isinstance(exc, Rgb2RawError):
        return exc.problem if exc.path is None else str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (try smaller tiles)"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _ours(exc: BaseException) -> Rgb2RawError | None:
    return exc if isinstance(exc, Rgb2RawError) else None


class _Job:
    """How to decode, compute and write the files of one `infer_paths` call."""

    def __init__(self, model: LoadedModel, camera: CameraProfile, run: RunSettings,
                 out: OutputSettings, max_pixels: int, output_for: Callable[[InputFile], Path],
                 early: EarlyDecode | None = None):
        self.model, self.camera, self.run, self.out = model, camera, run, out
        self.max_pixels = max_pixels
        self.output_for = output_for
        self.early = early

    def existing(self, entry: InputFile) -> FileResult | None:
        """A skip or failure result when the output exists, else None (go ahead)."""
        target = self.output_for(entry)
        if not target.exists() or self.out.overwrite:
            return None
        if self.out.skip_existing:
            return FileResult(entry.path, target, "skipped")
        error = OutputExists(target)
        return FileResult(entry.path, target, "failed", str(error), error=error)

    def read(self, entry: InputFile) -> np.ndarray:
        """The image as decoded (uint8 for a JPEG): the engine converts it tile by tile."""
        from rgb2raw.rgb import read_rgb

        decoded = None if self.early is None else self.early(entry.path)
        if decoded is not None:  # decoded by the caller while the engine was loading
            return decoded
        return read_rgb(entry.path, max_pixels=self.max_pixels, as_float=False)

    def decode(self, job: Job) -> list[_Unit]:
        """The units of `job` (reader thread): one image, a stitched frame, or the crops of a
        scene that cannot be stitched, one by one."""
        if job.scene is None:
            return [_Unit(job.files, self.read(job.files[0]))]
        import numpy as np

        from rgb2raw.rgb import to_unit
        from rgb2raw.stitch import crop_slices, frame_shape

        grid = self.camera.crop_grid
        first = self.read(job.files[0])
        frame = np.empty(frame_shape(grid, first.shape), dtype=first.dtype)
        for index, entry in enumerate(job.files):
            crop = first if index == 0 else self.read(entry)
            if crop.dtype != frame.dtype:  # e.g. one 16-bit PNG among 8-bit crops
                frame = frame if frame.dtype == np.float32 else to_unit(frame)
                crop = to_unit(crop)
            if crop.shape != first.shape:
                problem = (f"is {crop.shape[1]}x{crop.shape[0]} but {job.files[0].path.name} is "
                           f"{first.shape[1]}x{first.shape[0]}; scene {job.scene} cannot be stitched")
                if self.model.contract.full_frame:
                    raise Rgb2RawError(entry.path, problem)
                log.warning("%s: %s; running its crops one by one", entry.path, problem)
                return [self.decode_one(e) for e in job.files]
            frame[crop_slices(index, grid, first.shape[:2])] = crop
        return [_Unit(job.files, frame)]

    def decode_one(self, entry: InputFile) -> _Unit:
        try:
            return _Unit((entry,), self.read(entry))
        except Exception as exc:  # noqa: BLE001 - one bad crop must not stop its scene
            return _Unit((entry,), problem=_describe(exc))

    def compute(self, unit: _Unit) -> list[np.ndarray]:
        """The model's output for each file of `unit` (main thread): model units, or uint16
        DN already when no noise is to be added (`pipeline.predict_dn`)."""
        from rgb2raw.pipeline import predict, predict_dn
        from rgb2raw.stitch import split_frame

        assert unit.image is not None
        known, box = True, None  # several files: one stitched frame
        if len(unit.files) == 1 and self.model.contract.shading is not None:
            from rgb2raw.stitch import shading_place

            known, box = shading_place(unit.files[0].path.stem, unit.image.shape[:2], self.camera)
        infer = predict if self.out.noise else predict_dn
        values = infer(unit.image, self.model, self.run, box=box, lens_shading=known)
        unit.image = None  # the decoded input is not needed any more
        if len(unit.files) == 1:
            return [values]
        return split_frame(values, self.camera.crop_grid)

    def write(self, entry: InputFile, values: np.ndarray) -> FileResult:
        """Noise, levels and write for one file's model output (writer thread)."""
        import numpy as np

        from rgb2raw.pipeline import add_camera_noise, quantise

        try:
            target = self.output_for(entry)
            contract = self.model.contract
            if self.out.noise:
                rng = np.random.default_rng(file_seed(self.out.seed, entry.rel))
                values = add_camera_noise(values, contract, self.camera, iso=self.out.iso,
                                          rng=rng)
                dn = quantise(values, contract, noisy=True)
            else:  # quantised by `compute`
                dn = values
            _write(target, dn, self.out, self.camera)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            return FileResult(entry.path, None, "failed", _describe(exc), error=_ours(exc))
        return FileResult(entry.path, target, "written", pixels=4 * values.shape[0] * values.shape[1])


def _write(path: Path, dn: np.ndarray, settings: OutputSettings, camera: CameraProfile) -> None:
    overwrite = settings.overwrite or settings.skip_existing
    if settings.format == "dng":
        from rgb2raw.dng import write_dng

        write_dng(path, dn, camera, overwrite=overwrite)
    else:
        from rgb2raw.raw import write_raw

        write_raw(path, dn, layout=settings.format, overwrite=overwrite)


def _check_output(inputs: Sequence[str | os.PathLike[str]], target: Path,
                  out: OutputSettings) -> bool:
    """Whether `target` is the output file of a single input (else a folder); raises when the
    output path cannot work."""
    single = (len(inputs) == 1 and Path(inputs[0]).is_file()
              and target.suffix.lower() in (".npy", ".dng"))
    if single and target.suffix.lower() != out.suffix:
        raise Rgb2RawError(target, f"the {out.format} format writes {out.suffix} files")
    if not single and target.suffix.lower() in (".npy", ".dng") and not target.is_dir():
        raise Rgb2RawError(target, "names a file, but the inputs need an output folder")
    if not single and target.exists() and not target.is_dir():
        raise Rgb2RawError(target, "exists and is not a folder")
    return single


def infer_paths(inputs: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
                model: LoadedModel, camera: CameraProfile, *,
                run: RunSettings | None = None, out: OutputSettings | None = None,
                stitch: StitchMode = "auto", recursive: bool = False, pattern: str | None = None,
                shard: tuple[int, int] = (0, 1), max_pixels: int = DEFAULT_MAX_PIXELS,
                progress: BatchProgress | None = None,
                early_decode: EarlyDecode | None = None) -> BatchReport:
    """Run `model` on files and folders, writing one RAW per image under `output`.

    `output` is a folder mirroring the inputs' sub-folders, or, for a single input file, may
    be the output file itself (``.npy``/``.dng``). Failures are collected, not raised: the
    report lists them and every other file is still processed. Problems with the run as a
    whole (no inputs, a bad output path) raise `Rgb2RawError`.

    `early_decode(path)` gives a file's image when the caller has decoded it already (with
    ``read_rgb(path, max_pixels=max_pixels, as_float=False)``, e.g. while the model loaded),
    else None; it may raise what that decoding raised.
    """
    from rgb2raw.pipeline import RunSettings

    started = time.perf_counter()
    run = run or RunSettings()
    out = out or OutputSettings()
    if out.format not in OUTPUT_FORMATS:
        raise Rgb2RawError(None, f"unknown output format {out.format!r}")
    files = discover_inputs(inputs, recursive=recursive, pattern=pattern)
    if not files:
        where = None if len(inputs) != 1 else inputs[0]
        raise Rgb2RawError(where, "holds no input images" if where is not None
                           else "no input images found")
    target = Path(output)
    single_target = _check_output(inputs, target, out)

    def output_for(entry: InputFile) -> Path:
        return target if single_target else target / output_rel(entry.rel, out.suffix)

    collisions = find_collisions(files, out.suffix)
    stitching = should_stitch(model, camera, stitch)
    if model.contract.full_frame and not stitching:
        log.warning("model %s needs whole frames but stitching is off: crops run one by one",
                    model.contract.name)
    jobs = plan_jobs([f for f in files if f.rel not in collisions],
                     crops_per_frame=camera.crops_per_frame, stitch=stitching,
                     require_frames=model.contract.full_frame, crop_size=camera.rgb_crop)
    jobs += [Job((f,), problem=collisions[f.rel]) for f in files if f.rel in collisions]
    jobs = shard_jobs(jobs, *shard)
    if progress is not None:
        progress.start(sum(len(job.files) for job in jobs))
    work = _Job(model, camera, run, out, max_pixels, output_for, early_decode)
    results: list[FileResult] = []
    # Each file's outcome in input order: a result, or the write that will produce it.
    outcomes: deque[FileResult | Future[FileResult]] = deque()

    def settle(keep: int) -> None:
        """Collect finished outcomes in order until at most `keep` writes are pending."""
        while outcomes and (isinstance(outcomes[0], FileResult)
                            or sum(isinstance(o, Future) for o in outcomes) > keep):
            head = outcomes.popleft()
            result = head if isinstance(head, FileResult) else head.result()
            results.append(result)
            if progress is not None:
                progress.advance(result)

    def decode(job: Job) -> tuple[dict[PurePosixPath, FileResult], list[_Unit]]:
        early = {entry.rel: found for entry in job.files
                 if (found := work.existing(entry)) is not None}
        if job.problem is not None or len(early) == len(job.files):
            return early, []
        return early, work.decode(job)

    with ThreadPoolExecutor(1, thread_name_prefix="rgb2raw-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="rgb2raw-write") as writer:
        decoded: deque[tuple[Job, Future[tuple[dict[PurePosixPath, FileResult], list[_Unit]]]]]
        decoded = deque()
        queue = iter(jobs)
        for job in itertools.islice(queue, READ_AHEAD):
            decoded.append((job, reader.submit(decode, job)))
        model.backend.ready()  # a model that cannot open fails the run, not each file
        while decoded:
            job, pending = decoded.popleft()
            following = next(queue, None)
            if following is not None:
                decoded.append((following, reader.submit(decode, following)))
            outputs: dict[PurePosixPath, FileResult | Future[FileResult]] = {}
            try:
                early, units = pending.result()
                outputs.update(early)
                if job.problem is not None:
                    outputs = {f.rel: FileResult(f.path, None, "failed", job.problem)
                               for f in job.files}
                for unit in units:
                    if unit.problem is not None:
                        outputs.update({f.rel: FileResult(f.path, None, "failed", unit.problem)
                                        for f in unit.files})
                        continue
                    for entry, values in zip(unit.files, work.compute(unit), strict=True):
                        if entry.rel not in outputs:
                            outputs[entry.rel] = writer.submit(work.write, entry, values)
            except Exception as exc:  # noqa: BLE001 - a failed job fails its files, not the batch
                problem = _describe(exc)
                outputs.update({f.rel: FileResult(f.path, None, "failed", problem,
                                                  error=_ours(exc))
                                for f in job.files if f.rel not in outputs})
            outcomes.extend(outputs[f.rel] for f in job.files)
            settle(WRITE_BEHIND)
        settle(0)
    return BatchReport(results, time.perf_counter() - started, model.description)


__all__ = [
    "OUTPUT_FORMATS",
    "READ_AHEAD",
    "WRITE_BEHIND",
    "BatchProgress",
    "BatchReport",
    "EarlyDecode",
    "FileResult",
    "OutputFormat",
    "OutputSettings",
    "StitchMode",
    "infer_paths",
    "should_stitch",
]
