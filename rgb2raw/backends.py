"""Inference backends: one small interface over ONNX Runtime and torch.

A backend runs the network on a batch of RGB tiles that the pipeline has already scaled to the
model's input range and sized to its multiple: ``run(batch[N, 3, H, W] float32) ->
out[N, 4, H/2, W/2] float32``. Everything else (levels, tiling, TTA, files) is the pipeline's.

ONNX Runtime is the default (no torch needed at run time). The torch backend runs the same
networks straight from their checkpoints, on CPU or CUDA (fp16 only on CUDA). Neither library is
imported until a backend is created.

`load_model` turns a model name, `ModelCard`, ``.onnx`` file or torch checkpoint into a
`LoadedModel`: a backend plus the `ModelContract` the pipeline must respect.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from rgb2raw.errors import Rgb2RawError
from rgb2raw.tiling import round_up, tile_multiple, tile_workers

if TYPE_CHECKING:
    from torch import nn

    from rgb2raw.zoo import ModelCard

Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = ("cpu", "cuda")

# Short provider names users may type, and the ONNX Runtime names they stand for.
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


@runtime_checkable
class Backend(Protocol):
    """Runs a network: (N, 3, H, W) float32 -> (N, 4, H/2, W/2) float32."""

    #: Short description for logs and benchmark tables, e.g. ``onnx:CPUExecutionProvider``.
    description: str

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch; input and output are float32 NCHW arrays."""
        ...


def _check_batch(batch: np.ndarray) -> np.ndarray:
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(f"a backend takes an (N, 3, H, W) batch, got shape {batch.shape}")
    return np.ascontiguousarray(batch, dtype=np.float32)


