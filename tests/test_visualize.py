"""Tests for `rgb2raw visualize` and the panel drawing in rgb2raw.visualize."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from rgb2raw import isp
from rgb2raw import visualize as viz
from rgb2raw.cameras import GENERIC
from rgb2raw.cli import app
from rgb2raw.raw import write_raw

runner = CliRunner()


def colourful_image(size: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients in [0.05, 0.85] plus a few flat patches."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.stack(
        [0.45 + 0.4 * np.sin(rng.uniform(1, 4) * xx + rng.uniform(1, 4) * yy + rng.uniform(0, 6))
         for _ in range(3)], axis=-1)
    image[size // 4 : size // 2, size // 4 : size // 2] = (0.7, 0.3, 0.2)
    return image.astype(np.float32)


def save_png(path: Path, rgb01: np.ndarray) -> Path:
    bgr = cv2.cvtColor(np.rint(rgb01 * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), bgr)
    return path


def make_pair(folder: Path, stem: str, size: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """An RGB image and a RAW unprocessed from it with the generic camera's daylight gains."""
    folder.mkdir(parents=True, exist_ok=True)
    image = colourful_image(size, seed)
    rgb_path = save_png(folder / f"{stem}.png", image)
    raw_path = write_raw(folder / f"{stem}.npy", isp.to_dn(isp.unprocess(image, GENERIC), GENERIC))
    return rgb_path, raw_path


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def invoke(*args: str | Path) -> Result:
    return runner.invoke(app, ["visualize", *map(str, args)])


# Render with the settings the RAW was made with, so the picture must match the image.
SAME_SETTINGS = ("--camera", "generic", "--wb", "camera", "--exposure", "0")


def test_plain_render_reproduces_the_unprocessed_image(tmp_path: Path) -> None:
    rgb_path, raw_path = make_pair(tmp_path / "in", "scene_1")
    result = runner.invoke(app, ["visualize", str(raw_path), "-o", str(tmp_path / "out"),
                                 *SAME_SETTINGS])
    assert result.exit_code == 0, result.output
    assert "wrote 1 PNG" in result.stdout
    picture = read_png(tmp_path / "out" / "scene_1.png")
    original = read_png(rgb_path)
    assert picture.shape == (64, 64, 3)
    assert picture.std() > 20  # not a blank image
    assert np.abs(picture.astype(float) - original)[2:-2, 2:-2].mean() / 255 < 0.02


