"""The model registry, the cache and `rgb2raw models`, against a loopback server in the test."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The scripted HTTP server lives with the download tests (tests/ is on sys.path under pytest).
from test_download import FileServer, blob_pin, payload, serve
from typer.testing import CliRunner

from rgb2raw import zoo
from rgb2raw.cli import app
from rgb2raw.errors import Rgb2RawError

FAST: dict[str, Any] = {"timeout": (5.0, 5.0), "backoff": 0.0, "retries": 1}


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serve() as state:
        yield state


def toy_card(server: FileServer, data: bytes, *, path: str = "/toy.pt", name: str = "toy",
             **pins: str) -> zoo.ModelCard:
    """A card whose one file is served by the test server, pinned to `data`."""
    server.files[path] = data
    entry = zoo.ModelFile(filename="toy.pt", format="torch", urls=(server.url(path),),
                          git_blob_sha1=pins.get("git_blob_sha1", blob_pin(data)),
                          sha256=pins.get("sha256"))
    return zoo.ModelCard(name=name, camera="generic", arch="tiny", description="a test model",
                         files=(entry,))


def write_registry(folder: Path, *cards: zoo.ModelCard) -> Path:
    """Write `cards` as JSON card files, the way models/ holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    for card in cards:
        entry = card.primary
        data = {"name": card.name, "camera": card.camera, "arch": card.arch,
                "description": card.description,
                "files": [{"filename": entry.filename, "format": entry.format,
                           "urls": list(entry.urls), "git_blob_sha1": entry.git_blob_sha1}]}
        (folder / f"{card.name}.json").write_text(json.dumps(data))
    return folder


# ------------------------------------------------------------------------------- registry

# Copied from the project's issue (the authors' repositories as published on GitHub), not
# from the card files, so a typo in a card shows up here.
EXPECTED = {
    "aim22-unet-s7": ("s7", "unet", "a17bc9fdccc5719912dfa5b1cdcc996c59dacfc4",
                      "mv-lab/AISP/main/aim22-reverseisp/baseline-ckps/s7-unet-rev-isp.pt",
                      (26.30, 0.77), (0, 1024), False),
    "aim22-unet-p20": ("p20", "unet", "a5ec34d4ce47fc1d97816550fe09097f694fe288",
                       "mv-lab/AISP/main/aim22-reverseisp/baseline-ckps/p20-unet-rev-isp.pt",
                       (30.01, 0.80), (0, 1024), False),
    "mialgo-s7": ("s7", "liteisp", "cc145eb1384fc604c130d94d48817536739c3bb9",
                  "q935970314/AIM22-ReverseISP-MiAlgo/master/ckpts/s7.pth",
                  (31.39, 0.82), (0, 1023), True),
    "mialgo-p20": ("p20", "liteisp", "b846a5a0c182b5f865965213fcc0d3ff1e3cf6b1",
                   "q935970314/AIM22-ReverseISP-MiAlgo/master/ckpts/p20.pth",
                   (40.06, 0.93), (60, 1020), True),
}


def test_the_four_challenge_checkpoints_are_registered_with_their_pins() -> None:
    cards = {card.name: card for card in zoo.list_models()}
    for name, (camera, arch, pin, url_tail, score, levels, full_frame) in EXPECTED.items():
        card = cards[name]
        contract = card.contract
        assert (card.camera, card.arch, contract.full_frame) == (camera, arch, full_frame)
        assert card.primary.git_blob_sha1 == pin
        assert card.primary.urls[0] == "https://raw.githubusercontent.com/" + url_tail
        assert card.reported is not None
        assert (card.reported.psnr, card.reported.ssim) == score
        assert (contract.black_level, contract.white_level) == levels
        assert contract.rgb_range == 1.0 and card.primary.format == "torch"


def test_every_card_file_is_valid_and_consistent() -> None:
    folder = zoo.models_dir()
    paths = sorted(folder.glob("*.json"))
    assert paths, folder
    for path in paths:
        card = zoo.load_card(path)
        assert card.name == path.stem
        contract = card.contract
        if contract.input_size is not None:
            assert all(side % contract.size_multiple == 0 for side in contract.input_size)
        for entry in card.files:
            assert entry.bundled or all(url.startswith("https://") for url in entry.urls)
            if entry.bundled:
                assert (folder / entry.filename).is_file()


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(Rgb2RawError, match="unknown model 'mialgo-s8'.*mialgo-s7"):
        zoo.get_model("mialgo-s8")


