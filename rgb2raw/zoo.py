"""The model zoo: every model, bundled or downloaded, described by one `ModelCard`.

Cards are data, not code: one JSON file per model in the package's ``models/`` folder (installed
as ``rgb2raw.models``). A card names the weights (URLs and pinned checksums) and the contract an
engine needs to run them: input range and size multiple, whole-frame or tiles, and the black and
white levels that turn the network's [0, 1] output into sensor numbers.

Downloaded files live in the cache (``RGB2RAW_HOME``, default the platform cache folder) under
``models/<name>/<filename>``. Environment switches:

* ``RGB2RAW_HOME`` - cache folder.
* ``RGB2RAW_OFFLINE=1`` - never touch the network; a missing file is an error that says where to
  put it by hand (a hand-placed file is verified against the pin before use).
* ``RGB2RAW_URL_<NAME>`` (upper case, dashes as underscores, e.g. ``RGB2RAW_URL_MIALGO_S7``) -
  fetch the model's first file from this URL instead (a mirror); the pin still applies.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from rgb2raw import download
from rgb2raw.errors import Rgb2RawError

Camera = Literal["s7", "p20", "generic"]
Arch = Literal["parametric", "unet", "liteisp", "tiny", "global"]
FileFormat = Literal["onnx", "torch"]
CAMERAS: tuple[str, ...] = ("s7", "p20", "generic")
ARCHS: tuple[str, ...] = ("parametric", "unet", "liteisp", "tiny", "global")
FORMATS: tuple[str, ...] = ("onnx", "torch")

#: Called during `pull` with (file name, bytes so far, total bytes or None).
PullProgress = Callable[[str, int, "int | None"], None]

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelFile:
    """One weights file of a model: where to get it and how to know it is the right one."""

    filename: str
    format: FileFormat
    urls: tuple[str, ...] = ()
    git_blob_sha1: str | None = None
    sha256: str | None = None
    size: int | None = None
    #: Shipped inside the package's models/ folder: never downloaded.
    bundled: bool = False


@dataclass(frozen=True)
class Reported:
    """A published score of the model, for the `models list` table (not re-measured here)."""

    set: str
    psnr: float
    ssim: float


@dataclass(frozen=True)
class ModelCard:
    """Everything rgb2raw knows about one model. `files[0]` is the file engines load."""

    name: str
    camera: Camera
    arch: Arch
    description: str
    files: tuple[ModelFile, ...]
    #: The network takes RGB scaled to [0, rgb_range] (1.0: 8-bit values divided by 255).
    rgb_range: float = 1.0
    #: Height and width of the RGB input must be multiples of this.
    size_multiple: int = 1
    #: The RGB size (height, width) the model was trained and scored at; a natural tile size.
    input_size: tuple[int, int] | None = None
    #: Needs the whole frame (the 6x8 crops stitched back), e.g. a learned lens-shading mask.
    full_frame: bool = False
    #: How far, in RGB pixels, the inputs an output 2x2 block depends on reach beyond the block
    #: (its receptive field's radius): 0 for a pixel-wise model. When known, tiles overlap just
    #: enough and are stitched exactly, without blending; None (unknown) blends over an overlap.
    context: int | None = None
    #: Peak memory of a forward pass per RGB pixel, to size tiles; None assumes a CNN's 4 KiB.
    bytes_per_pixel: int | None = None
    #: Output value v in [0, 1] maps to black_level + v * (white_level - black_level) DN.
    black_level: float = 0.0
    white_level: float = 1024.0
    source: str = ""
    license: str = ""
    reported: Reported | None = None
    #: Markdown model card, relative to the models folder.
    card: str | None = None
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


@dataclass(frozen=True)
class FileCheck:
    """The outcome of re-hashing one file of a model."""

    path: Path
    status: Literal["ok", "missing", "mismatch"]
    problem: str = ""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify`: one `FileCheck` per file of the card."""

    name: str
    checks: tuple[FileCheck, ...]

    @property
    def ok(self) -> bool:
        return all(check.status == "ok" for check in self.checks)

    @property
    def cached(self) -> bool:
        return all(check.status != "missing" for check in self.checks)


# ------------------------------------------------------------------------------ the registry


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
    return Path(__file__).resolve().parent.parent / "models"


