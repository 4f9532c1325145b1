"""A model card's file, opened: `open_model` turns a `ModelCard` into a `LoadedModel`.

Which file of the card suits the backend asked for (its ONNX graph, or its torch weights run
by torch or exported to a temporary ONNX file), whether a pixel-wise graph on the CPU is
evaluated by `rgb2raw.nets.pixelwise` instead of ONNX Runtime, and how many tiles run at once.
The backends themselves are `rgb2raw.backends`; which card a user's model name or path means
is `rgb2raw.zoo.resolve_model`'s business.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rgb2raw.backends import Backend, Device, OnnxBackend, TorchBackend
from rgb2raw.errors import Rgb2RawError
from rgb2raw.tiling import is_light, round_up, tile_multiple, tile_workers

if TYPE_CHECKING:
    from rgb2raw.zoo import CardContract, ModelCard

BackendName = Literal["auto", "onnx", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "onnx", "torch")


@dataclass
class LoadedModel:
    """A backend ready to run, with the card it was opened from. Keep it alive while running."""

    card: ModelCard
    backend: Backend
    #: Tiles run at once (threads); more than 1 only for light models (`tiling.is_light`),
    #: whose backend then runs each tile on one thread.
    workers: int = 1
    #: Holds a temporary ONNX export alive for the backend's lifetime.
    _scratch: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def contract(self) -> CardContract:
        """What the engine must respect: the card's contract over its architecture's."""
        return self.card.contract

    @property
    def description(self) -> str:
        return f"{self.card.name} ({self.backend.description})"


def _onnx_from_module(module: object, *, size_multiple: int, device: Device, threads: int,
                      providers: list[str] | None, name: str
                      ) -> tuple[OnnxBackend, tempfile.TemporaryDirectory[str]]:
    """Export a torch module to a temporary ONNX file and open it with ONNX Runtime."""
    from rgb2raw.nets.export import export_onnx

    scratch = tempfile.TemporaryDirectory(prefix="rgb2raw-onnx-")
    side = round_up(64, tile_multiple(size_multiple))
    path = export_onnx(module, Path(scratch.name) / f"{name}.onnx", example_hw=(side, side))  # type: ignore[arg-type]
    return OnnxBackend(path, device=device, threads=threads, providers=providers), scratch


def resolve_backend(card: ModelCard, backend: BackendName) -> BackendName:
    """`auto` made concrete: ONNX Runtime (or, on the CPU, `open_model`'s own evaluation of a
    pixel-wise graph, `rgb2raw.nets.pixelwise`), except for a model that has only torch weights and
    whose architecture runs whole frames in bounded memory (`CardContract.frame_runner`, torch
    only): exported to ONNX, such a model would run its whole frame in one pass (MiAlgo's
    LiteISPNet_s: several GB on a P20 frame), so it runs on torch with its frame runner."""
    if backend != "auto":
        return backend
    formats = {entry.format for entry in card.files}
    contract = card.contract
    if "onnx" not in formats and contract.full_frame and contract.frame_runner is not None:
        return "torch"
    return "onnx"


def check_requirements(card: ModelCard, backend: BackendName) -> None:
    """Raise, before anything loads, when an optional package the run needs is missing."""
    from rgb2raw._optional import require

    formats = {entry.format for entry in card.files}
    if backend == "torch" or "onnx" not in formats:
        require("torch", purpose=f"running model {card.name} from its torch weights")
    if backend == "onnx" and "onnx" not in formats:
        require("onnx", purpose=f"exporting model {card.name} to ONNX (backend onnx)")


def open_model(card: ModelCard, *, backend: BackendName = "auto", device: Device = "cpu",
               threads: int = 0, fp16: bool = False, providers: list[str] | None = None,
               background: bool = False) -> LoadedModel:
    """Open the file of `card` that suits `backend`: its ONNX file, or its torch weights run
    by torch or exported to a temporary ONNX file. Files are fetched first (`zoo.pull`).

    `background` opens an ONNX file's session in a thread (see `OnnxBackend`): the caller
    decodes its first image meanwhile, and `backend.ready()` raises any problem."""
    from rgb2raw import zoo

    if backend not in BACKENDS:
        raise Rgb2RawError(None, f"unknown backend {backend!r}; choose auto, onnx or torch")
    requested, backend = backend, resolve_backend(card, backend)
    if fp16 and backend != "torch":
        raise Rgb2RawError(None, "fp16 is only available with the torch backend on cuda")
    formats = {entry.format: entry for entry in reversed(card.files)}
    if backend == "torch" and "torch" not in formats:
        raise Rgb2RawError(None, f"model {card.name} has no torch weights (only onnx): it runs "
                                 "on the onnx backend only")
    check_requirements(card, backend)
    zoo.pull(card)
    contract = card.contract
    if backend == "onnx" and "onnx" in formats:
        onnx_path = zoo.file_path(card, formats["onnx"])
        if requested == "auto" and device == "cpu" and providers is None:
            pixelwise = _pixelwise(onnx_path, card, threads)
            if pixelwise is not None:
                return pixelwise
        # A light model on the CPU spends the threads on tiles in parallel, one thread each.
        workers = tile_workers(contract.bytes_per_pixel, threads) if device == "cpu" else 1
        session = OnnxBackend(onnx_path, device=device,
                              threads=1 if workers > 1 else threads, providers=providers,
                              light=is_light(contract.bytes_per_pixel), background=background)
        return LoadedModel(card, session, workers=workers)
    if card.arch is None:
        raise Rgb2RawError(None, f"model {card.name} names no architecture to build its "
                                 "torch weights with")
    from rgb2raw.nets import load_checkpoint

    module = load_checkpoint(zoo.file_path(card, formats["torch"]), card.arch)
    if backend == "torch":
        return LoadedModel(card, TorchBackend(module, device=device, fp16=fp16,
                                              threads=threads, name=card.name))
    onnx_backend, scratch = _onnx_from_module(module, size_multiple=contract.size_multiple,
                                              device=device, threads=threads,
                                              providers=providers, name=card.name)
    return LoadedModel(card, onnx_backend, _scratch=scratch)


def _pixelwise(path: Path, card: ModelCard, threads: int) -> LoadedModel | None:
    """The model as a `PixelwiseBackend` when its file is a pixel-wise graph of
    `rgb2raw.nets.parametric_graph` (the same function, evaluated without ONNX Runtime and
    faster on whole photos); None otherwise."""
    if card.contract.rgb_range != 1 or card.contract.full_frame:
        return None
    from rgb2raw.nets.pixelwise import PixelwiseBackend, read_function

    function = read_function(path)
    if function is None:
        return None
    workers = max(1, threads if threads > 0 else (os.cpu_count() or 1))
    return LoadedModel(card, PixelwiseBackend(function, workers=workers, name=card.name),
                       workers=workers)


__all__ = ["BACKENDS", "BackendName", "LoadedModel", "check_requirements", "open_model",
           "resolve_backend"]
