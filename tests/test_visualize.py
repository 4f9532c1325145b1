"""Tests for `rgb2raw visualize` and the panel drawing in rgb2raw.visualize."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from rgb2raw import isp, panels
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


def expected_width(tiles: int, tile: int, error: np.ndarray | None) -> tuple[int, panels.PanelStyle]:
    """The panel width the layout rules give (see rgb2raw.panels), and the style used."""
    style = panels.PanelStyle(panels.font_px_for(tiles * tile, None))
    extra = 0
    if error is not None:
        _, ticks = panels.nice_ticks(viz._error_vmax(error))
        extra = style.bar_extra([panels.tick_label(t) + " DN" for t in ticks])
    return style.margin + tiles * (tile + style.margin) + extra, style


@pytest.mark.parametrize(
    ("use_rgb", "use_gt", "tiles"),
    [(True, False, 2), (False, True, 3), (True, True, 4)],
)
def test_panel_sizes(tmp_path: Path, use_rgb: bool, use_gt: bool, tiles: int) -> None:
    rgb_path, raw_path = make_pair(tmp_path / "in", "x", size=48)
    gt_dn = isp.to_dn(isp.unprocess(colourful_image(48, seed=5), GENERIC), GENERIC)
    gt_path = write_raw(tmp_path / "gt" / "x.npy", gt_dn)
    args: list[str | Path] = [raw_path, "-o", tmp_path / "out"]
    if use_rgb:
        args += ["--rgb", rgb_path]
    if use_gt:
        args += ["--gt", gt_path]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    panel = read_png(tmp_path / "out" / "x.png")
    error = viz.error_map_dn(np.load(raw_path), np.load(gt_path)) if use_gt else None
    width, style = expected_width(tiles, 48, error)
    assert panel.shape[1] == width
    assert panel.shape[0] >= style.margin + style.title_height + 48 + style.line_height
    # Each title bar is dark with light (text) pixels in it.
    top, left = style.margin, style.margin
    bar = panel[top: top + style.title_height, left: left + 48]
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
    error = viz.error_map_dn(np.load(tmp_path / "pred" / "10_0.npy"), packed)
    width, style = expected_width(4, 504, error)
    assert panel.shape[1] == width
    # Noise makes the heat map non-uniform; identical GT and prediction would make it black.
    left = style.margin + 3 * (504 + style.margin)
    top = style.margin + style.title_height
    heat = panel[top: top + 504, left: left + 504]
    assert heat.std() > 10


def test_identical_gt_scores_999_and_a_black_heat_map(tmp_path: Path) -> None:
    _, raw_path = make_pair(tmp_path / "in", "same", size=32)
    result = invoke(raw_path, "-o", tmp_path / "out", "--gt", raw_path)
    assert result.exit_code == 0, result.output
    assert "PSNR 999.00" in result.stdout
    panel = read_png(tmp_path / "out" / "same.png")
    _, style = expected_width(3, 32, np.zeros((16, 16)))
    left = style.margin + 2 * (32 + style.margin)
    top = style.margin + style.title_height
    assert panel[top: top + 32, left: left + 32].max() < 10  # inferno's zero is near black


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


def test_compose_rejects_mixed_tile_sizes() -> None:
    small = np.zeros((8, 8, 3), np.uint8)
    large = np.zeros((8, 10, 3), np.uint8)
    with pytest.raises(ValueError):
        panels.compose([("a", small), ("b", large)], ["caption"], panels.PanelStyle(12))


def test_colorbar_runs_from_dark_at_zero_to_bright_at_the_top() -> None:
    style = panels.PanelStyle(12)
    bar = panels.colorbar(100, 20.0, style)
    column = bar[:, style.bar_gap + style.bar_width // 2].astype(int).sum(axis=1)
    assert bar.shape[0] == 100
    assert column[0] > column[50] > column[-1]


@pytest.mark.parametrize(("vmax", "top", "ticks"), [
    (18.3, 20.0, [0, 5, 10, 15, 20]), (3.7, 4.0, [0, 1, 2, 3, 4]), (0.07, 0.08,
     [0, 0.02, 0.04, 0.06, 0.08]), (250.0, 300.0, [0, 100, 200, 300]),
    (1.0, 1.0, [0, 0.5, 1.0]),
])
def test_colour_scale_ticks_are_round(vmax: float, top: float, ticks: list[float]) -> None:
    got_top, got_ticks = panels.nice_ticks(vmax)
    assert got_top == pytest.approx(top) and got_ticks == pytest.approx(ticks)
    assert got_top >= vmax and 3 <= len(got_ticks) <= 7


def test_text_and_ticks_scale_with_the_figure() -> None:
    small = panels.PanelStyle(panels.font_px_for(1000, None))
    large = panels.PanelStyle(panels.font_px_for(4156, None))
    assert large.font_px >= 4 * small.font_px - 4
    # The 4156x824 panel had a 20 px caption and 11 px ticks; text is now ~52 px.
    assert large.font_px >= 45 and large.bar_width >= 45 and large.tick_length >= 15
    assert large.text_width("20 DN") > 3 * small.text_width("20 DN")
    # For print: 8 pt at the given resolution, whatever the pixel width.
    assert panels.font_px_for(2100, 300) == panels.font_px_for(800, 300) == round(8 * 300 / 72 * 0.72)


def test_width_and_dpi_size_the_figure_for_a_paper(tmp_path: Path) -> None:
    rgb_path, raw_path = make_pair(tmp_path / "in", "x", size=64)
    gt_path = write_raw(tmp_path / "gt" / "x.npy",
                        isp.to_dn(isp.unprocess(colourful_image(64, seed=5), GENERIC), GENERIC))
    result = invoke(raw_path, "-o", tmp_path / "out", "--rgb", rgb_path, "--gt", gt_path,
                    "--width", "3.5in", "--dpi", "300")
    assert result.exit_code == 0, result.output
    panel = read_png(tmp_path / "out" / "x.png")
    assert panel.shape[1] == 1050  # 3.5 in at 300 dpi
    data = (tmp_path / "out" / "x.png").read_bytes()
    at = data.index(b"pHYs")
    assert struct.unpack(">IIB", data[at + 4: at + 13]) == (11811, 11811, 1)  # 300 dpi in px/m
    plain = invoke(raw_path, "-o", tmp_path / "plain", "--width", "200")
    assert plain.exit_code == 0 and read_png(tmp_path / "plain" / "x.png").shape[1] == 200


def test_caption_keeps_white_balance_and_exposure_with_gt(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    captions: list[list[str]] = []
    compose = panels.compose

    def spy(tiles, caption, style, bar=None, width=None):  # type: ignore[no-untyped-def]
        captions.append(list(caption))
        return compose(tiles, caption, style, bar, width)

    monkeypatch.setattr(panels, "compose", spy)
    _, raw_path = make_pair(tmp_path / "in", "x", size=32)
    assert invoke(raw_path, "-o", tmp_path / "out", "--gt", raw_path).exit_code == 0
    text = "   ".join(captions[0])
    assert "PSNR" in text and "WB R " in text and "exposure " in text and "camera " in text


def test_auto_white_balance_is_neutral_on_the_sample_chart() -> None:
    """The project's chart through the camera's inverse: auto keeps the daylight gains that
    made it (gray world casts it cyan), and follows a RAW taken under another light."""
    from rgb2raw.cameras import S7
    from rgb2raw.sample import make_chart

    chart = make_chart(336, 252).astype(np.float32) / 255
    linear = isp.linearize(isp.to_dn(isp.unprocess(chart, S7), S7), S7)
    daylight = np.array(S7.wb_gains)
    assert np.array(viz.render_wb_gains(linear, S7, "auto")) == pytest.approx(daylight, rel=1e-3)
    gray_world = np.array(viz.render_wb_gains(linear, S7, "grayworld"))
    assert np.abs(np.log(gray_world / daylight)).max() > 0.05  # the cast the issue reported
    # Another light: red weaker, blue stronger than daylight.
    lit = linear * np.array([0.7, 1, 1, 1.3], dtype=np.float32)
    ideal = daylight / np.array([0.7, 1, 1.3])
    auto = np.array(viz.render_wb_gains(lit, S7, "auto"))
    assert np.abs(np.log(auto / ideal)).max() < 0.4 * np.abs(np.log(daylight / ideal)).max()


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