def load_card(path: str | os.PathLike[str]) -> ModelCard:
    """Read and validate one card file; any problem is an `Rgb2RawError` naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Rgb2RawError(path, f"cannot read model card: {exc}") from exc
    try:
        card = card_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        message = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise Rgb2RawError(path, f"bad model card: {message}") from exc
    if card.name != path.stem:
        raise Rgb2RawError(path, f"bad model card: name {card.name!r} differs from the file name")
    return replace(card, home=path.resolve().parent)


#: The card a training run (or any local model folder) keeps beside its weights.
LOCAL_CARD_NAME = "model.json"


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


def default_model(camera: str) -> ModelCard:
    """The camera's bundled offline default model."""
    return get_model(f"parametric-{camera}")


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
    card = ModelCard(
        name=str(data["name"]),
        camera=cast(Camera, _choice(data["camera"], CAMERAS, "camera")),
        arch=cast(Arch, _choice(data["arch"], ARCHS, "arch")),
        description=str(data["description"]),
        files=files,
        rgb_range=float(data.get("rgb_range", 1.0)),
        size_multiple=int(data.get("size_multiple", 1)),
        input_size=None if input_size is None else (int(input_size[0]), int(input_size[1])),
        full_frame=bool(data.get("full_frame", False)),
        context=_optional_int(data.get("context")),
        bytes_per_pixel=_optional_int(data.get("bytes_per_pixel")),
        black_level=float(data.get("black_level", 0.0)),
        white_level=float(data.get("white_level", 1024.0)),
        source=str(data.get("source", "")),
        license=str(data.get("license", "")),
        reported=None if reported is None else Reported(
            str(reported["set"]), float(reported["psnr"]), float(reported["ssim"])),
        card=data.get("card"),
    )
    if card.size_multiple < 1 or card.white_level <= card.black_level or card.rgb_range <= 0:
        raise ValueError("size_multiple must be >= 1, white_level > black_level, rgb_range > 0")
    if (card.context is not None and card.context < 0) or (
            card.bytes_per_pixel is not None and card.bytes_per_pixel < 1):
        raise ValueError("context must be >= 0 and bytes_per_pixel >= 1 (or null: unknown)")
    return card


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


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


def _no_unknown(data: Mapping[str, Any], kind: type, label: str) -> None:
    unknown = sorted(set(data) - {field.name for field in fields(kind)})
    if unknown:
        raise ValueError(f"unknown {label} field(s) {', '.join(unknown)}")


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise ValueError(f"{field} {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _hex(value: Any, length: int, field: str) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != length or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{field} must be {length} hex digits")
    return text


def list_models(directory: str | os.PathLike[str] | None = None) -> list[ModelCard]:
    """All cards in `directory` (default `models_dir()`), sorted by name."""
    folder = models_dir() if directory is None else Path(directory)
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


