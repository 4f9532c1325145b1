"""rgb2raw.download against a misbehaving HTTP server on 127.0.0.1 (started by the tests).

`FileServer` is also used by test_zoo.py: it serves byte strings, honours Range requests, and
can be told to answer the next requests for a path with a cut connection, a 404, a 500, a
stall, or a body that ignores the Range header.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rgb2raw import download
from rgb2raw.errors import Rgb2RawError

# No backoff sleeps; the read timeout is only tiny where a stall is the point (a busy CI
# machine must not turn a normal answer into a retry).
FAST: dict[str, Any] = {"timeout": (5.0, 5.0), "backoff": 0.0}
STALL_TIMEOUT = (5.0, 0.3)


@dataclass
class Hit:
    """One request the server answered."""

    path: str
    range: str | None
    status: int
    body_bytes: int


@dataclass
class FileServer:
    """A loopback HTTP server whose per-path behaviour tests can script."""

    files: dict[str, bytes] = field(default_factory=dict)
    #: Per path, actions for the next requests, consumed in order:
    #: "cut" (half the body, then hang up), "404", "500", "stall", "ignore-range".
    script: dict[str, list[str]] = field(default_factory=dict)
    #: Seconds to sleep between 16 KiB body chunks (to make downloads overlap).
    chunk_delay: float = 0.0
    stall_seconds: float = 1.5
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits_for(self, path: str) -> list[Hit]:
        with self.lock:
            return [hit for hit in self.hits if hit.path == path]


def _make_handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            with state.lock:
                actions = state.script.get(self.path, [])
                action = actions.pop(0) if actions else "ok"
            requested = self.headers.get("Range")
            data = state.files.get(self.path)
            if action in ("404", "500") or data is None:
                status = 500 if action == "500" else 404
                self._record(requested, status, 0)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if action == "stall":
                self._record(requested, 0, 0)
                time.sleep(state.stall_seconds)
                return
            start = 0
            if requested and action != "ignore-range":
                start = int(requested.removeprefix("bytes=").split("-")[0])
            body = data[start:]
            status = 206 if start else 200
            sent = body[: len(body) // 2] if action == "cut" else body
            # Recorded before anything goes out: the client may look at `hits` once it has it.
            self._record(requested, status, len(sent))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = sent
            for offset in range(0, len(body), 16384):
                self.wfile.write(body[offset: offset + 16384])
                if state.chunk_delay:
                    time.sleep(state.chunk_delay)
            self.wfile.flush()
            self.close_connection = True

        def _record(self, requested: str | None, status: int, sent: int) -> None:
            with state.lock:
                state.hits.append(Hit(self.path, requested, status, sent))

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (timeout test) makes the handler's writes fail; expected


@contextlib.contextmanager
def serve() -> Iterator[FileServer]:
    """Run a `FileServer` on a free loopback port for the block."""
    state = FileServer()
    httpd = _QuietServer(("127.0.0.1", 0), _make_handler(state))
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serve() as state:
        yield state


def payload(n: int = 200_000, seed: int = 1) -> bytes:
    """Deterministic bytes that are not all alike (so a shifted resume would be caught)."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(b"%d-%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:n])


def blob_pin(data: bytes) -> str:
    # Written out here rather than calling the code under test: git's object id of a blob.
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


# ------------------------------------------------------------------------------ hashing


def test_git_blob_sha1_matches_git_object_ids(tmp_path: Path) -> None:
    # Ids printed by `git hash-object` for an empty file and for "hello\n".
    assert download.git_blob_sha1(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert download.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert download.git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert download.file_digests(path) == (
        "ce013625030ba8dba906f756967f9e9ca394464a", hashlib.sha256(b"hello\n").hexdigest())


# ------------------------------------------------------------------------------ fetching


def test_fetch_downloads_verifies_and_records(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/m.pt"] = data
    seen: list[tuple[int, int | None]] = []
    target = tmp_path / "cache" / "m.pt"
    out = download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data),
                         progress=lambda done, total: seen.append((done, total)), **FAST)
    assert out == target and target.read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert download.is_verified(target, git_blob_sha1=blob_pin(data),
                                sha256=hashlib.sha256(data).hexdigest())
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.pt", "m.pt.lock",
                                                               "m.pt.verified.json"]
    assert (target.parent / "m.pt.lock").stat().st_size == 0  # filelock's, left empty


