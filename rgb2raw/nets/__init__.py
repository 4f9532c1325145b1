"""Torch networks rgb2raw can run, train and export, and safe loading of published weights.

Importing this package does NOT import torch: `ARCHITECTURES` lets a model registry validate
names without it, and `build_net` / `load_checkpoint` import torch only when called.

Architectures (names are what model cards use):
- ``"unet"``: `rgb2raw.nets.unet.ReverseISPUNet`, the challenge organisers' baseline.
- ``"liteisp"``: `rgb2raw.nets.liteisp.LiteISPNetS`, MiAlgo's 2nd-place network.
- ``"global"``: `rgb2raw.nets.globalnet.GlobalReverseISP`, the calibrated inverse corrected
  from image-level statistics (full frame).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rgb2raw.errors import Rgb2RawError

if TYPE_CHECKING:
    from torch import nn

ARCHITECTURES: tuple[str, ...] = ("unet", "liteisp", "tiny", "parametric", "global")

# Keys under which training scripts commonly nest the weights, tried in this order.
# MiAlgo saves {"state_dict_model": ...}; the official baseline saves the bare state dict.
CONTAINER_KEYS: tuple[str, ...] = ("state_dict_model", "state_dict", "model")


def build_net(arch: str, **kwargs: Any) -> nn.Module:
    """A freshly initialised network of architecture `arch` (keyword arguments go to it)."""
    if arch == "unet":
        from rgb2raw.nets.unet import ReverseISPUNet

        return ReverseISPUNet(**kwargs)
    if arch == "liteisp":
        from rgb2raw.nets.liteisp import LiteISPNetS

        return LiteISPNetS(**kwargs)
    if arch == "tiny":  # local=True: the variant without global pooling (exact context)
        from rgb2raw.nets.tiny import LocalReverseISP, TinyReverseISP

        return LocalReverseISP(**kwargs) if kwargs.pop("local", False) else TinyReverseISP(**kwargs)
    if arch == "global":  # the learned offline default: needs camera= and centre_gains=
        from rgb2raw.nets.globalnet import GlobalReverseISP

        return GlobalReverseISP(**kwargs)
    if arch == "parametric":  # needs camera=<name or CameraProfile>; has no weights to learn
        from rgb2raw.cameras import CameraProfile, get_camera
        from rgb2raw.nets.parametric import ParametricInverseISP

        camera = kwargs.pop("camera", "generic")
        profile = camera if isinstance(camera, CameraProfile) else get_camera(str(camera))
        return ParametricInverseISP(profile, **kwargs)
    raise Rgb2RawError(
        None, f"unknown architecture {arch!r}; expected one of: {', '.join(ARCHITECTURES)}"
    )


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


__all__ = ["ARCHITECTURES", "CONTAINER_KEYS", "build_net", "load_checkpoint"]
