"""The parametric inverse ISP: torch == numpy == ONNX, and the bundled models are reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rgb2raw import isp, zoo
from rgb2raw.cameras import CAMERA_NAMES, PROFILES, CameraProfile

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from rgb2raw.nets.build_defaults import build_all, build_one, card_dict  # noqa: E402
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


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_bundled_onnx_matches_torch_at_any_even_size(camera: CameraProfile) -> None:
    path = BUNDLED / f"parametric-{camera.name}.onnx"
    for shape in [(1, 3, 2, 2), (2, 3, 30, 46), (1, 3, 64, 10)]:
        rgb = random_rgb(shape, seed=shape[2])
        np.testing.assert_allclose(run_onnx(path, rgb), run_torch(camera, rgb), atol=1e-5, rtol=0)


def test_rebuild_reproduces_the_bundled_models(tmp_path: Path) -> None:
    built = build_all(tmp_path)
    assert len(built) == len(CAMERAS)
    rgb = random_rgb((1, 3, 16, 24), seed=7)
    for onnx_path, card_path in built:
        bundled_onnx = BUNDLED / onnx_path.name
        producer = onnx.load(str(bundled_onnx)).producer_version
        if producer == torch.__version__.split("+")[0]:
            # Same exporter: the build is deterministic, so the bytes and cards must match.
            assert onnx_path.read_bytes() == bundled_onnx.read_bytes(), onnx_path.name
            assert card_path.read_text() == (BUNDLED / card_path.name).read_text()
        np.testing.assert_allclose(run_onnx(onnx_path, rgb), run_onnx(bundled_onnx, rgb),
                                   atol=1e-6, rtol=0)


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_cards_agree_with_the_camera_profile_and_the_file(camera: CameraProfile) -> None:
    card = zoo.load_card(BUNDLED / f"parametric-{camera.name}.json")
    assert (card.name, card.camera, card.arch) == (f"parametric-{camera.name}", camera.name,
                                                   "parametric")
    assert card.black_level == camera.black_level and card.white_level == camera.white_level
    assert (card.rgb_range, card.size_multiple, card.full_frame) == (1.0, 2, False)
    assert card.reported is None and card.card == "parametric.md"
    assert (BUNDLED / "parametric.md").is_file()
    (entry,) = card.files
    assert entry.bundled and entry.format == "onnx" and entry.urls == ()
    path = BUNDLED / entry.filename
    assert entry.size == path.stat().st_size
    git_blob_sha1, sha256 = zoo.download.file_digests(path)
    assert (entry.git_blob_sha1, entry.sha256) == (git_blob_sha1, sha256)


def test_build_one_writes_a_card_zoo_can_read(tmp_path: Path) -> None:
    camera = PROFILES["s7"]
    onnx_path, card_path = build_one(camera, tmp_path)
    card = zoo.load_card(card_path)
    assert card.primary.filename == onnx_path.name
    assert json.loads(card_path.read_text()) == card_dict(camera, onnx_path)
    assert zoo.list_models(tmp_path) == [card]
