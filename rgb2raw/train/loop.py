"""The training loop behind `rgb2raw train`: one function, `train`, from config to run folder.

What a run folder holds (only rank 0 writes):

- ``last.pt``  weights + config + ``train_state`` (optimizer, EMA, step, RNG, history): what
  ``--resume`` continues from, saved after every epoch, every `checkpoint_every` steps, on
  Ctrl-C and when `stop_after_steps` is reached;
- ``best.pt``  the weights with the best validation PSNR so far (+ config and scores);
- ``log.csv`` and ``curves.png``  the per-epoch history;
- ``bad_pairs.txt``  the unusable pairs that were skipped, if any;
- ``model.onnx`` and ``model.json``  the exported best network and its model card
  (`rgb2raw.train.publish`), written when training finishes.

Reproducibility: the network is initialised from `seed`; every item's crop, transform and
simulation come from ``(seed, epoch, index)`` (see `rgb2raw.train.data`); the epoch's order
comes from a sampler seeded with ``seed + epoch``; the learning rate is a pure function of the
step. Resuming at step k of an epoch skips that epoch's first k batches, so an interrupted and
resumed run computes the same updates as an uninterrupted one (same device and threads).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rgb2raw._atomic import atomic_write
from rgb2raw.errors import InvalidParameter, Rgb2RawError
from rgb2raw.nets import contract
from rgb2raw.train import data as train_data
from rgb2raw.train.checkpoint import (
    build_model,
    load_init_weights,
    read_checkpoint,
    resolve_init,
    save_checkpoint,
)
from rgb2raw.train.config import TrainConfig
from rgb2raw.train.datasets import prepare_data
from rgb2raw.train.distributed import (
    DistContext,
    barrier,
    gather_objects,
    init_distributed,
    shard_sampler,
    shutdown,
)
from rgb2raw.train.evaluation import evaluate
from rgb2raw.train.losses import combined_loss, parse_loss_spec
from rgb2raw.train.optimiser import WeightEMA, learning_rate, rng_state, set_rng_state
from rgb2raw.train.report import EpochRecord, plot_curves, write_csv

log = logging.getLogger("rgb2raw.train")

LAST = "last.pt"
BEST = "best.pt"


@dataclass(frozen=True)
class StepInfo:
    """Progress of one optimisation step, for a progress bar."""

    epoch: int
    epochs: int
    step_in_epoch: int
    steps_per_epoch: int
    loss: float
    images_per_s: float
    lr: float


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_dir: Path
    history: list[EpochRecord]
    bad_pairs: list[train_data.BadPair]
    best_path: Path | None = None
    last_path: Path | None = None
    onnx_path: Path | None = None
    card_path: Path | None = None
    finished: bool = False
    n_train: int = 0
    n_val: int = 0


@dataclass
class Callbacks:
    """Hooks for the CLI's progress display (called on rank 0 only)."""

    on_step: Callable[[StepInfo], None] | None = None
    on_epoch: Callable[[EpochRecord], None] | None = None
    on_bad_pair: Callable[[train_data.BadPair], None] | None = None
    on_data: Callable[[int, int], None] | None = None  # (train items, validation items)