# --------------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    """Where downloads go: ``$RGB2RAW_HOME``, else the platform's per-user cache folder."""
    home = os.environ.get("RGB2RAW_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("rgb2raw"))


def offline() -> bool:
    """True when RGB2RAW_OFFLINE forbids network access."""
    return os.environ.get("RGB2RAW_OFFLINE", "").strip().lower() in _TRUE


def _resolve(card_or_name: ModelCard | str) -> ModelCard:
    return card_or_name if isinstance(card_or_name, ModelCard) else get_model(card_or_name)


def file_path(card: ModelCard, entry: ModelFile) -> Path:
    """Where `entry` of `card` is (bundled) or will be (downloaded) on disk."""
    if entry.bundled:
        return (card.home or models_dir()) / entry.filename
    return cache_dir() / "models" / card.name / entry.filename


def model_path(card_or_name: ModelCard | str) -> Path:
    """The path of the model's primary file; it may not exist yet (see `is_cached`, `pull`)."""
    card = _resolve(card_or_name)
    return file_path(card, card.primary)


def file_urls(card: ModelCard, entry: ModelFile) -> tuple[str, ...]:
    """The URLs to try for `entry`, honouring ``RGB2RAW_URL_<NAME>`` for the primary file."""
    override = os.environ.get(f"RGB2RAW_URL_{card.env_name}")
    if override and entry is card.primary:
        return (override,)
    return entry.urls


def is_cached(card_or_name: ModelCard | str) -> bool:
    """True when every file is on disk and recorded as verified (no hashing, no network)."""
    card = _resolve(card_or_name)
    for entry in card.files:
        path = file_path(card, entry)
        if entry.bundled:
            if not path.is_file():  # checked against its pins by `pull`, on use
                return False
        elif not download.is_verified(path, git_blob_sha1=entry.git_blob_sha1,
                                      sha256=entry.sha256):
            return False
    return True


def pull(
    card_or_name: ModelCard | str,
    *,
    force: bool = False,
    progress: PullProgress | None = None,
    timeout: float | tuple[float, float] = download.DEFAULT_TIMEOUT,
    retries: int = download.DEFAULT_RETRIES,
    backoff: float = download.DEFAULT_BACKOFF,
) -> Path:
    """Make every file of the model present and verified; return the primary file's path.

    A file already recorded as verified costs one `stat`. A file present without a record (put
    there by hand) is hashed and accepted only if it matches its pin. Otherwise it is downloaded
    (``force=True`` always re-downloads), trying the URLs in order; with RGB2RAW_OFFLINE set the
    error says which URL and pin to fetch and where to put the file.
    """
    card = _resolve(card_or_name)
    for entry in card.files:
        _pull_file(card, entry, force=force, progress=progress, timeout=timeout,
                   retries=retries, backoff=backoff)
    return model_path(card)


def _pull_file(card: ModelCard, entry: ModelFile, *, force: bool,
               progress: PullProgress | None, timeout: float | tuple[float, float],
               retries: int, backoff: float) -> None:
    path = file_path(card, entry)
    pins = {"git_blob_sha1": entry.git_blob_sha1, "sha256": entry.sha256}
    if entry.bundled:
        # Small, and in a folder that may be read-only (no record): re-hashed on every use.
        if not path.is_file():
            raise Rgb2RawError(path, "bundled model file is missing from the installation")
        problem = _rehash(path, entry)
        if problem is not None:
            raise Rgb2RawError(path, f"{problem}; not using this file")
        return
    if not force and download.is_verified(path, **pins):
        return
    urls = file_urls(card, entry)
    if not force and path.is_file():
        # Placed by hand, or its record was lost: accept it only if it is the pinned file.
        problem = _rehash(path, entry)
        if problem is None:
            return
        if offline():
            raise Rgb2RawError(path, f"{problem}; not using this file")
        path.unlink()  # a corrupt cache entry: fetch it again below
    if offline():
        pin = entry.git_blob_sha1 or entry.sha256
        raise Rgb2RawError(path, f"model {card.name} is not cached and RGB2RAW_OFFLINE is set; "
                                 f"download {urls[0]} (pin {pin}) and put it at this path")
    if force:
        download.record_path(path).unlink(missing_ok=True)
    callback = None if progress is None else _bind_progress(progress, entry.filename)
    errors: list[Rgb2RawError] = []
    for url in urls:
        try:
            download.fetch(url, path, git_blob_sha1=entry.git_blob_sha1, sha256=entry.sha256,
                           size=entry.size, timeout=timeout, retries=retries, backoff=backoff,
                           progress=callback)
            return
        except Rgb2RawError as exc:
            errors.append(exc)
    raise errors[0] if len(errors) == 1 else Rgb2RawError(
        None, "all mirrors failed: " + "; ".join(str(err) for err in errors))


def _bind_progress(progress: PullProgress, filename: str) -> download.ProgressCallback:
    def callback(done: int, total: int | None) -> None:
        progress(filename, done, total)

    return callback


def _rehash(path: Path, entry: ModelFile) -> str | None:
    """Hash `path` against the pins of `entry`: the mismatch, or None after recording success.

    Bundled files get no record: the package folder may be read-only, and they are small.
    """
    got_git_blob, got_sha256 = download.file_digests(path)
    problem = download.pin_mismatch(got_git_blob, got_sha256,
                                    expected_git_blob=entry.git_blob_sha1,
                                    expected_sha256=entry.sha256)
    if problem is None and not entry.bundled:
        download.write_record(path, got_git_blob, got_sha256)
    return problem


def verify(card_or_name: ModelCard | str) -> VerifyResult:
    """Re-hash every file of the model that is on disk and compare it with its pins.

    Unlike `is_cached` this reads every byte, so it catches a file corrupted in place. A file
    that passes gets a fresh verification record; one that fails is left alone (not deleted).
    """
    card = _resolve(card_or_name)
    checks = []
    for entry in card.files:
        path = file_path(card, entry)
        if not path.is_file():
            checks.append(FileCheck(path, "missing", "not cached"))
            continue
        problem = _rehash(path, entry)
        checks.append(FileCheck(path, "ok") if problem is None
                      else FileCheck(path, "mismatch", problem))
    return VerifyResult(card.name, tuple(checks))
