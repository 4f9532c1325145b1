"""The pixel-wise graph evaluated without ONNX Runtime (`rgb2raw.nets.pixelwise`): the same
function as `InverseParams.apply` times the lens shading, and as the ONNX graph under ONNX
Runtime, within 1 DN; read back from the graph file exactly; any other file is left to ONNX
Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import calibrated_like

from rgb2raw import levels
from rgb2raw.cameras import PROFILES
from rgb2raw.inverse import InverseParams
from rgb2raw.nets.parametric_graph import NODES, graph_constants
from rgb2raw.nets.pixelwise import STRIP_ROWS, PixelwiseBackend, PixelwiseFunction, read_function
from rgb2raw.rgb import to_unit
from rgb2raw.shading import FrameBox, RadialShading

pytest.importorskip("onnx")


def odd_params(seed: int = 1) -> InverseParams:
    """A calibrated-looking instance: a different table per channel, a skewed matrix, gains
    below 1 and highlight gains that differ from them, a low knee (many faded pixels)."""
    return calibrated_like(seed, gains=(0.5, 0.9, 0.7), highlight_gains=(1.0, 1.1, 1.2), knee=0.3)


SHADING = RadialShading.from_rgb([[1.3, -1.1, 0.0, 0.0], [1.2, -0.7, -0.3, 0.0],
                                  [1.1, -0.1, -1.0, 0.0]])
LEVELS = levels.Levels(60.0, 1020.0)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Random uint8 RGB with flat white, black and near-white patches (clips and highlights)."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rgb[:4, :4] = 255
    rgb[4:8, :4] = 0
    rgb[-6:, -6:] = 250
    return rgb


def to_dn(values: np.ndarray) -> np.ndarray:
    return levels.quantise(values, LEVELS, low=LEVELS.black, high=LEVELS.white).astype(np.int64)


def graph_file(params: InverseParams, folder: Path) -> Path:
    from rgb2raw.nets.parametric_graph import build_graph

    path = folder / "m.onnx"
    path.write_bytes(build_graph(params, "m").SerializeToString())
    return path


def onnx_runtime(path: Path, rgb01: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = np.ascontiguousarray(rgb01.transpose(2, 0, 1)[None], dtype=np.float32)
    return session.run(["raw"], {"rgb": batch})[0][0].transpose(1, 2, 0)


@pytest.mark.parametrize("make", [odd_params, lambda: InverseParams.from_camera(PROFILES["p20"])],
                         ids=["calibrated-like", "formula-p20"])
def test_equals_inverse_params_apply_times_shading(make) -> None:  # type: ignore[no-untyped-def]
    params = make()
    rgb = photo(2 * STRIP_ROWS + 10, 38)  # more than one strip, the last one short
    box = FrameBox(3, 5, 120, 90)
    got = PixelwiseFunction.from_params(params).evaluate(rgb, shading=SHADING, box=box)
    reference = SHADING.apply(params.apply(to_unit(rgb)), box)
    np.testing.assert_allclose(got, reference, atol=1e-6, rtol=0)
    assert np.abs(to_dn(got) - to_dn(reference)).max() <= 1
    # Negative control: the shading and the fade both change the numbers here.
    assert np.abs(to_dn(params.apply(to_unit(rgb))) - to_dn(reference)).max() > 1


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_equals_the_graph_under_onnx_runtime(dtype: str, tmp_path: Path) -> None:
    params = odd_params(seed=4)
    rgb8 = photo(40, 30, seed=2)
    rgb = {"uint8": rgb8, "uint16": rgb8.astype(np.uint16) * 257 + 3,
           "float32": to_unit(rgb8) * np.float32(1.02) - np.float32(0.01)}[dtype]
    function = read_function(graph_file(params, tmp_path))
    assert function is not None
    got = function.evaluate(rgb)
    expected = onnx_runtime(tmp_path / "m.onnx", to_unit(rgb) if dtype != "float32" else rgb)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    assert np.abs(to_dn(got) - to_dn(expected)).max() <= 1


def test_file_is_read_back_exactly(tmp_path: Path) -> None:
    from rgb2raw.nets._onnx_wire import read_model

    params = odd_params()
    model = read_model(graph_file(params, tmp_path).read_bytes())
    assert [(n.op_type, n.inputs, n.outputs, n.attributes) for n in model.nodes] == list(NODES)
    expected = graph_constants(params)
    assert list(model.initializers) == list(expected)
    for name, value in expected.items():
        assert model.initializers[name].dtype == value.dtype, name
        np.testing.assert_array_equal(model.initializers[name], value, err_msg=name)


def test_strips_in_threads_change_nothing() -> None:
    function = PixelwiseFunction.from_params(odd_params())
    rgb = photo(6 * STRIP_ROWS, 24, seed=5)
    one = function.evaluate(rgb, shading=SHADING, workers=1)
    np.testing.assert_array_equal(function.evaluate(rgb, shading=SHADING, workers=3), one)


def test_backend_runs_tiles_like_whole_images() -> None:
    function = PixelwiseFunction.from_params(odd_params())
    rgb = photo(12, 16, seed=6)
    batch = np.stack([to_unit(rgb).transpose(2, 0, 1), to_unit(rgb[::-1]).transpose(2, 0, 1)])
    out = PixelwiseBackend(function).run(batch)
    assert out.shape == (2, 4, 6, 8)
    np.testing.assert_array_equal(out[0].transpose(1, 2, 0), function.evaluate(rgb))
    np.testing.assert_array_equal(out[1].transpose(1, 2, 0), function.evaluate(rgb[::-1]))


def test_other_files_are_left_to_onnx_runtime(tmp_path: Path) -> None:
    import onnx
    from onnx import helper

    path = graph_file(odd_params(), tmp_path)
    model = onnx.load(str(path))
    assert read_function(path) is not None
    model.graph.node[16].op_type = "Add"  # weight = knee + knee instead of its square
    changed = tmp_path / "changed.onnx"
    changed.write_bytes(model.SerializeToString())
    assert read_function(changed) is None
    other = helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    (tmp_path / "other.onnx").write_bytes(other.SerializeToString())
    assert read_function(tmp_path / "other.onnx") is None
    (tmp_path / "cut.onnx").write_bytes(path.read_bytes()[:5000])
    assert read_function(tmp_path / "cut.onnx") is None
    assert read_function(tmp_path / "missing.onnx") is None


def test_bundled_default_runs_here_and_onnx_backend_still_works() -> None:
    pytest.importorskip("onnxruntime")
    from rgb2raw import pipeline
    from rgb2raw.backends import OnnxBackend

    fast = pipeline.load_model(None, camera="p20")
    onnx_model = pipeline.load_model(None, camera="p20", backend="onnx")
    assert isinstance(fast.backend, PixelwiseBackend)
    assert isinstance(onnx_model.backend, OnnxBackend)
    assert fast.contract.shading is not None
    rgb = photo(64, 48, seed=7)
    box = FrameBox(10, 20, 400, 300)
    got = pipeline.infer_image(rgb, fast, box=box).astype(np.int64)
    expected = pipeline.infer_image(rgb, onnx_model, box=box).astype(np.int64)
    assert np.abs(got - expected).max() <= 1
    # Test-time augmentation goes through tiles and `run`: the same numbers either way.
    settings = pipeline.RunSettings(tta=2)
    np.testing.assert_allclose(pipeline.predict(rgb, fast, settings),
                               pipeline.predict(rgb, onnx_model, settings), atol=1e-6, rtol=0)


def test_quantised_strip_by_strip_equals_quantised_whole() -> None:
    from rgb2raw import pipeline

    model = pipeline.load_model(None, camera="p20")
    rgb = photo(2 * STRIP_ROWS + 6, 40, seed=8)
    box = FrameBox(4, 8, 200, 160)
    dn = pipeline.predict_dn(rgb, model, box=box)
    assert dn.dtype == np.uint16
    whole = pipeline.quantise(pipeline.predict(rgb, model, box=box), model.contract)
    np.testing.assert_array_equal(dn, whole)
    assert len(np.unique(dn)) > 100  # real numbers, not a constant image


def test_kept_shading_strips_follow_the_placement() -> None:
    function = PixelwiseFunction.from_params(odd_params())
    rgb = photo(2 * STRIP_ROWS + 4, 20, seed=9)
    unit = odd_params().apply(to_unit(rgb))
    for box in (FrameBox(0, 0, 200, 40), FrameBox(0, 0, 200, 40), FrameBox(30, 6, 200, 40), None):
        got = function.evaluate(rgb, shading=SHADING, box=box, workers=2)
        np.testing.assert_allclose(got, SHADING.apply(unit, box), atol=1e-6, rtol=0)
