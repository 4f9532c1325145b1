"""The local learned model, the named simulation regimes and the run card's tiling fields."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rgb2raw import isp  # noqa: E402
from rgb2raw.cameras import get_camera  # noqa: E402
from rgb2raw.nets.tiny import LocalReverseISP  # noqa: E402
from rgb2raw.train.checkpoint import build_model  # noqa: E402
from rgb2raw.train.config import TrainConfig  # noqa: E402
from rgb2raw.train.loop import train  # noqa: E402
from rgb2raw.train.publish import graph_bytes_per_pixel  # noqa: E402
from rgb2raw.train.simulate import REGIMES, SimulationRanges, draw_settings  # noqa: E402


def _randomised(model: LocalReverseISP, seed: int = 0) -> LocalReverseISP:
    """Give the zero-initialised last layer random weights, so every layer matters."""
    torch.manual_seed(seed)
    final = model.correction[-1]
    assert isinstance(final, torch.nn.Conv2d)
    with torch.no_grad():
        torch.nn.init.normal_(final.weight, std=0.1)
    return model.eval()


def _write_photos(folder: Path, seed: int) -> Path:
    """Two small, smooth photos (a synthetic training set)."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for index in range(2):
        picture = cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), (5, 5), 2)
        cv2.imwrite(str(folder / f"p{index}.png"), picture)
    return folder


def test_local_model_starts_as_the_parametric_inverse() -> None:
    camera = get_camera("s7")
    model = LocalReverseISP("s7", width=8, base_scale=0.5).eval()
    rgb = np.random.default_rng(0).uniform(0, 1, (16, 24, 3)).astype(np.float32)
    with torch.no_grad():
        packed = model(torch.from_numpy(rgb.transpose(2, 0, 1))[None])[0].numpy()
    expected = isp.unprocess(rgb, camera).transpose(2, 0, 1) * 0.5
    assert packed.shape == (4, 8, 12)
    np.testing.assert_allclose(packed, expected, atol=1e-5)


@pytest.mark.parametrize("dilations", [(1,), (1, 2, 1), (2, 3)])
def test_local_model_context_is_its_exact_receptive_field(dilations: tuple[int, ...]) -> None:
    model = _randomised(LocalReverseISP("p20", width=4, dilations=dilations))
    size, block = 64, 16  # the output 2x2 block at packed (block, block) = RGB rows 32..33
    rgb = torch.rand(1, 3, size, size, requires_grad=True)
    model(rgb)[0, :, block, block].sum().backward()
    assert rgb.grad is not None
    reached = torch.nonzero(rgb.grad[0].abs().sum(0))
    low, high = 2 * block, 2 * block + 1
    assert int(reached.min()) == low - model.context
    assert int(reached.max()) == high + model.context


def test_parametric_regime_and_mixture_draw_the_parametric_settings() -> None:
    camera = get_camera("p20")
    rng = np.random.default_rng(1)
    plain = draw_settings(camera, rng, REGIMES["parametric"])
    assert plain.gamma == 1.0 and plain.exposure_ev == 0.0 and plain.render_ev == 0.0
    assert plain.wb_gains == pytest.approx(camera.wb_gains)
    assert plain.render_gains == pytest.approx(camera.wb_gains)
    assert plain.iso == pytest.approx(50.0)
    always_plain = dataclasses.replace(REGIMES["broad"], plain_probability=1.0)
    for _ in range(5):
        drawn = draw_settings(camera, rng, always_plain)
        assert (drawn.gamma, drawn.exposure_ev, drawn.wb_gains) == (1.0, 0.0, camera.wb_gains)
        assert 60 <= drawn.jpeg_quality <= 98
    # Half plain on average; a plain draw is exact, the others come from the wide ranges.
    mixed = [draw_settings(camera, rng, REGIMES["broad"]) for _ in range(400)]
    share = np.mean([m.exposure_ev == 0.0 and m.gamma == 1.0 for m in mixed])
    assert 0.4 < share < 0.6


def test_ranges_without_mixture_draw_as_before() -> None:
    """A zero plain probability consumes no extra random number (benchmarks stay the same)."""
    camera = get_camera("s7")
    ranges = SimulationRanges()
    first = draw_settings(camera, np.random.default_rng(7), ranges)
    rng = np.random.default_rng(7)
    gamma = rng.uniform(*ranges.gamma)
    assert first.gamma == gamma


def test_unknown_regime_is_a_config_error() -> None:
    config = TrainConfig(camera="s7", arch="tiny", epochs=1, synthetic="x",
                         synthetic_regime="nope")
    with pytest.raises(ValueError, match="unknown synthetic regime"):
        config.check()
    config = TrainConfig(camera="s7", arch="tiny", epochs=1, synthetic="x", synthetic_plain=1.5)
    with pytest.raises(ValueError, match="plain share"):
        config.check()


@pytest.mark.parametrize("local", [True, False])
def test_run_card_states_context_and_bytes_per_pixel(tmp_path: Path, local: bool) -> None:
    photos = _write_photos(tmp_path / "photos", seed=0)
    net_kwargs = ({"local": True, "camera": "s7", "width": 4, "dilations": [1, 2]} if local
                  else {"tone_width": 4, "width": 4})
    config = TrainConfig(camera="s7", arch="tiny", epochs=1, synthetic=str(photos), crop=32,
                         batch_size=2, synthetic_length=2, val_fraction=0.0, device="cpu",
                         net_kwargs=net_kwargs, synthetic_regime="broad")
    train(config, tmp_path / "run")
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    model = build_model("tiny", net_kwargs)
    # The card states a context only where it differs from the architecture's (unknown).
    assert card.get("context") == (6 if local else None) and ("context" in card) == local
    assert card.get("context") == getattr(model, "context", None)
    bound = graph_bytes_per_pixel(tmp_path / "run" / "model.onnx")
    assert card["bytes_per_pixel"] == bound and bound is not None
    # At least the input (12 bytes) and the packed output (4 bytes) of every RGB pixel.
    assert bound >= 16


def test_cli_trains_the_local_variant_and_infer_loads_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rgb2raw.cli import app
    from rgb2raw.nets import load_checkpoint
    from rgb2raw.train.recipe import local_tiny_kwargs

    photos = _write_photos(tmp_path / "photos", seed=1)
    runner = CliRunner()
    args = ["train", "--synthetic", str(photos), "-o", str(tmp_path / "run"), "--camera", "p20",
            "--arch", "tiny", "--local", "--synthetic-regime", "broad", "--synthetic-plain", "0.5",
            "--epochs", "1", "--crop", "32", "--batch-size", "2", "--synthetic-length", "2",
            "--val-fraction", "0", "--device", "cpu", "--threads", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "run" / "model.json").read_text())
    assert card["context"] == LocalReverseISP("p20", **{k: v for k, v in local_tiny_kwargs("p20").items()
                                                         if k not in ("local", "camera")}).context
    module = load_checkpoint(tmp_path / "run" / "best.pt", "tiny", **local_tiny_kwargs("p20"))
    assert isinstance(module, LocalReverseISP)
    wrong = runner.invoke(app, [*args[:9], "--arch", "unet", "--local", "--epochs", "1"])
    assert wrong.exit_code == 2 and "--local is a variant of --arch tiny" in wrong.stderr
