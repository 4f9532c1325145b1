"""Backends: ONNX Runtime and torch agree, providers are checked, models load from cards/files."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rgb2raw import backends
from rgb2raw.backends import FunctionBackend, OnnxBackend
from rgb2raw.errors import Rgb2RawError
from rgb2raw.pipeline import load_model

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


def export(net: Any, path: Path, *, dynamic: bool = True) -> Path:
    """Export to ONNX, with dynamic batch/height/width or fixed at (1, 3, 32, 32)."""
    example = torch.rand(1, 3, 32, 32)
    axes = {"rgb": {0: "n", 2: "h", 3: "w"}, "raw": {0: "n", 2: "h2", 3: "w2"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(net, (example,), str(path), input_names=["rgb"], output_names=["raw"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def test_onnx_and_torch_backends_agree(tmp_path: Path, tiny_net: Callable[[int], Any]) -> None:
    net = tiny_net()
    onnx_backend = OnnxBackend(export(net, tmp_path / "tiny.onnx"), threads=1)
    torch_backend = backends.TorchBackend(net)
    batch = np.random.default_rng(0).random((3, 3, 40, 56), dtype=np.float32)
    a, b = onnx_backend.run(batch), torch_backend.run(batch)
    assert a.shape == b.shape == (3, 4, 20, 28) and a.dtype == b.dtype == np.float32
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert isinstance(onnx_backend, backends.Backend) and isinstance(torch_backend, backends.Backend)
    assert onnx_backend.description == "onnx:CPUExecutionProvider"


def test_a_fixed_size_graph_is_fed_one_tile_at_a_time(tmp_path: Path, tiny_net: Callable[[int], Any]) -> None:
    net = tiny_net(1)
    backend = OnnxBackend(export(net, tmp_path / "fixed.onnx", dynamic=False))
    assert backend.fixed_batch == 1 and backend.fixed_hw == (32, 32)
    batch = np.random.default_rng(1).random((4, 3, 32, 32), dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(backend.run(batch), expected, atol=1e-4)


def test_unavailable_provider_is_an_error(tmp_path: Path, tiny_net: Callable[[int], Any]) -> None:
    path = export(tiny_net(), tmp_path / "tiny.onnx")
    with pytest.raises(Rgb2RawError, match="not available"):
        OnnxBackend(path, providers=["NoSuchExecutionProvider"])


def test_gpu_provider_that_silently_falls_back_is_an_error(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, tiny_net: Callable[[int], Any]) -> None:
    """ONNX Runtime falls back to the CPU when CUDA cannot start; we must notice."""
    path = export(tiny_net(), tmp_path / "tiny.onnx")
    real_session = ort.InferenceSession

    def cpu_only_session(model: str, sess_options: object = None, providers: object = None) -> object:
        return real_session(model, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", cpu_only_session)
    with pytest.raises(Rgb2RawError, match="did not start"):
        OnnxBackend(path, device="cuda")


def test_broken_onnx_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf")
    with pytest.raises(Rgb2RawError, match="cannot load onnx model") as info:
        OnnxBackend(path)
    assert info.value.path == str(path)
    with pytest.raises(Rgb2RawError, match="no such model file"):
        OnnxBackend(tmp_path / "missing.onnx")


def test_torch_cuda_and_fp16_requests_fail_clearly_without_a_gpu(tiny_net: Callable[[int], Any]) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(Rgb2RawError, match="no CUDA device") as no_gpu:
        backends.TorchBackend(tiny_net(), device="cuda")
    # The library names its parameter; only the CLI spells it as a flag.
    assert no_gpu.value.param == "device" and "--" not in str(no_gpu.value)
    with pytest.raises(Rgb2RawError, match="half precision needs the cuda device") as half:
        backends.TorchBackend(tiny_net(), fp16=True)
    assert half.value.param == "fp16" and "--" not in str(half.value)


def test_wrong_output_shape_is_reported() -> None:
    backend = FunctionBackend(lambda batch: batch[:, :, ::2, ::2], "rgb-halver")
    with pytest.raises(Rgb2RawError, match="output has shape"):
        backend.run(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="batch"):
        backend.run(np.zeros((3, 8, 8), np.float32))


def test_load_model_from_a_bare_onnx_file_uses_a_safe_contract(tmp_path: Path, tiny_net: Callable[[int], Any]) -> None:
    model = load_model(export(tiny_net(), tmp_path / "bare.onnx"), camera="p20")
    assert model.contract.name == "bare" and model.contract.size_multiple >= 16
    assert (model.contract.black_level, model.contract.white_level) == (0.0, 1024.0)
    with pytest.raises(Rgb2RawError, match="onnx backend only"):
        load_model(tmp_path / "bare.onnx", backend="torch")


def test_load_model_from_a_checkpoint_on_both_backends(tmp_path: Path) -> None:
    from rgb2raw.nets import build_net

    torch.manual_seed(0)
    checkpoint = tmp_path / "unet.pth"
    torch.save(build_net("unet").state_dict(), checkpoint)
    with pytest.raises(Rgb2RawError, match="needs an architecture"):
        load_model(checkpoint)
    on_torch = load_model(checkpoint, arch="unet", backend="torch")
    on_onnx = load_model(checkpoint, arch="unet", backend="onnx")
    assert on_onnx.contract == on_torch.contract and on_onnx.contract.size_multiple == 4
    batch = np.random.default_rng(2).random((1, 3, 64, 96), dtype=np.float32)
    np.testing.assert_allclose(on_onnx.backend.run(batch), on_torch.backend.run(batch), atol=1e-4)


def test_load_model_default_is_the_bundled_calibrated_model() -> None:
    model = load_model(None, camera="s7")
    assert model.contract.name == "calibrated-s7" and model.contract.camera == "s7"
    assert load_model("parametric-s7").contract.name == "parametric-s7"  # still there by name
    out = model.backend.run(np.full((1, 3, 8, 8), 0.5, np.float32))
    assert out.shape == (1, 4, 4, 4) and np.isfinite(out).all()
    with pytest.raises(Rgb2RawError, match="no torch weights"):
        load_model(None, camera="s7", backend="torch")
    with pytest.raises(Rgb2RawError, match="unknown model"):
        load_model("no-such-model")


def test_a_session_is_opened_once_per_process(tmp_path: Path,
                                              tiny_net: Callable[[int], Any]) -> None:
    path = export(tiny_net(3), tmp_path / "once.onnx")
    first, second = OnnxBackend(path, threads=1), OnnxBackend(path, threads=1)
    assert first.session is second.session
    assert OnnxBackend(path, threads=2).session is not first.session  # other options


def test_a_model_opening_in_the_background_reports_its_problem_on_ready(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    backend = OnnxBackend(broken, background=True)  # returns at once
    with pytest.raises(Rgb2RawError, match="cannot load onnx model"):
        backend.ready()
    with pytest.raises(Rgb2RawError, match="cannot load onnx model"):
        backend.run(np.zeros((1, 3, 8, 8), np.float32))


def test_a_broken_model_fails_the_run_not_each_file(tmp_path: Path) -> None:
    import cv2

    from rgb2raw.batch import infer_paths
    from rgb2raw.cameras import get_camera

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx graph")
    (tmp_path / "in").mkdir()
    for index in range(2):
        cv2.imwrite(str(tmp_path / "in" / f"{index}.png"), np.zeros((8, 8, 3), np.uint8))
    model = load_model(broken, background=True)
    with pytest.raises(Rgb2RawError, match="cannot load onnx model"):
        infer_paths([tmp_path / "in"], tmp_path / "out", model, get_camera("generic"))
    assert not (tmp_path / "out").exists()


def test_auto_backend_runs_bounded_memory_frame_models_on_torch() -> None:
    """`auto` is ONNX Runtime, except for torch weights of a network whose whole frames run in
    bounded memory only on torch (LiteISPNet_s's two-pass runner)."""
    from rgb2raw.loading import resolve_backend
    from rgb2raw.zoo import ModelCard, ModelFile

    def card(arch: str, fmt: str) -> ModelCard:
        return ModelCard(name="m", camera="p20", arch=arch, description="",
                         files=(ModelFile(filename=f"m.{fmt}", format=fmt),))  # type: ignore[arg-type]

    assert resolve_backend(card("liteisp", "torch"), "auto") == "torch"
    assert resolve_backend(card("unet", "torch"), "auto") == "onnx"
    assert resolve_backend(card("liteisp", "onnx"), "auto") == "onnx"  # an exported graph
    assert resolve_backend(card("liteisp", "torch"), "onnx") == "onnx"  # asked for explicitly
    assert resolve_backend(load_model(None, camera="p20").card, "auto") == "onnx"
