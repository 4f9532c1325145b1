"""Torch networks rgb2raw can run, train and export; their registry; safe loading of weights.

Importing this package does NOT import torch (nor numpy): the registry below is plain data, so
model cards, the CLI and shell completion can use it for free; `build_net` and
`load_checkpoint` import torch only when called.

The registry is the one place that says, per architecture, how its networks are run: the input
contract (size multiple, whole frame or tiles, receptive-field context, memory per pixel, input
range) and the output convention (which black and white levels the output is normalised
between for a camera, how it is rounded, where it is clipped). A model card states only what
differs from its architecture (`rgb2raw.zoo.cards`), so a bare checkpoint run with an
architecture and a camera behaves exactly as that architecture's published models do.

Architectures (names are what model cards use):
- ``"unet"``: `rgb2raw.nets.unet.ReverseISPUNet`, the challenge organisers' baseline;
- ``"liteisp"``: `rgb2raw.nets.liteisp.LiteISPNetS`, MiAlgo's 2nd-place network;
- ``"tiny"``: `rgb2raw.nets.tiny`, rgb2raw's own small networks (``local=True``: exact context);
- ``"parametric"``: `rgb2raw.nets.parametric.ParametricInverseISP`, the fixed inverse ISP.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rgb2raw.errors import Rgb2RawError

if TYPE_CHECKING:
    from torch import nn

    from rgb2raw.cameras import CameraProfile

#: Which levels the network's [0, 1] output is normalised between, for a camera:
#: ``"camera"``: the camera profile's black and white level (`rgb2raw.cameras`);
#: ``"scorer"``: black 0 and the challenge scorer's 1024 (`rgb2raw.levels.SCORER_WHITE`).
LevelRule = Literal["camera", "scorer"]
#: The lowest DN written: ``"black"`` (the black level) or ``"zero"`` (values under black kept).
ClipLow = Literal["black", "zero"]
#: ``"nearest"``: round to the nearest DN; ``"truncate"``: drop the fraction (numpy's astype).
Rounding = Literal["nearest", "truncate"]
#: The natural input of one forward pass for a camera: one challenge crop, or a whole frame.
InputRule = Literal["crop", "frame"]
LEVEL_RULES: tuple[str, ...] = ("camera", "scorer")
CLIP_LOWS: tuple[str, ...] = ("black", "zero")
ROUNDINGS: tuple[str, ...] = ("nearest", "truncate")


@dataclass(frozen=True)
class Contract:
    """How an architecture's networks are fed and how their output becomes DN.

    Every field is a default a model card may override (same name in the card's JSON).
    """

    #: Height and width of the RGB input must be multiples of this.
    size_multiple: int
    #: Runs on the whole frame only (the 6x8 challenge crops stitched back): the output
    #: depends on the whole image (global statistics, an image-derived mask).
    full_frame: bool
    #: How far, in RGB pixels, an output 2x2 block's inputs reach beyond the block (0: pixel-
    #: wise); None: unknown or unbounded (tiles are then blended over an overlap).
    context: int | None
    #: Peak memory of a forward pass per RGB pixel, to size tiles; None: a CNN's estimate.
    bytes_per_pixel: int | None
    #: The network takes RGB scaled to [0, rgb_range] (1.0: 8-bit values divided by 255).
    rgb_range: float = 1.0
    levels: LevelRule = "scorer"
    clip_low: ClipLow = "black"
    rounding: Rounding = "nearest"
    #: The input the authors ran one forward pass on, per camera (None: any size, tiled).
    input: InputRule | None = None


@dataclass(frozen=True)
class Architecture:
    """One architecture: its name, how to build it, and its `Contract`."""

    name: str
    summary: str
    #: ``"module:callable"`` building the torch module from keyword arguments.
    factory: str
    contract: Contract
    #: Whether `rgb2raw train` trains it.
    trainable: bool = False
    #: ``"module:callable"`` of a runner for whole frames in bounded memory (e.g. global
    #: statistics on the frame, then the local part tile by tile), or None: one pass. With
    #: the torch backend the engine calls it as ``runner(module, rgb) -> packed`` on torch
    #: tensors (N, 3, H, W) -> (N, 4, H/2, W/2), in place of ``module(rgb)``
    #: (`rgb2raw.backends.TorchBackend.run_frame`).
    frame_runner: str | None = None


#: Where the registry's conventions come from (docs/conventions.md, with sources): MiAlgo's
#: test.py maps the output y to clip(round(y * (white - black) + black), 0, white) with the
#: camera's levels (S7 0/1023, P20 60/1020) on frames stitched from the 48 crops; the official
#: baseline notebook clamps to [0, 1] in the network, runs one crop at a time and saves
#: (pred * 1024).astype(uint16), i.e. truncation in units of 1024.
REGISTRY: dict[str, Architecture] = {
    "unet": Architecture(
        name="unet",
        summary="official AIM 2022 baseline U-Net (3-64-128-256, 1x1 head)",
        factory="rgb2raw.nets.unet:ReverseISPUNet",
        contract=Contract(size_multiple=4, full_frame=False, context=None, bytes_per_pixel=None,
                          levels="scorer", clip_low="black", rounding="truncate", input="crop"),
        trainable=True,
    ),
    "liteisp": Architecture(
        name="liteisp",
        summary="MiAlgo's LiteISPNet_s (DWT U-Net, attention, image-derived shading mask)",
        factory="rgb2raw.nets.liteisp:LiteISPNetS",
        contract=Contract(size_multiple=16, full_frame=True, context=None, bytes_per_pixel=None,
                          levels="camera", clip_low="zero", rounding="nearest", input="frame"),
        trainable=True,
        # Whole frames in full-width strips, equal to one pass (rgb2raw.nets.twopass).
        frame_runner="rgb2raw.nets.twopass:run_full_frame",
    ),
    "tiny": Architecture(
        name="tiny",
        summary="rgb2raw's small reverse-ISP network (local=True: no global pooling)",
        factory="rgb2raw.nets.tiny:build",
        contract=Contract(size_multiple=2, full_frame=False, context=None, bytes_per_pixel=None,
                          levels="scorer"),
        trainable=True,
    ),
    "global": Architecture(
        name="global",
        summary="the calibrated inverse corrected from image-level statistics (full frame)",
        factory="rgb2raw.nets.globalnet:GlobalReverseISP",
        contract=Contract(size_multiple=2, full_frame=True, context=None, bytes_per_pixel=None,
                          levels="camera"),
        trainable=False,
    ),
    "parametric": Architecture(
        name="parametric",
        summary="fixed inverse ISP from a camera profile (pixel-wise, no weights)",
        factory="rgb2raw.nets:_build_parametric",
        # Pixel-wise; memory measured for the bundled graph (`rgb2raw.nets.build_defaults`).
        contract=Contract(size_multiple=2, full_frame=False, context=0, bytes_per_pixel=48,
                          levels="camera"),
    ),
}
ARCHITECTURES: tuple[str, ...] = tuple(REGISTRY)
TRAINABLE: tuple[str, ...] = tuple(name for name, arch in REGISTRY.items() if arch.trainable)

#: What a bare ONNX file without a card or an architecture gets: the challenge's units (the
#: scorer's 1024), and padding to a generous multiple, harmless for fully convolutional nets
#: (as if they downsampled 5 times).
UNKNOWN = Contract(size_multiple=32, full_frame=False, context=None, bytes_per_pixel=None)

# Keys under which training scripts commonly nest the weights, tried in this order.
# MiAlgo saves {"state_dict_model": ...}; the official baseline saves the bare state dict.
CONTAINER_KEYS: tuple[str, ...] = ("state_dict_model", "state_dict", "model")


def architecture(name: str) -> Architecture:
    """The registered architecture called `name`; an unknown name is a user error."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise Rgb2RawError(None, f"unknown architecture {name!r}; expected one of: "
                                 f"{', '.join(ARCHITECTURES)}") from None