def test_fetch_with_sha256_pin_only(server: FileServer, tmp_path: Path) -> None:
    data = payload(5000)
    server.files["/a"] = data
    target = download.fetch(server.url("/a"), tmp_path / "a",
                            sha256=hashlib.sha256(data).hexdigest(), **FAST)
    assert target.read_bytes() == data


def test_verified_file_causes_no_request(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/m.pt"] = data
    target = tmp_path / "m.pt"
    download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data), **FAST)
    download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data), **FAST)
    assert len(server.hits_for("/m.pt")) == 1


def test_resume_after_cut_connection(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/m.pt"] = data
    server.script["/m.pt"] = ["cut"]
    target = tmp_path / "m.pt"
    download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data), retries=2, **FAST)
    first, second = server.hits_for("/m.pt")
    assert first.range is None and 0 < first.body_bytes < len(data)
    # The client keeps what it wrote before the cut (the last buffered block may be lost).
    assert second.range is not None and second.status == 206
    resumed_at = int(second.range.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= first.body_bytes
    assert target.read_bytes() == data
    assert not target.with_name("m.pt.partial").exists()


def test_partial_kept_when_retries_run_out_and_resumed_next_time(
        server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/m.pt"] = data
    server.script["/m.pt"] = ["cut"]
    target = tmp_path / "m.pt"
    with pytest.raises(Rgb2RawError, match="after 1 attempts"):
        download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data), retries=0,
                       **FAST)
    assert not target.exists()
    kept = target.with_name("m.pt.partial").stat().st_size
    assert 0 < kept <= len(data) // 2
    download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data), retries=0, **FAST)
    assert server.hits_for("/m.pt")[-1].range == f"bytes={kept}-"
    assert target.read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/m.pt"] = data
    server.script["/m.pt"] = ["cut", "ignore-range"]
    target = tmp_path / "m.pt"
    download.fetch(server.url("/m.pt"), target, git_blob_sha1=blob_pin(data), retries=2, **FAST)
    hits = server.hits_for("/m.pt")
    assert hits[1].range is not None and hits[1].status == 200
    assert target.read_bytes() == data


def test_wrong_bytes_are_refused_and_nothing_is_left(server: FileServer, tmp_path: Path) -> None:
    server.files["/m.pt"] = payload(seed=2)
    expected = blob_pin(payload(seed=1))
    folder = tmp_path / "cache"
    with pytest.raises(Rgb2RawError) as caught:
        download.fetch(server.url("/m.pt"), folder / "m.pt", git_blob_sha1=expected, **FAST)
    message = str(caught.value)
    assert server.url("/m.pt") in message and expected in message
    assert blob_pin(payload(seed=2)) in message
    # Only the (empty) lock file filelock leaves: no partial download, no record.
    assert [(p.name, p.stat().st_size) for p in folder.iterdir()] == [("m.pt.lock", 0)]


