"""Model cards: the one description of a model, its JSON form, and the one card writer.

A card is data, not code: one JSON file per model (the package's ``models/`` folder, or
``model.json`` in a training run). It names the model's files (URLs and pinned checksums) and
states only where the model's contract differs from its architecture's
(`rgb2raw.nets.REGISTRY`): a field left out (or null) means "as the architecture says, for
this card's camera". `ModelCard.contract` is the resolved view the engine reads
(`rgb2raw.zoo.contract.CardContract`): it holds no copy of anything, each property looks at
the card first and the registry second.

`card_to_dict` / `write_card` are the only writers: `rgb2raw train` (publish), calibration and
the bundled-model build all make a `ModelCard` and write it through them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from rgb2raw import nets
from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import CAMERA_NAMES
from rgb2raw.errors import Rgb2RawError

if TYPE_CHECKING:
    from rgb2raw.zoo.contract import CardContract

FileFormat = Literal["onnx", "torch"]
FORMATS: tuple[str, ...] = ("onnx", "torch")


@dataclass(frozen=True)
class ModelFile:
    """One weights file of a model: where to get it and how to know it is the right one."""

    filename: str
    format: FileFormat
    urls: tuple[str, ...] = ()
    git_blob_sha1: str | None = None
    sha256: str | None = None
    size: int | None = None
    #: Lives beside its card (shipped in the package's models/ folder, or a local file):
    #: never downloaded. Checked against its pins, when it has any, on every use.
    bundled: bool = False


@dataclass(frozen=True)
class Reported:
    """A published score of the model, for the `models list` table (not re-measured here)."""

    set: str
    psnr: float
    ssim: float


#: The card fields that override the architecture's `rgb2raw.nets.Contract` (None: inherit).
CONTRACT_FIELDS: tuple[str, ...] = ("rgb_range", "size_multiple", "input_size", "full_frame",
                                    "context", "bytes_per_pixel", "black_level", "white_level",
                                    "clip_low", "rounding")


@dataclass(frozen=True)
class ModelCard:
    """Everything rgb2raw knows about one model. `files[0]` is the file engines load.

    The contract fields (`CONTRACT_FIELDS`) are overrides: None takes the architecture's value
    for the card's camera. Read the resolved values through `contract`.
    """

    name: str
    camera: str
    #: A name in `rgb2raw.nets.ARCHITECTURES`, or None: a network of unknown kind (an ONNX
    #: file from elsewhere), run with `rgb2raw.nets.UNKNOWN`.
    arch: str | None
    description: str
    files: tuple[ModelFile, ...]
    rgb_range: float | None = None
    size_multiple: int | None = None
    #: The RGB size (height, width) one forward pass was trained or scored at.
    input_size: tuple[int, int] | None = None
    full_frame: bool | None = None
    context: int | None = None
    bytes_per_pixel: int | None = None
    #: Output v in [0, 1] maps to black_level + v * (white_level - black_level) DN.
    black_level: float | None = None
    white_level: float | None = None
    clip_low: nets.ClipLow | None = None
    rounding: nets.Rounding | None = None
    source: str = ""
    license: str = ""
    reported: Reported | None = None
    #: Markdown model card, relative to the models folder.
    card: str | None = None
    #: Lens shading the engine multiplies into the output by frame position, as
    #: `rgb2raw.shading.RadialShading.to_dict` writes it; None: none.
    shading: dict[str, Any] | None = None
    #: The folder the card was read from: bundled files sit beside their card. Not in the JSON.
    home: Path | None = field(default=None, compare=False, repr=False)

    @property
    def primary(self) -> ModelFile:
        """The file an engine loads."""
        return self.files[0]

    @property
    def env_name(self) -> str:
        """Suffix of this model's environment variables, e.g. ``MIALGO_S7``."""
        return self.name.upper().replace("-", "_").replace(".", "_")

    @property
    def architecture(self) -> nets.Contract:
        """The architecture's defaults this card overrides."""
        return nets.contract(self.arch)

    @property
    def contract(self) -> CardContract:
        """The resolved contract: this card's overrides over its architecture's defaults."""
        from rgb2raw.zoo.contract import CardContract

        return CardContract(self)


