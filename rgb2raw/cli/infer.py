"""`rgb2raw infer`: JPEGs/PNGs in, RAW `.npy` (or DNG) out. A thin layer over `rgb2raw.pipeline`.

Progress goes to stderr (a bar only when stderr is a terminal), the summary to stdout, each
failed file to stderr as one `error: <file>: <problem>` line; exit 1 if any file failed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from rgb2raw import zoo
from rgb2raw.cli._app import app, reports_errors
from rgb2raw.errors import Rgb2RawError

log = logging.getLogger("rgb2raw.cli")


class _RateColumn(ProgressColumn):
    """Images per second since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.2f} img/s", style="progress.data.speed")


class _BarProgress:
    """`pipeline.BatchProgress` drawn as a rich bar on stderr."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.task = bars.add_task("infer", total=None)
        self.failed = 0

    def start(self, total: int) -> None:
        self.bars.update(self.task, total=total)

    def advance(self, result: object) -> None:
        if getattr(result, "status", "") == "failed":
            self.failed += 1
            self.bars.update(self.task, description=f"infer ({self.failed} failed)")
        self.bars.advance(self.task)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[_BarProgress | None]:
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               _RateColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bars:
        yield _BarProgress(bars)


@app.command("infer", rich_help_panel="Reconstruct RAW")
@reports_errors
def infer_command(
    inputs: Annotated[list[Path], typer.Argument(help="Images and/or folders of images.")],
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Output folder (mirrors input sub-folders), or a .npy/.dng file "
                               "for a single input image.")],
    model: Annotated[str | None, typer.Option(
        "--model", "-m", autocompletion=zoo.complete_model_name,
        help="Zoo model name, a training run folder, .onnx file, or torch checkpoint "
             "(with --arch). "
             "Default: the camera's bundled parametric-<camera>.")] = None,
    camera: Annotated[str | None, typer.Option(
        "--camera", "-c", help="s7, p20 or generic (default: the model's camera, else generic). "
                               "Sets the crop grid, noise and DNG metadata.")] = None,
    arch: Annotated[str | None, typer.Option(
        "--arch", help="Architecture of a local checkpoint: unet, liteisp or tiny.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="onnx or torch.")] = "onnx",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    provider: Annotated[list[str] | None, typer.Option(
        "--provider", help="ONNX Runtime execution provider, in order of preference, e.g. cuda, "
                           "tensorrt, CPUExecutionProvider (repeatable).")] = None,
    threads: Annotated[int, typer.Option(
        "--threads", min=0, help="CPU threads (0: the runtime's default).")] = 0,
    fp16: Annotated[bool, typer.Option(
        "--fp16", help="Half precision (torch backend on cuda only).")] = False,
    tile: Annotated[int, typer.Option(
        "--tile", min=-1, help="Tile side in pixels; 0 picks one from free memory; -1: "
                               "the whole image at once.")] = 0,
    overlap: Annotated[int | None, typer.Option(
        "--overlap", min=0, help="Tile overlap in pixels (default: what the model's card says "
                                 "it needs, stitched exactly; 64, blended, if it does not say).")
                       ] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", min=1, help="Tiles per model call.")] = 1,
    tta: Annotated[bool, typer.Option(
        "--tta", help="Average 8 Bayer-correct flips/transposes (8x slower).")] = False,
    stitch: Annotated[str, typer.Option(
        "--stitch", help="auto: stitch complete {scene}_{k} crop sets into frames when the model "
                         "needs whole frames or the crops would need padding; off: never.")] = "auto",
    output_format: Annotated[str, typer.Option(
        "--format", help="packed (h/2, w/2, 4), unpacked (h, w) mosaic, or dng.")] = "packed",
    noise: Annotated[bool, typer.Option(
        "--noise", help="Add the camera's shot and read noise.")] = False,
    iso: Annotated[float | None, typer.Option(
        "--iso", min=1, help="ISO of the noise (default: the camera's base ISO).")] = None,
    seed: Annotated[int, typer.Option(
        "--seed", help="Noise seed; each file's seed comes from it and its relative path.")] = 0,
    recursive: Annotated[bool, typer.Option(
        "--recursive", "-r", help="Descend into sub-folders.")] = False,
    glob: Annotated[str | None, typer.Option(
        "--glob", help="Only files matching this pattern, e.g. '*.jpg'.")] = None,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Leave outputs that already exist alone.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace outputs that already exist.")] = False,
    shard: Annotated[str | None, typer.Option(
        "--shard", help="I/N: process only shard I of N (default: RANK/WORLD_SIZE when set, "
                        "e.g. under torchrun).")] = None,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress bar on stderr (terminals only).")] = True,
) -> None:
    """Reconstruct RAW from RGB images with a model from the zoo or a local file."""
    from rgb2raw import batch, pipeline
    from rgb2raw.cameras import get_camera
    from rgb2raw.jobs import parse_shard, shard_from_env

    if skip_existing and overwrite:
        raise Rgb2RawError(None, "--skip-existing and --overwrite exclude each other")
    for name, value, allowed in (("--backend", backend, ("onnx", "torch")),
                                 ("--device", device, ("cpu", "cuda")),
                                 ("--stitch", stitch, ("auto", "off")),
                                 ("--format", output_format, batch.OUTPUT_FORMATS)):
        if value not in allowed:
            raise Rgb2RawError(None, f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    shard_spec = parse_shard(shard) if shard else shard_from_env()
    loaded = pipeline.load_model(model, camera=camera, arch=arch,
                                 backend=backend,  # type: ignore[arg-type]
                                 device=device, threads=threads, fp16=fp16,  # type: ignore[arg-type]
                                 providers=provider or None, background=True)
    profile = get_camera(camera or loaded.card.camera)
    run = pipeline.RunSettings(tile=tile, overlap=overlap, batch_size=batch_size,
                               tta=8 if tta else 1)
    out = batch.OutputSettings(format=output_format, noise=noise, iso=iso,  # type: ignore[arg-type]
                                  seed=seed, skip_existing=skip_existing, overwrite=overwrite)
    started = time.perf_counter()
    with _progress(progress) as bar:
        report = batch.infer_paths(inputs, output, loaded, profile, run=run, out=out,
                                      stitch=stitch, recursive=recursive,  # type: ignore[arg-type]
                                      pattern=glob, shard=shard_spec, progress=bar)
    seconds = time.perf_counter() - started
    for failure in report.failures:
        typer.echo(f"error: {failure.path}: {failure.problem}", err=True)
    written, skipped, failed = (report.count(s) for s in ("written", "skipped", "failed"))
    rate = written / report.seconds if report.seconds > 0 else 0.0
    shard_note = f" (shard {shard_spec[0]}/{shard_spec[1]})" if shard_spec[1] > 1 else ""
    typer.echo(f"{written} written, {skipped} skipped, {failed} failed{shard_note} in "
               f"{seconds:.1f} s ({rate:.2f} images/s, {report.megapixels / max(report.seconds, 1e-9):.1f} "
               f"MP/s) with {report.model} -> {output}")
    if failed:
        raise typer.Exit(1)
