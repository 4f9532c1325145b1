"""InverseParams: the formula instance equals `isp.unprocess`, any instance's ONNX graph equals its
numpy reference, storage round-trips, and the invariants refuse bad parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import calibrated_like

from rgb2raw import isp
from rgb2raw.cameras import CAMERA_NAMES, PROFILES, CameraProfile
from rgb2raw.errors import Rgb2RawError
from rgb2raw.inverse import TABLE_LEVELS, InverseParams, table_levels

CAMERAS = [PROFILES[name] for name in CAMERA_NAMES]


def eight_bit_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A picture on the 8-bit grid (as every JPEG is), with pure white and black corners."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.float32) / 255
    rgb[:2, :2] = 1.0
    rgb[2:4, :2] = 0.0
    return rgb


def odd_params(seed: int = 1) -> InverseParams:
    """A calibrated-looking instance: a different monotone table per channel, a skewed matrix,
    gains far below 1 and highlight gains that differ from them."""
    return calibrated_like(seed, gains=(0.2, 0.4, 0.3), highlight_gains=(0.5, 0.6, 0.7), knee=0.6)


@pytest.mark.parametrize("camera", CAMERAS, ids=lambda c: c.name)
def test_formula_instance_is_unprocess(camera: CameraProfile) -> None:
    rgb = eight_bit_rgb(18, 12)
    rgb[-4:] = 0.97  # highlights above the knee, where the gains fade
    got = InverseParams.from_camera(camera).apply(rgb)
    np.testing.assert_allclose(got, isp.unprocess(rgb, camera), atol=1e-5, rtol=0)


def test_tables_follow_each_channel() -> None:
    params = odd_params()
    flat = np.zeros((2, 2, 3), np.float32)
    flat[..., 2] = 1.0  # only blue is lit
    linear = params.linear_rgb(flat)
    assert linear[0, 0, 0] == params.tables[0, 0]
    assert linear[0, 0, 2] == params.tables[2, TABLE_LEVELS - 1]
    # Negative control: the channels' tables really differ, so a mix-up would be seen.
    assert not np.allclose(params.tables[0], params.tables[2])


@pytest.mark.parametrize("make", [odd_params, lambda: InverseParams.from_camera(PROFILES["p20"])],
                         ids=["calibrated-like", "formula-p20"])
def test_graph_equals_numpy_reference(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from rgb2raw.nets.parametric_graph import build_graph

    params = make()
    path = tmp_path / "m.onnx"
    path.write_bytes(build_graph(params, "test").SerializeToString())
    rgb = eight_bit_rgb(20, 14, seed=3)
    rgb[-6:, :6] = 0.99
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["raw"], {"rgb": rgb.transpose(2, 0, 1)[None]})[0][0].transpose(1, 2, 0)
    np.testing.assert_allclose(got, params.apply(rgb), atol=2e-6, rtol=0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    params = odd_params()
    params = InverseParams(**{**params.__dict__, "info": {"fitted_on": "test", "pairs": 3}})
    loaded = InverseParams.load(params.save(tmp_path / "p.npz"))
    for name in ("tables", "matrix", "gains", "highlight_gains"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(params, name))
    assert (loaded.knee, loaded.black_level, loaded.white_level) == (0.6, 60.0, 1020.0)
    assert loaded.info == {"fitted_on": "test", "pairs": 3}


def test_load_refuses_junk(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(Rgb2RawError, match="junk.npz"):
        InverseParams.load(junk)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tables": np.zeros((3, 10))}, "shape"),
        ({"tables": np.stack([1 - table_levels()] * 3)}, "non-decreasing"),
        ({"gains": np.array([0.5, 0.0, 0.5])}, "positive"),
        ({"matrix": np.full((3, 3), np.nan)}, "3x3"),
        ({"knee": 1.0}, "knee"),
        ({"black_level": 1023.0}, "black level"),
    ],
)
def test_invariants_refuse_bad_parameters(change: dict, message: str) -> None:
    fields = {**odd_params().__dict__, **change}
    with pytest.raises(Rgb2RawError, match=message):
        InverseParams(**fields)
