"""GlobalReverseISP: starts as the calibrated inverse, resolution-free statistics, ONNX export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rgb2raw.inverse import InverseParams, table_from_curve  # noqa: E402
from rgb2raw.nets import build_net  # noqa: E402
from rgb2raw.nets.globalnet import GlobalReverseISP  # noqa: E402


def _params() -> InverseParams:
    codes = np.linspace(0.0, 1.0, 256)
    tables = np.stack([table_from_curve(codes, codes ** p) for p in (2.0, 2.2, 2.4)])
    return InverseParams(
        tables=tables, matrix=np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.05, 0.25, 0.7]]),
        gains=np.array([0.3, 0.5, 0.4]), highlight_gains=np.array([1.0, 1.0, 0.8]), knee=0.9,
        black_level=64.0, white_level=1023.0)


def _rgb(height: int = 32, width: int = 48, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.rand(1, 3, height, width, generator=generator)
    rgb[..., :4, :] = 1.0  # some saturated white: the highlight fade matters there
    return torch.round(rgb * 255.0) / 255.0


def _numpy_out(net: GlobalReverseISP, rgb: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net(rgb)[0].permute(1, 2, 0).numpy()


def test_an_untrained_network_is_the_calibrated_inverse_within_one_dn() -> None:
    params = _params()
    net = GlobalReverseISP.from_params(params).eval()
    rgb = _rgb()
    expected = params.apply(rgb[0].permute(1, 2, 0).numpy())
    span = params.white_level - params.black_level
    assert np.abs(_numpy_out(net, rgb) - expected).max() * span < 1.0


def test_build_net_starts_from_the_bundled_calibrated_camera() -> None:
    from rgb2raw.nets.build_defaults import load_calibration
    from rgb2raw.zoo import models_dir

    net = build_net("global", camera="s7")
    params, _ = load_calibration(models_dir() / "calibrated-s7.npz")
    assert isinstance(net, GlobalReverseISP) and net.full_frame
    assert np.array_equal(net.tables.numpy(), params.tables)
    assert np.array_equal(net.gains.numpy(), params.gains)


def test_the_log_gain_output_scales_the_raw_and_the_knots_bend_the_tables() -> None:
    params = _params()
    net = GlobalReverseISP.from_params(params).eval()
    rgb = _rgb() * 0.6  # below the knee and the clip: the gain acts exactly
    before = _numpy_out(net, rgb)
    with torch.no_grad():
        net.mlp[-1].bias[:3] = torch.tensor([0.1, -0.2, 0.3])
    after = _numpy_out(net, rgb)
    np.testing.assert_allclose(after, before * np.exp([0.1, -0.2, -0.2, 0.3]), rtol=1e-4,
                               atol=1e-6)
    with torch.no_grad():
        net.mlp[-1].bias.zero_()
        net.mlp[-1].bias[3 + net.knots - 1] = 0.5  # red table's last knot only
        tables, gains, _ = net.corrections(rgb)
    assert torch.allclose(gains[0], net.gains)
    assert torch.allclose(tables[0, 0, -1], net.tables[0, -1] * np.exp(0.5))
    assert torch.allclose(tables[0, 0, 0], net.tables[0, 0]) and torch.equal(tables[0, 1], net.tables[1])


def test_statistics_barely_change_when_the_same_picture_is_twice_as_large() -> None:
    net = GlobalReverseISP.from_params(_params()).eval()

    def smooth(height: int, width: int) -> torch.Tensor:  # the same scene at two resolutions
        y = torch.linspace(0, 1, height)[:, None]
        x = torch.linspace(0, 1, width)[None, :]
        planes = [0.5 + 0.4 * torch.sin(3 * x + 2 * y), 0.5 + 0.3 * torch.cos(4 * y + 0 * x),
                  0.3 + 0.25 * torch.sin(5 * x * y + 1)]
        return torch.stack(planes)[None]

    with torch.no_grad():
        a = net.statistics(smooth(96, 128))
        b = net.statistics(smooth(192, 256))
    assert torch.allclose(a, b, atol=0.05), (a - b).abs().max()


def test_trained_weights_make_the_output_depend_on_the_whole_image() -> None:
    # Once the MLP is trained, the output at one pixel depends on pixels far away: the reason
    # the card says full_frame.
    net = GlobalReverseISP.from_params(_params()).eval()
    with torch.no_grad():
        for p in net.mlp.parameters():
            p.add_(0.05 * torch.randn_like(p))
        rgb = _rgb(64, 64)
        other = rgb.clone()
        other[..., 40:, 40:] = 0.0
        assert not torch.allclose(net(rgb)[..., 4:8, :4], net(other)[..., 4:8, :4])


def test_the_onnx_graph_matches_torch_for_each_image_of_a_batch(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import onnxruntime

    from rgb2raw.nets.globalnet_graph import export_graph

    net = GlobalReverseISP.from_params(_params()).eval()
    with torch.no_grad():
        for p in net.mlp.parameters():
            p.add_(0.02 * torch.randn_like(p))
    path = export_graph(net, tmp_path / "g.onnx")
    rgb = torch.cat([_rgb(40, 56, seed=3), _rgb(40, 56, seed=4) * 0.5])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"rgb": rgb.numpy()})[0]
    with torch.no_grad():
        expected = net(rgb).numpy()
    assert got.shape == (2, 4, 20, 28)
    np.testing.assert_allclose(got, expected, atol=2e-4)
    assert not np.allclose(got[0], got[1] * 2.0, atol=1e-3)  # each image its own corrections
