"""rgb2raw train end to end on a tiny challenge-layout dataset made here (CPU, seconds)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from rgb2raw import zoo  # noqa: E402
from rgb2raw.cameras import S7  # noqa: E402
from rgb2raw.cli import app  # noqa: E402
from rgb2raw.errors import Rgb2RawError  # noqa: E402
from rgb2raw.train.checkpoint import build_model  # noqa: E402
from rgb2raw.train.config import TrainConfig  # noqa: E402
from rgb2raw.train.loop import train  # noqa: E402
from rgb2raw.train.simulate import simulate_pair  # noqa: E402

SIZE = 64
# Small widths keep each architecture's few epochs to about a second on two cores.
NET_KWARGS = {
    "tiny": {"tone_width": 8, "width": 16},
    "unet": {"encoder_widths": [3, 8, 16, 32], "decoder_widths": [32, 16, 8]},
    "liteisp": {"widths": [8, 8, 16], "n_blocks": 1},
}


def _scene(index: int) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    return np.clip(np.stack([0.5 + 0.4 * np.sin(3 * x + index), 0.5 + 0.4 * np.cos(2 * y + index),
                             0.3 + 0.5 * x * y], axis=-1), 0, 1).astype(np.float32)


def make_challenge_data(root: Path, scenes: int = 4, crops: int = 3) -> Path:
    """DATA/train/{scene}_{k}.jpg + .npy, simulated from smooth synthetic scenes."""
    folder = root / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for scene in range(scenes):
        for k in range(crops):
            shifted = np.clip(_scene(scene) + 0.1 * rng.standard_normal(3), 0, 1)
            jpeg, raw, _ = simulate_pair(shifted.astype(np.float32), S7, rng)
            cv2.imwrite(str(folder / f"{scene}_{k}.jpg"), cv2.cvtColor(jpeg, cv2.COLOR_RGB2BGR))
            np.save(folder / f"{scene}_{k}.npy", raw.astype(np.uint16))
    return root


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These networks and crops are tiny: one thread is faster, and robust on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_challenge_data(tmp_path_factory.mktemp("data"))


def _config(data: Path, arch: str = "tiny", **overrides: object) -> TrainConfig:
    settings: dict[str, object] = dict(
        camera="s7", arch=arch, epochs=6, data=str(data), crop=32, batch_size=3, lr=3e-3,
        net_kwargs=NET_KWARGS[arch], val_fraction=0.25, warmup=0.1, device="cpu")
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("arch", ["tiny", "unet", "liteisp"])
def test_each_architecture_learns(dataset: Path, tmp_path: Path, arch: str) -> None:
    result = train(_config(dataset, arch), tmp_path / "run", export=False)
    history = result.history
    assert result.finished and len(history) == 6
    assert result.n_train == 9 and result.n_val == 3  # 3 + 1 scenes of 3 crops
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].val_psnr > history[0].val_psnr
    assert all(0 < r.val_ssim <= 1 for r in history)
    log_lines = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert log_lines[0].startswith("epoch,steps,lr,train_loss,val_psnr") and len(log_lines) == 7
    png = cv2.imread(str(tmp_path / "run" / "curves.png"))
    assert png is not None and png.shape[0] > 100


def test_checkpoints_load_with_weights_only(dataset: Path, tmp_path: Path) -> None:
    from rgb2raw.nets import load_checkpoint

    train(_config(dataset, "unet", epochs=1), tmp_path / "run", export=False)
    for name in ("best.pt", "last.pt"):
        payload = torch.load(tmp_path / "run" / name, weights_only=True)
        assert payload["config"]["arch"] == "unet"
        assert set(payload["state_dict"]) == set(build_model("unet", NET_KWARGS["unet"]).state_dict())
    model = load_checkpoint(tmp_path / "run" / "best.pt", "unet",
                            encoder_widths=(3, 8, 16, 32), decoder_widths=(32, 16, 8))
    assert not model.training


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["train_state"]["model"]


def test_resume_after_interruption_matches_uninterrupted_run(dataset: Path, tmp_path: Path) -> None:
    config = _config(dataset, epochs=3, ema=0.9)
    whole = train(config, tmp_path / "whole", export=False)
    # 9 training items, batches of 3: 3 steps per epoch; stop in the middle of epoch 2.
    stopped = train(_config(dataset, epochs=3, ema=0.9), tmp_path / "split", stop_after_steps=4,
                    export=False)
    assert not stopped.finished and len(stopped.history) == 1
    with pytest.raises(Rgb2RawError, match="already holds a training run"):
        train(_config(dataset, epochs=3, ema=0.9), tmp_path / "split", export=False)
    resumed = train(_config(dataset, epochs=3), tmp_path / "split", resume=True, export=False)
    assert resumed.finished
    expected, got = _final_weights(tmp_path / "whole"), _final_weights(tmp_path / "split")
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6)
    ema_a = torch.load(tmp_path / "whole" / "best.pt", weights_only=True)["state_dict"]
    ema_b = torch.load(tmp_path / "split" / "best.pt", weights_only=True)["state_dict"]
    for name, tensor in ema_a.items():
        torch.testing.assert_close(ema_b[name], tensor, rtol=0, atol=1e-6)
    assert [r.train_loss for r in resumed.history] == pytest.approx(
        [r.train_loss for r in whole.history], abs=1e-6)


def test_export_matches_torch_and_infer_uses_it(dataset: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    result = train(_config(dataset, epochs=2), run)
    assert result.onnx_path == run / "model.onnx" and result.card_path == run / "model.json"
    card = zoo.load_card(run / "model.json")
    contract = card.contract
    assert card.arch == "tiny" and card.camera == "s7" and contract.size_multiple == 2
    assert (contract.black_level, contract.white_level) == (0.0, 1024.0)
    assert [f.filename for f in card.files] == ["model.onnx", "best.pt"]

    payload = torch.load(run / "best.pt", weights_only=True)
    model = build_model("tiny", payload["config"]["net_kwargs"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    rgb = cv2.cvtColor(cv2.imread(str(dataset / "train" / "0_0.jpg")), cv2.COLOR_BGR2RGB)
    batch = (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None, :, :, 48]
    batch = np.ascontiguousarray((rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None, :, :48])
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"rgb": batch})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)

    # `rgb2raw infer` with the exported file: DN = output * 1024, rounded (the card's levels).
    out = tmp_path / "pred.npy"
    cli = CliRunner().invoke(app, ["infer", str(dataset / "train" / "0_0.jpg"), "-o", str(out),
                                   "--model", str(run / "model.onnx"), "--tile", "-1"])
    assert cli.exit_code == 0, cli.output
    with torch.no_grad():
        full = model(torch.from_numpy(np.ascontiguousarray(
            (rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]))).numpy()[0]
    expected_dn = np.clip(np.rint(full.transpose(1, 2, 0) * 1024.0), 0, 1024)
    assert np.abs(np.load(out).astype(np.float64) - expected_dn).max() <= 1


def _corrupt(dataset: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    (copy / "train").mkdir(parents=True)
    for path in sorted((dataset / "train").iterdir()):
        (copy / "train" / path.name).write_bytes(path.read_bytes())
    bad = copy / "train" / "1_1.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    return copy


def test_corrupt_pair_is_reported_then_skipped_or_stops(dataset: Path, tmp_path: Path) -> None:
    data = _corrupt(dataset, tmp_path)
    runner = CliRunner()
    common = ["--camera", "s7", "--arch", "tiny", "--epochs", "1", "--crop", "32",
              "--batch-size", "4", "--val-fraction", "0.25", "--device", "cpu", "--no-export"]
    skipped = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "skip"), *common])
    assert skipped.exit_code == 0, skipped.output
    assert "1_1.jpg" in skipped.output and "skipped" in skipped.output
    assert "1_1.jpg" in (tmp_path / "skip" / "bad_pairs.txt").read_text()
    assert (tmp_path / "skip" / "best.pt").is_file()

    stopped = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "stop"), *common,
                                  "--on-bad-pair", "stop"])
    assert stopped.exit_code == 1
    assert "error:" in stopped.output and "1_1.jpg" in stopped.output
    assert not (tmp_path / "stop" / "last.pt").exists()


def test_synthetic_training_from_photos(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        picture = np.rint(_scene(index) * 255).astype(np.uint8)
        cv2.imwrite(str(photos / f"photo{index}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    config = TrainConfig(camera="p20", arch="tiny", epochs=2, synthetic=str(photos), crop=32,
                         batch_size=4, synthetic_length=8, synthetic_val=4, val_fraction=0.34,
                         device="cpu")
    result = train(config, tmp_path / "run")
    assert result.finished and result.n_train == 8 and result.n_val == 4
    assert all(np.isfinite(r.val_psnr) for r in result.history)
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["camera"] == "p20" and "synthetic" in card["description"]


def test_bad_settings_are_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(Rgb2RawError, match="multiple of 16"):
        train(_config(dataset, "liteisp", crop=40), tmp_path / "a", export=False)
    with pytest.raises(Rgb2RawError, match="exactly one data source"):
        train(_config(dataset, synthetic=str(dataset)), tmp_path / "b", export=False)
    with pytest.raises(Rgb2RawError, match="nothing to resume"):
        train(_config(dataset), tmp_path / "c", resume=True, export=False)
    with pytest.raises(Rgb2RawError, match="unknown loss"):
        train(_config(dataset, loss="l3"), tmp_path / "d", export=False)