def contract(name: str | None) -> Contract:
    """The contract of architecture `name`; None (a network of unknown kind): `UNKNOWN`."""
    return UNKNOWN if name is None else architecture(name).contract


def level_pair(rule: LevelRule, camera: CameraProfile) -> tuple[float, float]:
    """(black, white) DN that [0, 1] output spans under `rule` for `camera`."""
    if rule == "camera":
        return float(camera.black_level), float(camera.white_level)
    from rgb2raw.levels import SCORER_WHITE

    return 0.0, SCORER_WHITE


def input_size(rule: InputRule | None, camera: CameraProfile) -> tuple[int, int] | None:
    """(height, width) of the input `rule` names for `camera`, or None."""
    if rule == "crop":
        return camera.rgb_crop, camera.rgb_crop
    if rule == "frame":
        return camera.frame_size[1], camera.frame_size[0]
    return None


def resolve_callable(spec: str) -> Callable[..., Any]:
    """The object named by ``"package.module:attribute"``."""
    module_name, _, attribute = spec.partition(":")
    found: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return found


def build_net(arch: str, **kwargs: Any) -> nn.Module:
    """A freshly initialised network of architecture `arch` (keyword arguments go to it)."""
    factory = resolve_callable(architecture(arch).factory)
    module: nn.Module = factory(**kwargs)
    return module


