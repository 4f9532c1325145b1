"""`rgb2raw train` conventions: resume from anywhere, nothing to do, warnings once (CPU, seconds)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from rgb2raw.cli import app  # noqa: E402

runner = CliRunner()
TINY = ["--epochs", "1", "--crop", "32", "--batch-size", "2", "--synthetic-length", "4",
        "--threads", "1", "--no-export", "--val-fraction", "0"]


def photos(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image = np.random.default_rng(index).integers(0, 256, (64, 96, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"p{index}.jpg"), image)
    return folder


def test_resume_from_another_folder_and_nothing_to_do(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    photos(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    first = runner.invoke(app, ["train", "--synthetic", "photos", "-o", "run", *TINY])
    assert first.exit_code == 0, first.stderr
    again = runner.invoke(app, ["train", "--synthetic", "photos", "-o", "run", *TINY])
    assert again.exit_code == 1
    assert "--resume" in again.stderr and "--overwrite" in again.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the relative "photos" no longer resolves from here
    done = runner.invoke(app, ["train", "-o", "../run", "--resume"])
    assert done.exit_code == 0, done.stderr
    assert done.stdout.startswith("nothing to do")
    more = runner.invoke(app, ["train", "-o", "../run", "--resume", "--epochs", "2",
                               "--no-export", "--threads", "1"])
    assert more.exit_code == 0, more.stderr
    assert "epoch 2:" in more.stderr
    refused = runner.invoke(app, ["train", "-o", "../run", "--resume", "--overwrite"])
    assert refused.exit_code == 2


def test_a_bad_pair_warning_is_printed_once(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(4):
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{index}_0.jpg"), image)
        if index:  # 0_0.jpg has no RAW: a bad pair
            np.save(folder / f"{index}_0.npy",
                    rng.integers(0, 1023, (32, 32, 4)).astype(np.uint16))
    result = runner.invoke(app, ["train", str(tmp_path / "data"), "-o", str(tmp_path / "run"),
                                 *TINY])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "0_0.jpg" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: "), result.stderr


def test_data_paths_are_stored_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    photos(tmp_path / "photos")
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["train", "--synthetic", "photos", "-o", "run", *TINY]).exit_code == 0
    stored = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["config"]["synthetic"]
    assert os.path.isabs(stored) and Path(stored) == tmp_path / "photos"