def test_folders_globs_and_unpacked_raw(tmp_path: Path) -> None:
    for k in range(3):
        make_pair(tmp_path / "a", f"a_{k}", size=32, seed=k)
    make_pair(tmp_path / "b", "b_0", size=32)
    mosaic = np.random.default_rng(0).integers(0, 1024, size=(16, 24), dtype=np.uint16)
    np.save(tmp_path / "b" / "unpacked.npy", mosaic)
    out = tmp_path / "out"
    # A folder, a quoted glob (expanded by rgb2raw, not the shell) and a plain file.
    result = runner.invoke(app, ["visualize", str(tmp_path / "a"), str(tmp_path / "b" / "b_*.npy"),
                                 str(tmp_path / "b" / "unpacked.npy"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "a_0.png", "a_1.png", "a_2.png", "b_0.png", "unpacked.png"]
    assert read_png(out / "unpacked.png").shape == (16, 24, 3)
    assert "wrote 5 PNGs" in result.stdout


@pytest.mark.parametrize(
    ("use_rgb", "use_gt", "tiles", "colourbar"),
    [(True, False, 2, False), (False, True, 3, True), (True, True, 4, True)],
)
def test_panel_sizes(tmp_path: Path, use_rgb: bool, use_gt: bool, tiles: int,
                     colourbar: bool) -> None:
    rgb_path, raw_path = make_pair(tmp_path / "in", "x", size=48)
    gt_path = write_raw(tmp_path / "gt" / "x.npy",
                        isp.to_dn(isp.unprocess(colourful_image(48, seed=5), GENERIC), GENERIC))
    args: list[str | Path] = [raw_path, "-o", tmp_path / "out"]
    if use_rgb:
        args += ["--rgb", rgb_path]
    if use_gt:
        args += ["--gt", gt_path]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    panel = read_png(tmp_path / "out" / "x.png")
    width = viz.MARGIN + tiles * (48 + viz.MARGIN) + (viz.COLORBAR_EXTRA if colourbar else 0)
    height = viz.MARGIN + viz.TITLE_HEIGHT + 48 + viz.CAPTION_HEIGHT
    assert panel.shape == (height, width, 3)
    # Each title bar is dark with light (text) pixels in it.
    bar = panel[viz.MARGIN : viz.MARGIN + viz.TITLE_HEIGHT, viz.MARGIN : viz.MARGIN + 48]
    assert np.median(bar) < 60 and bar.max() > 150
    if use_gt:
        assert "PSNR" in result.stdout


def test_challenge_sized_panel_with_folders(tmp_path: Path) -> None:
    """504x504 JPEG beside 252x252x4 RAW, matched by stem inside --rgb and --gt folders."""
    image = colourful_image(504)
    (tmp_path / "jpg").mkdir()
    assert cv2.imwrite(str(tmp_path / "jpg" / "10_0.jpg"),
                       cv2.cvtColor(np.rint(image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    packed = isp.to_dn(isp.unprocess(image, GENERIC), GENERIC)
    write_raw(tmp_path / "gt" / "10_0.npy", packed)
    noisy = isp.add_noise(isp.unprocess(image, GENERIC), GENERIC, iso=400,
                          rng=np.random.default_rng(0))
    write_raw(tmp_path / "pred" / "10_0.npy", isp.to_dn(noisy, GENERIC))
    result = invoke(tmp_path / "pred", "-o", tmp_path / "out", "--rgb", tmp_path / "jpg",
                    "--gt", tmp_path / "gt")
    assert result.exit_code == 0, result.output
    panel = read_png(tmp_path / "out" / "10_0.png")
    assert panel.shape[1] == viz.MARGIN + 4 * (504 + viz.MARGIN) + viz.COLORBAR_EXTRA
    assert panel.shape[0] == viz.MARGIN + viz.TITLE_HEIGHT + 504 + viz.CAPTION_HEIGHT
    # Noise makes the heat map non-uniform; identical GT and prediction would make it black.
    heat = panel[viz.MARGIN + viz.TITLE_HEIGHT :, -(504 + viz.MARGIN + viz.COLORBAR_EXTRA) :][:504]
    assert heat.std() > 10


def test_identical_gt_scores_999_and_a_black_heat_map(tmp_path: Path) -> None:
    _, raw_path = make_pair(tmp_path / "in", "same", size=32)
    result = invoke(raw_path, "-o", tmp_path / "out", "--gt", raw_path)
    assert result.exit_code == 0, result.output
    assert "PSNR 999.00" in result.stdout
    panel = read_png(tmp_path / "out" / "same.png")
    left = viz.MARGIN + 2 * (32 + viz.MARGIN)
    top = viz.MARGIN + viz.TITLE_HEIGHT
    assert panel[top : top + 32, left : left + 32].max() < 10  # inferno's zero is near black


def test_refuses_to_overwrite_without_the_flag(tmp_path: Path) -> None:
    _, raw_path = make_pair(tmp_path / "in", "keep", size=32)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.png").write_bytes(b"mine")
    result = invoke(raw_path, "-o", out)
    assert result.exit_code == 1
    assert "keep.png" in result.stderr and "--overwrite" in result.stderr
    assert (out / "keep.png").read_bytes() == b"mine"
    result = invoke(raw_path, "-o", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_png(out / "keep.png").shape == (32, 32, 3)


def test_non_raw_npy_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad_shape.npy"
    np.save(bad, np.zeros((5, 5, 3), dtype=np.uint16))
    result = invoke(bad, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "bad_shape.npy" in result.stderr and "not RAW" in result.stderr
    assert not (tmp_path / "out" / "bad_shape.png").exists()


@pytest.mark.parametrize("problem", ["no_match", "rgb_file_for_many", "missing_partner",
                                     "same_stem", "bad_wb"])
def test_input_errors_fail_before_writing(tmp_path: Path, problem: str) -> None:
    rgb_a, raw_a = make_pair(tmp_path / "a", "one", size=16)
    _, raw_b = make_pair(tmp_path / "b", "two", size=16)
    out = tmp_path / "out"
    args: dict[str, list[str | Path]] = {
        "no_match": [tmp_path / "nothing_*.npy", "-o", out],
        "rgb_file_for_many": [raw_a, raw_b, "-o", out, "--rgb", rgb_a],
        "missing_partner": [raw_a, raw_b, "-o", out, "--rgb", tmp_path / "a"],
        "same_stem": [raw_a, tmp_path / "c" / "one.npy", "-o", out],
        "bad_wb": [raw_a, "-o", out, "--wb", "2,1"],
    }
    if problem == "same_stem":
        make_pair(tmp_path / "c", "one", size=16)
    result = invoke(*args[problem])
    assert result.exit_code == (2 if problem == "bad_wb" else 1), result.output
    assert result.stderr.startswith("error: ")
    assert not out.exists() or not any(out.iterdir())


def test_compose_panel_rejects_mixed_tile_sizes() -> None:
    small = np.zeros((8, 8, 3), np.uint8)
    large = np.zeros((8, 10, 3), np.uint8)
    with pytest.raises(ValueError):
        viz.compose_panel([("a", small), ("b", large)], "caption")


def test_colorbar_runs_from_dark_at_zero_to_bright_at_the_top() -> None:
    bar = viz.colorbar(100, 20.0)
    column = bar[:, viz.COLORBAR_GAP + viz.COLORBAR_WIDTH // 2].astype(int).sum(axis=1)
    assert bar.shape == (100, viz.COLORBAR_EXTRA, 3)
    assert column[0] > column[50] > column[-1]


def test_batch_goes_on_past_a_bad_file_and_skips_hidden_files(tmp_path: Path) -> None:
    folder = tmp_path / "raws"
    make_pair(folder, "a", size=16)
    np.save(folder / "b_bad.npy", np.zeros((5, 5, 3), dtype=np.uint16))
    make_pair(folder, "c", size=16, seed=1)
    np.save(folder / ".rgb2raw-tmp-x1.npy", np.zeros((8, 8, 4), dtype=np.uint16))
    np.save(folder / ".hidden.npy", np.zeros((8, 8, 4), dtype=np.uint16))
    out = tmp_path / "out"
    result = invoke(folder, "-o", out)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {folder / 'b_bad.npy'}: shape (5, 5, 3) is not RAW: expected packed "
        "(H, W, 4) or an unpacked (2H, 2W) mosaic"]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png"]  # c after the bad b
    assert "wrote 2 PNGs" in result.stdout and "1 failed" in result.stdout


def test_existing_pngs_are_kept_reported_once_and_skippable(tmp_path: Path) -> None:
    folder = tmp_path / "raws"
    for stem in ("a", "b", "c"):
        make_pair(folder, stem, size=16)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"mine")
    (out / "b.png").write_bytes(b"mine too")
    kept = invoke(folder, "-o", out)
    assert kept.exit_code == 1
    assert kept.stderr.splitlines() == [f"error: {out}: 2 PNGs already exist, kept (use "
                                        "--overwrite to replace them, or --skip-existing)"]
    assert (out / "a.png").read_bytes() == b"mine" and (out / "c.png").is_file()
    (out / "c.png").unlink()
    skipped = invoke(folder, "-o", out, "--skip-existing")
    assert skipped.exit_code == 0, skipped.stderr
    assert "wrote 1 PNG" in skipped.stdout and "2 skipped" in skipped.stdout
    assert (out / "b.png").read_bytes() == b"mine too"


def test_out_is_a_hidden_alias_of_output(tmp_path: Path) -> None:
    _, raw_path = make_pair(tmp_path / "in", "one", size=16)
    assert invoke(raw_path, "--out", tmp_path / "o").exit_code == 0
    assert (tmp_path / "o" / "one.png").is_file()
    helped = runner.invoke(app, ["visualize", "--help"], env={"COLUMNS": "200"})
    assert "--output" in helped.stdout and "--out " not in helped.stdout