def _check_output(output: np.ndarray, batch: np.ndarray, where: str) -> np.ndarray:
    expected = (batch.shape[0], 4, batch.shape[2] // 2, batch.shape[3] // 2)
    if output.shape != expected:
        raise Rgb2RawError(where, f"model output has shape {tuple(output.shape)}, expected "
                                  f"{expected} for an input of {tuple(batch.shape)}")
    return output


def provider_name(name: str) -> str:
    """The ONNX Runtime provider called `name` (an alias like ``cuda`` or a full name)."""
    return PROVIDER_ALIASES.get(name.lower(), name)


class OnnxBackend:
    """ONNX Runtime session over one ``.onnx`` file.

    `providers` are tried in order (default: CPU only; with ``device="cuda"``: CUDA then CPU).
    A GPU provider that was asked for but did not become active (ONNX Runtime silently falls
    back to the CPU when CUDA libraries are missing) is an error, so a user who asked for the
    GPU never gets a slow CPU run without knowing. `threads` = 0 lets ONNX Runtime decide.
    """

    def __init__(self, model_path: str | os.PathLike[str], *, device: Device = "cpu",
                 providers: list[str] | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self.path = Path(model_path)
        if not self.path.is_file():
            raise Rgb2RawError(self.path, "no such model file")
        if providers is None:
            providers = ["cuda", "cpu"] if device == "cuda" else ["cpu"]
        wanted = [provider_name(p) for p in providers]
        available = ort.get_available_providers()
        missing = [p for p in wanted if p not in available]
        if missing:
            raise Rgb2RawError(None, f"onnx runtime provider {', '.join(missing)} is not available "
                                     f"in this installation (available: {', '.join(available)})")
        options = ort.SessionOptions()
        # 0: one thread per physical core (ONNX Runtime's default). Operators run one after
        # another, each on all threads: the models are chains without parallel branches.
        options.intra_op_num_threads = max(0, int(threads))
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: the library never prints
        try:
            self.session = ort.InferenceSession(os.fspath(self.path), sess_options=options,
                                                providers=wanted)
        except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
            raise Rgb2RawError(self.path, f"cannot load onnx model: {_one_line(exc)}") from None
        active = self.session.get_providers()
        inactive = [p for p in wanted if p != "CPUExecutionProvider" and p not in active]
        if inactive:
            raise Rgb2RawError(None, f"requested provider {', '.join(inactive)} did not start "
                                     f"(active: {', '.join(active)}); check the GPU drivers "
                                     "and onnxruntime-gpu, or use --device cpu")
        self.providers = tuple(active)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise Rgb2RawError(self.path, "onnx model must have one (N, 3, H, W) input")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        batch_dim = inputs[0].shape[0]
        # A graph exported with a fixed batch of 1 must be fed one tile at a time.
        self.fixed_batch = batch_dim if isinstance(batch_dim, int) else None
        height, width = inputs[0].shape[2], inputs[0].shape[3]
        self.fixed_hw = (height, width) if isinstance(height, int) and isinstance(width, int) else None
        self.description = f"onnx:{active[0]}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch)
        step = self.fixed_batch or batch.shape[0]
        pieces = [self.session.run([self.output_name], {self.input_name: batch[i: i + step]})[0]
                  for i in range(0, batch.shape[0], step)]
        output = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return _check_output(np.asarray(output, dtype=np.float32), batch, os.fspath(self.path))


class TorchBackend:
    """A torch module in eval mode on `device`; fp16 (half precision) only on CUDA."""

    def __init__(self, module: nn.Module, *, device: Device = "cpu", fp16: bool = False,
                 threads: int = 0, name: str = "torch") -> None:
        import torch

        if device not in DEVICES:
            raise Rgb2RawError(None, f"unknown device {device!r}; choose cpu or cuda")
        if device == "cuda" and not torch.cuda.is_available():
            raise Rgb2RawError(None, "--device cuda was requested but torch sees no CUDA device "
                                     f"(torch {torch.__version__}); use --device cpu")
        if fp16 and device != "cuda":
            raise Rgb2RawError(None, "fp16 needs --device cuda (half precision is slow and "
                                     "inexact on the CPU)")
        if threads > 0:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.dtype = torch.float16 if fp16 else torch.float32
        self.device = torch.device(device)
        self.module = module.eval().to(device=self.device, dtype=self.dtype)
        self.name = name
        self.description = f"torch:{device}{':fp16' if fp16 else ''}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch)
        torch = self.torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(device=self.device, dtype=self.dtype)
            output = self.module(tensor).float().cpu().numpy()
        return _check_output(output, batch, self.name)


class FunctionBackend:
    """Wraps a plain numpy function as a backend (tests, parametric models, benchmarks)."""

    def __init__(self, function: Any, description: str = "function") -> None:
        self.function = function
        self.description = description

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch)
        return _check_output(np.asarray(self.function(batch), dtype=np.float32), batch,
                             self.description)


# ------------------------------------------------------------------ models: card -> backend


BackendName = Literal["onnx", "torch"]
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")
# Padding to a generous multiple is harmless for fully convolutional nets, so a bare ONNX
# file without a card is padded as if its networks downsampled 5 times.
UNKNOWN_SIZE_MULTIPLE = 32


@dataclass(frozen=True)
class ModelContract:
    """What the engine must respect to run a model (the relevant fields of its ModelCard)."""

    name: str
    #: The network takes RGB scaled to [0, rgb_range].
    rgb_range: float = 1.0
    size_multiple: int = 1
    #: Run on the whole image only (no tiles, no flips): the output depends on frame position.
    full_frame: bool = False
    #: Receptive-field radius in RGB pixels beyond an output's 2x2 block; None: unknown.
    context: int | None = None
    #: Peak forward-pass memory per RGB pixel (sizes the auto tile); None: a CNN's estimate.
    bytes_per_pixel: int | None = None
    #: Output v in [0, 1] means black_level + v * (white_level - black_level) DN.
    black_level: float = 0.0
    white_level: float = 1024.0
    camera: str | None = None

    @classmethod
    def from_card(cls, card: ModelCard) -> ModelContract:
        return cls(name=card.name, rgb_range=card.rgb_range, size_multiple=card.size_multiple,
                   full_frame=card.full_frame, context=card.context,
                   bytes_per_pixel=card.bytes_per_pixel, black_level=float(card.black_level),
                   white_level=float(card.white_level), camera=card.camera)


@dataclass
class LoadedModel:
    """A backend ready to run, with its contract. Keep it alive while running."""

    contract: ModelContract
    backend: Backend
    #: Holds a temporary ONNX export alive for the backend's lifetime.
    _scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)
    #: Tiles run at once (threads); more than 1 only for light models (`tiling.is_light`),
    #: whose backend then runs each tile on one thread.
    workers: int = 1

    @property
    def description(self) -> str:
        return f"{self.contract.name} ({self.backend.description})"


def _torch_backend_from_module(module: object, *, device: Device, fp16: bool,
                               threads: int, name: str) -> TorchBackend:
    return TorchBackend(module, device=device, fp16=fp16, threads=threads, name=name)  # type: ignore[arg-type]


def _onnx_from_module(module: object, *, size_multiple: int, device: Device, threads: int,
                      providers: list[str] | None, name: str
                      ) -> tuple[OnnxBackend, tempfile.TemporaryDirectory[str]]:
    """Export a torch module to a temporary ONNX file and open it with ONNX Runtime."""
    from rgb2raw.nets.export import export_onnx

    scratch = tempfile.TemporaryDirectory(prefix="rgb2raw-onnx-")
    side = round_up(64, tile_multiple(size_multiple))
    path = export_onnx(module, Path(scratch.name) / f"{name}.onnx", example_hw=(side, side))  # type: ignore[arg-type]
    return OnnxBackend(path, device=device, threads=threads, providers=providers), scratch


