"""`rgb2raw score`: parity with the reference scorer, pairing by stem, bad inputs, outputs."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
official_reference = pytest.importorskip("official_reference")

from rgb2raw import scoring  # noqa: E402
from rgb2raw.cli import app  # noqa: E402
from rgb2raw.errors import Rgb2RawError  # noqa: E402

SHAPE = (36, 36, 4)


@pytest.fixture()
def pairs(tmp_path: Path) -> tuple[Path, Path]:
    """Six pairs like the shared fixtures: identical, noise, blur-ish, gain, float, saturated."""
    rng = np.random.default_rng(0)
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    for stem in ("a_identical", "b_noise", "c_smooth", "d_gain", "e_float", "f_saturated"):
        gt = rng.integers(100, 900, SHAPE).astype(np.uint16)
        pred: np.ndarray = gt.copy()
        if stem == "b_noise":
            pred = np.clip(gt + rng.normal(0, 15, SHAPE), 0, 1024).astype(np.uint16)
        elif stem == "c_smooth":
            pred = ((gt.astype(int) + np.roll(gt, 1, axis=0)) // 2).astype(np.uint16)
        elif stem == "d_gain":
            pred = np.clip(gt * 1.1, 0, 1024).astype(np.uint16)
        elif stem == "e_float":
            pred = np.clip(gt + rng.normal(0, 3, SHAPE), 0, 1024).astype(np.float32)
        elif stem == "f_saturated":
            pred = np.clip(gt * 2.0, 0, 1024).astype(np.uint16)
        np.save(gt_dir / f"{stem}.npy", gt)
        np.save(pred_dir / f"{stem}.npy", pred)
    return pred_dir, gt_dir


def _assert_matches_reference(result: scoring.ScoreResult, pred: Path, gt: Path) -> None:
    reference = official_reference.score_folders(str(pred), str(gt))
    assert result.count == reference["count"]
    assert result.psnr == pytest.approx(reference["psnr"], abs=1e-9)
    assert result.ssim == pytest.approx(reference["ssim"], abs=1e-12)
    for image in result.per_image:
        assert image.psnr == pytest.approx(reference["per_image"][image.stem]["psnr"], abs=1e-9)
        assert image.ssim == pytest.approx(reference["per_image"][image.stem]["ssim"], abs=1e-12)


@pytest.mark.parametrize("workers", [1, 2])
def test_scores_match_reference(pairs: tuple[Path, Path], workers: int) -> None:
    result = scoring.score(*pairs, workers=workers)
    _assert_matches_reference(result, *pairs)
    assert {s.stem: s.psnr for s in result.per_image}["a_identical"] == 999.0


def test_zip_prediction_scores_like_its_folder(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gt = pairs
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(pred.iterdir()):
            out.write(path, f"submission/{path.name}")
        out.writestr("__MACOSX/submission/._b_noise.npy", b"junk")
    assert scoring.score(archive, gt).to_dict() == scoring.score(pred, gt).to_dict()


def test_missing_and_extra_files_fail_unless_allowed(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    (pred / "b_noise.npy").rename(pred / "z_extra.npy")
    with pytest.raises(Rgb2RawError, match=r"1 missing \(b_noise\); 1 extra \(z_extra\)"):
        scoring.score(pred, gt)
    result = scoring.score(pred, gt, allow_missing=True)
    assert result.count == 5 and result.missing == ("b_noise",) and result.extra == ("z_extra",)


@pytest.mark.parametrize(("content", "problem"), [
    (np.full(SHAPE, 1025, np.uint16), "outside"),
    (np.full(SHAPE, np.nan, np.float32), "NaN"),
    (np.full(SHAPE, -1.0), "outside"),
    (np.zeros((36, 30, 4), np.uint16), "differs from the ground truth"),
])
def test_bad_values_name_the_file(pairs: tuple[Path, Path], content: np.ndarray, problem: str) -> None:
    pred, gt = pairs
    np.save(pred / "d_gain.npy", content)
    with pytest.raises(Rgb2RawError, match=problem) as caught:
        scoring.score(pred, gt)
    assert caught.value.path is not None and caught.value.path.endswith("d_gain.npy")


def test_object_array_and_unreadable_file(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    np.save(pred / "c_smooth.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(Rgb2RawError, match="pickled"):
        scoring.score(pred, gt)
    (pred / "c_smooth.npy").write_bytes(b"not numpy")
    with pytest.raises(Rgb2RawError, match="not a readable"):
        scoring.score(pred, gt)


def test_white_level_option(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    at_1024 = scoring.score(pred, gt)
    at_2048 = scoring.score(pred, gt, white_level=2048)
    noisy_1024 = {s.stem: s for s in at_1024.per_image}["b_noise"]
    noisy_2048 = {s.stem: s for s in at_2048.per_image}["b_noise"]
    # Doubling the white level halves the error relative to full scale: +6.02 dB.
    assert noisy_2048.psnr - noisy_1024.psnr == pytest.approx(20 * np.log10(2), abs=1e-9)


def test_cli_table_json_csv(pairs: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gt = pairs
    json_path, csv_path = tmp_path / "s.json", tmp_path / "s.csv"
    runner = CliRunner()
    run = runner.invoke(app, ["score", str(pred), str(gt), "--json", str(json_path),
                              "--csv", str(csv_path), "--top", "2"])
    assert run.exit_code == 0, run.output
    data = json.loads(json_path.read_text())
    reference = official_reference.score_folders(str(pred), str(gt))
    assert set(data) == {"psnr", "ssim", "count", "per_image"} and data["count"] == 6
    assert data["psnr"] == pytest.approx(reference["psnr"], abs=1e-9)
    assert run.output.strip().splitlines()[-1] == (
        f"mean PSNR {data['psnr']:.4f} dB  SSIM {data['ssim']:.6f}  (6 images)")
    assert "f_saturated" in run.output and "a_identical" not in run.output  # worst 2 only
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "stem,psnr,ssim" and len(rows) == 7
    again = runner.invoke(app, ["score", str(pred), str(gt), "--json", str(json_path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_cli_error_is_one_line_and_exit_1(pairs: tuple[Path, Path]) -> None:
    pred, gt = pairs
    (pred / "e_float.npy").unlink()
    run = CliRunner().invoke(app, ["score", str(pred), str(gt)])
    assert run.exit_code == 1
    assert run.output.strip().count("\n") == 0 and run.output.startswith("error: ")
    assert "e_float" in run.output