# ----------------------------------------------------------------------------- JSON form


def card_from_dict(data: Mapping[str, Any]) -> ModelCard:
    """Build a card from its JSON form, refusing unknown fields and out-of-range values."""
    _no_unknown(data, ModelCard, "card")
    if "home" in data:
        raise ValueError("unknown card field(s) home")
    files = tuple(_file_from_dict(item) for item in data["files"])
    if not files:
        raise ValueError("a card needs at least one file")
    reported = data.get("reported")
    input_size = data.get("input_size")
    arch = data["arch"]
    card = ModelCard(
        name=str(data["name"]),
        camera=_choice(data["camera"], CAMERA_NAMES, "camera"),
        arch=None if arch is None else _choice(arch, nets.ARCHITECTURES, "arch"),
        description=str(data["description"]),
        files=files,
        rgb_range=_optional(data, "rgb_range", float),
        size_multiple=_optional(data, "size_multiple", int),
        input_size=None if input_size is None else (int(input_size[0]), int(input_size[1])),
        full_frame=_optional(data, "full_frame", bool),
        context=_optional(data, "context", int),
        bytes_per_pixel=_optional(data, "bytes_per_pixel", int),
        black_level=_optional(data, "black_level", float),
        white_level=_optional(data, "white_level", float),
        clip_low=cast(Any, _optional_choice(data, "clip_low", nets.CLIP_LOWS)),
        rounding=cast(Any, _optional_choice(data, "rounding", nets.ROUNDINGS)),
        source=str(data.get("source", "")),
        license=str(data.get("license", "")),
        reported=None if reported is None else Reported(
            str(reported["set"]), float(reported["psnr"]), float(reported["ssim"])),
        card=data.get("card"),
        shading=data.get("shading"),
    )
    check_card(card)
    return card


def check_card(card: ModelCard) -> None:
    """Raise ValueError for a contract that cannot work (resolved over the architecture)."""
    resolved = card.contract
    if (resolved.size_multiple < 1 or resolved.white_level <= resolved.black_level
            or resolved.rgb_range <= 0):
        raise ValueError("size_multiple must be >= 1, white_level > black_level, rgb_range > 0")
    if card.shading is not None and not _is_radial_shading(card.shading):
        raise ValueError("shading must be {\"kind\": \"radial\", \"coefficients\": 4 rows of 4 "
                         "finite numbers}")
    if (card.context is not None and card.context < 0) or (
            card.bytes_per_pixel is not None and card.bytes_per_pixel < 1):
        raise ValueError("context must be >= 0 and bytes_per_pixel >= 1 (or null: unknown)")


def _is_radial_shading(data: Any) -> bool:
    """Whether `data` has the form `rgb2raw.shading.RadialShading.to_dict` writes, checked
    without numpy (cards are read at shell-completion time)."""
    import math

    rows = data.get("coefficients") if isinstance(data, dict) else None
    return (data.get("kind") == "radial" and isinstance(rows, list) and len(rows) == 4
            and all(isinstance(row, list) and len(row) == 4 for row in rows)
            and all(isinstance(x, (int, float)) and math.isfinite(x) for row in rows for x in row))


def without_defaults(card: ModelCard) -> ModelCard:
    """`card` with every contract field that equals its architecture's value unset, so the
    card states only what differs (and follows the registry where it does not)."""
    unset: dict[str, Any] = {name: None for name in CONTRACT_FIELDS}
    bare = replace(card, **unset)
    inherited, own = bare.contract, card.contract
    changes: dict[str, Any] = {}
    for name in CONTRACT_FIELDS:
        if getattr(card, name) is not None and getattr(own, name) == getattr(inherited, name):
            changes[name] = None
    return replace(card, **changes)


