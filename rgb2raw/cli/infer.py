"""`rgb2raw infer`: JPEGs/PNGs in, RAW `.npy` (or DNG) out. A thin layer over `rgb2raw.pipeline`.

Progress goes to stderr (a bar only when stderr is a terminal and not -q), the summary to
stdout, each failed file to stderr as one `error: <file>: <problem>` line; exit 1 if any file
failed. Everything that can be checked before the first image (choices, the output folder,
optional packages) is checked first. numpy and the engine are imported when the command runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from rgb2raw.cli import common
from rgb2raw.cli._app import app, command_options, reports_errors
from rgb2raw.cli._plain import PlainValuesCommand
from rgb2raw.cli.common import CameraName, ComputeDevice, Overwrite, Quiet, SkipExisting, Verbose
from rgb2raw.nets import ARCHITECTURES

if TYPE_CHECKING:


    from rgb2raw import batch
    from rgb2raw.progress import Bars

log = logging.getLogger("rgb2raw.cli")

Stitch = Literal["auto", "off"]
Format = Literal["packed", "unpacked", "dng"]
if TYPE_CHECKING:
    Arch = str
else:  # the architecture registry's names (light: no torch)
    Arch = Literal[ARCHITECTURES]


def complete_model_name(incomplete: str) -> list[str]:
    """Shell completion for --model: zoo names (reads the cards, imports no numpy)."""
    from rgb2raw import zoo

    return zoo.complete_model_name(incomplete)


@dataclass(frozen=True)
class Shard:
    """``--shard I/N``: this process does shard `index` of `count`."""

    index: int
    count: int


def parse_shard(text: str) -> Shard:
    """``I/N`` with 0 <= I < N, for typer: a malformed shard is a usage error (exit 2)."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise typer.BadParameter(f"expected I/N such as 0/4, got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise typer.BadParameter(f"{text}: need 0 <= I < N")
    return Shard(index, count)


