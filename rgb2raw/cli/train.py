"""`rgb2raw train`: train or fine-tune a reverse-ISP network; see `rgb2raw.train.loop`.

Torch is imported only when the command runs. Under ``torchrun --nproc-per-node N`` the same
command trains with DistributedDataParallel; only rank 0 prints and writes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rgb2raw.cameras import CAMERA_NAMES
from rgb2raw.cli._app import app, reports_errors
from rgb2raw.errors import Rgb2RawError
from rgb2raw.train.config import TRAIN_ARCHS, TrainConfig
from rgb2raw.train.recipe import local_tiny_kwargs

if TYPE_CHECKING:
    from rgb2raw.train.data import BadPair
    from rgb2raw.train.loop import StepInfo
    from rgb2raw.train.report import EpochRecord


def _is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


@app.command(rich_help_panel="Reconstruct RAW")
@reports_errors
def train(
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Run folder: checkpoints, log.csv, curves.png, model.onnx + "
        "model.json.", show_default=False)],
    data: Annotated[Path | None, typer.Argument(
        help="Challenge-layout folder (DATA/train/{scene}_{k}.jpg + .npy). Omit with "
        "--synthetic or --resume.", show_default=False)] = None,
    camera: Annotated[str, typer.Option(
        "--camera", "-c", help=f"Camera profile: {', '.join(CAMERA_NAMES)}.")] = "s7",
    arch: Annotated[str, typer.Option(
        "--arch", help=f"Network: {', '.join(TRAIN_ARCHS)}.")] = "tiny",
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Epochs to train.")] = 20,
    synthetic: Annotated[Path | None, typer.Option(
        "--synthetic", help="Folder of ordinary photos: train on pairs simulated from them "
        "with the camera profile.", show_default=False)] = None,
    init: Annotated[str | None, typer.Option(
        "--init", help="Start from this zoo model (torch weights) or run checkpoint/folder.",
        show_default=False)] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1)] = 8,
    crop: Annotated[int, typer.Option("--crop", min=2, help="Training crop side (RGB pixels, "
                                      "even, a multiple of the network's size multiple).")] = 256,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 1e-4,
    warmup: Annotated[float, typer.Option(
        "--warmup", min=0.0, max=0.99, help="Fraction of steps with linear warm-up "
        "(then cosine decay).")] = 0.05,
    loss: Annotated[str, typer.Option(
        "--loss", help="Loss terms name:weight among l1, mse, ssim.")] = "l1:1,ssim:0.5",
    ema: Annotated[float, typer.Option(
        "--ema", min=0.0, max=0.99999, help="EMA decay of the weights; 0 turns it off.")] = 0.0,
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="Mixed precision (CUDA only).")] = True,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    val_fraction: Annotated[float, typer.Option(
        "--val-fraction", min=0.0, max=0.9, help="Share of scenes (or photos) held out for "
        "validation.")] = 0.1,
    on_bad_pair: Annotated[str, typer.Option(
        "--on-bad-pair", help="A corrupt or unmatched pair: skip it (reported) or stop.")] = "skip",
    workers: Annotated[int, typer.Option("--workers", min=0, help="Data loading processes.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[int, typer.Option(
        "--threads", min=0, help="CPU threads per process (0: torch's default).")] = 0,
    synthetic_length: Annotated[int, typer.Option(
        "--synthetic-length", min=1, help="Synthetic pairs per epoch.")] = 256,
    synthetic_regime: Annotated[str, typer.Option(
        "--synthetic-regime", help="Simulation ranges for --synthetic: default, parametric, "
                                   "harsh or broad.")] = "default",
    synthetic_plain: Annotated[float | None, typer.Option(
        "--synthetic-plain", min=0.0, max=1.0,
        help="Share of synthetic pairs made with exactly the parametric model's assumptions "
             "(overrides the regime's).", show_default=False)] = None,
    local: Annotated[bool, typer.Option(
        "--local", help="With --arch tiny: the local variant (parametric inverse plus a "
                        "dilated local correction; no global pooling, so tiling is exact).")] = False,
    cache: Annotated[bool, typer.Option("--cache", help="Keep decoded pairs in memory.")] = False,
    checkpoint_every: Annotated[int, typer.Option(
        "--checkpoint-every", min=0, help="Also save last.pt every N steps.")] = 0,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out exactly where it stopped.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Start again in a run folder that already holds a run.")] = False,
    export: Annotated[bool, typer.Option(
        "--export/--no-export", help="Export the best checkpoint to ONNX with a model card.")] = True,
) -> None:
    """Train a reverse-ISP network on challenge pairs or on photos, then export it for infer."""
    from rgb2raw.train import check_requirements

    check_requirements(export=export)
    from rgb2raw.train.loop import Callbacks
    from rgb2raw.train.loop import train as run_training

    if on_bad_pair not in ("skip", "stop"):
        raise Rgb2RawError(None, f"--on-bad-pair {on_bad_pair!r}: expected skip or stop")
    if camera not in CAMERA_NAMES:
        raise Rgb2RawError(None, f"unknown camera {camera!r}; choose one of {', '.join(CAMERA_NAMES)}")
    if local and arch != "tiny":
        raise Rgb2RawError(None, "--local goes with --arch tiny")
    net_kwargs = local_tiny_kwargs(camera) if local else {}
    config = TrainConfig(
        camera=camera, arch=arch, epochs=epochs,
        data=None if data is None else str(data),
        synthetic=None if synthetic is None else str(synthetic), init=init,
        batch_size=batch_size, crop=crop, lr=lr, weight_decay=weight_decay, warmup=warmup,
        loss=loss, ema=ema, amp=amp, seed=seed, val_fraction=val_fraction,
        on_bad_pair=on_bad_pair,  # type: ignore[arg-type]
        workers=workers, device=device, threads=threads, synthetic_length=synthetic_length, cache=cache,
        checkpoint_every=checkpoint_every, synthetic_regime=synthetic_regime,
        synthetic_plain=synthetic_plain, net_kwargs=net_kwargs,
    )
    main_rank = _is_main_rank()
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  {task.fields[speed]:.1f} img/s"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        disable=not main_rank,
    )
    task: dict[str, Any] = {}

    def on_step(info: StepInfo) -> None:
        if "id" not in task or task.get("epoch") != info.epoch:
            if "id" in task:
                progress.remove_task(task["id"])
            task["id"] = progress.add_task(f"epoch {info.epoch + 1}/{info.epochs}",
                                           total=info.steps_per_epoch, loss=0.0, speed=0.0)
            task["epoch"] = info.epoch
        progress.update(task["id"], completed=info.step_in_epoch, loss=info.loss,
                        speed=info.images_per_s)

    def on_epoch(record: EpochRecord) -> None:
        scores = (f"val PSNR {record.val_psnr:.2f} dB  SSIM {record.val_ssim:.4f}"
                  if math.isfinite(record.val_psnr) else "no validation")
        progress.console.print(f"epoch {record.epoch}: loss {record.train_loss:.4f}  {scores}  "
                               f"{record.images_per_s:.1f} img/s  {record.seconds:.0f} s")

    def report_bad_pair(item: BadPair) -> None:
        verb = "stopping" if on_bad_pair == "stop" else "skipped"
        progress.console.print(f"warning: {item.path}: {item.problem} ({verb})")

    def on_data(n_train: int, n_val: int) -> None:
        progress.console.print(f"{n_train} training items, {n_val} validation items")

    callbacks = Callbacks(on_step=on_step, on_epoch=on_epoch, on_bad_pair=report_bad_pair,
                          on_data=on_data)
    with progress:
        result = run_training(config, out, resume=resume, overwrite=overwrite,
                              callbacks=callbacks, export=export)
    if main_rank:
        typer.echo(f"best checkpoint: {result.best_path}")
        if result.onnx_path is not None:
            typer.echo(f"exported: {result.onnx_path} (card {result.card_path}); "
                       f"use it with: rgb2raw infer --model {out} ...")
