"""rgb2raw.nets: state-dict layout of the published checkpoints, loading, shapes, ONNX export.

The (name, shape) facts below were read from the authors' model definitions (the official
baseline notebook's UNet, MiAlgo's model.py/networks.py) and counted by instantiating them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch  # noqa: E402

from rgb2raw.errors import Rgb2RawError  # noqa: E402
from rgb2raw.nets import ARCHITECTURES, build_net, load_checkpoint  # noqa: E402
from rgb2raw.nets.export import evaluating, export_onnx  # noqa: E402
from rgb2raw.nets.liteisp import HaarDownsample, HaarUpsample  # noqa: E402
from rgb2raw.nets.unet import ReverseISPUNet  # noqa: E402

# --- facts about the authors' state dicts ------------------------------------------------

# The official baseline U-Net: every tensor (conv blocks have no bias; up-convs and head do).
UNET_TENSORS = [
    ("encoder.enc_blocks.0.conv1.weight", (64, 3, 3, 3)),
    ("encoder.enc_blocks.0.conv2.weight", (64, 64, 3, 3)),
    ("encoder.enc_blocks.1.conv1.weight", (128, 64, 3, 3)),
    ("encoder.enc_blocks.1.conv2.weight", (128, 128, 3, 3)),
    ("encoder.enc_blocks.2.conv1.weight", (256, 128, 3, 3)),
    ("encoder.enc_blocks.2.conv2.weight", (256, 256, 3, 3)),
    ("decoder.upconvs.0.weight", (256, 128, 2, 2)),
    ("decoder.upconvs.0.bias", (128,)),
    ("decoder.upconvs.1.weight", (128, 64, 2, 2)),
    ("decoder.upconvs.1.bias", (64,)),
    ("decoder.dec_blocks.0.conv1.weight", (128, 256, 3, 3)),
    ("decoder.dec_blocks.0.conv2.weight", (128, 128, 3, 3)),
    ("decoder.dec_blocks.1.conv1.weight", (64, 128, 3, 3)),
    ("decoder.dec_blocks.1.conv2.weight", (64, 64, 3, 3)),
    ("head.weight", (4, 64, 1, 1)),
    ("head.bias", (4,)),
]
UNET_KEY_COUNT, UNET_NUMEL = 16, 1_861_764

# MiAlgo LiteISPNet_s: representative tensors (all 372 follow the same pattern).
LITEISP_TENSORS = [
    ("head.weight", (32, 3, 3, 3)),
    ("down1.0.weight", (32, 32, 3, 3)),
    ("down1.1.rg.0.res.0.weight", (32, 32, 3, 3)),
    ("down1.1.rg.0.res.2.bias", (32,)),
    ("down1.1.rg.0.ca.conv_du.0.weight", (2, 32, 1, 1)),
    ("down1.1.rg.0.ca.conv_du.2.weight", (32, 2, 1, 1)),
    ("down1.1.rg.3.sa.conv2d.weight", (1, 2, 7, 7)),
    ("down1.1.rg.4.weight", (32, 32, 3, 3)),
    ("down1.3.weight", (128, 1, 2, 2)),
    ("down2.0.weight", (32, 128, 3, 3)),
    ("down2.2.weight", (128, 1, 2, 2)),
    ("down3.0.weight", (64, 128, 3, 3)),
    ("down3.2.weight", (256, 1, 2, 2)),
    ("middle.0.weight", (128, 256, 3, 3)),
    ("middle.2.rg.3.ca.conv_du.0.weight", (8, 128, 1, 1)),
    ("middle.3.weight", (256, 128, 3, 3)),
    ("up3.0.weight", (256, 1, 2, 2)),
    ("up3.2.weight", (128, 64, 3, 3)),
    ("up2.0.weight", (128, 1, 2, 2)),
    ("up1.2.weight", (32, 32, 3, 3)),
    ("tail.weight", (4, 32, 3, 3)),
    ("tail_ca.conv_du.0.weight", (1, 4, 1, 1)),
    ("tail_ca.conv_du.2.bias", (4,)),
    ("shading.0.0.weight", (32, 32, 3, 3)),
    ("shading.1.weight", (1, 32, 3, 3)),
    ("shading.1.bias", (1,)),
]
LITEISP_KEY_COUNT, LITEISP_NUMEL = 372, 4_537_202
LITEISP_FIRST_KEYS = ["head.weight", "head.bias", "down1.0.weight", "down1.0.bias"]
LITEISP_LAST_KEYS = ["shading.0.0.weight", "shading.0.0.bias", "shading.1.weight", "shading.1.bias"]


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {arch: build_net(arch).eval() for arch in ARCHITECTURES}


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def test_unet_state_dict_matches_the_official_checkpoint_layout(nets):
    shapes = _shapes(nets["unet"])
    assert list(shapes.items()) == UNET_TENSORS
    assert len(shapes) == UNET_KEY_COUNT
    assert sum(np.prod(s) for s in shapes.values()) == UNET_NUMEL


def test_liteisp_state_dict_matches_mialgo_layout(nets):
    shapes = _shapes(nets["liteisp"])
    for name, shape in LITEISP_TENSORS:
        assert shapes.get(name) == shape, name
    assert len(shapes) == LITEISP_KEY_COUNT
    assert sum(int(np.prod(s)) for s in shapes.values()) == LITEISP_NUMEL
    names = list(shapes)
    assert names[:4] == LITEISP_FIRST_KEYS and names[-4:] == LITEISP_LAST_KEYS


def test_nets_package_does_not_import_torch():
    code = (
        "import sys, rgb2raw.nets as n; assert 'torch' not in sys.modules; print(n.ARCHITECTURES)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "unet" in result.stdout and "liteisp" in result.stdout


def test_unknown_architecture_is_a_user_error():
    with pytest.raises(Rgb2RawError, match="unknown architecture 'resnet'"):
        build_net("resnet")


# --- shapes and math ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "height", "width"),
    [
        ("unet", 504, 504),  # S7 crop
        ("unet", 496, 496),  # P20 crop
        ("liteisp", 496, 496),
        ("liteisp", 3024, 4032),  # S7 frame stitched from 6 x 8 crops, as MiAlgo infers
        ("liteisp", 2976, 3968),  # P20 frame
    ],
)
def test_output_is_packed_raw_at_half_size(arch, height, width):
    # Shapes only: the "meta" device propagates shapes without computing anything.
    model = build_net(arch).to("meta").eval()
    with torch.no_grad():
        out = model(torch.empty(1, 3, height, width, device="meta"))
    assert out.shape == (1, 4, height // 2, width // 2)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_forward_runs_on_a_small_rectangular_input(nets, arch):
    with torch.no_grad():
        out = nets[arch](torch.rand(2, 3, 32, 48))
    assert out.shape == (2, 4, 16, 24) and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


@pytest.mark.parametrize(("arch", "height", "width"), [("liteisp", 504, 504), ("unet", 66, 64)])
def test_sizes_the_network_cannot_take_are_refused(arch, height, width):
    # 504 = 16 * 31.5: a single S7 crop is not a valid LiteISPNet-S input.
    model = build_net(arch).to("meta")
    with pytest.raises(ValueError, match="multiples of"):
        model(torch.empty(1, 3, height, width, device="meta"))


def test_unet_halving_equals_nearest_resize_of_the_full_resolution_head(nets):
    # The notebook resizes the full-resolution head output with F.interpolate (nearest);
    # ours subsamples before the 1x1 head. Both must give the same numbers.
    unet = nets["unet"]
    x = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        features = unet.encoder(x)
        decoded = unet.decoder(features[-1], features[-2::-1])
        reference = torch.nn.functional.interpolate(unet.head(decoded), size=(16, 24)).clamp(0, 1)
        assert torch.equal(unet(x), reference)


def test_unet_output_is_clamped_to_unit_range():
    unet = ReverseISPUNet().eval()
    bias = unet.head.bias
    assert bias is not None
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        unet.head.weight.zero_()  # the head then outputs its bias everywhere
        bias.fill_(5.0)
        assert torch.all(unet(x) == 1.0)
        bias.fill_(-5.0)
        assert torch.all(unet(x) == 0.0)


def test_haar_pair_reconstructs_its_input_exactly():
    x = torch.randn(2, 8, 10, 14)
    bands = HaarDownsample(8)(x)
    assert bands.shape == (2, 32, 5, 7)
    assert torch.allclose(HaarUpsample(32)(bands), x, atol=1e-6)
    # Sub-band 0 of a flat image is twice its value (orthonormal average), the rest are 0.
    flat = HaarDownsample(1)(torch.full((1, 1, 4, 4), 3.0))
    assert torch.allclose(flat[0, 0], torch.full((2, 2), 6.0))
    assert torch.count_nonzero(flat[0, 1:]) == 0


# --- checkpoint loading ---------------------------------------------------------------------


def _random_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {
        name: torch.randn(t.shape, generator=generator) for name, t in model.state_dict().items()
    }


@pytest.mark.parametrize(
    ("arch", "layout"),
    [
        ("unet", "bare"),  # the official baseline: torch.save(model.state_dict(), ...)
        ("liteisp", "state_dict_model"),  # MiAlgo: {'state_dict_model': ...}
        ("liteisp", "dataparallel"),
        ("unet", "state_dict"),
    ],
)
def test_checkpoint_round_trips_strictly(nets, tmp_path, arch, layout):
    state = _random_state(nets[arch])
    if layout == "bare":
        payload: object = state
    elif layout == "dataparallel":
        payload = {"model": {f"module.{k}": v for k, v in state.items()}}
    else:
        payload = {layout: state, "epoch": 12, "lr": 1e-4}
    path = tmp_path / f"{arch}.pth"
    torch.save(payload, path)

    model = load_checkpoint(path, arch)
    assert not model.training
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[name], state[name]) for name in state)


def test_checkpoint_of_another_architecture_names_the_mismatch(nets, tmp_path):
    path = tmp_path / "unet.pt"
    torch.save(nets["unet"].state_dict(), path)
    expected = "do not fit architecture 'liteisp'.*370 missing.*14 unexpected"
    with pytest.raises(Rgb2RawError, match=expected) as err:
        load_checkpoint(path, "liteisp")
    assert err.value.path == str(path) and "\n" not in err.value.problem


def test_checkpoint_with_a_wrong_shape_is_reported(nets, tmp_path):
    state = dict(nets["unet"].state_dict())
    state["head.weight"] = torch.zeros(3, 64, 1, 1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(
        Rgb2RawError,
        match=r"wrong shapes.*head.weight is \(3, 64, 1, 1\), expected \(4, 64, 1, 1\)",
    ):
        load_checkpoint(path, "unet")


def _leave_marker(marker: str) -> int:
    """What a malicious checkpoint would run; the test asserts it never does."""
    Path(marker).write_text("code ran")
    return 0


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_leave_marker, (self.marker,))


def test_checkpoint_carrying_pickled_code_is_refused_without_running_it(nets, tmp_path):
    marker = tmp_path / "marker.txt"
    path = tmp_path / "evil.pt"
    payload: dict[str, object] = dict(nets["unet"].state_dict())
    payload["extra"] = _RunsCodeWhenUnpickled(marker)
    torch.save(payload, path)  # pickling only stores a reference to _leave_marker
    with pytest.raises(Rgb2RawError, match="refused: not a plain weights file"):
        load_checkpoint(path, "unet")
    assert not marker.exists()


def test_checkpoint_referencing_os_system_is_refused(tmp_path):
    path = tmp_path / "system.pt"
    torch.save({"state_dict": {"hook": os.system}}, path)  # a reference, never called
    with pytest.raises(Rgb2RawError, match=r"refused: not a plain weights file.*system"):
        load_checkpoint(path, "unet")


def test_unreadable_and_missing_files_are_user_errors(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(Rgb2RawError, match="not a readable torch checkpoint"):
        load_checkpoint(garbage, "unet")
    with pytest.raises(Rgb2RawError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "absent.pt", "unet")
    odd = tmp_path / "odd.pt"
    torch.save({"weights": [1, 2, 3]}, odd)
    with pytest.raises(Rgb2RawError, match="no state dict found"):
        load_checkpoint(odd, "unet")


# --- ONNX export ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_onnx_export_agrees_with_torch_at_another_size(nets, tmp_path, arch):
    ort = pytest.importorskip("onnxruntime")
    path = export_onnx(nets[arch], tmp_path / f"{arch}.onnx", example_hw=(32, 32))
    assert path == tmp_path / f"{arch}.onnx"
    assert [p.name for p in tmp_path.iterdir()] == [f"{arch}.onnx"]  # no temp leftovers

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["rgb"]
    assert [o.name for o in session.get_outputs()] == ["raw"]
    x = torch.rand(2, 3, 48, 80)  # batch, height and width all differ from the example
    with torch.no_grad():
        expected = nets[arch](x).numpy()
    (got,) = session.run(["raw"], {"rgb": x.numpy()})
    assert got.shape == (2, 4, 24, 40)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_onnx_export_refuses_an_example_size_the_net_cannot_take(nets, tmp_path):
    with pytest.raises(ValueError, match="multiples of 16"):
        export_onnx(nets["liteisp"], tmp_path / "x.onnx", example_hw=(40, 40))
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("training", [True, False])
def test_export_leaves_the_training_flag_as_it_found_it(nets, tmp_path, training):
    model = nets["unet"]
    model.train(training)
    export_onnx(model, tmp_path / "m.onnx", example_hw=(32, 32))
    assert model.training is training
    # Also when the export fails inside the eval block.
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        assert not model.training
        raise RuntimeError("boom")
    assert model.training is training
    model.eval()  # the fixture is shared: hand it back as it came

