"""The registry: which cards exist, and what a model name, path or card given by a user means.

Zoo cards are the JSON files in the package's ``models/`` folder (installed as
``rgb2raw.models``). A local model is a training run folder (its ``model.json``), a card file,
a weights file with a card beside it, or a bare weights file run with an architecture and a
camera; a bare file gets a card made on the spot, with no overrides, so it runs exactly as
that architecture's zoo models do.
"""

from __future__ import annotations

import difflib
import logging
import os
from pathlib import Path

from rgb2raw.errors import Rgb2RawError
from rgb2raw.zoo.cards import FileFormat, ModelCard, ModelFile, load_card

log = logging.getLogger("rgb2raw.zoo")

#: The card a training run (or any local model folder) keeps beside its weights.
LOCAL_CARD_NAME = "model.json"
#: Suffixes taken for torch checkpoints (anything else that is not ``.onnx`` is too).
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")
DEFAULT_CAMERA = "generic"



def models_dir() -> Path:
    """The folder holding the cards: the installed ``rgb2raw.models``, or a checkout's models/."""
    try:
        from importlib.resources import files as resource_files

        located = resource_files("rgb2raw.models")
        if isinstance(located, Path) and located.is_dir():
            return located
    except (ModuleNotFoundError, TypeError):
        pass
    # Running from a checkout where models/ is not mapped into the package.
    return Path(__file__).resolve().parent.parent.parent / "models"


def list_models(directory: str | os.PathLike[str] | None = None) -> list[ModelCard]:
    """All cards in `directory` (default `models_dir()`), sorted by name."""
    from rgb2raw import zoo  # through the package, so a patched `zoo.models_dir` is seen

    folder = zoo.models_dir() if directory is None else Path(directory)
    return [load_card(path) for path in sorted(folder.glob("*.json"))]


def get_model(name: str, directory: str | os.PathLike[str] | None = None) -> ModelCard:
    """The card called `name`; an unknown name raises an error listing close matches."""
    cards = {card.name: card for card in list_models(directory)}
    if name in cards:
        return cards[name]
    close = difflib.get_close_matches(name, list(cards), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise Rgb2RawError(None, f"unknown model {name!r}{hint} (see `rgb2raw models list`)")


def complete_model_name(incomplete: str) -> list[str]:
    """Model names starting with `incomplete`: a Typer ``autocompletion`` for ``--model``."""
    try:
        return [card.name for card in list_models() if card.name.startswith(incomplete)]
    except Rgb2RawError:
        return []  # a broken card must not break shell completion


#: Prefix of every camera's bundled default: the inverse ISP calibrated on real phone data
#: (`models/calibrated.md`). The uncalibrated formula stays available as ``parametric-<camera>``.
DEFAULT_PREFIX = "calibrated"


def default_model(camera: str) -> ModelCard:
    """The camera's bundled offline default model (``calibrated-<camera>``)."""
    return get_model(f"{DEFAULT_PREFIX}-{camera}")


def find_local_card(path: str | os.PathLike[str]) -> ModelCard | None:
    """The card for a local model: a card file, a folder holding ``model.json``, or a weights
    file with a card beside it (``<stem>.json`` or ``model.json`` naming that file).

    None when `path` is a weights file without a card. Bundled files of the card are looked
    up beside the card, so a run folder can be moved or copied as a whole.
    """
    path = Path(path)
    if path.is_dir():
        card_path = path / LOCAL_CARD_NAME
        if not card_path.is_file():
            raise Rgb2RawError(path, f"is a folder without a {LOCAL_CARD_NAME} model card")
        return load_card(card_path)
    if path.suffix.lower() == ".json":
        return load_card(path)
    for candidate in (path.with_suffix(".json"), path.parent / LOCAL_CARD_NAME):
        if candidate.is_file():
            card = load_card(candidate)
            if any(entry.bundled and entry.filename == path.name for entry in card.files):
                return card
    return None


def file_card(path: str | os.PathLike[str], *, arch: str | None, camera: str) -> ModelCard:
    """A card for a bare weights file: no overrides, so the architecture's contract applies.

    An ``.onnx`` file may have no architecture (`rgb2raw.nets.UNKNOWN`); a torch checkpoint
    needs one to be built.
    """
    from rgb2raw import nets

    path = Path(path)
    if not path.is_file():
        raise Rgb2RawError(path, "no such model file")
    file_format: FileFormat = "onnx" if path.suffix.lower() == ".onnx" else "torch"
    if arch is not None:
        nets.architecture(arch)  # an unknown name is an error before anything loads
    elif file_format == "torch":
        raise Rgb2RawError(path, "a torch checkpoint needs an architecture (arch "
                                 f"{', '.join(nets.TRAINABLE)}) to be loaded")
    return ModelCard(name=path.stem, camera=camera, arch=arch,
                     description=f"local {file_format} file {path}",
                     files=(ModelFile(filename=path.name, format=file_format, bundled=True),),
                     home=path.resolve().parent)


def resolve_model(model: str | os.PathLike[str] | ModelCard | None, *,
                  camera: str | None = None, arch: str | None = None) -> ModelCard:
    """The card `model` stands for: None (the camera's bundled default), a `ModelCard`, a zoo
    name, a local card or run folder, or a weights file (with `arch` for a checkpoint).

    `camera` is the camera the run is for; a zoo or local card made for another camera keeps
    its own (its levels are its own) and a warning is logged.
    """
    if camera is not None:
        from rgb2raw.cameras import get_camera

        camera = get_camera(camera).name  # an unknown camera is an error before anything loads
    if model is None:
        return default_model(camera or DEFAULT_CAMERA)
    if isinstance(model, ModelCard):
        card = model
    else:
        path = Path(model)
        local = find_local_card(path) if path.exists() and arch is None else None
        if local is not None:  # a training run folder, a card, or weights + card
            card = local
        elif path.exists() or path.suffix.lower() in (".onnx", *CHECKPOINT_SUFFIXES):
            return file_card(path, arch=arch, camera=camera or DEFAULT_CAMERA)
        elif arch is not None:
            raise Rgb2RawError(None, "an architecture is for a local weights file; a zoo model "
                                     "knows its own")
        else:
            card = get_model(str(model))
    if camera is not None and card.camera not in (camera, DEFAULT_CAMERA):
        log.warning("model %s was made for camera %s, not %s", card.name, card.camera, camera)
    return card


__all__ = [
    "CHECKPOINT_SUFFIXES",
    "DEFAULT_CAMERA",
    "LOCAL_CARD_NAME",
    "complete_model_name",
    "default_model",
    "file_card",
    "find_local_card",
    "get_model",
    "list_models",
    "models_dir",
    "resolve_model",
]
