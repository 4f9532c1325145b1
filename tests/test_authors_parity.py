"""The challenge models run exactly as their authors ran them (random weights, 1 DN).

The references below are written here from the authors' published conventions (listed with
their sources in docs/conventions.md), not taken from rgb2raw:

* MiAlgo's ``test.py``: stitch a scene's crops (row-major) into the frame, feed ``rgb / 255``,
  map the output y to ``clip(round(y * (white - black) + black), 0, white)`` with the
  camera's levels (S7 0/1023, P20 60/1020), store uint16, split the frame back into crops.
* The official baseline notebook: one crop at a time, ``rgb / 255``, the U-Net at full
  resolution, ``F.interpolate`` of its 4-channel output to half size (nearest), values clamped
  to [0, 1], saved as ``(pred * 1024).astype(np.uint16)`` (truncation).

Each runs through `rgb2raw.batch.infer_paths` (and once through the CLI) on a 2x3 grid of small
crops, with weights scaled so that outputs fall under the black level and above white.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner  # noqa: E402

from rgb2raw import cameras, zoo  # noqa: E402
from rgb2raw.batch import infer_paths  # noqa: E402
from rgb2raw.cli import app  # noqa: E402
from rgb2raw.nets import build_net  # noqa: E402
from rgb2raw.pipeline import load_model  # noqa: E402

GRID = (2, 3)
CROP = 32  # a multiple of 16, so each crop is also a valid LiteISPNet_s input on its own
#: The authors' levels per camera (docs/conventions.md), written here again on purpose: it checks
#: that rgb2raw's registry and camera profiles give these numbers.
AUTHORS_LEVELS = {"s7": (0.0, 1023.0), "p20": (60.0, 1020.0)}


def small_camera(name: str) -> cameras.CameraProfile:
    """The camera with a 2x3 grid of 32-pixel crops: same levels, a small frame."""
    profile = cameras.PROFILES[name]
    return dataclasses.replace(profile, rgb_crop=CROP, raw_crop=CROP // 2, crop_grid=GRID,
                               frame_size=(GRID[1] * CROP, GRID[0] * CROP))


def random_liteisp(seed: int) -> Any:
    """LiteISPNet_s with random weights whose tail is scaled so outputs span past [0, 1]."""
    torch.manual_seed(seed)
    net = build_net("liteisp").eval()
    with torch.no_grad():
        net.tail.weight.mul_(15.0)
        net.tail.bias.fill_(1.5)
        net.shading[1].bias.fill_(3.0)  # a shading mask near 1, so outputs reach above white
    return net


def random_unet(seed: int) -> Any:
    """The baseline U-Net with a head scaled so the [0, 1] clamp is reached at both ends."""
    torch.manual_seed(seed)
    net = build_net("unet").eval()
    with torch.no_grad():
        net.head.weight.mul_(40.0)
        net.head.bias.fill_(0.5)
    return net


def write_scene(folder: Path, scene: str, seed: int) -> list[np.ndarray]:
    """The crops of one scene as lossless PNGs; returns them as uint8 RGB, row-major."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    crops = [rng.integers(0, 256, (CROP, CROP, 3), dtype=np.uint8)
             for _ in range(GRID[0] * GRID[1])]
    for index, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"{scene}_{index}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    return crops


