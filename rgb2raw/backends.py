"""Inference backends: one small interface over ONNX Runtime and torch.

A backend runs the network on a batch of RGB tiles that the pipeline has already scaled to the
model's input range and sized to its multiple: ``run(batch[N, 3, H, W] float32) ->
out[N, 4, H/2, W/2] float32``. Everything else (levels, tiling, TTA, files) is the pipeline's.

ONNX Runtime is the default (no torch needed at run time). The torch backend runs the same
networks straight from their checkpoints, on CPU or CUDA (fp16 only on CUDA). Neither library is
imported until a backend is created.

Which backend a model card gets, and how its file is opened, is `rgb2raw.loading`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from rgb2raw.errors import InvalidParameter, Rgb2RawError

if TYPE_CHECKING:
    from torch import nn


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

    @property
    def description(self) -> str:
        """Short description for logs and benchmark tables, e.g. ``onnx:CPUExecutionProvider``."""
        ...

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """(height, width) of the only input size the network takes (a graph exported for one
        size), or None: any size that is a multiple of the model's."""
        ...

    def ready(self) -> None:
        """Block until the backend can run; raise what opening it met, if anything."""
        ...

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


@dataclass(frozen=True)
class _Session:
    """An open ONNX Runtime session and what the backend reads from its graph."""

    session: Any
    input_name: str
    output_name: str
    #: A graph exported with a fixed batch (e.g. 1) is fed that many tiles at a time.
    fixed_batch: int | None
    fixed_hw: tuple[int, int] | None
    providers: tuple[str, ...]


# Sessions are created once per process: opening the same file with the same options again
# (a second `load_model`, a notebook re-running a cell) reuses the open session, which ONNX
# Runtime allows to be run from several threads at once.
_SESSIONS: dict[tuple[object, ...], _Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _open_session(path: Path, providers: tuple[str, ...], threads: int, light: bool) -> _Session:
    """Open (or reuse) the session of `path`; every failure is an `Rgb2RawError`."""
    try:
        stat = path.stat()
    except OSError:
        raise Rgb2RawError(path, "no such model file") from None
    if not path.is_file():
        raise Rgb2RawError(path, "no such model file")
    key = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns, providers, threads, light)
    with _SESSIONS_LOCK:
        if key in _SESSIONS:
            return _SESSIONS[key]
        opened = _create_session(path, providers, threads, light)
        _SESSIONS[key] = opened
        return opened


def _create_session(path: Path, wanted: tuple[str, ...], threads: int, light: bool) -> _Session:
    import onnxruntime as ort

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
    # A light (pixel-wise, hand-built) graph has nothing for the extended fusions to do and
    # opens in half the time with the basic ones; a CNN gains from every fusion.
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if light
                                        else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    options.log_severity_level = 3  # errors only: the library never prints
    try:
        session = ort.InferenceSession(os.fspath(path), sess_options=options,
                                       providers=list(wanted))
    except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
        raise Rgb2RawError(path, f"cannot load onnx model: {_one_line(exc)}") from None
    active = tuple(session.get_providers())
    inactive = [p for p in wanted if p != "CPUExecutionProvider" and p not in active]
    if inactive:
        raise Rgb2RawError(None, f"requested provider {', '.join(inactive)} did not start "
                                 f"(active: {', '.join(active)}); check the GPU drivers "
                                 "and onnxruntime-gpu, or use --device cpu")
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise Rgb2RawError(path, "onnx model must have one (N, 3, H, W) input")
    batch_dim, height, width = inputs[0].shape[0], inputs[0].shape[2], inputs[0].shape[3]
    fixed_hw = (height, width) if isinstance(height, int) and isinstance(width, int) else None
    return _Session(session, inputs[0].name, outputs[0].name,
                    batch_dim if isinstance(batch_dim, int) else None, fixed_hw, active)


