"""The parametric inverse ISP: torch == numpy, the fast ONNX graph == torch within rounding, and
the bundled models are reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rgb2raw import download, isp, zoo
from rgb2raw.cameras import CAMERA_NAMES, PROFILES, CameraProfile

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from rgb2raw.inverse import TABLE_LEVELS as LUT_LEVELS  # noqa: E402
from rgb2raw.inverse import brooks_linearize as linearize  # noqa: E402
from rgb2raw.inverse import table_levels  # noqa: E402
from rgb2raw.nets.build_defaults import build_all, build_one  # noqa: E402
from rgb2raw.nets.parametric import ParametricInverseISP  # noqa: E402

CAMERAS = [PROFILES[name] for name in CAMERA_NAMES]
BUNDLED = Path(__file__).resolve().parent.parent / "models"


def random_rgb(shape: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """Random pictures with the values that matter most: exact 0 and 1, and near-white areas."""
    rgb = np.random.default_rng(seed).random(shape, dtype=np.float32)
    rgb[0, :, :2, :2] = 1.0
    rgb[0, :, 2:4, :2] = 0.0
    rgb[-1, :, -4:, :] = 0.96 + 0.04 * rgb[-1, :, -4:, :]  # highlights above the knee
    return rgb


def run_torch(camera: CameraProfile, rgb: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return ParametricInverseISP(camera).eval()(torch.from_numpy(rgb)).numpy()


def run_onnx(path: Path, rgb: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["raw"], {"rgb": rgb})[0]


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_torch_matches_numpy_unprocess(camera: CameraProfile) -> None:
    rgb = random_rgb((2, 3, 22, 14))
    expected = np.stack(
        [isp.unprocess(image.transpose(1, 2, 0), camera).transpose(2, 0, 1) for image in rgb]
    )
    got = run_torch(camera, rgb)
    assert got.shape == (2, 4, 11, 7)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_undoes_the_forward_isp_on_flat_colours(camera: CameraProfile) -> None:
    # Build the picture from known camera RGB with the *forward* steps, then invert it.
    camera_rgb = np.array([[0.05, 0.1, 0.08], [0.2, 0.3, 0.25], [0.25, 0.45, 0.3]], np.float32)
    balanced = camera_rgb * np.asarray(camera.wb_gains, np.float32)
    linear_srgb = isp.apply_ccm(balanced, camera.cam_to_rgb)
    assert linear_srgb.min() > 0 and linear_srgb.max() < 1  # in gamut: nothing clips
    picture = isp.tone_curve(isp.srgb_gamma(linear_srgb))
    rgb = np.broadcast_to(picture.T[:, :, None, None], (3, 3, 4, 4)).transpose(1, 0, 2, 3)
    got = run_torch(camera, np.ascontiguousarray(rgb))
    expected = camera_rgb[:, [0, 1, 1, 2]]
    np.testing.assert_allclose(got, np.broadcast_to(expected[:, :, None, None], got.shape),
                               atol=1e-4)


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_white_saturates_every_channel_and_black_stays_black(camera: CameraProfile) -> None:
    rgb = np.concatenate([np.ones((1, 3, 4, 6), np.float32), np.zeros((1, 3, 4, 6), np.float32)])
    got = run_torch(camera, rgb)
    np.testing.assert_allclose(got[0], 1.0, atol=1e-6)
    np.testing.assert_allclose(got[1], 0.0, atol=1e-6)


def test_has_no_learned_parameters() -> None:
    model = ParametricInverseISP(PROFILES["p20"])
    assert list(model.parameters()) == []
    assert set(model.state_dict()) == {"rgb_to_cam", "inverse_gains"}


def quantize(rgb: np.ndarray, levels: int) -> np.ndarray:
    """`rgb` rounded to an integer image's levels, as the decoder delivers them (k / levels)."""
    return (np.rint(np.clip(rgb, 0, 1) * levels) / np.float32(levels)).astype(np.float32)