def mialgo_reference(net: Any, crops: list[np.ndarray], camera: str) -> list[np.ndarray]:
    """MiAlgo's test.py: the stitched frame through the network, their levels and clipping."""
    black, white = AUTHORS_LEVELS[camera]
    rows = [np.concatenate(crops[r * GRID[1]:(r + 1) * GRID[1]], axis=1) for r in range(GRID[0])]
    frame = np.concatenate(rows, axis=0)
    x = torch.from_numpy(frame.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        y = net(x)[0].permute(1, 2, 0).numpy().astype(np.float64)
    raw = np.clip(np.round(y * (white - black) + black), 0, white).astype(np.uint16)
    half = CROP // 2
    return [raw[r * half:(r + 1) * half, c * half:(c + 1) * half]
            for r in range(GRID[0]) for c in range(GRID[1])]


def baseline_reference(net: Any, crop: np.ndarray) -> np.ndarray:
    """The official notebook: one crop, the full-resolution head resized to half, clamped,
    times 1024, truncated to uint16."""
    x = torch.from_numpy(crop.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        features = net.encoder(x)
        decoded = net.decoder(features[-1], features[-2::-1])
        out = torch.nn.functional.interpolate(net.head(decoded), size=(CROP // 2, CROP // 2))
        pred = out.clamp(0.0, 1.0)[0].permute(1, 2, 0).numpy()
    return (pred * 1024).astype(np.uint16)


def assert_within_one_dn(written: Path, expected: np.ndarray) -> np.ndarray:
    got = np.load(written)
    assert got.dtype == np.uint16 and got.shape == expected.shape
    difference = np.abs(got.astype(np.int32) - expected.astype(np.int32))
    assert difference.max() <= 1, (written, difference.max())
    return got


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("camera", ["s7", "p20"])
def test_liteisp_by_path_runs_on_stitched_frames_with_mialgos_levels(
        tmp_path: Path, camera: str, backend: str) -> None:
    net = random_liteisp(seed=1)
    checkpoint = tmp_path / "lite.pth"
    torch.save({"state_dict_model": net.state_dict()}, checkpoint)  # MiAlgo's layout
    crops = write_scene(tmp_path / "in", "7", seed=2)
    expected = mialgo_reference(net, crops, camera)

    model = load_model(checkpoint, arch="liteisp", camera=camera, backend=backend)  # type: ignore[arg-type]
    report = infer_paths([tmp_path / "in"], tmp_path / "out", model, small_camera(camera))
    assert report.ok and report.count("written") == len(crops)
    written = np.stack([assert_within_one_dn(tmp_path / "out" / f"7_{k}.npy", expected[k])
                        for k in range(len(crops))])
    black, white = AUTHORS_LEVELS[camera]
    # The test exercises both clips: values at white, and values under the black level (kept,
    # down to 0) for the P20; the S7's black is 0, where the clip is.
    assert (written == white).any() and (written == 0).any()
    if black > 0:
        assert ((written > 0) & (written < black)).any()


@pytest.mark.parametrize("backend", ["torch", "onnx"])
@pytest.mark.parametrize("camera", ["s7", "p20"])
def test_unet_by_path_runs_crop_by_crop_like_the_official_notebook(
        tmp_path: Path, camera: str, backend: str) -> None:
    net = random_unet(seed=3)
    checkpoint = tmp_path / "unet.pt"
    torch.save(net.state_dict(), checkpoint)  # the baseline saves the bare state dict
    crops = write_scene(tmp_path / "in", "4", seed=4)

    model = load_model(checkpoint, arch="unet", camera=camera, backend=backend)  # type: ignore[arg-type]
    report = infer_paths([tmp_path / "in"], tmp_path / "out", model, small_camera(camera))
    assert report.ok and report.count("written") == len(crops)
    written = np.stack([assert_within_one_dn(tmp_path / "out" / f"4_{k}.npy",
                                             baseline_reference(net, crop))
                        for k, crop in enumerate(crops)])
    assert (written == 0).any() and (written == 1024).any()  # both ends of the clamp


def test_a_zoo_card_and_a_bare_path_resolve_to_the_same_contract(tmp_path: Path) -> None:
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")  # never loaded: only the card made for the path is compared
    for name in ("mialgo-s7", "mialgo-p20", "aim22-unet-s7", "aim22-unet-p20"):
        card = zoo.get_model(name)
        bare = zoo.file_card(weights, arch=card.arch, camera=card.camera)
        ours, theirs = card.contract.resolved(), bare.contract.resolved()
        assert ours.pop("name") == name and theirs.pop("name") == "weights"
        assert ours == theirs, name


@pytest.mark.parametrize("camera", ["s7", "p20"])
def test_the_registry_holds_the_authors_conventions(tmp_path: Path, camera: str) -> None:
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"")
    black, white = AUTHORS_LEVELS[camera]
    lite = zoo.file_card(weights, arch="liteisp", camera=camera).contract
    assert (lite.black_level, lite.white_level, lite.low, lite.rounding) == (
        black, white, 0.0, "nearest")
    assert lite.full_frame and lite.size_multiple == 16
    unet = zoo.file_card(weights, arch="unet", camera=camera).contract
    assert (unet.black_level, unet.white_level, unet.low, unet.rounding) == (
        0.0, 1024.0, 0.0, "truncate")
    crop = cameras.get_camera(camera).rgb_crop
    assert not unet.full_frame and unet.input_size == (crop, crop)


def test_the_cli_runs_liteisp_by_path_and_through_its_card_alike(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cameras.PROFILES, "p20", small_camera("p20"))
    net = random_liteisp(seed=5)
    checkpoint = tmp_path / "weights" / "p20.pth"
    checkpoint.parent.mkdir()
    torch.save({"state_dict_model": net.state_dict()}, checkpoint)
    crops = write_scene(tmp_path / "in", "3", seed=6)
    expected = mialgo_reference(net, crops, "p20")
    # The zoo card of mialgo-p20, pointing at the local weights instead of the download.
    card = zoo.get_model("mialgo-p20")
    local = dataclasses.replace(card, files=(zoo.ModelFile("p20.pth", "torch", bundled=True),))
    zoo.write_card(tmp_path / "weights" / "mialgo-p20.json", local)

    runner = CliRunner()
    for label, model_args in (
            ("path", ["--model", str(checkpoint), "--arch", "liteisp", "--camera", "p20"]),
            ("card", ["--model", str(tmp_path / "weights" / "mialgo-p20.json")])):
        result = runner.invoke(app, ["infer", str(tmp_path / "in"), "-o", str(tmp_path / label),
                                     "--backend", "torch", *model_args])
        assert result.exit_code == 0, result.output
        for k in range(len(crops)):
            assert_within_one_dn(tmp_path / label / f"3_{k}.npy", expected[k])
    for k in range(len(crops)):
        np.testing.assert_array_equal(np.load(tmp_path / "path" / f"3_{k}.npy"),
                                      np.load(tmp_path / "card" / f"3_{k}.npy"))


def test_an_architectures_frame_runner_replaces_the_single_pass(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rgb2raw import nets

    calls: list[tuple[int, ...]] = []

    def runner(module: Any, rgb: Any) -> Any:
        calls.append(tuple(rgb.shape))
        return module(rgb)

    monkeypatch.setattr(sys.modules[__name__], "recorded_runner", runner, raising=False)
    lite = nets.REGISTRY["liteisp"]
    monkeypatch.setitem(nets.REGISTRY, "liteisp", dataclasses.replace(
        lite, frame_runner=f"{__name__}:recorded_runner"))
    net = random_liteisp(seed=7)
    checkpoint = tmp_path / "lite.pth"
    torch.save({"state_dict_model": net.state_dict()}, checkpoint)
    crops = write_scene(tmp_path / "in", "2", seed=8)
    model = load_model(checkpoint, arch="liteisp", camera="p20", backend="torch")
    infer_paths([tmp_path / "in"], tmp_path / "out", model, small_camera("p20"))
    assert calls == [(1, 3, GRID[0] * CROP, GRID[1] * CROP)]  # once, on the stitched frame
    expected = mialgo_reference(net, crops, "p20")
    for k in range(len(crops)):
        assert_within_one_dn(tmp_path / "out" / f"2_{k}.npy", expected[k])
