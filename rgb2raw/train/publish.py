"""Turn a finished run into a model `rgb2raw infer` can use: ONNX graph + model card.

`publish_run(RUN_DIR)` exports ``best.pt`` to ``RUN_DIR/model.onnx`` (dynamic batch, height
and width; `rgb2raw.nets.export.export_onnx`) and writes ``RUN_DIR/model.json``, a card in
`rgb2raw.zoo`'s ModelCard format, written by the one card writer `rgb2raw.zoo.write_card`,
whose files are the ONNX graph and ``best.pt``, with pins. Beyond the architecture's contract
it states what the run decided: the output levels it was trained for, the training crop, its
validation scores, its ``context`` (the network's exact receptive-field radius when it
declares one, else unknown, e.g. tiny's global gains) and ``bytes_per_pixel`` (an upper bound
from the graph's tensor sizes, see `graph_bytes_per_pixel`; unknown if it cannot be found).
`bundle_run` copies a run into a models folder under a zoo name.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from rgb2raw._atomic import atomic_write
from rgb2raw.errors import Rgb2RawError
from rgb2raw.nets import contract
from rgb2raw.train.checkpoint import build_model, read_checkpoint
from rgb2raw.train.config import TrainConfig
from rgb2raw.zoo.cards import ModelCard, Reported, file_entry, load_card, write_card

ONNX_NAME = "model.onnx"
CARD_NAME = "model.json"
# The tracing example only; the exported height and width stay dynamic. 64 is a multiple of
# every architecture's size_multiple (2, 4, 16).
EXAMPLE_HW = (64, 64)


def graph_bytes_per_pixel(onnx_path: Path, probe: int = 64) -> int | None:
    """Upper bound of an ONNX graph's forward-pass memory per RGB pixel, or None if unknown.

    The input is fixed to (1, 3, probe, probe), shapes are inferred, and the sizes of the input
    and of every intermediate and output tensor are added as if none were freed (the runtime
    reuses buffers, so the real peak is lower); weights are left out (they do not grow with
    the image). Any dimension that stays unknown makes the answer None.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path))
        graph_input = model.graph.input[0]
        for dim, value in zip(graph_input.type.tensor_type.shape.dim, (1, 3, probe, probe),
                              strict=True):
            dim.ClearField("dim_param")
            dim.dim_value = value
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception:  # noqa: BLE001 - an unreadable or unusual graph: size unknown
        return None
    sizes = {onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8, onnx.TensorProto.INT64: 8,
             onnx.TensorProto.INT32: 4, onnx.TensorProto.BOOL: 1, onnx.TensorProto.FLOAT16: 2}
    weights = {init.name for init in inferred.graph.initializer}
    total = 0
    values = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    for value in values:
        if value.name in weights:
            continue
        tensor = value.type.tensor_type
        if tensor.elem_type not in sizes:
            return None
        count = 1
        for dim in tensor.shape.dim:
            if not dim.HasField("dim_value"):
                return None
            count *= dim.dim_value
        total += count * sizes[tensor.elem_type]
    return max(1, math.ceil(total / (probe * probe)))


def run_card(name: str, config: TrainConfig, metrics: dict[str, Any], files: list[Path],
             size_multiple: int, *, description: str | None = None, source: str = "",
             license_text: str = "", context: int | None = None,
             bytes_per_pixel: int | None = None) -> ModelCard:
    """The card of a trained network; `rgb2raw.zoo.write_card` keeps only what differs from
    its architecture's contract."""
    data_source = (f"challenge pairs in {config.data}" if config.data is not None
                   else f"synthetic pairs from the photos in {config.synthetic}")
    psnr, ssim = metrics.get("val_psnr"), metrics.get("val_ssim")
    reported = None
    if isinstance(psnr, float) and math.isfinite(psnr) and isinstance(ssim, float):
        reported = Reported("held-out validation split of the training data (rgb2raw train)",
                            round(psnr, 4), round(ssim, 4))
    formats = {".onnx": "onnx", ".pt": "torch", ".pth": "torch"}
    network = (f"{config.arch} (local, no global pooling)" if config.net_kwargs.get("local")
               else config.arch)
    return ModelCard(
        name=name, camera=config.camera, arch=config.arch,
        description=description or (
            f"{network} network trained by `rgb2raw train` for {config.epochs} epochs on "
            f"{data_source} (best epoch {metrics.get('epoch', '?')})"),
        files=tuple(file_entry(path, formats[path.suffix]) for path in files),  # type: ignore[arg-type]
        size_multiple=size_multiple, input_size=(config.crop, config.crop), full_frame=False,
        context=context, bytes_per_pixel=bytes_per_pixel,
        black_level=config.black_level, white_level=config.white_level,
        source=source or "local training run (rgb2raw train)", license=license_text,
        reported=reported)