def card_to_dict(card: ModelCard) -> dict[str, Any]:
    """The JSON form of `card`: every field in order, contract fields only where they differ
    from the architecture's (`without_defaults`)."""
    card = without_defaults(card)
    data: dict[str, Any] = {}
    for item in fields(ModelCard):
        if item.name == "home":
            continue
        value = getattr(card, item.name)
        if item.name in CONTRACT_FIELDS and value is None:
            continue  # inherited from the architecture
        if item.name == "files":
            value = [{**asdict(entry), "urls": list(entry.urls)} for entry in value]
        elif item.name == "reported" and value is not None:
            value = asdict(value)
        elif item.name == "input_size" and value is not None:
            value = list(value)
        data[item.name] = value
    return data


def card_text(card: ModelCard) -> str:
    """The card file's text: indented JSON with a final newline (stable, diff-friendly)."""
    return json.dumps(card_to_dict(card), indent=2) + "\n"


def write_card(path: str | os.PathLike[str], card: ModelCard) -> Path:
    """Check `card` and write it to `path` atomically (`load_card` wants the file's stem to be
    the card's name)."""
    check_card(card)
    target = Path(path)
    with atomic_write(target) as handle:
        handle.write(card_text(card).encode("utf-8"))
    return target


def file_entry(path: str | os.PathLike[str], file_format: FileFormat, *,
               bundled: bool = True) -> ModelFile:
    """A `ModelFile` for the file at `path`, with its size and both pins."""
    from rgb2raw import download

    path = Path(path)
    git_blob_sha1, sha256 = download.file_digests(path)
    return ModelFile(filename=path.name, format=file_format, git_blob_sha1=git_blob_sha1,
                     sha256=sha256, size=path.stat().st_size, bundled=bundled)


def load_card(path: str | os.PathLike[str]) -> ModelCard:
    """Read and validate one card file; any problem is an `Rgb2RawError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Rgb2RawError(path, f"cannot read model card: {exc}") from exc
    try:
        card = card_from_dict(data)
    except (KeyError, TypeError, ValueError, Rgb2RawError) as exc:
        message = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise Rgb2RawError(path, f"bad model card: {message}") from exc
    if card.name != path.stem:
        raise Rgb2RawError(path, f"bad model card: name {card.name!r} differs from the file name")
    return replace(card, home=path.resolve().parent)


def _file_from_dict(data: Mapping[str, Any]) -> ModelFile:
    _no_unknown(data, ModelFile, "file")
    entry = ModelFile(
        filename=str(data["filename"]),
        format=cast(FileFormat, _choice(data["format"], FORMATS, "format")),
        urls=tuple(str(url) for url in data.get("urls", ())),
        git_blob_sha1=_hex(data.get("git_blob_sha1"), 40, "git_blob_sha1"),
        sha256=_hex(data.get("sha256"), 64, "sha256"),
        size=None if data.get("size") is None else int(data["size"]),
        bundled=bool(data.get("bundled", False)),
    )
    if Path(entry.filename).name != entry.filename or entry.filename.startswith("."):
        raise ValueError(f"file name {entry.filename!r} must be a plain name")
    if not entry.bundled and not entry.urls:
        raise ValueError(f"{entry.filename}: a downloaded file needs urls")
    if not entry.bundled and entry.git_blob_sha1 is None and entry.sha256 is None:
        raise ValueError(f"{entry.filename}: a downloaded file needs a git_blob_sha1 or sha256")
    return entry


def _optional(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    return None if value is None else kind(value)


def _optional_choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str | None:
    value = data.get(key)
    return None if value is None else _choice(value, allowed, key)


def _no_unknown(data: Mapping[str, Any], kind: type, label: str) -> None:
    unknown = sorted(set(data) - {item.name for item in fields(kind)})
    if unknown:
        raise ValueError(f"unknown {label} field(s) {', '.join(unknown)}")


def _choice(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _hex(value: Any, length: int, name: str) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{name} must be {length} hex digits")
    return text


__all__ = [
    "CONTRACT_FIELDS",
    "FORMATS",
    "FileFormat",
    "ModelCard",
    "ModelFile",
    "Reported",
    "card_from_dict",
    "card_text",
    "card_to_dict",
    "check_card",
    "without_defaults",
    "file_entry",
    "load_card",
    "write_card",
]