def test_complete_model_name() -> None:
    assert sorted(zoo.complete_model_name("mialgo")) == ["mialgo-p20", "mialgo-s7"]
    assert zoo.complete_model_name("zzz") == []


@pytest.mark.parametrize(("change", "message"), [
    ({"colour": "red"}, "unknown card field"),
    ({"camera": "iphone"}, "camera 'iphone' is not one of"),
    ({"files": [{"filename": "a.pt", "format": "torch", "urls": ["https://x/a.pt"],
                 "git_blob_sha1": "abc"}]}, "40 hex digits"),
    ({"files": [{"filename": "a.pt", "format": "torch", "urls": ["https://x/a.pt"]}]},
     "needs a git_blob_sha1 or sha256"),
    ({"files": [{"filename": "../a.pt", "format": "torch", "urls": ["https://x/a.pt"],
                 "sha256": "0" * 64}]}, "plain name"),
    ({"white_level": 0}, "white_level > black_level"),
])
def test_bad_cards_are_refused_naming_the_file(tmp_path: Path, change: dict[str, object],
                                                message: str) -> None:
    data = json.loads((zoo.models_dir() / "mialgo-s7.json").read_text())
    data.update(change)
    path = tmp_path / "mialgo-s7.json"
    path.write_text(json.dumps(data))
    with pytest.raises(Rgb2RawError, match=message) as caught:
        zoo.load_card(path)
    assert caught.value.path == str(path)


# ---------------------------------------------------------------------------------- cache


def test_cache_dir_follows_rgb2raw_home(isolated_environment: Path) -> None:
    assert zoo.cache_dir() == isolated_environment
    card = zoo.get_model("mialgo-s7")
    assert zoo.model_path(card) == isolated_environment / "models" / "mialgo-s7" / "s7.pth"
    assert not zoo.is_cached(card)


def test_pull_downloads_then_serves_from_cache(server: FileServer) -> None:
    data = payload(50_000)
    card = toy_card(server, data, sha256=hashlib.sha256(data).hexdigest())
    seen: list[tuple[str, int, int | None]] = []
    path = zoo.pull(card, progress=lambda *args: seen.append(args), **FAST)
    assert path == zoo.model_path(card) and path.read_bytes() == data
    assert seen[-1] == ("toy.pt", len(data), len(data))
    assert zoo.is_cached(card) and zoo.verify(card).ok
    zoo.pull(card, **FAST)
    assert zoo.pull(card, **FAST) == path
    assert len(server.hits_for("/toy.pt")) == 1  # the cached, verified file is never re-fetched
    zoo.pull(card, force=True, **FAST)
    assert len(server.hits_for("/toy.pt")) == 2