@dataclass
class _State:
    """Everything besides the weights that --resume restores."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    best_psnr: float = -math.inf
    epoch_loss_sum: float = 0.0
    epoch_images: int = 0
    epoch_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def _check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    if resume:
        if not (run_dir / LAST).is_file():
            raise Rgb2RawError(run_dir / LAST, "no such file: nothing to resume")
        return
    if (run_dir / LAST).exists() and not overwrite:
        raise Rgb2RawError(run_dir, "already holds a training run (resume=True continues it, "
                                    "overwrite=True starts again)")


def train(config: TrainConfig, run_dir: str | Path, *, resume: bool = False,
          overwrite: bool = False, callbacks: Callbacks | None = None,
          stop_after_steps: int | None = None, export: bool = True) -> TrainResult:
    """Train (or continue with `resume`) the run in `run_dir`; see the module docstring.

    On resume the stored config is used; only `config.epochs` may extend it (which changes
    the cosine schedule from that point). `stop_after_steps` stops, saving ``last.pt``, once
    the global step reaches it (to test or split a run). Under torchrun this runs on every rank.
    """
    from rgb2raw.train import check_requirements

    check_requirements(export=export)  # before any data is read, not after hours of training
    callbacks = callbacks or Callbacks()
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    resumed: dict[str, Any] | None = None
    if resume:
        resumed = read_checkpoint(run_dir / LAST)
        stored = TrainConfig.from_dict(dict(resumed["config"]))
        if config.epochs != stored.epochs:
            log.warning("resuming with %d epochs instead of %d: the learning-rate schedule "
                        "changes from here on", config.epochs, stored.epochs)
            stored.epochs = config.epochs
        if config.data is not None or config.synthetic is not None:
            # The data given now (the run may have moved, or been started elsewhere).
            stored.data, stored.synthetic = config.data, config.synthetic
        config = stored
    try:
        config.check()
        loss_weights = parse_loss_spec(config.loss)
    except InvalidParameter:
        raise
    except ValueError as exc:
        raise InvalidParameter("loss", str(exc)) from None
    try:
        context = init_distributed(config.device)
    except ValueError as exc:
        raise Rgb2RawError(None, str(exc)) from None
    try:
        return _train(config, run_dir, context, loss_weights, resumed, callbacks,
                      stop_after_steps, export)
    finally:
        shutdown(context)


def _train(config: TrainConfig, run_dir: Path, context: DistContext,
           loss_weights: dict[str, float], resumed: dict[str, Any] | None,
           callbacks: Callbacks, stop_after_steps: int | None, export: bool) -> TrainResult:
    torch.manual_seed(config.seed)
    if config.threads > 0:
        # Small networks gain nothing from more threads, and lose a lot on a busy machine.
        torch.set_num_threads(config.threads)
    init_path = None
    if config.init is not None and resumed is None:
        init_path, init_kwargs, (black, white) = resolve_init(config.init, config.arch)
        config.net_kwargs = init_kwargs or config.net_kwargs
        config.black_level, config.white_level = black, white
    model = build_model(config.arch, config.net_kwargs)
    if init_path is not None:
        load_init_weights(model, init_path, config.arch, config.net_kwargs)
    model.to(context.device)
    size_multiple = contract(config.arch).size_multiple
    if config.crop % size_multiple:
        raise InvalidParameter("crop", f"{config.crop} is not a multiple of {size_multiple}, "
                                       f"which the {config.arch} network needs")

    on_bad = callbacks.on_bad_pair if context.is_main else None
    train_set, val_set, bad = prepare_data(config, context, size_multiple, on_bad)
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if bad:
            lines = "".join(f"{item.path}\t{item.problem}\n" for item in bad)
            with atomic_write(run_dir / "bad_pairs.txt") as handle:
                handle.write(lines.encode("utf-8"))
        if callbacks.on_data is not None:
            callbacks.on_data(len(train_set), 0 if val_set is None else len(val_set))

    ddp_model: nn.Module = model
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [context.device.index] if context.device.type == "cuda" else None
        ddp_model = DistributedDataParallel(model, device_ids=device_ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
    use_amp = config.amp and context.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    ema = WeightEMA(model, config.ema) if config.ema > 0 else None
    state = _State()
    if resumed is not None:
        train_state = resumed["train_state"]
        model.load_state_dict(train_state["model"])
        optimizer.load_state_dict(train_state["optimizer"])
        scaler.load_state_dict(train_state["scaler"])
        if ema is not None:
            ema.load_state_dict(train_state["ema"])
        state = _State(**train_state["loop"])
        set_rng_state(train_state["rng"])

    sampler = shard_sampler(len(train_set), context, seed=config.seed, shuffle=True)
    steps_per_epoch = math.ceil(len(sampler) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    history = [EpochRecord(**row) for row in state.history]
    result = TrainResult(run_dir, history, bad, n_train=len(train_set),
                         n_val=0 if val_set is None else len(val_set))

    def eval_model() -> nn.Module:
        if ema is None:
            return model
        averaged = build_model(config.arch, config.net_kwargs).to(context.device)
        averaged.load_state_dict(ema.shadow)
        return averaged

    def checkpoint_payload(weights: nn.Module) -> dict[str, Any]:
        return {"state_dict": {k: v.detach().cpu() for k, v in weights.state_dict().items()},
                "config": config.to_dict()}

    def save_last() -> None:
        if context.is_main:
            payload = checkpoint_payload(eval_model())
            payload["train_state"] = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "ema": None if ema is None else ema.state_dict(),
                "loop": asdict(state),
                "rng": rng_state(),
            }
            result.last_path = save_checkpoint(run_dir / LAST, payload)
        barrier(context)

    ddp_model.train()
    try:
        while state.epoch < config.epochs:
            epoch = state.epoch
            train_set.set_epoch(epoch)
            sampler.set_epoch(epoch)
            indices = list(sampler)[state.step_in_epoch * config.batch_size:]
            loader = torch.utils.data.DataLoader(
                train_set, batch_size=config.batch_size, sampler=indices,
                num_workers=config.workers, drop_last=False,
                generator=torch.Generator().manual_seed(config.seed + epoch),
                persistent_workers=False)
            tick = time.perf_counter()  # step times include waiting for data
            for rgb, target in loader:
                lr = learning_rate(config, state.global_step, total_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                rgb = rgb.to(context.device, non_blocking=True)
                target = target.to(context.device, non_blocking=True)
                with torch.autocast(device_type=context.device.type, dtype=torch.float16,
                                    enabled=use_amp):
                    output = ddp_model(rgb)
                loss = combined_loss(output.float(), target, loss_weights)
                if not torch.isfinite(loss):
                    raise Rgb2RawError(None, f"the loss became {loss.item()} at step "
                                             f"{state.global_step}", param="lr",
                                       hint="lower {param}")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update(model)
                now = time.perf_counter()
                elapsed, tick = now - tick, now
                images = rgb.shape[0] * context.world_size
                state.step_in_epoch += 1
                state.global_step += 1
                state.epoch_loss_sum += float(loss.item()) * rgb.shape[0]
                state.epoch_images += rgb.shape[0]
                state.epoch_seconds += elapsed
                if context.is_main and callbacks.on_step is not None:
                    callbacks.on_step(StepInfo(epoch, config.epochs, state.step_in_epoch,
                                               steps_per_epoch, float(loss.item()),
                                               images / max(elapsed, 1e-9), lr))
                if stop_after_steps is not None and state.global_step >= stop_after_steps:
                    save_last()
                    return result
                if config.checkpoint_every and state.global_step % config.checkpoint_every == 0:
                    save_last()
            _finish_epoch(config, context, state, eval_model, val_set, history, callbacks,
                          run_dir, checkpoint_payload, total_steps)
            save_last()
    except KeyboardInterrupt:
        save_last()  # the interrupted step was not applied: resume redoes it
        raise
    result.finished = True
    if context.is_main:
        result.best_path = run_dir / BEST
        if export:
            from rgb2raw.train.publish import publish_run

            result.onnx_path, result.card_path = publish_run(run_dir)
    barrier(context)
    return result


def _finish_epoch(config: TrainConfig, context: DistContext, state: _State,
                  eval_model: Callable[[], nn.Module], val_set: Any,
                  history: list[EpochRecord], callbacks: Callbacks, run_dir: Path,
                  checkpoint_payload: Callable[[nn.Module], dict[str, Any]],
                  total_steps: int) -> None:
    """Validate, log, save best; then move the state to the next epoch."""
    # Every rank takes part in evaluation (it gathers); the loss is summed over ranks too.
    epoch = state.epoch
    is_last = epoch + 1 == config.epochs
    weights = eval_model()
    psnr = ssim = math.nan
    if val_set is not None and ((epoch + 1) % config.val_every == 0 or is_last):
        psnr, ssim = evaluate(weights, val_set, config, context)
    sums = gather_objects(context, (state.epoch_loss_sum, state.epoch_images, state.epoch_seconds))
    loss_sum = sum(s[0] for s in sums)
    images = sum(s[1] for s in sums)
    seconds = max(s[2] for s in sums)
    record = EpochRecord(
        epoch=epoch + 1, steps=state.global_step,
        lr=learning_rate(config, max(0, state.global_step - 1), total_steps),
        train_loss=loss_sum / max(images, 1), val_psnr=psnr, val_ssim=ssim,
        images_per_s=images / max(seconds, 1e-9), seconds=seconds)
    history.append(record)
    state.history = [asdict(r) for r in history]
    improved = math.isfinite(psnr) and psnr > state.best_psnr
    if improved:
        state.best_psnr = psnr
    if context.is_main:
        if improved or val_set is None or (is_last and not (run_dir / BEST).exists()):
            payload = checkpoint_payload(weights)
            payload["metrics"] = {"epoch": epoch + 1, "val_psnr": psnr, "val_ssim": ssim}
            save_checkpoint(run_dir / BEST, payload)
        write_csv(run_dir / "log.csv", history)
        plot_curves(run_dir / "curves.png", history)
        if callbacks.on_epoch is not None:
            callbacks.on_epoch(record)
    state.epoch += 1
    state.step_in_epoch = 0
    state.epoch_loss_sum = 0.0
    state.epoch_images = 0
    state.epoch_seconds = 0.0
