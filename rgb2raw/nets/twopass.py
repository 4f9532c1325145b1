"""Run `LiteISPNetS` on a whole frame in bounded memory, with the whole-frame result.

Why not plain tiles: the network has 33 channel attentions (one per attention block, and one on
the 4-channel tail), each scaling its input by a gate computed from the MEAN over the whole
frame, and each mean depends on everything before it, through every earlier gate. Tiles that
compute their own means give a different image (`tests/test_twopass.py` shows it). Freezing the
gates would make the network local, but its receptive field is then 1,341 RGB rows on each
side (`liteisp_rows.receptive_radius()`: the Haar levels multiply the depth of the deep layers
by up to 16; the test measures it), so a tile with exact context would be most of a 2,976-row
P20 frame.
One "global pass, then local tiles" split is therefore not enough: each gate needs its own.

What this runner does instead, level by level, in full-width row strips:

* Only the network's stage boundaries are held as frame-sized buffers: the features an attention
  block reads, and the U-Net skips. Everything else (convolutions, Haar transforms, spatial
  attention, the shading branch) is local and is computed strip by strip with a halo of exactly
  its receptive field, so each strip's kept rows are the rows the whole-frame pass computes.
* Each channel attention is two sweeps: the first computes the block's pre-attention features
  strip by strip and accumulates their per-channel sums in float64; the gate is then computed
  from the mean by the block's own layers; the second applies gate, spatial attention and the
  residual. 33 gates (32 blocks and the tail), 79 sweeps in all (64 for the blocks, 15 for
  the convolutions and transforms between them); each streams its level's buffer once, so
  the nesting of the gates costs no recomputation of earlier layers.
* On the finest (H/2) level of the decoder the pre-attention features are not stored, to keep
  two frame-sized buffers instead of three: the first sweep runs only the block's first
  convolution and gets the mean of the second one from its linearity (`_conv_mean`), and the
  second sweep recomputes both and updates the block's input in place.

Invariants:

* Exactness: strips are full width, so columns see the frame's own zero padding; rows at a
  strip's inner edges are recomputed from real neighbour rows (halo >= receptive field of the
  sweep); rows at the frame's top and bottom see the same zero padding as the whole-frame pass.
  A window into a finer buffer (the RGB frame under the stride-2 head, the input of a Haar
  downsampling) starts at an even row by construction, and one into a coarser buffer (under a
  Haar upsampling) needs even strip edges, which the even `tile` and halos give, so every
  strided grid coincides with the whole frame's. The result differs from `net(rgb)` only by
  float rounding (summation order of the means, convolution algorithms): ~1e-6 in normalised
  units, far inside 1 DN (1/960 for the P20).
* Memory: besides the input and the model, at most two float32 buffers of the H/2 level's
  size (32 channels at H/2, or 128 at H/4: 378 MB each on a P20 frame) at any time, plus
  buffers of a quarter of that or less, and one strip's temporaries (tens of MB at the default
  `tile`). `benchmarks/bench_fullframe.py` measures the peak of the whole process.
* Batch: each image of a batch is its own frame (its own means), as in the whole-frame pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, cast

from rgb2raw._memory import release_free_memory
from rgb2raw.nets.liteisp_rows import BLOCK_HALO, RES_HALO, SA_HALO

if TYPE_CHECKING:
    import torch
    from torch import nn

    from rgb2raw.nets.liteisp import AttentionResBlock, LiteISPNetS

#: Default strip height, in rows of each level's grid (the H/2 level's strips are 2 * 96 RGB
#: rows). Taller strips run convolutions more efficiently, shorter ones need less memory for a
#: strip's temporaries. Measured on a P20 frame (one fresh process each, load 6 on 2 cores):
#: 64 rows: 80 s CPU, peak 1281 MiB; 96: 68 s, 1324 MiB; 128: 66 s, 1380 MiB.
DEFAULT_TILE = 96
# Strips at least as tall as the in-place sweeps' halo, and even for the Haar grids.
_MIN_TILE = 8

Source = tuple["torch.Tensor", Fraction]
Sums = dict[str, "torch.Tensor"]


def run_full_frame(
    net: LiteISPNetS, rgb: torch.Tensor, *, tile: int = DEFAULT_TILE
) -> torch.Tensor:
    """`net(rgb)` computed in full-width strips of `tile` rows; same result, bounded memory.

    `rgb` is ``(N, 3, H, W)`` float32 with H and W multiples of 16 (the network's contract);
    `tile` (an even number, at least 8) is the strip height in rows of each level's grid
    (H/2 ... H/16). Runs under ``torch.inference_mode``; `net` is not modified (it has no
    batch norm or dropout, so train and eval mode give the same result).
    """
    import torch

    from rgb2raw.nets.unet import check_input_size

    check_input_size(rgb, net.size_multiple)
    if tile < _MIN_TILE or tile % 2:
        raise ValueError(f"tile must be an even number of at least {_MIN_TILE} rows, got {tile}")
    if rgb.dtype != torch.float32:
        raise ValueError(f"expected a float32 RGB tensor, got {rgb.dtype}")
    with torch.inference_mode():
        outs = [_one_frame(net, rgb[i : i + 1], tile) for i in range(rgb.shape[0])]
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def demanding_weights(net: nn.Module, seed: int) -> nn.Module:
    """Give `net`'s convolutions random weights of std 1/sqrt(fan-in) (biases in +-0.1), in place.

    For exactness checks (the tests and `benchmarks/bench_fullframe.py`): PyTorch's default
    initialisation shrinks the signal so much that the output is nearly constant and any two
    computations agree to 1 DN; with these weights the output spans several units, so 1 DN is
    a demanding tolerance.
    """
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                module.weight.normal_(0.0, fan_in**-0.5, generator=gen)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=gen)
    return net


def _one_frame(net: LiteISPNetS, rgb: torch.Tensor, tile: int) -> torch.Tensor:
    import torch

    half, one, two = Fraction(1, 2), Fraction(1), Fraction(2)
    rows2 = rgb.shape[2] // 2
    steps = {k: tile for k in (2, 4, 8, 16)}  # per level, should one level want other strips

    def stem(rgb_rows: torch.Tensor) -> torch.Tensor:
        return net.down1[0](net.head(rgb_rows.contiguous(memory_format=torch.channels_last)))

    # --- H/2, encoder: down1 = conv, group, conv, Haar. The group's input is recomputed from
    # the RGB rows at the end (two cheap convolutions) instead of being kept.
    x = _fill(stem, [(rgb, two)], rows2, halo=2, step=steps[2])
    group1 = net.down1[1]
    _run_blocks(group1, x, steps[2], keep_features=True)

    def down1_tail(rgb_rows: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        return net.down1[3](net.down1[2](stem(rgb_rows) + _closing(group1)(xs)))

    # Output rows [a, b) of H/4 are H/2 rows [2a, 2b) after the stem (2 rows of context at
    # H/2) and two more 3x3 convolutions: 4 rows at H/2, halo 2 at H/4. The work is at H/2,
    # so are the strips: half as many rows of output.
    step = max(steps[2] // 2, 1)
    d1 = _fill(down1_tail, [(rgb, 2 * two), (x, two)], rows2 // 2, halo=2, step=step)
    del x

    # --- H/4 and H/8, encoder: conv, group, Haar (the group's input is kept: it is small).
    d2 = _down(net.down2, d1, steps[4])
    d3 = _down(net.down3, d2, steps[8])

    # --- H/16: conv, group, group, conv; its output is added to d3 in place (d3 is read
    # pointwise there and nowhere later).
    mid_in, mid_g1, mid_g2, mid_out = net.middle
    x = _fill(mid_in, [(d3, one)], d3.shape[2], halo=1, step=steps[16])
    x = _group(mid_g1, x, steps[16])
    x = _group(mid_g2, x, steps[16], finish=mid_out, halo=2)
    d3 += x
    del x

    # --- decoder: HaarUp, group, conv, plus the skip (in place into the skip's buffer).
    _up(net.up3, d3, d2, steps[8])  # d2 now holds u3
    del d3
    _up(net.up2, d2, d1, steps[4])  # d1 now holds u2
    del d2

    # --- H/2, decoder: up1 = HaarUp, group, conv; then tail (with its channel attention)
    # times the shading branch. Only the block input is frame-sized here besides u2 = d1.
    up, group, conv = net.up1
    x = _fill(up, [(d1, half)], rows2, halo=0, step=steps[2])
    _run_blocks(group, x, steps[2], keep_features=False)
    n_out = net.tail.out_channels

    def head_and_shading(us: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        u1 = conv(up(us) + _closing(group)(xs))
        return torch.cat((net.tail(u1), net.shading(u1)), dim=1)

    width2 = x.shape[3]
    tail = torch.empty((1, n_out, rows2, width2), memory_format=torch.channels_last)
    shading = torch.empty((1, 1, rows2, width2), memory_format=torch.channels_last)
    total = torch.zeros(n_out, dtype=torch.float64)
    # Halo: rg[-1] conv, up1 conv, then the shading branch's two convs (the tail's one is less).
    for a, b, y in _strips(head_and_shading, [(d1, half), (x, one)], rows2, 4, steps[2]):
        tail[:, :, a:b] = y[:, :n_out]
        shading[:, :, a:b] = y[:, n_out:]
        total += y[:, :n_out].sum(dim=(0, 2, 3)).to(torch.float64)
    del x, d1
    gate = _gate(net.tail_ca.conv_du, total / (rows2 * width2))
    return tail.mul_(gate).mul_(shading).contiguous()


def _strips(
    fn: Callable[..., torch.Tensor],
    sources: list[Source],
    rows: int,
    halo: int,
    step: int,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(a, b, fn(...)[rows a:b])`` for consecutive strips of `step` output rows.

    Each source is ``(buffer, scale)``: buffer rows per output row. `fn` gets each source's
    rows for output rows ``[a - halo, b + halo)`` clipped to the frame, and must return the
    output rows of that window (it sees zero padding past the window, so its outer `halo` rows
    are wrong unless they are the frame's own border; they are cut off). A source coarser than
    the output (scale 1/2, a Haar upsampling) needs even window edges: `step` and `halo` even.
    """
    for a in range(0, rows, step):
        b = min(a + step, rows)
        lo, hi = max(a - halo, 0), min(b + halo, rows)
        views = []
        for buffer, scale in sources:
            start, stop = lo * scale, hi * scale
            if start.denominator != 1 or stop.denominator != 1:
                raise AssertionError(f"strip [{lo}, {hi}) is not aligned to scale {scale}")
            views.append(buffer[:, :, int(start) : int(stop)])
        yield a, b, fn(*views)[:, :, a - lo : b - lo]
    release_free_memory()


def _fill(
    fn: Callable[..., torch.Tensor], sources: list[Source], rows: int, *, halo: int, step: int
) -> torch.Tensor:
    """A new frame-sized buffer holding `fn` of the sources, filled strip by strip."""
    import torch

    out: torch.Tensor | None = None
    for a, b, y in _strips(fn, sources, rows, halo, step):
        if out is None:
            out = torch.empty(
                (1, y.shape[1], rows, y.shape[3]), dtype=y.dtype, memory_format=torch.channels_last
            )
        out[:, :, a:b] = y
    assert out is not None
    return out


def _down(seq: nn.Sequential, skip: torch.Tensor, step: int) -> torch.Tensor:
    """An encoder stage (conv, group, Haar) from the buffer `skip` to a new buffer at half size."""
    conv_in, group, haar = seq
    x = _fill(conv_in, [(skip, Fraction(1))], skip.shape[2], halo=1, step=step)
    return _group(group, x, step, finish=haar, halo=1, finish_scale=Fraction(2))


def _up(seq: nn.Sequential, low: torch.Tensor, skip: torch.Tensor, step: int) -> None:
    """A decoder stage: ``skip += conv(group(HaarUp(low)))``; the group input is recomputed."""
    up, group, conv = seq
    half, one = Fraction(1, 2), Fraction(1)
    x = _fill(up, [(low, half)], skip.shape[2], halo=0, step=step)
    _run_blocks(group, x, step, keep_features=True)

    def finish(lows: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        return conv(up(lows) + _closing(group)(xs))

    # Halo 2 (two convs): even, as HaarUp needs.
    for a, b, y in _strips(finish, [(low, half), (x, one)], skip.shape[2], 2, step):
        skip[:, :, a:b] += y


def _group(
    group: nn.Module,
    x: torch.Tensor,
    step: int,
    *,
    finish: nn.Module | None = None,
    halo: int = 1,
    finish_scale: Fraction = Fraction(1),
) -> torch.Tensor:
    """``finish(group(x))`` as a new buffer; `x` (the group input) is consumed.

    `finish_scale` is input rows per output row of `finish` (2 for a Haar downsampling);
    `halo` counts output rows and covers the group's closing conv and `finish`.
    """
    start = x.clone()  # the group's residual input; small on the levels this is used for
    _run_blocks(group, x, step, keep_features=True)

    def out(ss: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        y = ss + _closing(group)(xs)
        return y if finish is None else finish(y)

    rows = int(x.shape[2] / finish_scale)
    sources = [(start, finish_scale), (x, finish_scale)]
    # Strips of `step` rows of the level the work is done on (the input's).
    return _fill(out, sources, rows, halo=halo, step=max(int(step / finish_scale), 1))


def _closing(group: nn.Module) -> nn.Module:
    """The 3x3 convolution that closes an attention group (``x + conv(blocks(x))``)."""
    return cast("nn.Sequential", group.rg)[-1]


def _run_blocks(
    group: nn.Module, x: torch.Tensor, step: int, *, keep_features: bool
) -> None:
    """Apply the group's attention blocks to the buffer `x` in place (not its closing conv).

    With `keep_features` the pre-attention features of each block are stored in a second
    frame-sized buffer between its two sweeps; without, they are recomputed.
    """
    for module in list(cast("nn.Sequential", group.rg).children())[:-1]:
        block = cast("AttentionResBlock", module)
        if keep_features:
            _block_kept(block, x, step)
        else:
            _block_recomputed(block, x, step)


def _res(block: AttentionResBlock, xs: torch.Tensor) -> torch.Tensor:
    """``block.res(xs)`` (conv, ReLU, conv) with the ReLU in place: one temporary less."""
    import torch

    conv1, _, conv2 = block.res
    out: torch.Tensor = conv2(torch.relu_(conv1(xs)))
    return out


def _spatial_attention_(block: AttentionResBlock, features: torch.Tensor) -> torch.Tensor:
    """``block.sa(features)``: the same operations in the same order (the tests compare the
    runner with the module), but scaling `features` in place to save a strip-sized temporary."""
    import torch

    sa = block.sa
    summary = torch.cat(
        (features.mean(dim=1, keepdim=True), features.amax(dim=1, keepdim=True)), dim=1
    )
    return features.mul_(torch.sigmoid(sa.conv2d(summary)))


def _block_kept(block: AttentionResBlock, x: torch.Tensor, step: int) -> None:
    import torch

    rows, width = x.shape[2], x.shape[3]
    feats = torch.empty_like(x)
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    for a, b, y in _strips(lambda xs: _res(block, xs), [(x, Fraction(1))], rows, RES_HALO, step):
        feats[:, :, a:b] = y
        total += y.sum(dim=(0, 2, 3)).to(torch.float64)
    gate = _gate(block.ca.conv_du, total / (rows * width))

    def attend(fs: torch.Tensor) -> torch.Tensor:
        return _spatial_attention_(block, fs * gate)

    # `x` is read only at the rows being written, so the update can be immediate.
    for a, b, y in _strips(attend, [(feats, Fraction(1))], rows, SA_HALO, step):
        x[:, :, a:b] += y


def _block_recomputed(block: AttentionResBlock, x: torch.Tensor, step: int) -> None:
    if step < BLOCK_HALO:
        raise AssertionError(f"strip of {step} rows is shorter than the halo {BLOCK_HALO}")
    rows, width = x.shape[2], x.shape[3]
    conv1, relu, conv2 = block.res
    sums: Sums = {}
    for a, b, z in _strips(lambda xs: relu(conv1(xs)), [(x, Fraction(1))], rows, 1, step):
        _accumulate_border_sums(sums, z, first=a == 0, last=b == rows)
    gate = _gate(block.ca.conv_du, _conv_mean(cast("nn.Conv2d", conv2), sums, rows, width))

    def update(xs: torch.Tensor) -> torch.Tensor:
        return _spatial_attention_(block, _res(block, xs).mul_(gate)).add_(xs)

    # In place, so strip k is written only after strip k+1 has been computed: strip k+1 reads
    # `BLOCK_HALO` rows of strip k's ORIGINAL values, and no row of strip k-1 (step >= halo).
    pending: tuple[int, int, torch.Tensor] | None = None
    for a, b, y in _strips(update, [(x, Fraction(1))], rows, BLOCK_HALO, step):
        if pending is not None:
            x[:, :, pending[0] : pending[1]] = pending[2]
        pending = (a, b, y)
    if pending is not None:
        x[:, :, pending[0] : pending[1]] = pending[2]


def _accumulate_border_sums(sums: Sums, z: torch.Tensor, *, first: bool, last: bool) -> None:
    """Add strip `z` to the per-channel sums `_conv_mean` needs (float64)."""
    import torch

    f64 = torch.float64

    def add(key: str, value: torch.Tensor) -> None:
        sums[key] = sums[key] + value if key in sums else value

    # Each strip is summed in float32 (pairwise, accurate) and the strips in float64.
    add("total", z.sum(dim=(0, 2, 3)).to(f64))
    add("col_first", z[:, :, :, 0].sum(dim=(0, 2)).to(f64))
    add("col_last", z[:, :, :, -1].sum(dim=(0, 2)).to(f64))
    if first:
        sums["row_first"] = z[:, :, 0].sum(dim=(0, 2)).to(f64)
        sums["top_left"] = z[0, :, 0, 0].to(f64)
        sums["top_right"] = z[0, :, 0, -1].to(f64)
    if last:
        sums["row_last"] = z[:, :, -1].sum(dim=(0, 2)).to(f64)
        sums["bottom_left"] = z[0, :, -1, 0].to(f64)
        sums["bottom_right"] = z[0, :, -1, -1].to(f64)


def _conv_mean(conv: nn.Conv2d, sums: Sums, rows: int, width: int) -> torch.Tensor:
    """Per-channel mean over the frame of ``conv(z)``, from sums of `z` alone (float64).

    A 3x3 convolution with zero padding 1 is linear, so the sum of its output over the frame is
    ``sum over taps of W[tap] @ (sum of z over the rows and columns that tap reaches) + bias``.
    Tap row 0 reads the row above each output row, so over the frame it reaches every row but
    the last; tap row 2 every row but the first; likewise for columns, and a corner tap misses
    one row and one column, so the element where they cross is added back once.
    """
    import torch

    if (
        conv.kernel_size != (3, 3)
        or conv.stride != (1, 1)
        or conv.padding != (1, 1)
        or conv.dilation != (1, 1)
        or conv.groups != 1
        or conv.padding_mode != "zeros"
    ):
        raise AssertionError("_conv_mean handles only plain 3x3 convolutions with padding 1")
    total = sums["total"]
    # Sums of z missed by tap row dy / column dx, and the corner element missed by both.
    none = torch.zeros_like(total)
    missed_row = {0: sums["row_last"], 1: none, 2: sums["row_first"]}
    missed_col = {0: sums["col_last"], 1: none, 2: sums["col_first"]}
    corner = {
        (0, 0): sums["bottom_right"],
        (0, 2): sums["bottom_left"],
        (2, 0): sums["top_right"],
        (2, 2): sums["top_left"],
    }
    weight = conv.weight.detach().to(torch.float64)
    out = torch.zeros(weight.shape[0], dtype=torch.float64)
    for dy in range(3):
        for dx in range(3):
            reached = total - missed_row[dy] - missed_col[dx]
            if (dy, dx) in corner:
                reached = reached + corner[(dy, dx)]
            out += weight[:, :, dy, dx] @ reached
    count = rows * width
    if conv.bias is not None:
        out += conv.bias.detach().to(torch.float64) * count
    return out / count


def _gate(conv_du: nn.Module, mean: torch.Tensor) -> torch.Tensor:
    """The channel attention's gate, computed by its own layers from the (float64) frame mean."""
    import torch

    gate: torch.Tensor = conv_du(mean.to(torch.float32).view(1, -1, 1, 1))
    return gate
