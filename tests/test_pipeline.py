"""The pipeline: levels, noise, and batches of files (outputs, skip/overwrite, failures, shards)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgb2raw import bayer
from rgb2raw.batch import FileResult, OutputSettings, infer_paths
from rgb2raw.cameras import P20, S7
from rgb2raw.errors import Rgb2RawError
from rgb2raw.loading import LoadedModel
from rgb2raw.pipeline import RunSettings, add_camera_noise, infer_image, quantise


def write_png(path: Path, height: int = 10, width: int = 14, seed: int = 0) -> np.ndarray:
    """A lossless random image; returns its RGB in [0, 1]."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return rgb.astype(np.float32) / 255


def test_levels_round_once_and_clip(make_model: Callable[..., LoadedModel]) -> None:
    contract = make_model(black_level=60, white_level=1020).contract
    values = np.array([-0.1, 0.0, 0.5, 0.50052, 1.0, 1.2], dtype=np.float32).reshape(1, 1, 6)
    expected = [60, 60, 540, 540, 1020, 1020]  # 60 + v * 960, rounded, within [60, 1020]
    assert quantise(values, contract).ravel().tolist() == expected
    assert quantise(values, contract, noisy=True).ravel().tolist() == [0, 60, 540, 540, 1020, 1020]
    assert quantise(values, contract).dtype == np.uint16
    with pytest.raises(Rgb2RawError, match="NaN"):
        quantise(np.array([np.nan], np.float32), contract)


def test_infer_image_maps_to_the_models_levels(make_model: Callable[..., LoadedModel]) -> None:
    rgb = np.random.default_rng(0).random((16, 20, 3), dtype=np.float32)
    dn = infer_image(rgb, make_model(white_level=1024.0), RunSettings(tile=8, overlap=4))
    expected = np.clip(np.rint(bayer.mosaic_rgb(rgb).astype(np.float64) * 1024), 0, 1024)
    np.testing.assert_array_equal(dn, expected)


def test_rgb_range_scales_the_input(make_model: Callable[..., LoadedModel],
                                    naive_batch: Callable[[np.ndarray], np.ndarray]) -> None:
    seen: list[float] = []

    def recording(batch: np.ndarray) -> np.ndarray:
        seen.append(float(batch.max()))
        return naive_batch(batch) / 255

    model = make_model(recording, rgb_range=255.0)
    infer_image(np.ones((4, 4, 3), np.float32), model)
    assert seen == [255.0]


def test_noise_has_the_camera_variance_in_the_cameras_signal_domain(make_model: Callable[..., LoadedModel]) -> None:
    # A model with challenge levels (DN / 1024) on a camera with a black level of 60.
    contract = make_model(black_level=0, white_level=1024).contract
    level_dn = 400.0
    values = np.full((200, 200, 4), level_dn / 1024, dtype=np.float32)
    noisy = add_camera_noise(values, contract, P20, iso=400, rng=np.random.default_rng(0))
    signal = (level_dn - P20.black_level) / (P20.white_level - P20.black_level)
    expected_std_dn = float(np.sqrt(P20.noise_variance(np.array(signal), 400))) * (
        P20.white_level - P20.black_level)
    measured = (noisy * 1024 - level_dn)
    assert abs(measured.mean()) < 0.05 * expected_std_dn
    assert measured.std() == pytest.approx(expected_std_dn, rel=0.03)


def test_noise_is_reproducible_per_seed(make_model: Callable[..., LoadedModel]) -> None:
    rgb = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    model = make_model()

    def run(seed: int) -> np.ndarray:
        return infer_image(rgb, model, camera=S7, noise=True, rng=np.random.default_rng(seed))

    assert np.array_equal(run(1), run(1)) and not np.array_equal(run(1), run(2))
    with pytest.raises(ValueError):
        infer_image(rgb, model, noise=True)


# -------------------------------------------------------------------------------- batches