def test_offline_never_touches_the_network(server: FileServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(1000)
    card = toy_card(server, data)
    monkeypatch.setenv("RGB2RAW_OFFLINE", "1")
    with pytest.raises(Rgb2RawError) as caught:
        zoo.pull(card, **FAST)
    message = str(caught.value)
    assert server.url("/toy.pt") in message and blob_pin(data) in message
    assert str(zoo.model_path(card)) in message
    assert server.hits == []


def test_offline_accepts_a_hand_placed_file_only_if_it_matches(
        server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(1000)
    card = toy_card(server, data)
    monkeypatch.setenv("RGB2RAW_OFFLINE", "1")
    target = zoo.model_path(card)
    target.parent.mkdir(parents=True)
    target.write_bytes(data[:-1] + b"?")
    with pytest.raises(Rgb2RawError, match=f"expected {blob_pin(data)}"):
        zoo.pull(card)
    assert not zoo.is_cached(card)
    target.write_bytes(data)
    assert zoo.pull(card) == target
    assert zoo.is_cached(card)
    assert server.hits == []


def test_corrupt_cache_entry_is_fetched_again_when_online(server: FileServer) -> None:
    data = payload(2000)
    card = toy_card(server, data)
    target = zoo.pull(card, **FAST)
    target.write_bytes(b"garbage")
    assert not zoo.is_cached(card)
    result = zoo.verify(card)
    assert not result.ok and result.checks[0].status == "mismatch"
    assert zoo.pull(card, **FAST).read_bytes() == data
    assert len(server.hits_for("/toy.pt")) == 2


def test_url_override_from_the_environment(server: FileServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(3000)
    card = toy_card(server, data, name="toy-model")
    del server.files["/toy.pt"]  # the card's own URL is dead
    server.files["/mirror/toy.pt"] = data
    monkeypatch.setenv("RGB2RAW_URL_TOY_MODEL", server.url("/mirror/toy.pt"))
    assert zoo.pull(card, **FAST).read_bytes() == data
    assert [hit.path for hit in server.hits] == ["/mirror/toy.pt"]


def test_override_cannot_bypass_the_pin(server: FileServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    card = toy_card(server, payload(3000, seed=1))
    server.files["/evil"] = payload(3000, seed=9)
    monkeypatch.setenv("RGB2RAW_URL_TOY", server.url("/evil"))
    with pytest.raises(Rgb2RawError, match="git blob sha-1 mismatch"):
        zoo.pull(card, **FAST)
    assert not zoo.model_path(card).exists()


def test_second_url_is_a_mirror(server: FileServer) -> None:
    data = payload(3000)
    card = toy_card(server, data)
    entry = card.primary
    server.files["/mirror"] = data
    urls = (server.url("/gone"), server.url("/mirror"))
    card = zoo.ModelCard(name="toy", camera="generic", arch="tiny", description="",
                         files=(zoo.ModelFile(entry.filename, entry.format, urls,
                                              entry.git_blob_sha1),))
    assert zoo.pull(card, **FAST).read_bytes() == data
    assert [hit.path for hit in server.hits] == ["/gone", "/mirror"]


# ------------------------------------------------------------------------------------ CLI

runner = CliRunner()


def test_cli_list_shows_every_model() -> None:
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in EXPECTED:
        assert name in result.stdout
    assert "40.06 / 0.93" in result.stdout


def test_cli_pull_path_verify(server: FileServer, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    data = payload(4000)
    registry = write_registry(tmp_path / "cards", toy_card(server, data))
    monkeypatch.setattr(zoo, "models_dir", lambda: registry)

    missing = runner.invoke(app, ["models", "path", "toy"])
    assert missing.exit_code == 1 and "not cached" in missing.stderr

    pulled = runner.invoke(app, ["models", "pull", "toy", "--no-progress"])
    assert pulled.exit_code == 0, pulled.output
    path = Path(pulled.stdout.strip())
    assert path.read_bytes() == data

    located = runner.invoke(app, ["models", "path", "toy"])
    assert located.exit_code == 0 and located.stdout.strip() == str(path)

    assert runner.invoke(app, ["models", "verify"]).exit_code == 0
    path.write_bytes(data[::-1])
    bad = runner.invoke(app, ["models", "verify", "toy"])
    assert bad.exit_code == 1 and "mismatch" in bad.stderr


def test_cli_unknown_model_is_a_one_line_error() -> None:
    result = runner.invoke(app, ["models", "pull", "mialgo-s8"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown model 'mialgo-s8'")


def test_bundled_file_is_checked_in_place_and_never_downloaded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "cards"
    registry.mkdir()
    data = b"tiny onnx stand-in"
    (registry / "tiny.onnx").write_bytes(data)
    monkeypatch.setattr(zoo, "models_dir", lambda: registry)
    entry = zoo.ModelFile("tiny.onnx", "onnx", sha256=hashlib.sha256(data).hexdigest(),
                          bundled=True)
    card = zoo.ModelCard(name="tiny", camera="generic", arch="tiny", description="",
                         files=(entry,))
    assert zoo.is_cached(card)
    assert zoo.pull(card) == registry / "tiny.onnx"
    assert zoo.verify(card).ok
    assert sorted(p.name for p in registry.iterdir()) == ["tiny.onnx"]  # nothing written there
    (registry / "tiny.onnx").write_bytes(b"tampered")
    with pytest.raises(Rgb2RawError, match="sha-256 mismatch"):
        zoo.pull(card)


PULL_IN_A_PROCESS = """
import sys
from rgb2raw import zoo
entry = zoo.ModelFile("toy.pt", "torch", (sys.argv[1],), sys.argv[2])
card = zoo.ModelCard(name="toy", camera="generic", arch="tiny", description="", files=(entry,))
print(zoo.pull(card, backoff=0.0))
"""


def test_two_processes_pulling_at_once_download_once(server: FileServer) -> None:
    data = payload(300_000)
    card = toy_card(server, data)
    server.chunk_delay = 0.02  # about 0.4 s of download, so the two processes overlap
    command = [sys.executable, "-c", PULL_IN_A_PROCESS, server.url("/toy.pt"), blob_pin(data)]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=60) for worker in workers]
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == str(zoo.model_path(card))
    assert [hit.body_bytes for hit in server.hits_for("/toy.pt")] == [len(data)]
    assert zoo.is_cached(card)
