"""MiAlgo's `LiteISPNet_s` (2nd place, AIM 2022 Reversed ISP), re-implemented.

A wavelet U-Net: a stride-2 head brings the RGB frame to the packed-RAW grid, three Haar
wavelet downsamplings (each 2x2 block becomes 4 sub-band channels) reach 1/16 of the input
size, and three inverse transforms come back up, with residual groups of attention blocks
(channel attention, then spatial attention) at every level. The 4-channel output is multiplied
by a per-pixel gain in (0, 1) that a small branch predicts from the last decoder features (the
team calls it a shading mask; it is computed from the image content, it is NOT a stored map of
a fixed frame size).

Submodule names and shapes equal the authors' (372 state-dict tensors, 4,537,202 numbers, of
which 4,096 are the fixed Haar filters), so their checkpoints load strictly; the code is ours.

Contract of `LiteISPNetS.forward`:
- input: ``(N, 3, H, W)`` float32 sRGB, channel order R, G, B, in [0, 1] (``uint8 / 255``,
  no other normalisation); H and W multiples of 16. The authors ran it on whole frames
  stitched from the 48 crops (S7 3024x4032, P20 2976x3968, as H x W); a single S7 crop
  (504 = 16 * 31.5) is NOT a valid size, a P20 crop (496 = 16 * 31) is.
- output: ``(N, 4, H/2, W/2)`` packed R, G(red row), G(blue row), B, normalised between the
  black and white level, NOT clamped: ``dn = out * (white - black) + black`` then round and clip
  to [0, white] (S7: black 0, white 1023; P20: black 60, white 1020).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rgb2raw.nets import contract
from rgb2raw.nets.unet import check_input_size

# The four 2x2 orthonormal Haar atoms, in the authors' sub-band order: average, rows
# (top minus bottom), columns (left minus right), diagonal. Scaling by 1/2 makes the set
# orthonormal, so the inverse transform is the transposed convolution with the same atoms.
_HAAR_ATOMS = 0.5 * torch.tensor(
    [
        [[1.0, 1.0], [1.0, 1.0]],
        [[1.0, 1.0], [-1.0, -1.0]],
        [[1.0, -1.0], [1.0, -1.0]],
        [[1.0, -1.0], [-1.0, 1.0]],
    ]
)


def _haar_filters(groups: int) -> torch.Tensor:
    """(4 * groups, 1, 2, 2): the four atoms repeated once per channel group."""
    return _HAAR_ATOMS.unsqueeze(1).repeat(groups, 1, 1, 1)


class HaarDownsample(nn.Module):
    """(N, C, H, W) -> (N, 4C, H/2, W/2); output channel 4c + k is sub-band k of input c.

    The filters are a fixed buffer named ``weight`` (the authors' checkpoints carry them).
    """

    weight: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("weight", _haar_filters(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, stride=2, groups=self.channels)


class HaarUpsample(nn.Module):
    """Inverse of `HaarDownsample`: (N, 4C, H, W) -> (N, C, 2H, 2W)."""

    weight: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels % 4:
            raise ValueError(f"inverse Haar needs a multiple of 4 channels, got {channels}")
        self.groups = channels // 4
        self.register_buffer("weight", _haar_filters(self.groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, self.weight, stride=2, groups=self.groups)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: scale each channel by a gate computed from global means.

    The mean is over the WHOLE input, so the result of a crop differs from the same region
    of a full-frame run; one reason the authors infer on stitched frames.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, kernel_size=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class SpatialAttention(nn.Module):
    """Scale each pixel by a gate from a 7x7 convolution over its channel mean and max."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2d = nn.Conv2d(2, 1, kernel_size=7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        summary = torch.cat((x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.conv2d(summary))


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1)


class AttentionResBlock(nn.Module):
    """x + spatial(channel(conv(relu(conv(x)))))."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        # Index 1 is the (weightless) ReLU, so the convolutions are `res.0` and `res.2`.
        self.res = nn.Sequential(
            _conv3x3(channels, channels), nn.ReLU(), _conv3x3(channels, channels)
        )
        self.ca = ChannelAttention(channels, reduction)
        self.sa = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sa(self.ca(self.res(x)))


class AttentionResGroup(nn.Module):
    """x + conv(blocks(x)): `n_blocks` attention blocks and a closing 3x3 convolution."""

    def __init__(self, channels: int, n_blocks: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [AttentionResBlock(channels) for _ in range(n_blocks)]
        layers.append(_conv3x3(channels, channels))
        self.rg = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rg(x)


class LiteISPNetS(nn.Module):
    """MiAlgo's LiteISPNet_s: sRGB (N,3,H,W) in [0,1] -> normalised packed RAW (N,4,H/2,W/2).

    H and W must be multiples of `size_multiple` (16). Any such size works (nothing in the
    weights depends on the frame size), but channel attention uses whole-input means and the
    receptive field is very large, so the authors' numbers come from full-frame inference.
    The widths default to the published checkpoints'; change them only for new training.
    """

    size_multiple = contract("liteisp").size_multiple

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), n_blocks: int = 4) -> None:
        super().__init__()
        fine, mid, deep = widths
        self.head = _conv3x3(3, fine, stride=2)  # onto the packed-RAW grid, H/2
        self.down1 = nn.Sequential(  # -> 4*fine channels at H/4
            _conv3x3(fine, fine),
            AttentionResGroup(fine, n_blocks),
            _conv3x3(fine, fine),
            HaarDownsample(fine),
        )
        self.down2 = nn.Sequential(  # -> 4*fine at H/8
            _conv3x3(4 * fine, fine), AttentionResGroup(fine, n_blocks), HaarDownsample(fine)
        )
        self.down3 = nn.Sequential(  # -> 4*mid at H/16
            _conv3x3(4 * fine, mid), AttentionResGroup(mid, n_blocks), HaarDownsample(mid)
        )
        self.middle = nn.Sequential(  # stays at 4*mid, H/16
            _conv3x3(4 * mid, deep),
            AttentionResGroup(deep, n_blocks),
            AttentionResGroup(deep, n_blocks),
            _conv3x3(deep, 4 * mid),
        )
        self.up3 = nn.Sequential(  # -> 4*fine at H/8
            HaarUpsample(4 * mid), AttentionResGroup(mid, n_blocks), _conv3x3(mid, 4 * fine)
        )
        self.up2 = nn.Sequential(  # -> 4*fine at H/4
            HaarUpsample(4 * fine), AttentionResGroup(fine, n_blocks), _conv3x3(fine, 4 * fine)
        )
        self.up1 = nn.Sequential(  # -> fine at H/2
            HaarUpsample(4 * fine), AttentionResGroup(fine, n_blocks), _conv3x3(fine, fine)
        )
        self.tail = _conv3x3(fine, 4)
        self.tail_ca = ChannelAttention(4, reduction=4)
        # The inner Sequential reproduces the checkpoints' `shading.0.0` nesting.
        self.shading = nn.Sequential(
            nn.Sequential(_conv3x3(fine, fine), nn.ReLU()), _conv3x3(fine, 1), nn.Sigmoid()
        )

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        check_input_size(rgb, self.size_multiple)
        half = self.head(rgb)
        d1 = self.down1(half)
        d2 = self.down2(d1)
        d3 = self.down3(d2)
        u3 = self.up3(self.middle(d3) + d3) + d2
        u2 = self.up2(u3) + d1
        u1 = self.up1(u2)
        return self.tail_ca(self.tail(u1)) * self.shading(u1)
