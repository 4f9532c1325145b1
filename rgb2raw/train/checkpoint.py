"""Building a run's network, starting it from a zoo model, and saving/loading checkpoints.

Checkpoint files are ``{"state_dict": weights, "config": TrainConfig.to_dict(), ...}`` with
plain values only, so ``torch.load(path, weights_only=True)`` reads them (and
`rgb2raw.nets.load_checkpoint` finds the weights under ``state_dict``). ``last.pt`` adds a
``train_state`` entry with everything `--resume` needs.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rgb2raw._atomic import atomic_write
from rgb2raw.errors import InvalidParameter, Rgb2RawError
from rgb2raw.train.config import TrainConfig


def build_model(arch: str, net_kwargs: dict[str, Any] | None = None) -> nn.Module:
    """A fresh network of `arch` with the keyword arguments a config or checkpoint recorded."""
    kwargs = dict(net_kwargs or {})
    # JSON/state files hold tuples as lists; the nets take tuples of widths.
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    from rgb2raw.nets import build_net

    return build_net(arch, **kwargs)


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (a killed run never leaves half a file)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a run checkpoint with ``weights_only=True``; problems become Rgb2RawError."""
    path = Path(path)
    if not path.is_file():
        raise Rgb2RawError(path, "no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise Rgb2RawError(path, "refused: not a plain weights file") from None
    except Exception as exc:  # noqa: BLE001 - any other failure means the file is unreadable
        raise Rgb2RawError(path, f"not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise Rgb2RawError(path, "not an rgb2raw training checkpoint (no state_dict)")
    return payload


def resolve_init(init: str, arch: str) -> tuple[Path, dict[str, Any], tuple[float, float]]:
    """Where the --init weights are, the net kwargs they need, and their output levels.

    `init` is a run checkpoint (``best.pt`` / ``last.pt``), a run folder (its ``best.pt``) or
    a zoo model name with torch weights (downloaded into the cache if needed).
    """
    path = Path(init)
    if path.is_dir():
        path = path / "best.pt"
    if path.is_file():
        payload = read_checkpoint(path)
        stored = TrainConfig.from_dict(dict(payload.get("config") or {}))
        if stored.arch != arch:
            raise Rgb2RawError(path, f"holds a {stored.arch!r} network, not {arch!r}")
        return path, stored.net_kwargs, (stored.black_level, stored.white_level)
    from rgb2raw import zoo

    card = zoo.get_model(init)
    if card.arch != arch:
        raise InvalidParameter("arch", f"model {card.name} is a {card.arch!r} network, "
                                       f"not {arch!r}")
    torch_files = [entry for entry in card.files if entry.format == "torch"]
    if not torch_files:
        raise Rgb2RawError(None, f"model {card.name} has no torch weights to fine-tune")
    zoo.pull(card)
    return zoo.file_path(card, torch_files[0]), {}, (card.contract.black_level,
                                                     card.contract.white_level)


def load_init_weights(model: nn.Module, path: Path, arch: str, net_kwargs: dict[str, Any]) -> None:
    """Copy the weights in `path` into `model` strictly.

    Published files go through `rgb2raw.nets.load_checkpoint` (safe loading, nested state
    dicts, clear mismatch errors); our tiny network's run checkpoints are read directly.
    """
    if arch == "tiny":
        state = read_checkpoint(path)["state_dict"]
    else:
        from rgb2raw.nets import load_checkpoint

        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in net_kwargs.items()}
        state = load_checkpoint(path, arch, **kwargs).state_dict()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise Rgb2RawError(path, f"weights do not fit the {arch} network: {str(exc).splitlines()[0]}") from None
