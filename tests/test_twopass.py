"""The two-pass full-frame runner equals one whole-frame pass of LiteISPNetS (random weights)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from rgb2raw.nets.liteisp import ChannelAttention, LiteISPNetS  # noqa: E402
from rgb2raw.nets.liteisp_rows import input_rows, receptive_radius  # noqa: E402
from rgb2raw.nets.twopass import (  # noqa: E402
    _accumulate_border_sums,
    _conv_mean,
    demanding_weights,
    run_full_frame,
)

# One DN of the stricter camera (S7: white 1023, black 0) in normalised units.
ONE_DN = 1.0 / 1023


def _net(seed: int, widths: tuple[int, int, int] = (8, 16, 32), n_blocks: int = 2) -> LiteISPNetS:
    """A small LiteISPNetS whose convolutions have weights of std 1/sqrt(fan-in).

    PyTorch's default initialisation shrinks the signal so much that the output is nearly
    constant and any two computations agree to 1 DN; with these weights the output spans
    several units, so 1 DN is a demanding tolerance (and the per-tile means of naive tiling
    visibly change it).
    """
    net = LiteISPNetS(widths=widths, n_blocks=n_blocks).eval()
    demanding_weights(net, seed)
    return net


def _frame(seed: int, n: int, height: int, width: int) -> torch.Tensor:
    """Random RGB whose top half is darker, so the halves' statistics differ."""
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, height, width, generator=gen)
    rgb[:, :, : height // 2] *= 0.2
    return rgb


@pytest.mark.parametrize(("tile", "n"), [(8, 2), (16, 1)])
def test_equals_whole_frame_pass(tile, n):
    net = _net(0)
    # 256 RGB rows: 16 strips at H/2 for tile 8, 2 at H/16; a batch of 2 images (each with
    # its own means).
    rgb = _frame(1, n, 256, 48)
    with torch.inference_mode():
        whole = net(rgb)
    out = run_full_frame(net, rgb, tile=tile)
    assert out.shape == whole.shape == (n, 4, 128, 24)
    assert float(whole.std()) > 0.5  # the tolerance below is small against the output range
    assert float((out - whole).abs().max()) < 0.05 * ONE_DN


def test_engine_hook_runs_the_registered_runner_on_numpy():
    """The registry's runner for liteisp, called as the engine calls it (NumPy in and out,
    through `TorchBackend.run_frame`), equals the whole-frame pass."""
    from rgb2raw.backends import TorchBackend
    from rgb2raw.nets import architecture, resolve_callable

    net = _net(0)
    rgb = _frame(1, 1, 64, 32)
    with torch.inference_mode():
        whole = net(rgb).numpy()
    runner = resolve_callable(architecture("liteisp").frame_runner or "")
    out = TorchBackend(net, name="liteisp").run_frame(runner, rgb.numpy())
    assert out.dtype == whole.dtype and out.shape == whole.shape
    assert float(abs(out - whole).max()) < 0.05 * ONE_DN


def test_equals_whole_frame_pass_at_published_widths():
    net = _net(2, widths=(32, 64, 128), n_blocks=4)
    rgb = _frame(3, 1, 160, 32)
    with torch.inference_mode():
        whole = net(rgb)
    out = run_full_frame(net, rgb, tile=8)
    assert float((out - whole).abs().max()) < 0.5 * ONE_DN


def test_naive_tiling_without_the_global_pass_differs():
    """Negative control: tiles with ample context but their own channel-attention means."""
    net = _net(0)
    rgb = _frame(1, 1, 256, 48)
    halo = 64  # RGB rows of context each tile gets beyond its half
    with torch.inference_mode():
        whole = net(rgb)
        top = net(rgb[:, :, : 128 + halo])[:, :, :64]
        bottom = net(rgb[:, :, 128 - halo :])[:, :, halo // 2 :]
    naive = torch.cat((top, bottom), dim=2)
    assert float((naive - whole).abs().max()) > 10 * ONE_DN
    # The same tiles, given the whole frame's means by the runner's strips, do agree.
    assert float((run_full_frame(net, rgb, tile=16) - whole).abs().max()) < 0.05 * ONE_DN


def test_conv_mean_from_border_sums():
    gen = torch.Generator().manual_seed(4)
    conv = nn.Conv2d(5, 7, kernel_size=3, padding=1)
    z = torch.rand(1, 5, 37, 23, generator=gen) - 0.3
    sums: dict[str, torch.Tensor] = {}
    for a in range(0, 37, 10):  # in strips, as the runner accumulates them
        _accumulate_border_sums(sums, z[:, :, a : a + 10], first=a == 0, last=a + 10 >= 37)
    with torch.no_grad():
        expected = nn.functional.conv2d(
            z.double(), conv.weight.double(), conv.bias.double(), padding=1
        ).mean(dim=(0, 2, 3))
        got = _conv_mean(conv, sums, 37, 23)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # The border terms matter: without them the mean is visibly wrong.
    no_border = dict(sums, row_first=sums["row_first"] * 0, col_last=sums["col_last"] * 0)
    with torch.no_grad():
        wrong = _conv_mean(conv, no_border, 37, 23)
    assert float((wrong - expected).abs().max()) > 1e-3


def _freeze_gates(net: nn.Module, rgb: torch.Tensor) -> list[torch.utils.hooks.RemovableHandle]:
    """Record every channel attention's gate on `rgb`, then make the modules reuse them."""
    gates: dict[nn.Module, torch.Tensor] = {}
    handles = []
    for module in net.modules():
        if isinstance(module, ChannelAttention):

            def record(mod, args, output):
                gates[mod] = (output / args[0]).mean(dim=(2, 3), keepdim=True).detach()

            handles.append(module.register_forward_hook(record))
    with torch.no_grad():
        net(rgb)
    for handle in handles:
        handle.remove()
    handles = []
    for module in net.modules():
        if isinstance(module, ChannelAttention):

            def replay(mod, args, output):
                return args[0] * gates[mod]

            handles.append(module.register_forward_hook(replay))
    return handles


def test_receptive_field_is_the_analytic_one():
    """With the gates frozen the network is local; its reach per output row is `input_rows`.

    Measured by the gradient in float64 (a perturbation of infinitesimal size): exactly zero
    outside the receptive field, nonzero at both of its ends.
    """
    n_blocks = 1
    radius = receptive_radius(n_blocks)
    assert radius == max(
        max(2 * r - input_rows(r, n_blocks)[0], input_rows(r, n_blocks)[1] - 2 * r - 1)
        for r in range(64)
    )
    net = _net(5, n_blocks=n_blocks).double()
    height = 16 * ((2 * radius + 64) // 16 + 1)
    rgb = torch.rand(1, 3, height, 16, generator=torch.Generator().manual_seed(6)).double()
    handles = _freeze_gates(net, rgb)
    first = height // 4 - 8  # output rows whose receptive field is inside the frame
    rows = range(first, first + 8)  # one period of the H/16 grid
    try:
        # One batch item per output row: its gradient is that row's dependence on the input.
        x = rgb.repeat(len(rows), 1, 1, 1).requires_grad_(True)
        out = net(x)
        sum(out[i, :, r].sum() for i, r in enumerate(rows)).backward()
    finally:
        for handle in handles:
            handle.remove()
    assert x.grad is not None
    for i, r in enumerate(rows):
        lo, hi = input_rows(r, n_blocks)
        assert lo > 0 and hi < height - 1
        touched = (x.grad[i] != 0).any(dim=2).any(dim=0).nonzero().flatten()
        assert (int(touched.min()), int(touched.max())) == (lo, hi), r


def test_rejects_bad_arguments():
    net = _net(0)
    for tile in (6, 9):
        with pytest.raises(ValueError, match="even number of at least 8"):
            run_full_frame(net, torch.zeros(1, 3, 64, 64), tile=tile)
    with pytest.raises(ValueError, match="multiples of 16"):
        run_full_frame(net, torch.zeros(1, 3, 60, 64))
    with pytest.raises(ValueError, match="float32"):
        run_full_frame(net, torch.zeros(1, 3, 64, 64, dtype=torch.float64))
