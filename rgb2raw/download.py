"""Fetch one file over HTTP(S) into place, verified against a pinned checksum.

Why this is more than `requests.get`: checkpoints are tens of megabytes fetched from GitHub on
flaky connections, by several processes at once (a batch job, a notebook). So a download

* streams to ``<target>.partial`` and resumes it with an HTTP ``Range`` request,
* retries connection errors, timeouts and 5xx answers with exponential backoff (never a 4xx:
  those do not heal by waiting),
* is hashed while it streams and moved into place with `os.replace` only when the pin matches,
* holds a cross-process lock (``<target>.lock``, the `filelock` package) so one process
  downloads while the others wait and then find the verified file,
* leaves a record ``<target>.verified.json`` so later runs trust the file after one `stat`.

Pins are git blob SHA-1s (what GitHub shows for a file: ``sha1(b"blob <size>\\0" + bytes)``) or
SHA-256s. Nothing here prints: progress goes to an optional callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rgb2raw._atomic import atomic_write
from rgb2raw.errors import Rgb2RawError

if TYPE_CHECKING:  # requests is imported on first download: it costs ~60 ms of CLI start-up
    import requests

#: Called with (bytes written so far, total bytes or None when the server does not say).
ProgressCallback = Callable[[int, "int | None"], None]

#: (connect, read) seconds. The read timeout bounds each silent gap, not the whole download.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 1.0
CHUNK_BYTES = 1 << 16
LOCK_TIMEOUT = 3600.0

PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
RECORD_SUFFIX = ".verified.json"


class _RetryableError(Exception):
    """A failure that may heal on a later attempt (dropped connection, timeout, 5xx)."""


# ---------------------------------------------------------------------------------- hashing


def git_blob_sha1(data: bytes | str | os.PathLike[str]) -> str:
    """Return the git blob SHA-1 of `data` (bytes) or of the file at `data` (a path).

    This is the id GitHub lists for every file, so a pin can be checked against the repo
    without downloading anything: ``sha1(b"blob <size>\\0" + content)``.
    """
    if isinstance(data, bytes):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    path = Path(data)
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Return (git blob SHA-1, SHA-256) of a file, reading it once."""
    path = Path(path)
    sha1 = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    sha256 = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha1.update(block)
            sha256.update(block)
    return sha1.hexdigest(), sha256.hexdigest()


class _StreamHasher:
    """Both digests of a download, fed as bytes arrive (a resumed one is fed its prefix first).

    The git blob header needs the total size up front; when the server does not send it, the
    SHA-1 is left to a re-read of the finished file.
    """

    def __init__(self, total: int | None) -> None:
        self.sha256 = hashlib.sha256()
        self.sha1 = None if total is None else hashlib.sha1(b"blob %d\0" % total)

    def update(self, block: bytes) -> None:
        self.sha256.update(block)
        if self.sha1 is not None:
            self.sha1.update(block)

    def feed_file(self, path: Path) -> None:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                self.update(block)

    def digests(self, path: Path) -> tuple[str, str]:
        if self.sha1 is None:
            return git_blob_sha1(path), self.sha256.hexdigest()
        return self.sha1.hexdigest(), self.sha256.hexdigest()


# ------------------------------------------------------------------------ verified records


@dataclass(frozen=True)
class VerifiedRecord:
    """What `fetch` (or a full verification) wrote beside a file it checked."""

    sha256: str
    git_blob_sha1: str
    size: int
    mtime_ns: int


def record_path(target: str | os.PathLike[str]) -> Path:
    """Where the verification record of `target` lives."""
    target = Path(target)
    return target.with_name(target.name + RECORD_SUFFIX)


def write_record(target: str | os.PathLike[str], git_blob: str, sha256: str) -> None:
    """Record that `target`, as it is on disk now, has these digests."""
    stat = Path(target).stat()
    record = {"sha256": sha256, "git_blob_sha1": git_blob, "size": stat.st_size,
              "mtime_ns": stat.st_mtime_ns}
    with atomic_write(record_path(target)) as handle:
        handle.write((json.dumps(record, indent=1) + "\n").encode())


