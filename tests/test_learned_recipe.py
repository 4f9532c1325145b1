"""The learned recipe's run folder and bundling: cards the zoo and the engine accept."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from rgb2raw import zoo  # noqa: E402
from rgb2raw.errors import Rgb2RawError  # noqa: E402
from rgb2raw.pipeline import RunSettings, infer_image, load_model  # noqa: E402
from rgb2raw.train import learned_recipe  # noqa: E402
from rgb2raw.train.checkpoint import build_model  # noqa: E402


def _run_folder(tmp_path: Path) -> Path:
    recipe = learned_recipe.Recipe(camera="p20")
    model = build_model("global", learned_recipe.net_kwargs(recipe)).eval()
    run = tmp_path / "run"
    run.mkdir()
    learned_recipe.publish(run, model, recipe)
    (run / "recipe.json").write_text(json.dumps({"recipe": asdict(recipe)}), encoding="utf-8")
    return run


def test_an_untrained_run_folder_runs_in_the_engine_exactly_as_calibrated(tmp_path: Path) -> None:
    # The card carries the calibrated camera's levels and lens shading, and the untrained
    # network is the calibrated inverse: the engine's output is the same DN for DN.
    run = _run_folder(tmp_path)
    card = zoo.load_card(run / "model.json")
    calibrated = zoo.load_card(zoo.models_dir() / "calibrated-p20.json")
    assert card.contract.full_frame and card.arch == "global"
    assert (card.contract.black_level, card.contract.white_level) == (
        calibrated.contract.black_level, calibrated.contract.white_level)
    assert card.shading == calibrated.shading and card.shading is not None
    rgb = np.random.default_rng(0).random((40, 64, 3), dtype=np.float32)
    dn = infer_image(rgb, load_model(run, camera="p20"), RunSettings(tile=-1))
    expected = infer_image(rgb, load_model("calibrated-p20", camera="p20"), RunSettings(tile=-1))
    assert dn.shape == (20, 32, 4) and dn.dtype == np.uint16
    assert np.array_equal(dn, expected)


def test_bundling_writes_a_named_card_with_the_reported_score_and_never_overwrites(
        tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    models = tmp_path / "models"
    models.mkdir()
    reported = {"set": "held-out families", "psnr": 33.0, "ssim": 0.9}
    card_path = learned_recipe.bundle(run, models, reported)
    card = zoo.load_card(card_path)
    assert card.name == "learned-p20" and card.contract.full_frame
    assert card.reported is not None and card.reported.psnr == 33.0
    assert (models / "learned-p20.onnx").read_bytes() == (run / "model.onnx").read_bytes()
    with pytest.raises(Rgb2RawError, match="already exists"):
        learned_recipe.bundle(run, models, reported)


def test_republishing_a_run_rebuilds_the_same_graph_from_its_weights(tmp_path: Path) -> None:
    import torch

    from rgb2raw.train.checkpoint import save_checkpoint

    recipe = learned_recipe.Recipe(camera="s7")
    kwargs = learned_recipe.net_kwargs(recipe)
    model = build_model("global", kwargs).eval()
    with torch.no_grad():
        for p in model.mlp.parameters():
            p.add_(0.01 * torch.randn_like(p))
    run = tmp_path / "run"
    run.mkdir()
    save_checkpoint(run / "best.pt", {"state_dict": model.state_dict(),
                                      "config": {"net_kwargs": kwargs}})
    learned_recipe.publish(run, model, recipe)
    (run / "recipe.json").write_text(json.dumps({"recipe": asdict(recipe)}), encoding="utf-8")
    first = (run / "model.onnx").read_bytes()
    (run / "model.onnx").unlink()
    learned_recipe.republish(run)
    assert (run / "model.onnx").read_bytes() == first