def _build_parametric(camera: object = "generic", **kwargs: Any) -> nn.Module:
    """The parametric inverse for `camera` (a name or `CameraProfile`); it has no weights."""
    from rgb2raw.cameras import CameraProfile, get_camera
    from rgb2raw.nets.parametric import ParametricInverseISP

    profile = camera if isinstance(camera, CameraProfile) else get_camera(str(camera))
    return ParametricInverseISP(profile, **kwargs)


def load_checkpoint(path: str | os.PathLike[str], arch: str, **kwargs: Any) -> nn.Module:
    """Build `arch` and load the weights in `path` strictly; returns the model in eval mode.

    Only plain tensor files are accepted: ``torch.load(..., weights_only=True)`` refuses any
    pickle that would import or call code, and that refusal becomes an `Rgb2RawError` (a
    published checkpoint must never be able to run code on the user's machine). A state dict
    nested under one of `CONTAINER_KEYS` is unwrapped and a DataParallel ``module.`` prefix is
    removed; missing or unexpected tensor names, or wrong shapes, are reported as one line.
    """
    import torch

    model = build_net(arch, **kwargs)
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it was not written with; the outcome (load or
            # refusal) is what matters here, and the library never prints.
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise Rgb2RawError(path, "no such checkpoint file") from None
    except IsADirectoryError:
        raise Rgb2RawError(path, "is a directory, not a checkpoint file") from None
    except pickle.UnpicklingError as exc:
        # weights_only raises this for any global outside torch's allow-list (a class, a
        # function such as os.system) and for pickle opcodes it does not support.
        found = re.search(r"GLOBAL (\S+)", str(exc))
        detail = f" (it references {found.group(1)})" if found else ""
        raise Rgb2RawError(path, f"refused: not a plain weights file{detail}") from None
    except Exception as exc:  # noqa: BLE001 - any other failure means the file is unreadable
        raise Rgb2RawError(path, f"not a readable torch checkpoint: {_one_line(exc)}") from None

    state = _unwrap_state_dict(path, payload)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        problem = _describe_mismatch(model.state_dict(), state, exc)
        raise Rgb2RawError(path, f"weights do not fit architecture {arch!r}: {problem}") from None
    return model.eval()


def _unwrap_state_dict(path: str | os.PathLike[str], payload: object) -> dict[str, Any]:
    """The flat name -> tensor mapping inside `payload`, without a ``module.`` prefix."""
    import torch

    if not isinstance(payload, Mapping):
        raise Rgb2RawError(path, f"checkpoint holds a {type(payload).__name__}, not a state dict")
    state: Mapping[str, Any] = payload
    if not all(isinstance(value, torch.Tensor) for value in state.values()):
        for key in CONTAINER_KEYS:
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
        else:
            keys = ", ".join(sorted(map(str, payload))[:8])
            raise Rgb2RawError(
                path,
                f"no state dict found; top-level keys are: {keys} "
                f"(expected tensors or one of {', '.join(CONTAINER_KEYS)})",
            )
    names = [str(name) for name in state]
    if names and all(name.startswith("module.") for name in names):
        return {name[len("module.") :]: value for name, value in state.items()}
    return dict(state)


def _describe_mismatch(
    expected: Mapping[str, Any], found: Mapping[str, Any], exc: Exception
) -> str:
    """One line naming what does not fit (first few names only)."""
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(map(str, unexpected[:3]))})")
    if not parts:
        shapes = [
            f"{name} is {tuple(found[name].shape)}, expected {tuple(value.shape)}"
            for name, value in expected.items()
            if hasattr(found[name], "shape") and tuple(found[name].shape) != tuple(value.shape)
        ]
        if shapes:
            parts.append(f"{len(shapes)} wrong shapes (e.g. {'; '.join(shapes[:2])})")
        else:
            parts.append(_one_line(exc))
    return "; ".join(parts)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


__all__ = [
    "ARCHITECTURES",
    "CONTAINER_KEYS",
    "REGISTRY",
    "TRAINABLE",
    "UNKNOWN",
    "Architecture",
    "Contract",
    "architecture",
    "build_net",
    "contract",
    "input_size",
    "level_pair",
    "load_checkpoint",
    "resolve_callable",
]