def read_record(target: str | os.PathLike[str]) -> VerifiedRecord | None:
    """The record beside `target`, or None when missing or unreadable."""
    try:
        raw = json.loads(record_path(target).read_text())
        return VerifiedRecord(str(raw["sha256"]), str(raw["git_blob_sha1"]), int(raw["size"]),
                              int(raw["mtime_ns"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_verified(target: str | os.PathLike[str], *, git_blob_sha1: str | None = None,
                sha256: str | None = None) -> bool:
    """Cheap check: `target` exists, is unchanged since its record, and the record matches the pins.

    One `stat` and a small JSON read; no hashing. A file changed after it was verified (size or
    mtime differ) counts as unverified.
    """
    record = read_record(target)
    if record is None:
        return False
    try:
        stat = Path(target).stat()
    except OSError:
        return False
    if (stat.st_size, stat.st_mtime_ns) != (record.size, record.mtime_ns):
        return False
    if git_blob_sha1 is not None and record.git_blob_sha1 != git_blob_sha1.lower():
        return False
    return sha256 is None or record.sha256 == sha256.lower()


def pin_mismatch(git_blob: str, sha256: str, *, expected_git_blob: str | None,
                 expected_sha256: str | None) -> str | None:
    """Describe the first pin the digests miss ("expected X, got Y"), or None when all match."""
    if expected_git_blob is not None and git_blob != expected_git_blob.lower():
        return f"git blob sha-1 mismatch: expected {expected_git_blob.lower()}, got {git_blob}"
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        return f"sha-256 mismatch: expected {expected_sha256.lower()}, got {sha256}"
    return None


# ---------------------------------------------------------------------------------- locking


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, timeout: float = LOCK_TIMEOUT,
              poll: float = 0.05) -> Iterator[None]:
    """Hold an exclusive cross-process lock on `path` for the block (the `filelock` package:
    ``flock`` on POSIX, ``msvcrt`` on Windows); waiting longer than `timeout` is an error.

    The lock file stays behind, empty, after release: removing it would let a waiter lock a
    file that is no longer the one at `path`.
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=timeout, poll_interval=poll)
    try:
        lock.acquire()
    except Timeout:
        raise Rgb2RawError(path, f"still locked by another process after {timeout:.0f} s") from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------------- fetching


SUPPORTED_SCHEMES = ("https", "http")


def check_url(url: str) -> None:
    """Refuse at once a URL no retry can fetch (file://, ftp://, a bare path or host)."""
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in SUPPORTED_SCHEMES or not rest.strip("/"):
        raise Rgb2RawError(url, "unsupported URL: expected an http:// or https:// address")


def fetch(
    url: str,
    target: str | os.PathLike[str],
    *,
    git_blob_sha1: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
) -> Path:
    """Download `url` to `target` unless a verified copy is already there; return `target`.

    At least one pin (`git_blob_sha1` or `sha256`) is required: nothing unverified is ever moved
    into place. `size`, when known, is checked against the server's and lets the git blob hash
    run while streaming. `retries` counts extra attempts after the first; attempt k waits
    ``backoff * 2**(k-1)`` seconds. Raises `Rgb2RawError` naming the URL on a 4xx answer, on a
    checksum mismatch (the partial file is deleted) or when the retries are used up (the
    partial file is kept, so the next call resumes).
    """
    if git_blob_sha1 is None and sha256 is None:
        raise ValueError("fetch needs a git_blob_sha1 or sha256 pin")
    check_url(url)
    import requests
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.with_name(target.name + LOCK_SUFFIX)):
        # Another process may have finished this download while we waited for the lock.
        if is_verified(target, git_blob_sha1=git_blob_sha1, sha256=sha256):
            return target
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        owns_session = session is None
        http = requests.Session() if session is None else session
        try:
            hasher = _download_with_retries(http, url, partial, size=size, timeout=timeout,
                                            retries=retries, backoff=backoff, progress=progress)
        finally:
            if owns_session:
                http.close()
        got_git_blob, got_sha256 = hasher.digests(partial)
        problem = pin_mismatch(got_git_blob, got_sha256, expected_git_blob=git_blob_sha1,
                               expected_sha256=sha256)
        if problem is not None:
            partial.unlink(missing_ok=True)
            raise Rgb2RawError(url, f"{problem}; download discarded")
        os.replace(partial, target)
        write_record(target, got_git_blob, got_sha256)
    return target


def _download_with_retries(
    http: requests.Session, url: str, partial: Path, *, size: int | None,
    timeout: float | tuple[float, float], retries: int, backoff: float,
    progress: ProgressCallback | None,
) -> _StreamHasher:
    attempts = max(retries, 0) + 1
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return _download_once(http, url, partial, size=size, timeout=timeout,
                                  progress=progress)
        except _RetryableError as exc:
            last = str(exc)
    raise Rgb2RawError(url, f"download failed after {attempts} attempts: {last}")


def _download_once(
    http: requests.Session, url: str, partial: Path, *, size: int | None,
    timeout: float | tuple[float, float], progress: ProgressCallback | None,
) -> _StreamHasher:
    """One HTTP request: resume or restart `partial`, stream the body, return its hasher."""
    import requests

    offset = partial.stat().st_size if partial.exists() else 0
    if size is not None and offset > size:
        partial.unlink()
        offset = 0
    headers = {"Accept-Encoding": "identity"}  # a compressed body would break Range offsets
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = http.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.Timeout as exc:
        raise _RetryableError(f"timed out connecting or waiting for the answer ({exc})") from exc
    except requests.RequestException as exc:
        raise _RetryableError(f"connection failed ({type(exc).__name__})") from exc
    with response:
        status = response.status_code
        if status == 416 and offset:
            # Our partial is not a prefix the server recognises: start over next attempt.
            partial.unlink(missing_ok=True)
            raise _RetryableError("server refused to resume (http 416)")
        if status >= 500:
            raise _RetryableError(f"http {status}")
        if status not in (200, 206):
            raise Rgb2RawError(url, f"http {status} {response.reason or ''}".rstrip())
        if status == 206:
            start, total = _parse_content_range(response.headers.get("Content-Range", ""))
            if start != offset:
                partial.unlink(missing_ok=True)
                raise _RetryableError(f"server resumed at byte {start}, not {offset}")
        else:
            offset = 0  # the server ignored our Range (or we sent none): restart cleanly
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        total = total if total is not None else size
        if size is not None and total != size:
            partial.unlink(missing_ok=True)
            raise Rgb2RawError(url, f"size mismatch: expected {size} bytes, server has {total}")
        hasher = _StreamHasher(total)
        if offset:
            hasher.feed_file(partial)
        done = offset
        if progress is not None:
            progress(done, total)
        try:
            with partial.open("ab" if offset else "wb") as handle:
                for block in response.iter_content(CHUNK_BYTES):
                    handle.write(block)
                    hasher.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
                handle.flush()
                os.fsync(handle.fileno())
        except requests.Timeout as exc:
            raise _RetryableError(f"read timed out after {done} bytes") from exc
        except requests.RequestException as exc:
            raise _RetryableError(f"connection dropped after {done} bytes") from exc
    if total is not None and done != total:
        raise _RetryableError(f"got {done} of {total} bytes")
    return hasher


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _parse_content_range(value: str) -> tuple[int, int | None]:
    """(first byte, total size or None) from a ``Content-Range: bytes a-b/total`` header."""
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        raise _RetryableError(f"bad content-range header {value!r}")
    total = match.group(3)
    return int(match.group(1)), None if total == "*" else int(total)
