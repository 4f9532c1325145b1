"""`rgb2raw train`: train or fine-tune a reverse-ISP network; see `rgb2raw.train.loop`.

Torch is imported only when the command runs, after every check that needs no torch (choices,
the run folder, the data source) and after checking that torch is installed at all. Under
``torchrun --nproc-per-node N`` the same command trains with DistributedDataParallel; only
rank 0 prints and writes.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from rgb2raw.cli import common
from rgb2raw.cli._app import app, command_options, reports_errors
from rgb2raw.cli.common import CameraName, Overwrite, Quiet, Verbose
from rgb2raw.errors import Rgb2RawError
from rgb2raw.train.config import TRAIN_ARCHS, TrainConfig

if TYPE_CHECKING:
    from rgb2raw.train.data import BadPair
    from rgb2raw.train.loop import StepInfo
    from rgb2raw.train.report import EpochRecord

    TrainArch = str
else:
    TrainArch = Literal[TRAIN_ARCHS]

log = logging.getLogger("rgb2raw.cli")
TrainDevice = Literal["auto", "cpu", "cuda"]
BadPairPolicy = Literal["skip", "stop"]
LAST_CHECKPOINT = "last.pt"  # rgb2raw.train.loop.LAST (that module imports torch)
DEFAULT_EPOCHS = 20


def _is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _check_sources(data: Path | None, synthetic: Path | None, resume: bool) -> None:
    if data is not None and synthetic is not None:
        common.usage_error("give DATA (challenge pairs) or --synthetic PHOTOS, not both",
                           "--synthetic")
    if data is None and synthetic is None and not resume:
        common.usage_error("give DATA (challenge pairs) or --synthetic PHOTOS", "DATA")
    for path, label in ((data, "DATA"), (synthetic, "--synthetic")):
        if path is not None and not path.is_dir():
            raise Rgb2RawError(path, "no such folder" if not path.exists() else
                               f"is not a folder ({label} must be a folder)")


def _check_run_folder(out: Path, *, resume: bool, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise Rgb2RawError(out, "exists and is not a folder (a run folder is needed)")
    if resume and not (out / LAST_CHECKPOINT).is_file():
        raise Rgb2RawError(out / LAST_CHECKPOINT, "no such file: nothing to resume")
    if not resume and not overwrite and (out / LAST_CHECKPOINT).exists():
        raise Rgb2RawError(out, "already holds a training run (use --resume to continue it "
                                "or --overwrite to start again)")
    if _is_main_rank():
        common.check_output_folder(out)


def _resume_plan(out: Path, data: Path | None, synthetic: Path | None,
                 epochs: int | None) -> int | None:
    """Epochs for a resumed run, or None when it has finished them all (nothing to do)."""
    from rgb2raw.train.checkpoint import read_checkpoint

    payload = read_checkpoint(out / LAST_CHECKPOINT)
    stored = TrainConfig.from_dict(dict(payload.get("config", {})))
    done = int(payload.get("train_state", {}).get("loop", {}).get("epoch", 0))
    target = stored.epochs if epochs is None else epochs
    if done >= target:
        return None
    if data is None and synthetic is None:
        source = stored.data or stored.synthetic
        if source is not None and not Path(source).is_dir():
            raise Rgb2RawError(source, "the run's data folder is not found from here; give "
                                       "DATA (or --synthetic) again with --resume")
    return target


def _checked_config(config: TrainConfig) -> None:
    """Settings that cannot work are usage errors, found before any data is read."""
    from rgb2raw.errors import InvalidParameter
    from rgb2raw.train.losses import parse_loss_spec

    try:
        config.check()
    except InvalidParameter:
        raise
    except ValueError as exc:
        raise Rgb2RawError(None, str(exc)) from None
    try:
        parse_loss_spec(config.loss)
    except ValueError as exc:
        raise InvalidParameter("loss", str(exc)) from None


@app.command(**command_options("train"))
@reports_errors
def train(
    output: Annotated[Path | None, common.output_option(
        "Run folder: checkpoints, log.csv, curves.png, model.onnx + model.json.",
        "FOLDER")] = None,
    data: Annotated[Path | None, typer.Argument(
        metavar="[DATA]", help="Challenge-layout folder (DATA/train/{scene}_{k}.jpg + .npy). "
        "Omit with --synthetic, or with --resume to use the run's own.",
        show_default=False)] = None,
    out_alias: Annotated[Path | None, typer.Option(
        "--out", hidden=True, parser=common.output_path, help="Old spelling of --output.")
    ] = None,
    camera: Annotated[CameraName, common.camera_option("Camera profile.")] = "s7",
    arch: Annotated[TrainArch, typer.Option(
        "--arch", case_sensitive=False, help="Network.")] = "tiny",
    epochs: Annotated[int | None, typer.Option(
        "--epochs", min=1, metavar="N", show_default=False,
        help=f"Epochs to train (default {DEFAULT_EPOCHS}; with --resume, the run's own).")
    ] = None,
    synthetic: Annotated[Path | None, typer.Option(
        "--synthetic", metavar="PHOTOS", help="Folder of ordinary photos: train on pairs "
        "simulated from them with the camera profile.", show_default=False)] = None,
    init: Annotated[str | None, typer.Option(
        "--init", metavar="NAME|PATH", show_default=False,
        help="Start from this zoo model (torch weights) or run checkpoint/folder.")] = None,
    batch_size: Annotated[int, typer.Option(
        "--batch-size", "-b", min=1, metavar="N", help="Crops per optimiser step "
        "(per process under torchrun).")] = 8,
    crop: Annotated[int, typer.Option(
        "--crop", min=2, metavar="PIXELS", help="Training crop side (RGB pixels, even, a "
        "multiple of the network's size multiple).")] = 256,
    lr: Annotated[float, typer.Option(
        "--lr", min=0.0, metavar="RATE", help="Peak learning rate (AdamW).")] = 1e-3,
    weight_decay: Annotated[float, typer.Option(
        "--weight-decay", min=0.0, metavar="DECAY",
        help="AdamW weight decay (decoupled from the gradient).")] = 1e-4,
    warmup: Annotated[float, typer.Option(
        "--warmup", min=0.0, max=0.99, metavar="FRACTION", help="Fraction of steps with "
        "linear warm-up (then cosine decay).")] = 0.05,
    loss: Annotated[str, typer.Option(
        "--loss", metavar="TERM:WEIGHT,...",
        help="Loss terms name:weight among l1, mse, ssim.")] = "l1:1,ssim:0.5",
    ema: Annotated[float, typer.Option(
        "--ema", min=0.0, max=0.99999, metavar="DECAY",
        help="EMA decay of the weights; 0 turns it off.")] = 0.0,
    amp: Annotated[bool, typer.Option(
        "--amp/--no-amp", metavar="", help="Mixed precision (CUDA only).")] = True,
    seed: Annotated[int, typer.Option(
        "--seed", metavar="N", help="Seed of the weights' initialisation, the split and "
        "the batches (a rerun with the same seed makes the same batches).")] = 0,
    val_fraction: Annotated[float, typer.Option(
        "--val-fraction", min=0.0, max=0.9, metavar="FRACTION",
        help="Share of scenes (or photos) held out for validation.")] = 0.1,
    on_bad_pair: Annotated[BadPairPolicy, typer.Option(
        "--on-bad-pair", case_sensitive=False,
        help="A corrupt or unmatched pair: skip it (reported) or stop.")] = "skip",
    workers: Annotated[int, typer.Option(
        "--workers", min=0, metavar="N", help="Data loading processes.")] = 0,
    device: Annotated[TrainDevice, typer.Option(
        "--device", case_sensitive=False, help="Compute device.")] = "auto",
    threads: Annotated[int, typer.Option(
        "--threads", min=0, metavar="N",
        help="CPU threads per process (0: torch's default).")] = 0,
    synthetic_length: Annotated[int, typer.Option(
        "--synthetic-length", min=1, metavar="N", help="Synthetic pairs per epoch.")] = 256,
    synthetic_regime: Annotated[str, typer.Option(
        "--synthetic-regime", metavar="NAME", help="Simulation ranges for --synthetic: "
        "default, parametric, harsh or broad.")] = "default",
    synthetic_plain: Annotated[float | None, typer.Option(
        "--synthetic-plain", min=0.0, max=1.0, metavar="SHARE",
        help="Share of synthetic pairs made with exactly the parametric model's assumptions "
             "(overrides the regime's).", show_default=False)] = None,
    local: Annotated[bool, common.flag(
        "--local", help_text="With --arch tiny: the local variant (parametric inverse plus a "
        "dilated local correction; no global pooling, so tiling is exact).")] = False,
    cache: Annotated[bool, common.flag(
        "--cache", help_text="Keep decoded pairs in memory.")] = False,
    checkpoint_every: Annotated[int, typer.Option(
        "--checkpoint-every", min=0, metavar="STEPS",
        help="Also save last.pt every N steps.")] = 0,
    resume: Annotated[bool, common.flag(
        "--resume", help_text="Continue the run in --output exactly where it stopped.")] = False,
    overwrite: Overwrite = False,
    export: Annotated[bool, typer.Option(
        "--export/--no-export", metavar="",
        help="Export the best checkpoint to ONNX with a model card.")] = True,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Train a reverse-ISP network on challenge pairs or on photos, then export it for infer."""
    out = output or out_alias
    if out is None:
        common.usage_error("the run folder is required", "--output")
    if resume and overwrite:
        common.usage_error("--resume continues a run and --overwrite starts it again; "
                           "choose one", "--resume")
    if local and arch != "tiny":
        common.usage_error("--local is a variant of --arch tiny", "--local")
    _check_sources(data, synthetic, resume)
    config = TrainConfig(
        camera=camera, arch=arch, epochs=epochs or DEFAULT_EPOCHS,
        # Absolute, so `--resume` works from any folder.
        data=None if data is None else str(data.resolve()),
        synthetic=None if synthetic is None else str(synthetic.resolve()), init=init,
        batch_size=batch_size, crop=crop, lr=lr, weight_decay=weight_decay, warmup=warmup,
        loss=loss, ema=ema, amp=amp, seed=seed, val_fraction=val_fraction,
        on_bad_pair=on_bad_pair, workers=workers, device=device, threads=threads,
        synthetic_length=synthetic_length, cache=cache, checkpoint_every=checkpoint_every,
        synthetic_regime=synthetic_regime, synthetic_plain=synthetic_plain,
    )
    from rgb2raw.train import check_requirements

    check_requirements(export=export)
    _check_run_folder(out, resume=resume, overwrite=overwrite)
    if not resume:
        _checked_config(config)
    else:
        target = _resume_plan(out, data, synthetic, epochs)
        if target is None:
            typer.echo(f"nothing to do: the run in {out} has finished its epochs (give "
                       "--epochs N with --resume to train longer)")
            return
        config.epochs = target
    if local:
        from rgb2raw.train.recipe import local_tiny_kwargs

        config.net_kwargs = local_tiny_kwargs(camera)
    _run(config, out, resume=resume, overwrite=overwrite, export=export)