class _BarProgress:
    """`pipeline.BatchProgress` drawn as a bar, with a debug line per file."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.task = bars.task("infer")
        self.failed = 0
        self.last = time.perf_counter()

    def start(self, total: int) -> None:
        self.bars.update(self.task, total=total)
        log.info("%d input file%s to process", total, "" if total == 1 else "s")

    def advance(self, result: batch.FileResult) -> None:
        now = time.perf_counter()
        log.debug("%s: %s in %.3f s", result.path, result.status, now - self.last)
        self.last = now
        if result.status == "failed":
            self.failed += 1
            self.bars.update(self.task, description=f"infer ({self.failed} failed)")
        self.bars.advance(self.task)


def _one_blas_thread(arch: str | None, *, backend: str, device: str) -> None:
    """Keep numpy's OpenBLAS to one thread in a run that makes no BLAS call.

    OpenBLAS starts a thread per core when numpy is imported, and they spin: on this
    project's 2-core machine ``import numpy`` took 0.33 s of CPU for 0.26 s of wall time,
    0.21 s with one thread, and a whole ``rgb2raw infer`` of one 12 MP photo took 0.1 s less
    wall time. A pixel-wise model on the CPU runs on OpenCV and
    numpy's element-wise loops only, so nothing is lost. Only in a fresh process (numpy not
    yet imported), and a user's own OPENBLAS_NUM_THREADS wins.
    """
    if arch == "parametric" and backend in ("auto", "onnx") and device == "cpu" \
            and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _check_choices(*, backend: str, device: str, fp16: bool) -> None:
    """Combinations typer cannot see, before any work."""
    if fp16 and (backend != "torch" or device != "cuda"):
        common.usage_error("half precision needs --backend torch --device cuda", "--fp16")


def _is_single_target(inputs: list[Path], output: Path) -> bool:
    return len(inputs) == 1 and inputs[0].is_file() and output.suffix.lower() in (".npy", ".dng")


def _print_failures(report: batch.BatchReport, output: Path) -> None:
    from rgb2raw.errors import OutputExists

    existing = [f for f in report.failures if isinstance(f.error, OutputExists)]
    for failure in report.failures:
        if isinstance(failure.error, OutputExists):
            continue
        error = failure.error
        if error is None:
            typer.echo(f"error: {failure.path}: {failure.problem}", err=True)
        elif error.path is None or Path(error.path) == failure.path:
            typer.echo(f"error: {failure.path}: {error.detail(common.flag_for)}", err=True)
        else:  # the problem is about another file (a scene's other crop, say)
            typer.echo(f"error: {failure.path}: {common.describe(error)}", err=True)
    common.report_existing([(f.path, f.output or f.path) for f in existing], output, "outputs")


@app.command(**command_options("infer"), cls=PlainValuesCommand)
@reports_errors
def infer_command(
    inputs: Annotated[list[Path], typer.Argument(
        metavar="INPUT", help="Images and/or folders of images.", show_default=False)],
    output: Annotated[Path, common.output_option(
        "Output folder (mirrors input sub-folders), or a .npy/.dng file for a single input "
        "image.")],
    model: Annotated[str | None, typer.Option(
        "--model", "-m", metavar="NAME|PATH", autocompletion=complete_model_name,
        help="Zoo model name, a training run folder, .onnx file, or torch checkpoint "
             "(with --arch). Default: the camera's bundled calibrated-<camera>.")] = None,
    camera: Annotated[CameraName | None, common.camera_option(
        "Camera (default: the model's camera, else generic). Sets the crop grid, noise and "
        "DNG metadata.")] = None,
    arch: Annotated[Arch | None, typer.Option(
        "--arch", case_sensitive=False,
        help="Architecture of a local torch checkpoint.")] = None,
    backend: Annotated[common.Backend, typer.Option(
        "--backend", case_sensitive=False,
        help="Runtime. auto: ONNX Runtime; on the CPU a bundled or calibrated pixel-wise model "
             "runs in rgb2raw's own evaluation of its graph (faster; equal to 1 DN); torch for "
             "a torch checkpoint whose network runs whole frames in bounded memory only there "
             "(LiteISPNet_s). onnx: always ONNX Runtime.")] = "auto",
    device: Annotated[ComputeDevice, typer.Option(
        "--device", case_sensitive=False, help="Compute device.")] = "cpu",
    provider: Annotated[list[str] | None, typer.Option(
        "--provider", metavar="NAME", help="ONNX Runtime execution provider, in order of "
        "preference, e.g. cuda, tensorrt, CPUExecutionProvider (repeatable).")] = None,
    threads: Annotated[int, typer.Option(
        "--threads", min=0, metavar="N", help="CPU threads (0: the runtime's default).")] = 0,
    fp16: Annotated[bool, common.flag(
        "--fp16", help_text="Half precision (torch backend on cuda only).")] = False,
    tile: Annotated[int, typer.Option(
        "--tile", min=-1, metavar="PIXELS", help="Tile side in pixels; 0 picks one from free "
        "memory; -1: the whole image at once.")] = 0,
    overlap: Annotated[int | None, typer.Option(
        "--overlap", min=0, metavar="PIXELS", help="Tile overlap in pixels (default: what the "
        "model's card says it needs, stitched exactly; 64, blended, if it does not say).")
    ] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, metavar="N", help="Tiles per model call.")] = 1,
    tta: Annotated[bool, common.flag(
        "--tta", help_text="Average 8 Bayer-correct flips/transposes (8x slower).")] = False,
    stitch: Annotated[Stitch, typer.Option(
        "--stitch", case_sensitive=False,
        help="auto: stitch complete {scene}_{k} crop sets into frames when the model needs "
             "whole frames or the crops would need padding; off: never.")] = "auto",
    output_format: Annotated[Format, typer.Option(
        "--format", case_sensitive=False,
        help="packed (h/2, w/2, 4), unpacked (h, w) mosaic, or dng.")] = "packed",
    noise: Annotated[bool, common.flag(
        "--noise", help_text="Add the camera's shot and read noise.")] = False,
    iso: Annotated[float | None, typer.Option(
        "--iso", min=1, metavar="ISO", help="ISO of the noise (default: the camera's base "
        "ISO); implies --noise.")] = None,
    seed: Annotated[int | None, typer.Option(
        "--seed", metavar="N", help="Noise seed (default 0); each file's seed comes from it "
        "and its relative path; implies --noise.")] = None,
    recursive: Annotated[bool, common.flag(
        "--recursive", "-r", help_text="Descend into sub-folders.")] = False,
    glob: Annotated[str | None, typer.Option(
        "--glob", metavar="PATTERN",
        help="Only files matching this pattern, e.g. '*.jpg'.")] = None,
    skip_existing: SkipExisting = False,
    overwrite: Overwrite = False,
    shard: Annotated[Shard | None, typer.Option(
        "--shard", metavar="I/N", parser=parse_shard,
        help="Process only shard I of N (default: RANK/WORLD_SIZE when set, e.g. under "
             "torchrun).")] = None,
    max_pixels: Annotated[int | None, typer.Option(
        "--max-pixels", min=1, metavar="N", help="Refuse images above N pixels before "
        "decoding them (default 200000000).")] = None,
    show_progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", metavar="",
        help="Progress bar on stderr (terminals only).")] = True,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Reconstruct RAW from RGB images with a model from the zoo or a local file."""
    common.overwrite_flags(overwrite=overwrite, skip_existing=skip_existing)
    _check_choices(backend=backend, device=device, fp16=fp16)
    if (iso is not None or seed is not None) and not noise:
        log.warning("--iso and --seed set the noise; adding noise (--noise)")
        noise = True
    if not _is_single_target(inputs, output):
        common.check_output_folder(output)
    else:
        common.check_output_file(output, overwrite=overwrite or skip_existing)

    from rgb2raw.zoo import resolve_model  # reads the card; imports no numpy

    started = time.perf_counter()
    card = resolve_model(model, camera=camera, arch=arch)
    _one_blas_thread(card.arch, backend=backend, device=device)
    from rgb2raw.early import FirstImage  # imports no numpy: the thread does

    early = FirstImage(inputs, recursive=recursive, pattern=glob, max_pixels=max_pixels)

    from rgb2raw import batch, pipeline, progress
    from rgb2raw.cameras import get_camera
    from rgb2raw.jobs import shard_from_env
    from rgb2raw.rgb import DEFAULT_MAX_PIXELS

    shard_spec = (shard.index, shard.count) if shard is not None else shard_from_env()
    loaded = pipeline.load_model(card, backend=backend, device=device, threads=threads,
                                 fp16=fp16, providers=provider or None, background=True)
    profile = get_camera(camera or loaded.card.camera)
    log.info("model %s loaded in %.2f s; %d tile worker%s", loaded.description,
             time.perf_counter() - started, loaded.workers, "" if loaded.workers == 1 else "s")
    contract = loaded.contract
    log.debug("contract: size multiple %d, context %s, full frame %s, rgb range %g",
              contract.size_multiple, contract.context, contract.full_frame, contract.rgb_range)
    log.info("tiles: %s, overlap %s, batch %d, tta %d", "auto" if tile == 0 else
             "whole image" if tile < 0 else f"{tile} px", "card" if overlap is None else overlap,
             batch_size, 8 if tta else 1)
    run = pipeline.RunSettings(tile=tile, overlap=overlap, batch_size=batch_size,
                               tta=8 if tta else 1)
    out = batch.OutputSettings(format=output_format, noise=noise, iso=iso,
                                  seed=0 if seed is None else seed,
                                  skip_existing=skip_existing, overwrite=overwrite)
    started = time.perf_counter()
    with progress.bars("count", enabled=show_progress, transient=False) as bars:
        report = batch.infer_paths(
            inputs, output, loaded, profile, run=run, out=out, stitch=stitch,
            recursive=recursive, pattern=glob, shard=shard_spec, progress=_BarProgress(bars),
            max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels,
            early_decode=early)
    seconds = time.perf_counter() - started
    _print_failures(report, output)
    written, skipped, failed = (report.count(s) for s in ("written", "skipped", "failed"))
    rate = written / report.seconds if report.seconds > 0 else 0.0
    shard_note = f" (shard {shard_spec[0]}/{shard_spec[1]})" if shard_spec[1] > 1 else ""
    typer.echo(f"{written} written, {skipped} skipped, {failed} failed{shard_note} in "
               f"{seconds:.1f} s ({rate:.2f} images/s, {report.megapixels / max(report.seconds, 1e-9):.1f} "
               f"MP/s) with {report.model} -> {output}")
    if failed:
        raise typer.Exit(1)