def test_table_samples_the_exact_linearisation_at_every_16_bit_level() -> None:
    levels = np.arange(LUT_LEVELS, dtype=np.float64) / (LUT_LEVELS - 1)
    table = linearize(table_levels()).astype(np.float32)
    assert table.shape == (LUT_LEVELS,) and table.dtype == np.float32
    assert np.abs(table - linearize(levels)).max() < 1e-6
    # ... and that function is the numpy reference's (an independent implementation).
    reference = isp.inverse_srgb_gamma(isp.inverse_tone_curve(levels.astype(np.float32)))
    assert np.abs(table - reference).max() < 1e-5
    assert table[0] < 1e-12 and table[-1] == 1 and (np.diff(table) >= 0).all()


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_bundled_onnx_matches_torch_on_8_and_16_bit_inputs(camera: CameraProfile) -> None:
    path = BUNDLED / f"parametric-{camera.name}.onnx"
    for shape, levels in [((1, 3, 2, 2), 255), ((2, 3, 30, 46), 255), ((1, 3, 64, 10), 65535)]:
        rgb = quantize(random_rgb(shape, seed=shape[2]), levels)
        np.testing.assert_allclose(run_onnx(path, rgb), run_torch(camera, rgb), atol=1e-5, rtol=0)


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_bundled_onnx_is_within_one_dn_of_torch_on_every_8_bit_colour_axis(
        camera: CameraProfile) -> None:
    """All 256 levels of each channel against a spread of the other two, incl. highlights."""
    levels = np.arange(256, dtype=np.float32) / np.float32(255)
    others = levels[::17]
    grid = np.stack(np.meshgrid(levels, others, others, indexing="ij"))  # (3, 256, 16, 16)
    rgb = np.concatenate([np.roll(grid, shift, axis=0) for shift in range(3)], axis=1)
    rgb = np.ascontiguousarray(rgb.reshape(1, 3, -1, 16))
    path = BUNDLED / f"parametric-{camera.name}.onnx"
    onnx_dn = np.rint(run_onnx(path, rgb) * camera.white_level)
    torch_dn = np.rint(run_torch(camera, rgb) * camera.white_level)
    difference = np.abs(onnx_dn - torch_dn)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_bundled_onnx_reads_other_floats_at_16_bit_precision(camera: CameraProfile) -> None:
    """Inputs between 16-bit levels (float images, values outside [0, 1]) are rounded to the
    nearest level first: the output is the exact model's on that rounded input."""
    rng = np.random.default_rng(5)
    rgb = (rng.random((1, 3, 20, 30), dtype=np.float32) * 1.2 - 0.1).astype(np.float32)
    expected = run_torch(camera, quantize(rgb, 65535))
    np.testing.assert_allclose(run_onnx(BUNDLED / f"parametric-{camera.name}.onnx", rgb),
                               expected, atol=1e-5, rtol=0)


def test_bundled_onnx_is_pixel_wise_so_tiles_need_no_context() -> None:
    """The card's context 0: an even-aligned crop's output is the same crop of the output."""
    path = BUNDLED / "parametric-s7.onnx"
    rgb = quantize(random_rgb((1, 3, 40, 56), seed=3), 255)
    whole = run_onnx(path, rgb)
    crop = run_onnx(path, np.ascontiguousarray(rgb[:, :, 10:30, 22:56]))
    np.testing.assert_array_equal(crop, whole[:, :, 5:15, 11:28])


def test_rebuild_reproduces_the_bundled_models(tmp_path: Path) -> None:
    """The graph is written node by node (no exporter): the bytes and cards must match."""
    built = build_all(tmp_path, source_dir=BUNDLED)
    stored = sorted(BUNDLED.glob("calibrated-*.npz"))
    assert len(built) == len(CAMERAS) + len(stored)
    for onnx_path, card_path in built:
        assert onnx_path.read_bytes() == (BUNDLED / onnx_path.name).read_bytes(), onnx_path.name
        assert card_path.read_text() == (BUNDLED / card_path.name).read_text()
        onnx.checker.check_model(str(onnx_path))


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_cards_agree_with_the_camera_profile_and_the_file(camera: CameraProfile) -> None:
    card = zoo.load_card(BUNDLED / f"parametric-{camera.name}.json")
    assert (card.name, card.camera, card.arch) == (f"parametric-{camera.name}", camera.name,
                                                   "parametric")
    resolved = card.contract
    assert (resolved.black_level, resolved.white_level) == (camera.black_level, camera.white_level)
    assert (resolved.rgb_range, resolved.size_multiple, resolved.full_frame) == (1.0, 2, False)
    assert resolved.context == 0 and resolved.bytes_per_pixel is not None
    assert card.reported is None and card.card == "parametric.md"
    assert (BUNDLED / "parametric.md").is_file()
    (entry,) = card.files
    assert entry.bundled and entry.format == "onnx" and entry.urls == ()
    path = BUNDLED / entry.filename
    assert entry.size == path.stat().st_size
    git_blob_sha1, sha256 = download.file_digests(path)
    assert (entry.git_blob_sha1, entry.sha256) == (git_blob_sha1, sha256)


def test_build_one_writes_a_card_zoo_can_read(tmp_path: Path) -> None:
    camera = PROFILES["s7"]
    onnx_path, card_path = build_one(camera, tmp_path)
    card = zoo.load_card(card_path)
    assert card.primary.filename == onnx_path.name
    git_blob_sha1, sha256 = download.file_digests(onnx_path)
    assert (card.primary.git_blob_sha1, card.primary.sha256) == (git_blob_sha1, sha256)
    assert json.loads(card_path.read_text())["name"] == "parametric-s7"
    assert zoo.list_models(tmp_path) == [card]
