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
    recipe = learned_recipe.Recipe(camera="p20", net_kwargs={"dilations": [1]})
    model = build_model("global", learned_recipe.net_kwargs(recipe)).eval()
    run = tmp_path / "run"
    run.mkdir()
    learned_recipe.publish(run, model, recipe)
    (run / "recipe.json").write_text(json.dumps({"recipe": asdict(recipe)}), encoding="utf-8")
    return run


def test_a_run_folder_runs_in_the_engine_as_a_full_frame_model(tmp_path: Path) -> None:
    run = _run_folder(tmp_path)
    card = zoo.load_card(run / "model.json")
    assert card.contract.full_frame and card.arch == "global"
    assert (card.contract.black_level, card.contract.white_level) == (60.0, 1020.0)
    loaded = load_model(run, camera="p20")
    rgb = np.random.default_rng(0).random((40, 64, 3), dtype=np.float32)
    dn = infer_image(rgb, loaded, RunSettings(tile=-1))
    assert dn.shape == (20, 32, 4) and dn.dtype == np.uint16
    assert dn.min() >= 60 and dn.max() <= 1020


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