class OnnxBackend:
    """ONNX Runtime session over one ``.onnx`` file.

    `providers` are tried in order (default: CPU only; with ``device="cuda"``: CUDA then CPU).
    A GPU provider that was asked for but did not become active (ONNX Runtime silently falls
    back to the CPU when CUDA libraries are missing) is an error, so a user who asked for the
    GPU never gets a slow CPU run without knowing. `threads` = 0 lets ONNX Runtime decide;
    `light` marks a cheap pixel-wise graph (fewer graph optimisations, faster to open).

    With `background`, ONNX Runtime is imported and the session opened in a thread, so a
    caller can decode its first image meanwhile; `ready()` (and anything that needs the
    session) waits for it and raises what opening it raised.
    """

    def __init__(self, model_path: str | os.PathLike[str], *, device: Device = "cpu",
                 providers: list[str] | None = None, threads: int = 0, light: bool = False,
                 background: bool = False) -> None:
        self.path = Path(model_path)
        if providers is None:
            providers = ["cuda", "cpu"] if device == "cuda" else ["cpu"]
        wanted = tuple(provider_name(p) for p in providers)
        self._opening: Future[_Session] = Future()

        def open_now() -> None:
            try:
                self._opening.set_result(_open_session(self.path, wanted, threads, light))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                self._opening.set_exception(exc)

        if background:
            threading.Thread(target=open_now, name="rgb2raw-open", daemon=True).start()
        else:
            open_now()
            self.ready()

    def ready(self) -> None:
        """Wait until the session is open; raises the error opening it met, if any."""
        self._opening.result()

    @property
    def _session(self) -> _Session:
        return self._opening.result()

    @property
    def session(self) -> Any:
        return self._session.session

    @property
    def providers(self) -> tuple[str, ...]:
        return self._session.providers

    @property
    def fixed_batch(self) -> int | None:
        return self._session.fixed_batch

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        return self._session.fixed_hw

    @property
    def description(self) -> str:
        return f"onnx:{self._session.providers[0]}"

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch)
        opened = self._session
        step = opened.fixed_batch or batch.shape[0]
        feed = opened.input_name
        pieces = [opened.session.run([opened.output_name], {feed: batch[i: i + step]})[0]
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
            raise InvalidParameter("device", "cuda was requested but torch sees no CUDA device "
                                             f"(torch {torch.__version__})", hint="use cpu")
        if fp16 and device != "cuda":
            raise InvalidParameter("fp16", "half precision needs the cuda device (it is slow "
                                           "and inexact on the CPU)")
        if threads > 0:
            torch.set_num_threads(int(threads))
        self.torch = torch
        self.dtype = torch.float16 if fp16 else torch.float32
        self.device = torch.device(device)
        self.module = module.eval().to(device=self.device, dtype=self.dtype)
        self.name = name
        self.description = f"torch:{device}{':fp16' if fp16 else ''}"
        self.fixed_hw: tuple[int, int] | None = None

    def ready(self) -> None:
        """A torch backend is ready once built."""

    def run_frame(self, runner: Any, batch: np.ndarray) -> np.ndarray:
        """Run ``runner(module, tensor) -> tensor`` (an architecture's whole-frame runner,
        `rgb2raw.nets.Architecture.frame_runner`) on `batch`, on this backend's device."""
        batch = _check_batch(batch)
        torch = self.torch
        with torch.inference_mode():
            tensor = torch.from_numpy(batch).to(device=self.device, dtype=self.dtype)
            output = runner(self.module, tensor).float().cpu().numpy()
        return _check_output(output, batch, self.name)

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
        self.fixed_hw: tuple[int, int] | None = None

    def ready(self) -> None:
        """A function is always ready."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = _check_batch(batch)
        return _check_output(np.asarray(self.function(batch), dtype=np.float32), batch,
                             self.description)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


__all__ = [
    "DEVICES",
    "PROVIDER_ALIASES",
    "Backend",
    "Device",
    "FunctionBackend",
    "OnnxBackend",
    "TorchBackend",
    "provider_name",
]