def test_folders_are_mirrored_and_every_format_is_written(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    rgb = write_png(tmp_path / "in" / "sub" / "deep" / "a.png")
    write_png(tmp_path / "in" / "b.png", seed=1)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    model = make_model(white_level=1023.0)
    report = infer_paths([tmp_path / "in"], tmp_path / "out", model, S7, recursive=True)
    assert report.ok and report.count("written") == 2 and report.megapixels > 0
    packed = np.load(tmp_path / "out" / "sub" / "deep" / "a.npy")
    np.testing.assert_array_equal(packed, np.rint(bayer.mosaic_rgb(rgb).astype(np.float64) * 1023))

    unpacked = infer_paths([tmp_path / "in"], tmp_path / "unpacked", model, S7, recursive=True,
                           out=OutputSettings(format="unpacked"))
    assert unpacked.ok
    mosaic = np.load(tmp_path / "unpacked" / "sub" / "deep" / "a.npy")
    assert mosaic.shape == (10, 14) and np.array_equal(bayer.pack(mosaic), packed)

    flat = infer_paths([tmp_path / "in"], tmp_path / "flat", model, S7)  # not recursive
    assert flat.count("written") == 1 and (tmp_path / "flat" / "b.npy").exists()

    dng = infer_paths([tmp_path / "in" / "b.png"], tmp_path / "b.dng", model, S7,
                      out=OutputSettings(format="dng"))
    assert dng.ok and (tmp_path / "b.dng").read_bytes()[:4] == b"II*\x00"


def test_glob_selects_files(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    write_png(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "b.bmp")
    report = infer_paths([tmp_path / "in"], tmp_path / "out", make_model(), S7, pattern="*.bmp")
    assert [r.output.name for r in report.results if r.output] == ["b.npy"]


def test_existing_outputs_error_skip_or_overwrite(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    source = tmp_path / "a.png"
    write_png(source)
    target = tmp_path / "out" / "a.npy"
    target.parent.mkdir()
    target.write_bytes(b"keep me")
    model = make_model()
    report = infer_paths([source], tmp_path / "out", model, S7)
    assert report.count("failed") == 1 and "already exists" in report.failures[0].problem
    assert target.read_bytes() == b"keep me"
    skipped = infer_paths([source], tmp_path / "out", model, S7,
                          out=OutputSettings(skip_existing=True))
    assert skipped.count("skipped") == 1 and target.read_bytes() == b"keep me"
    replaced = infer_paths([source], tmp_path / "out", model, S7,
                           out=OutputSettings(overwrite=True))
    assert replaced.count("written") == 1 and np.load(target).shape == (5, 7, 4)


def test_a_bad_file_fails_alone(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    write_png(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    write_png(tmp_path / "in" / "c.png")
    events: list[FileResult] = []
    totals: list[int] = []

    class Recorder:
        def start(self, total: int) -> None:
            totals.append(total)

        def advance(self, result: FileResult) -> None:
            events.append(result)

    report = infer_paths([tmp_path / "in"], tmp_path / "out", make_model(), S7,
                         progress=Recorder())
    assert totals == [3] and len(events) == 3
    assert [r.status for r in report.results] == ["written", "failed", "written"]
    assert report.failures[0].path.name == "broken.jpg" and "\n" not in report.failures[0].problem
    assert not (tmp_path / "out" / "broken.npy").exists()


def test_colliding_outputs_are_refused(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    write_png(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "a.bmp")
    report = infer_paths([tmp_path / "in"], tmp_path / "out", make_model(), S7)
    assert report.count("failed") == 2 and "collide" in report.failures[0].problem


def test_run_level_problems_raise(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(Rgb2RawError, match="no input images"):
        infer_paths([tmp_path / "empty"], tmp_path / "out", make_model(), S7)
    with pytest.raises(Rgb2RawError, match="no such file"):
        infer_paths([tmp_path / "missing.png"], tmp_path / "out", make_model(), S7)
    write_png(tmp_path / "a.png")
    with pytest.raises(Rgb2RawError, match="writes .npy"):
        infer_paths([tmp_path / "a.png"], tmp_path / "a.dng", make_model(), S7)
    with pytest.raises(Rgb2RawError, match="output folder"):
        infer_paths([tmp_path], tmp_path / "all.npy", make_model(), S7)


def test_shards_write_each_file_once_with_the_same_noise(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    for index in range(7):
        write_png(tmp_path / "in" / f"img{index}.png", seed=index)
    out = OutputSettings(noise=True, seed=11)
    whole = infer_paths([tmp_path / "in"], tmp_path / "whole", make_model(), S7, out=out)
    written: list[str] = []
    for shard in range(3):
        report = infer_paths([tmp_path / "in"], tmp_path / "sharded", make_model(), S7,
                             out=out, shard=(shard, 3))
        written += [r.output.name for r in report.results if r.output]
    assert sorted(written) == sorted(f"img{i}.npy" for i in range(7)) and whole.ok
    for name in written:
        np.testing.assert_array_equal(np.load(tmp_path / "whole" / name),
                                      np.load(tmp_path / "sharded" / name))


def test_an_integer_image_gives_the_float_images_numbers(make_model: Callable[..., LoadedModel],
                                                         tmp_path: Path) -> None:
    from rgb2raw.rgb import read_rgb

    write_png(tmp_path / "a.png", 40, 56, seed=3)
    as_float = read_rgb(tmp_path / "a.png")
    decoded = read_rgb(tmp_path / "a.png", as_float=False)
    assert decoded.dtype == np.uint8 and decoded.nbytes * 4 == as_float.nbytes
    for settings in (RunSettings(tile=16, overlap=8), RunSettings(tile=-1), RunSettings(tta=4)):
        model = make_model(rgb_range=255.0)
        np.testing.assert_array_equal(infer_image(decoded, model, settings),
                                      infer_image(as_float, model, settings))


def test_an_empty_input_folder_is_named(tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(Rgb2RawError, match="empty: holds no input images"):
        infer_paths([tmp_path / "empty"], tmp_path / "out", make_model(), S7)
    assert not (tmp_path / "out").exists()


def test_images_decoded_early_are_used_once_and_their_errors_fail_their_file(
        tmp_path: Path, make_model: Callable[..., LoadedModel]) -> None:
    from rgb2raw.rgb import read_rgb

    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(tmp_path / "in" / f"{name}.png"), np.full((4, 6, 3), 7, np.uint8))
    asked: list[Path] = []
    given = np.full((4, 6, 3), 200, np.uint8)  # not what the file holds: shows it was used

    def early(path: Path) -> np.ndarray | None:
        asked.append(path)
        return given if path.name == "a.png" else None

    report = infer_paths([tmp_path / "in"], tmp_path / "out", make_model(), S7, early_decode=early)
    assert report.ok and sorted(p.name for p in asked) == ["a.png", "b.png"]
    a, b = (np.load(tmp_path / "out" / f"{n}.npy") for n in ("a", "b"))
    assert not np.array_equal(a, b)  # a came from `given`, b from its file
    np.testing.assert_array_equal(b, infer_image(read_rgb(tmp_path / "in" / "b.png"),
                                                 make_model()))

    def broken(path: Path) -> np.ndarray | None:
        raise Rgb2RawError(path, "corrupt image data (the decoder gave up)")

    failed = infer_paths([tmp_path / "in"], tmp_path / "again", make_model(), S7,
                         early_decode=broken)
    assert [r.status for r in failed.results] == ["failed", "failed"]
    assert "decoder gave up" in failed.results[0].problem


def test_first_image_decodes_the_first_input_once(tmp_path: Path) -> None:
    from rgb2raw.early import FirstImage
    from rgb2raw.rgb import read_rgb

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (8, 10, 3), dtype=np.uint8))
    first = FirstImage([folder], recursive=False, pattern=None, max_pixels=None)
    assert first(folder / "b.png") is None  # not the first file: the batch reads it itself
    image = first(folder / "a.png")
    assert image is not None
    np.testing.assert_array_equal(image, read_rgb(folder / "a.png", as_float=False))
    assert first(folder / "a.png") is None  # handed over once


def test_first_image_reports_a_broken_file_where_it_is_read(tmp_path: Path) -> None:
    from rgb2raw.early import FirstImage
    from rgb2raw.errors import Rgb2RawError

    (tmp_path / "bad.jpg").write_bytes(b"not a picture")
    first = FirstImage([tmp_path / "bad.jpg"], recursive=False, pattern=None, max_pixels=None)
    with pytest.raises(Rgb2RawError, match="not a JPEG"):
        first(tmp_path / "bad.jpg")