def _run(config: TrainConfig, out: Path, *, resume: bool, overwrite: bool, export: bool) -> None:
    from rgb2raw import progress
    from rgb2raw.train.loop import Callbacks
    from rgb2raw.train.loop import train as run_training

    main_rank = _is_main_rank()
    task: dict[str, Any] = {}
    with progress.bars("training", enabled=main_rank) as bars:

        def on_step(info: StepInfo) -> None:
            if "id" not in task or task.get("epoch") != info.epoch:
                if "id" in task:
                    bars.remove(task["id"])
                task["id"] = bars.task(f"epoch {info.epoch + 1}/{info.epochs}",
                                       total=info.steps_per_epoch, loss=0.0, speed=0.0)
                task["epoch"] = info.epoch
            bars.update(task["id"], completed=info.step_in_epoch, loss=info.loss,
                        speed=info.images_per_s)

        def on_epoch(record: EpochRecord) -> None:
            scores = (f"val PSNR {record.val_psnr:.2f} dB  SSIM {record.val_ssim:.4f}"
                      if math.isfinite(record.val_psnr) else "no validation")
            bars.echo(f"epoch {record.epoch}: loss {record.train_loss:.4f}  {scores}  "
                      f"{record.images_per_s:.1f} img/s  {record.seconds:.0f} s")

        def on_bad_pair(item: BadPair) -> None:
            # The loop logs each bad pair as a warning already: printing it here too would
            # show it twice.
            log.debug("bad pair reported: %s", item.path)

        def on_data(n_train: int, n_val: int) -> None:
            bars.echo(f"{n_train} training items, {n_val} validation items")

        callbacks = Callbacks(on_step=on_step, on_epoch=on_epoch, on_bad_pair=on_bad_pair,
                              on_data=on_data)
        result = run_training(config, out, resume=resume, overwrite=overwrite,
                              callbacks=callbacks, export=export)
    if main_rank:
        typer.echo(f"best checkpoint: {result.best_path}")
        if result.onnx_path is not None:
            typer.echo(f"exported: {result.onnx_path} (card {result.card_path}); "
                       f"use it with: rgb2raw infer --model {out} ...")