def test_404_fails_at_once(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(Rgb2RawError, match="http 404"):
        download.fetch(server.url("/missing"), tmp_path / "m", git_blob_sha1="0" * 40,
                       retries=3, **FAST)
    assert len(server.hits_for("/missing")) == 1
    assert not (tmp_path / "m").exists()


def test_500_then_success(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    server.files["/m"] = data
    server.script["/m"] = ["500", "500"]
    target = download.fetch(server.url("/m"), tmp_path / "m", git_blob_sha1=blob_pin(data),
                            retries=2, **FAST)
    assert [hit.status for hit in server.hits_for("/m")] == [500, 500, 200]
    assert target.read_bytes() == data


def test_persistent_500_gives_up_naming_the_status(server: FileServer, tmp_path: Path) -> None:
    server.files["/m"] = b"x"
    server.script["/m"] = ["500"] * 3
    with pytest.raises(Rgb2RawError, match=r"after 2 attempts: http 500"):
        download.fetch(server.url("/m"), tmp_path / "m", git_blob_sha1="0" * 40, retries=1,
                       **FAST)


def test_stalled_server_times_out(server: FileServer, tmp_path: Path) -> None:
    server.files["/m"] = b"x"
    server.script["/m"] = ["stall", "stall"]
    with pytest.raises(Rgb2RawError) as caught:
        download.fetch(server.url("/m"), tmp_path / "m", git_blob_sha1=blob_pin(b"x"),
                       retries=1, backoff=0.0, timeout=STALL_TIMEOUT)
    assert "timed out" in str(caught.value) and "2 attempts" in str(caught.value)
    assert server.url("/m") in str(caught.value)


def test_size_mismatch_is_refused_without_retry(server: FileServer, tmp_path: Path) -> None:
    data = payload(1000)
    server.files["/m"] = data
    with pytest.raises(Rgb2RawError, match="size mismatch: expected 999 bytes"):
        download.fetch(server.url("/m"), tmp_path / "m", git_blob_sha1=blob_pin(data),
                       size=999, retries=3, **FAST)
    assert len(server.hits_for("/m")) == 1
    assert not (tmp_path / "m.partial").exists()


def test_fetch_requires_a_pin(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        download.fetch("http://127.0.0.1:9/x", tmp_path / "x")


def test_concurrent_fetches_download_once(server: FileServer, tmp_path: Path) -> None:
    data = payload(400_000)
    server.files["/m.pt"] = data
    server.chunk_delay = 0.01  # about 0.25 s per download, so the two surely overlap
    target = tmp_path / "m.pt"
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(download.fetch(server.url("/m.pt"), target,
                                          git_blob_sha1=blob_pin(data), **FAST))
        except BaseException as exc:  # reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [target, target]
    assert len(server.hits_for("/m.pt")) == 1
    assert target.read_bytes() == data
    lock = target.with_name("m.pt.lock")  # filelock leaves it, empty (see download.file_lock)
    assert not lock.exists() or lock.stat().st_size == 0


def test_file_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    lock = tmp_path / "x.lock"
    order: list[str] = []
    with download.file_lock(lock):
        thread = threading.Thread(target=lambda: _take(lock, order))
        thread.start()
        time.sleep(0.2)
        order.append("first releases")
    thread.join(10)
    assert order == ["first releases", "second holds"]
    with download.file_lock(lock), pytest.raises(Rgb2RawError, match="still locked"):
        _take_briefly(lock)


def _take_briefly(lock: Path) -> None:
    with download.file_lock(lock, timeout=0.1):
        pass


def _take(lock: Path, order: list[str]) -> None:
    with download.file_lock(lock):
        order.append("second holds")


def test_changed_file_is_no_longer_verified(server: FileServer, tmp_path: Path) -> None:
    data = payload(3000)
    server.files["/m"] = data
    target = download.fetch(server.url("/m"), tmp_path / "m", git_blob_sha1=blob_pin(data),
                            **FAST)
    target.write_bytes(data[:-1] + b"!")
    assert not download.is_verified(target, git_blob_sha1=blob_pin(data))
    download.fetch(server.url("/m"), target, git_blob_sha1=blob_pin(data), **FAST)
    assert target.read_bytes() == data
    assert len(server.hits_for("/m")) == 2


def test_record_with_other_pin_is_not_trusted(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.write_bytes(b"abc")
    download.write_record(target, blob_pin(b"abc"), hashlib.sha256(b"abc").hexdigest())
    assert download.is_verified(target, git_blob_sha1=blob_pin(b"abc"))
    assert not download.is_verified(target, git_blob_sha1=blob_pin(b"abd"))
    os.utime(target, ns=(0, 0))  # touched after verification: re-check needed
    assert not download.is_verified(target, git_blob_sha1=blob_pin(b"abc"))