def load_model(model: str | os.PathLike[str] | ModelCard | None = None, *, camera: str = "generic",
               backend: BackendName = "onnx", device: Device = "cpu", threads: int = 0,
               fp16: bool = False, providers: list[str] | None = None,
               arch: str | None = None) -> LoadedModel:
    """Resolve `model` (zoo name, ModelCard, ``.onnx`` file or checkpoint + `arch`) and open it.

    None means the camera's bundled default. Zoo models are fetched into the cache if needed
    (`zoo.pull`, which honours RGB2RAW_OFFLINE). A torch checkpoint runs on the torch backend
    directly, or is exported to a temporary ONNX file for the ONNX backend.
    """
    from rgb2raw import zoo

    if backend not in ("onnx", "torch"):
        raise Rgb2RawError(None, f"unknown backend {backend!r}; choose onnx or torch")
    if fp16 and backend != "torch":
        raise Rgb2RawError(None, "fp16 is only available with --backend torch --device cuda")
    if model is None:
        model = zoo.default_model(camera)
    if isinstance(model, zoo.ModelCard):
        return _load_card(model, backend=backend, device=device, threads=threads, fp16=fp16,
                          providers=providers)
    path = Path(model)
    local_card = zoo.find_local_card(path) if path.exists() else None
    if local_card is not None and arch is None:  # a training run folder, or weights + card
        return _load_card(local_card, backend=backend, device=device, threads=threads,
                          fp16=fp16, providers=providers)
    if path.suffix.lower() == ".onnx" or path.suffix.lower() in CHECKPOINT_SUFFIXES or path.exists():
        return _load_file(path, camera=camera, backend=backend, device=device, threads=threads,
                          fp16=fp16, providers=providers, arch=arch)
    if arch is not None:
        raise Rgb2RawError(None, "--arch is for a local checkpoint file; a zoo model knows its arch")
    return _load_card(zoo.get_model(str(model)), backend=backend, device=device, threads=threads,
                      fp16=fp16, providers=providers)


def _load_card(card: ModelCard, *, backend: BackendName, device: Device, threads: int,
               fp16: bool, providers: list[str] | None) -> LoadedModel:
    from rgb2raw import zoo

    contract = ModelContract.from_card(card)
    zoo.pull(card)
    by_format = {entry.format: zoo.file_path(card, entry) for entry in reversed(card.files)}
    if backend == "onnx" and "onnx" in by_format:
        # A light model on the CPU spends the threads on tiles in parallel, one thread each.
        workers = tile_workers(card.bytes_per_pixel, threads) if device == "cpu" else 1
        return LoadedModel(contract, OnnxBackend(by_format["onnx"], device=device,
                                                 threads=1 if workers > 1 else threads,
                                                 providers=providers), workers=workers)
    if "torch" not in by_format:
        raise Rgb2RawError(None, f"model {card.name} has no torch weights (only onnx); "
                                 "use --backend onnx")
    from rgb2raw.nets import load_checkpoint

    module = load_checkpoint(by_format["torch"], card.arch)
    if backend == "torch":
        return LoadedModel(contract, _torch_backend_from_module(
            module, device=device, fp16=fp16, threads=threads, name=card.name))
    onnx_backend, scratch = _onnx_from_module(module, size_multiple=card.size_multiple,
                                              device=device, threads=threads,
                                              providers=providers, name=card.name)
    return LoadedModel(contract, onnx_backend, scratch)


def _load_file(path: Path, *, camera: str, backend: BackendName, device: Device, threads: int,
               fp16: bool, providers: list[str] | None, arch: str | None) -> LoadedModel:
    if not path.is_file():
        raise Rgb2RawError(path, "no such model file")
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise Rgb2RawError(path, "an onnx file runs on --backend onnx only")
        # Without a card: challenge convention ([0, 1] of 1024), generous padding.
        contract = ModelContract(name=path.stem, size_multiple=UNKNOWN_SIZE_MULTIPLE,
                                 camera=camera)
        return LoadedModel(contract, OnnxBackend(path, device=device, threads=threads,
                                                 providers=providers))
    if arch is None:
        raise Rgb2RawError(path, "a checkpoint needs --arch (unet or liteisp) to be loaded")
    from rgb2raw.cameras import get_camera
    from rgb2raw.nets import load_checkpoint

    module = load_checkpoint(path, arch)
    multiple = int(getattr(module, "size_multiple", UNKNOWN_SIZE_MULTIPLE))
    if arch == "liteisp":
        # MiAlgo's network outputs values normalised between the camera's levels.
        profile = get_camera(camera)
        contract = ModelContract(name=path.stem, size_multiple=multiple, camera=camera,
                                 black_level=profile.black_level, white_level=profile.white_level)
    else:
        contract = ModelContract(name=path.stem, size_multiple=multiple, camera=camera)
    if backend == "torch":
        return LoadedModel(contract, _torch_backend_from_module(
            module, device=device, fp16=fp16, threads=threads, name=path.stem))
    onnx_backend, scratch = _onnx_from_module(module, size_multiple=multiple, device=device,
                                              threads=threads, providers=providers,
                                              name=path.stem)
    return LoadedModel(contract, onnx_backend, scratch)



def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


__all__ = [
    "CHECKPOINT_SUFFIXES",
    "DEVICES",
    "BackendName",
    "LoadedModel",
    "ModelContract",
    "load_model",
    "PROVIDER_ALIASES",
    "Backend",
    "Device",
    "FunctionBackend",
    "OnnxBackend",
    "TorchBackend",
    "provider_name",
]
