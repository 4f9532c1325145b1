"""GlobalReverseISP: starts as the calibrated centre, resolution-free statistics, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rgb2raw.cameras import get_camera  # noqa: E402
from rgb2raw.nets import build_net  # noqa: E402
from rgb2raw.nets.globalnet import GlobalReverseISP  # noqa: E402
from rgb2raw.nets.parametric import ParametricInverseISP  # noqa: E402

GAINS = (0.44, 0.52, 0.58)


def _rgb(height: int = 32, width: int = 48, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=generator)


def test_an_untrained_network_is_exactly_the_centre() -> None:
    net = GlobalReverseISP("p20", GAINS).eval()
    rgb = _rgb()
    with torch.no_grad():
        expected = ParametricInverseISP(get_camera("p20"))(rgb) * torch.tensor(
            [GAINS[0], GAINS[1], GAINS[1], GAINS[2]]).reshape(1, 4, 1, 1)
        assert torch.allclose(net(rgb), expected, atol=1e-6)


def test_build_net_knows_the_architecture() -> None:
    net = build_net("global", camera="s7", centre_gains=[0.39, 0.39, 0.39])
    assert isinstance(net, GlobalReverseISP) and net.full_frame


def test_statistics_barely_change_when_the_same_picture_is_twice_as_large() -> None:
    net = GlobalReverseISP("s7", (0.39, 0.39, 0.39)).eval()
    def smooth(height: int, width: int) -> torch.Tensor:  # the same scene at two resolutions
        y = torch.linspace(0, 1, height)[:, None]
        x = torch.linspace(0, 1, width)[None, :]
        planes = [0.5 + 0.4 * torch.sin(3 * x + 2 * y), 0.5 + 0.3 * torch.cos(4 * y + 0 * x),
                  0.3 + 0.25 * torch.sin(5 * x * y + 1)]
        return torch.stack(planes)[None]

    small, large = smooth(64, 96), smooth(128, 192)
    with torch.no_grad():
        a = net.statistics(small, net.base(small))
        b = net.statistics(large, net.base(large))
    assert torch.allclose(a, b, atol=0.05), (a - b).abs().max()


def test_trained_weights_make_the_output_depend_on_the_whole_image() -> None:
    # After any change to the global branch, the output at one pixel depends on pixels far
    # away: the reason the card says full_frame.
    net = GlobalReverseISP("s7", (0.39, 0.39, 0.39)).eval()
    with torch.no_grad():
        for p in net.mlp.parameters():
            p.add_(0.05 * torch.randn_like(p))
        rgb = _rgb(64, 64)
        other = rgb.clone()
        other[..., 40:, 40:] = 1.0
        assert not torch.allclose(net(rgb)[..., :4, :4], net(other)[..., :4, :4])


def test_onnx_export_matches_torch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from rgb2raw.nets.export import export_onnx

    net = GlobalReverseISP("s7", (0.39, 0.39, 0.39)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = export_onnx(net, tmp_path / "g.onnx", example_hw=(32, 32))
    rgb = _rgb(40, 56, seed=3)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"rgb": rgb.numpy()})[0]
    with torch.no_grad():
        expected = net(rgb).numpy()
    assert got.shape == (1, 4, 20, 28)
    np.testing.assert_allclose(got, expected, atol=1e-4)
