"""Local models: a training run folder, or weights with a card beside them, run like zoo models."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rgb2raw import zoo
from rgb2raw.errors import Rgb2RawError
from rgb2raw.pipeline import load_model

torch = pytest.importorskip("torch")


def write_run(folder: Path, *, black: float = 0.0, white: float = 1023.0) -> Path:
    """A run folder as `rgb2raw train` leaves it: model.onnx + model.json (a card)."""
    from rgb2raw.nets import build_net
    from rgb2raw.nets.export import export_onnx

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    onnx_path = export_onnx(build_net("tiny").eval(), folder / "model.onnx", example_hw=(32, 32))
    data = onnx_path.read_bytes()
    card = {
        "name": "model", "camera": "p20", "arch": "tiny", "description": "test run",
        "files": [{"filename": "model.onnx", "format": "onnx", "bundled": True,
                   "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}],
        "size_multiple": 2, "black_level": black, "white_level": white,
    }
    (folder / "model.json").write_text(json.dumps(card), encoding="utf-8")
    return folder


def test_a_run_folder_a_card_file_and_weights_with_a_card_are_found(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    for reference in (run, run / "model.json", run / "model.onnx"):
        card = zoo.find_local_card(reference)
        assert card is not None and card.arch == "tiny" and card.camera == "p20"
        assert zoo.file_path(card, card.primary) == (run / "model.onnx").resolve()
    lone = tmp_path / "lone.onnx"
    shutil.copy(run / "model.onnx", lone)
    assert zoo.find_local_card(lone) is None
    with pytest.raises(Rgb2RawError, match="without a model.json"):
        zoo.find_local_card(tmp_path)


def test_a_moved_run_folder_still_loads_and_keeps_its_levels(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", black=60.0, white=1020.0)
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(run, moved)
    model = load_model(moved)
    assert (model.contract.black_level, model.contract.white_level) == (60.0, 1020.0)
    assert model.contract.camera == "p20"
    out = model.backend.run(np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32))
    assert out.shape == (1, 4, 8, 8)


def test_a_run_whose_weights_were_changed_is_refused(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    with (run / "model.onnx").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(Rgb2RawError, match="model.onnx"):
        load_model(run)


def test_the_default_model_is_the_bundled_parametric_one() -> None:
    card = zoo.default_model("s7")
    assert card.arch == "parametric" and card.primary.bundled
    assert zoo.file_path(card, card.primary).is_file()


def test_home_is_not_a_json_field() -> None:
    card = json.loads((zoo.models_dir() / "parametric-s7.json").read_text(encoding="utf-8"))
    card["home"] = "/tmp"
    with pytest.raises(ValueError, match="home"):
        zoo.card_from_dict(card)
