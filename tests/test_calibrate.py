"""`rgb2raw calibrate`: pairs from a KNOWN pipeline, and the fit must give it back.

The known pipeline is an `InverseParams` (per-channel tone tables, a matrix with strong
off-diagonals, gains, black 60) run forwards (`rgb2raw.calibrate.forward.render`), with
per-pair exposure and white-balance jitter, RAW noise and JPEG (OpenCV). Tables are compared
in output DN (the table error times the channel's gain times the black-to-white span).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from rgb2raw import metrics
from rgb2raw.calibrate import align, data, detect_white, fit_arrays, forward
from rgb2raw.calibrate.fit import InverseFit
from rgb2raw.calibrate.report import predict_dn
from rgb2raw.cameras import GENERIC
from rgb2raw.cli import app
from rgb2raw.errors import Rgb2RawError
from rgb2raw.inverse import InverseParams, table_levels
from rgb2raw.stitch import split_frame

runner = CliRunner()
BLACK, WHITE = 60.0, 1023.0


def known_params() -> InverseParams:
    levels = table_levels()

    def curve(gamma: float) -> np.ndarray:
        y = levels ** gamma
        return 0.75 * y + 0.25 * (3 * y * y - 2 * y ** 3)

    matrix = np.array([[1.4, -0.3, -0.1], [-0.2, 1.35, -0.15], [0.0, -0.4, 1.4]])
    matrix /= matrix.sum(axis=1, keepdims=True)
    gains = np.array([0.5 / 2.0, 0.5, 0.5 / 1.6])
    return InverseParams(tables=np.stack([curve(g) for g in (2.1, 2.2, 2.3)]).astype(np.float32),
                         matrix=matrix, gains=gains, highlight_gains=gains,
                         black_level=BLACK, white_level=WHITE)


def content(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour plus detail, with every picture level in [0.01, 0.99] equally likely."""
    colour = cv2.resize(rng.random((3, 3, 3)), (width, height), interpolation=cv2.INTER_LINEAR)
    detail = cv2.resize(rng.random((max(2, height // 8), max(2, width // 8))), (width, height),
                        interpolation=cv2.INTER_CUBIC)
    mix = 0.4 * colour + 0.6 * detail[..., None]
    ranks = np.argsort(np.argsort(mix.reshape(-1, 3), axis=0), axis=0).reshape(mix.shape)
    return 0.01 + 0.98 * (ranks + 0.5) / (height * width)


def jpeg(picture: np.ndarray, quality: int = 98) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(np.rint(picture * 255).astype(np.uint8),
                                                    cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, quality,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    assert ok
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def make_pair(params: InverseParams, gains: np.ndarray, rng: np.random.Generator,
              height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(8-bit JPEG-decoded picture, packed RAW DN) of one pair under per-pair `gains`."""
    u = content(rng, height, width)
    camera = np.clip(np.einsum("...c,dc->...d", params.linear_rgb(u), params.matrix) * gains,
                     0.0, 1.0)
    picture = jpeg(forward.render(params, camera, gains))
    raw = forward.mosaic_dn(camera, params.black_level, params.white_level)
    raw = np.clip(np.rint(raw + rng.normal(0.0, 1.5, raw.shape)), 0, WHITE).astype(np.uint16)
    return picture, raw


def pair_gains(params: InverseParams, rng: np.random.Generator) -> np.ndarray:
    exposure = np.exp(rng.normal(0.0, 0.2))
    balance = np.exp(np.array([rng.normal(0, 0.05), 0.0, rng.normal(0, 0.05)]))
    return params.gains * exposure * balance


@pytest.fixture(scope="module")
def known_fit() -> tuple[InverseParams, np.ndarray, list[np.ndarray], InverseFit]:
    truth = known_params()
    rng = np.random.default_rng(3)
    gains = np.array([pair_gains(truth, rng) for _ in range(10)])
    pairs = [make_pair(truth, g, rng, 96, 96) for g in gains]
    pictures = [p.astype(np.float32) / 255 for p, _ in pairs]
    fit = fit_arrays(pictures, [r for _, r in pairs], base=InverseParams.from_camera(GENERIC))
    return truth, gains, pictures, fit


def test_fit_recovers_levels_exposure_and_gains(known_fit: tuple) -> None:
    truth, gains, _, fit = known_fit
    assert abs(fit.params.black_level - BLACK) < 1.0
    assert fit.params.white_level == WHITE
    # Exposure (the green gain) of every pair, and all three gains, within 2 %.
    np.testing.assert_allclose(fit.unit_gains[:, 1], gains[:, 1], rtol=0.02)
    np.testing.assert_allclose(fit.unit_gains, gains, rtol=0.02)
    # The typical gains: the centre of the pairs' (log) gains.
    np.testing.assert_allclose(fit.params.gains, np.exp(np.log(gains).mean(axis=0)), rtol=0.02)
    np.testing.assert_allclose(fit.params.matrix, truth.matrix, atol=0.02)


def test_fit_recovers_tone_tables_within_one_dn(known_fit: tuple) -> None:
    truth, _, pictures, fit = known_fit
    values = np.concatenate([p.reshape(-1, 3) for p in pictures])
    low, high = np.percentile(values, 1, axis=0), np.percentile(values, 99, axis=0)
    index = np.rint(fit.knots * 65535).astype(int)
    span = WHITE - BLACK
    for c in range(3):
        covered = (fit.knots >= low[c]) & (fit.knots <= high[c])
        error_dn = (fit.knot_values[c] - truth.tables[c, index]) * truth.gains[c] * span
        assert np.abs(error_dn[covered]).max() < 1.0, (c, np.abs(error_dn[covered]).max())
        assert np.all(np.diff(fit.params.tables[c]) >= 0)  # monotone


def test_fit_beats_the_formula_on_new_pairs(known_fit: tuple) -> None:
    truth, _, _, fit = known_fit
    rng = np.random.default_rng(11)
    formula = InverseParams.from_camera(GENERIC)
    before, after = [], []
    for _ in range(3):
        picture, raw = make_pair(truth, pair_gains(truth, rng), rng, 64, 64)
        rgb = picture.astype(np.float32) / 255
        before.append(metrics.psnr(predict_dn(formula, rgb) / 1024, raw / 1024))
        after.append(metrics.psnr(predict_dn(fit.params, rgb) / 1024, raw / 1024))
    assert np.mean(after) > np.mean(before) + 10 and np.mean(after) > 35


def test_low_resolution_planes_fit_too() -> None:
    """RAW planes at the picture's resolution (R, G, B), as 1/4-size real figures are given."""
    truth = known_params()
    rng = np.random.default_rng(5)
    gains = np.array([pair_gains(truth, rng) for _ in range(4)])
    pictures, planes = [], []
    for g in gains:
        u = content(rng, 48, 64)
        camera = np.clip(np.einsum("...c,dc->...d", truth.linear_rgb(u), truth.matrix) * g, 0, 1)
        pictures.append(np.rint(forward.render(truth, camera, g) * 255) / 255)
        planes.append(BLACK + camera * (WHITE - BLACK))
    fit = fit_arrays(pictures, planes, base=InverseParams.from_camera(GENERIC), black=BLACK)
    np.testing.assert_allclose(fit.unit_gains, gains, rtol=0.02)


def test_detect_white_reads_a_saturation_pile_up() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 900, (32, 32, 4)).astype(np.float32)
    assert detect_white([raw], 1023.0) == 1023.0
    raw[:4] = 1000.0  # clipped highlights
    assert detect_white([raw], 1023.0) == 1000.0


# ------------------------------------------------------------------------------ alignment


def test_alignment_finds_a_zoom_and_shift_and_skips_aligned_pairs() -> None:
    truth = known_params()
    rng = np.random.default_rng(7)
    picture, raw = make_pair(truth, truth.gains, rng, 256, 320)
    rgb = picture.astype(np.float32) / 255
    same = align.estimate(rgb, raw.astype(np.float32), BLACK, WHITE)
    assert same.aligned
    # The ISP zooms by 1.5 % about a point off-centre: picture(x) = original(A^-1 x).
    zoom = cv2.getRotationMatrix2D((150.0, 120.0), 0.0, 1.015)
    zoomed = cv2.warpAffine(rgb, zoom, (320, 256), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    found = align.estimate(zoomed, raw.astype(np.float32), BLACK, WHITE)
    assert not found.aligned and found.converged
    assert abs(found.scale - 1.015) < 1e-3
    warped, mask = align.warp_picture(zoomed, found)
    inner = mask.copy()
    assert inner.mean() > 0.8
    # Back on the RAW's grid: the warped picture matches the original away from the border.
    diff = np.abs(warped - rgb)[np.repeat(np.repeat(inner, 2, 0), 2, 1)]
    assert np.median(diff) < 2 / 255


# ------------------------------------------------------------------------------ the command


def write_scene(folder: Path, scene: int, truth: InverseParams, gains: np.ndarray,
                rng: np.random.Generator, crop: int = 32) -> None:
    """One challenge scene: a frame of 6x8 crops of `crop` RGB pixels."""
    picture, raw = make_pair(truth, gains, rng, 6 * crop, 8 * crop)
    folder.mkdir(parents=True, exist_ok=True)
    for k, (rgb_crop, raw_crop) in enumerate(zip(split_frame(picture, (6, 8)),
                                                 split_frame(raw, (6, 8)), strict=True)):
        cv2.imwrite(str(folder / f"{scene}_{k}.jpg"), cv2.cvtColor(rgb_crop, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 98])
        np.save(folder / f"{scene}_{k}.npy", np.ascontiguousarray(raw_crop))


@pytest.fixture(scope="module")
def challenge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """(calibration folder with 3 scenes under train/, folder of 2 other scenes, the
    calibration scenes' true gains)."""
    truth = known_params()
    rng = np.random.default_rng(21)
    root = tmp_path_factory.mktemp("challenge")
    seen = []
    for scene in range(3):
        seen.append(pair_gains(truth, rng))
        write_scene(root / "cal" / "train", scene, truth, seen[-1], rng)
    for scene in (10, 11):
        write_scene(root / "test", scene, truth, pair_gains(truth, rng), rng)
    return root / "cal", root / "test", np.array(seen)


def _psnr_folder(pred: Path, truth: Path) -> float:
    values = [metrics.psnr(np.load(p).astype(np.float64) / 1024,
                           np.load(truth / p.name).astype(np.float64) / 1024)
              for p in sorted(pred.glob("*.npy"))]
    assert values
    return float(np.mean(values))


def test_calibrate_then_infer_beats_the_formula(challenge: tuple[Path, Path, np.ndarray],
                                                tmp_path: Path) -> None:
    cal, test, seen = challenge
    out = tmp_path / "run"
    result = runner.invoke(app, ["calibrate", str(cal), "-o", str(out), "--camera", "mine",
                                 "--base", "generic"])
    assert result.exit_code == 0, result.stderr
    assert "before (uncalibrated formula of generic)" in result.stdout
    assert "after  (calibrated)" in result.stdout and "matrix row 2" in result.stdout
    for name in ("model.onnx", "model.json", "params.npz", "fit.json"):
        assert (out / name).is_file()
    report = json.loads((out / "fit.json").read_text())
    assert report["held_out_scenes"] and report["score"]["after"]["psnr"] > \
        report["score"]["before"]["psnr"] + 5
    card = json.loads((out / "model.json").read_text())
    assert card["arch"] == "parametric" and card.get("context", 0) == 0
    assert card.get("full_frame", False) is False
    for args, name in ((["--model", str(out)], "cal"), (["--camera", "generic"], "formula")):
        done = runner.invoke(app, ["infer", str(test), "-o", str(tmp_path / name), *args])
        assert done.exit_code == 0, done.stderr
    calibrated, formula = _psnr_folder(tmp_path / "cal", test), _psnr_folder(tmp_path / "formula", test)
    # The pipeline's own inverse at the calibration scenes' mean gains: the best a pixel-wise
    # model fitted on these scenes can know about a new scene's exposure and white balance
    # (they vary by scene).
    truth = known_params()
    truth = replace(truth, gains=np.exp(np.log(seen).mean(axis=0)).astype(np.float32))
    truth = replace(truth, highlight_gains=truth.gains)
    own = []
    for raw_path in sorted(test.glob("*.npy")):
        rgb = cv2.cvtColor(cv2.imread(str(raw_path.with_suffix(".jpg"))), cv2.COLOR_BGR2RGB)
        own.append(metrics.psnr(predict_dn(truth, rgb.astype(np.float32) / 255) / 1024,
                                np.load(raw_path).astype(np.float64) / 1024))
    oracle = float(np.mean(own))
    assert calibrated > formula + 5 and calibrated > oracle - 1.0, (calibrated, formula, oracle)
    # infer runs exactly the fitted parameters (the same DN as their numpy reference).
    params = InverseParams.load(out / "params.npz")
    picture = cv2.cvtColor(cv2.imread(str(test / "10_5.jpg")), cv2.COLOR_BGR2RGB)
    expected = predict_dn(params, picture.astype(np.float32) / 255)
    np.testing.assert_array_equal(np.load(tmp_path / "cal" / "10_5.npy"), expected)


def test_existing_output_needs_overwrite(challenge: tuple[Path, Path, np.ndarray],
                                         tmp_path: Path) -> None:
    cal, _, _ = challenge
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["calibrate", str(cal), "-o", str(out), "--camera", "x"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {out}: already exists (use "
                                                  "--overwrite to replace it)"]
    assert (out / "keep.txt").read_text() == "mine"
    again = runner.invoke(app, ["calibrate", str(cal), "-o", str(out), "--camera", "x",
                                "--overwrite"])
    assert again.exit_code == 0, again.stderr
    assert (out / "model.json").is_file() and not (out / "keep.txt").exists()


def _error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 1, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_too_few_pairs(tmp_path: Path) -> None:
    truth = known_params()
    picture, raw = make_pair(truth, truth.gains, np.random.default_rng(0), 32, 32)
    cv2.imwrite(str(tmp_path / "0_0.jpg"), picture)
    np.save(tmp_path / "0_0.npy", raw)
    line = _error_line(runner.invoke(app, ["calibrate", str(tmp_path), "-o",
                                           str(tmp_path / "out"), "--camera", "x"]))
    assert "needs at least 2" in line
    assert not (tmp_path / "out").exists()


def test_mismatched_sizes(tmp_path: Path) -> None:
    truth = known_params()
    rng = np.random.default_rng(0)
    for k in range(2):
        picture, raw = make_pair(truth, truth.gains, rng, 32, 32)
        cv2.imwrite(str(tmp_path / f"0_{k}.jpg"), picture)
        np.save(tmp_path / f"0_{k}.npy", raw[:8] if k == 1 else raw)
    line = _error_line(runner.invoke(app, ["calibrate", str(tmp_path), "-o",
                                           str(tmp_path / "out"), "--camera", "x"]))
    assert "0_1.npy" in line and "does not match" in line


def test_saturated_only(tmp_path: Path) -> None:
    for k in range(3):
        cv2.imwrite(str(tmp_path / f"{k}_0.jpg"), np.full((32, 32, 3), 255, np.uint8))
        np.save(tmp_path / f"{k}_0.npy", np.full((16, 16, 4), 1023, np.uint16))
    line = _error_line(runner.invoke(app, ["calibrate", str(tmp_path), "-o",
                                           str(tmp_path / "out"), "--camera", "x"]))
    assert "usable" in line and "saturated" in line
    assert not (tmp_path / "out").exists()


def test_unreadable_dng(tmp_path: Path) -> None:
    pytest.importorskip("rawpy")
    for k in range(2):
        cv2.imwrite(str(tmp_path / f"IMG_{k}.jpg"), np.zeros((16, 16, 3), np.uint8))
        (tmp_path / f"IMG_{k}.dng").write_bytes(b"not a dng at all")
    line = _error_line(runner.invoke(app, ["calibrate", str(tmp_path), "-o",
                                           str(tmp_path / "out"), "--camera", "x"]))
    assert "IMG_0.dng" in line and "unreadable DNG" in line


def test_no_pairs_and_bad_base(tmp_path: Path) -> None:
    line = _error_line(runner.invoke(app, ["calibrate", str(tmp_path), "-o",
                                           str(tmp_path / "out"), "--camera", "x"]))
    assert "holds no RAW + picture pairs" in line
    bad_base = runner.invoke(app, ["calibrate", str(tmp_path), "-o", str(tmp_path / "out"),
                                   "--camera", "x", "--base", "nikon"])
    assert bad_base.exit_code == 2 and "nikon" in bad_base.stderr


# ------------------------------------------------------------------------------ DNG pairs


def test_dng_pairs_are_read_with_their_levels(tmp_path: Path) -> None:
    pytest.importorskip("rawpy")
    from rgb2raw.cameras import P20
    from rgb2raw.dng import write_dng

    rng = np.random.default_rng(2)
    packed = rng.integers(60, 1020, (12, 16, 4)).astype(np.uint16)
    write_dng(tmp_path / "IMG_1.dng", packed, P20)
    cv2.imwrite(str(tmp_path / "IMG_1.jpg"), np.zeros((24, 32, 3), np.uint8))
    raw, black, white = data.read_dng(tmp_path / "IMG_1.dng")
    np.testing.assert_array_equal(raw, packed.astype(np.float32))
    assert (black, white) == (P20.black_level, 1020.0)
    (pair,) = data.plan_units([data.PairFiles("IMG_1", None, tmp_path / "IMG_1.jpg",
                                              tmp_path / "IMG_1.dng")], (6, 8))
    unit = data.read_unit(pair, None)
    assert unit.is_frame and unit.black == P20.black_level and unit.rgb.shape == (24, 32, 3)


def test_calibrate_reads_dng_pairs_with_their_levels(tmp_path: Path) -> None:
    pytest.importorskip("rawpy")
    from rgb2raw.cameras import P20
    from rgb2raw.dng import write_dng

    truth = replace(known_params(), black_level=P20.black_level, white_level=P20.white_level)
    rng = np.random.default_rng(4)
    for k in range(3):
        picture, raw = make_pair(truth, pair_gains(truth, rng), rng, 96, 128)
        write_dng(tmp_path / f"IMG_{k}.dng", np.minimum(raw, 1020).astype(np.uint16), P20)
        cv2.imwrite(str(tmp_path / f"IMG_{k}.jpg"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 98])
    out = tmp_path / "run"
    result = runner.invoke(app, ["calibrate", str(tmp_path), "-o", str(out), "--camera", "p",
                                 "--base", "p20"])
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "fit.json").read_text())
    assert report["levels"] == {"black": 60.0, "white": 1020.0, "black_fitted": False}
    assert report["score"]["after"]["psnr"] > report["score"]["before"]["psnr"]
    assert report["shading"] is not None  # whole photos are frames


def test_dng_without_rawpy_names_the_install(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_rawpy(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "rawpy":
            raise ImportError("no rawpy")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rawpy)
    with pytest.raises(Rgb2RawError, match="pip install"):
        data.read_dng(tmp_path / "x.dng")


# ------------------------------------------------------------------------------ lens shading


def test_lens_shading_is_measured_on_a_frame_and_divided_out() -> None:
    from rgb2raw.calibrate.core import deshade, fit_shading, frame_radius
    from rgb2raw.calibrate.samples import site_samples
    from rgb2raw.shading import RadialShading

    truth = known_params()
    rng = np.random.default_rng(9)
    # Nearly grey content: every colour inside the gamut, so nothing clips on either side.
    u = content(rng, 384, 512)
    grey = 0.15 + 0.7 * (0.8 * u.mean(axis=2, keepdims=True) + 0.2 * u)
    camera = grey * truth.gains
    picture = forward.render(truth, camera, truth.gains)
    falloff = RadialShading.from_rgb([[1.0, -0.25, 0.0, 0.0]] * 3)
    clean = (forward.mosaic_dn(camera, BLACK, WHITE) - BLACK) / (WHITE - BLACK)
    raw = BLACK + falloff.apply(clean) * (WHITE - BLACK)
    measured = fit_shading([picture], [raw], [None], truth, [truth.gains])
    assert measured is not None and measured.rms_after < 0.2 * measured.rms_before
    np.testing.assert_allclose(measured.corner / measured.centre, 0.75, atol=0.02)
    # Dividing it out of the observations gives the unshaded RAW back.
    radius = frame_radius(raw.shape[:2])
    samples = site_samples(picture, raw, 0, radius=radius)
    flat = deshade(samples, measured.normalised, BLACK)
    unshaded = site_samples(picture, BLACK + clean * (WHITE - BLACK), 0)
    np.testing.assert_allclose(flat.raw, unshaded.raw, atol=2.0)