def model_context(model: Any) -> int | None:
    """The network's declared receptive-field radius in RGB pixels (attribute ``context``),
    or None when it declares none (unknown, or global like tiny's gains)."""
    context = getattr(model, "context", None)
    return context if isinstance(context, int) and context >= 0 else None


def export_checkpoint(checkpoint: Path, onnx_path: Path
                      ) -> tuple[TrainConfig, dict[str, Any], int, int | None]:
    """Export a run checkpoint to ONNX; return its config, metrics, size multiple, context."""
    from rgb2raw.nets.export import export_onnx

    payload = read_checkpoint(checkpoint)
    config = TrainConfig.from_dict(dict(payload["config"]))
    model = build_model(config.arch, config.net_kwargs)
    model.load_state_dict(payload["state_dict"], strict=True)
    model.eval()
    export_onnx(model, onnx_path, example_hw=EXAMPLE_HW)
    return (config, dict(payload.get("metrics") or {}), contract(config.arch).size_multiple,
            model_context(model))


def publish_run(run_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Export RUN_DIR/best.pt and write RUN_DIR/model.json; return (onnx path, card path)."""
    run_dir = Path(run_dir)
    best = run_dir / "best.pt"
    if not best.is_file():
        raise Rgb2RawError(best, "no such file: the run has no best checkpoint to export")
    onnx_path = run_dir / ONNX_NAME
    config, metrics, multiple, context = export_checkpoint(best, onnx_path)
    card = run_card(Path(CARD_NAME).stem, config, metrics, [onnx_path, best], multiple,
                    context=context, bytes_per_pixel=graph_bytes_per_pixel(onnx_path))
    return onnx_path, write_card(run_dir / CARD_NAME, card)


def bundle_run(run_dir: str | os.PathLike[str], models_dir: str | os.PathLike[str], name: str,
               *, description: str, source: str, license_text: str,
               reported: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Copy a published run's ONNX graph into `models_dir` as ``<name>.onnx`` with a card.

    Used to ship a trained model in the package; `reported` replaces the card's scores (e.g.
    with a benchmark's numbers). Returns the card's path.
    """
    run_dir, folder = Path(run_dir), Path(models_dir)
    target_onnx, target_card = folder / f"{name}.onnx", folder / f"{name}.json"
    if not overwrite and (target_onnx.exists() or target_card.exists()):
        raise Rgb2RawError(target_card, "already exists (use overwrite to replace it)")
    payload = read_checkpoint(run_dir / "best.pt")
    config = TrainConfig.from_dict(dict(payload["config"]))
    with atomic_write(target_onnx) as handle, (run_dir / ONNX_NAME).open("rb") as source_file:
        shutil.copyfileobj(source_file, handle)
    local = load_card(run_dir / CARD_NAME).contract
    card = run_card(name, config, {}, [target_onnx], local.size_multiple,
                    description=description, source=source, license_text=license_text,
                    context=local.context, bytes_per_pixel=local.bytes_per_pixel)
    card = replace(card, reported=None if reported is None else Reported(
        str(reported["set"]), float(reported["psnr"]), float(reported["ssim"])))
    return write_card(target_card, card)
