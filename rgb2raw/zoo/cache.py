"""The cache: where downloaded model files live, and getting them there verified.

Downloaded files live in the cache (``RGB2RAW_HOME``, default the platform cache folder) under
``models/<name>/<filename>``; bundled files sit beside their card. Environment switches:

* ``RGB2RAW_HOME`` - cache folder.
* ``RGB2RAW_OFFLINE=1`` - never touch the network; a missing file is an error that says where to
  put it by hand (a hand-placed file is verified against the pin before use).
* ``RGB2RAW_URL_<NAME>`` (upper case, dashes as underscores, e.g. ``RGB2RAW_URL_MIALGO_S7``) -
  fetch the model's first file from this URL instead (a mirror); the pin still applies.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rgb2raw import download
from rgb2raw.errors import Rgb2RawError
from rgb2raw.zoo.cards import ModelCard, ModelFile

#: Called during `pull` with (file name, bytes so far, total bytes or None).
PullProgress = Callable[[str, int, "int | None"], None]

_TRUE = ("1", "true", "yes", "on")


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
    if isinstance(card_or_name, ModelCard):
        return card_or_name
    from rgb2raw.zoo.registry import get_model

    return get_model(card_or_name)


def file_path(card: ModelCard, entry: ModelFile) -> Path:
    """Where `entry` of `card` is (bundled) or will be (downloaded) on disk."""
    if entry.bundled:
        if card.home is not None:
            return card.home / entry.filename
        from rgb2raw import zoo  # through the package, so a patched `zoo.models_dir` is seen

        return zoo.models_dir() / entry.filename
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
            raise Rgb2RawError(path, "bundled model file is missing from the installation"
                               if card.home is None or entry.git_blob_sha1 or entry.sha256
                               else "no such model file")
        if entry.git_blob_sha1 is None and entry.sha256 is None:
            return  # a local file given by path: nothing to check it against
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


__all__ = [
    "FileCheck",
    "PullProgress",
    "VerifyResult",
    "cache_dir",
    "file_path",
    "file_urls",
    "is_cached",
    "model_path",
    "offline",
    "pull",
    "verify",
]
