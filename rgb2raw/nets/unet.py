"""The AIM 2022 Reversed ISP challenge's official baseline U-Net, re-implemented.

The organisers' starter notebook trained a small U-Net (encoder widths 3-64-128-256, decoder
256-128-64, a 1x1 head to 4 channels) and published its weights for both tracks. This module
rebuilds that network so the published state dicts load with ``load_state_dict(strict=True)``:
the submodule names (``encoder.enc_blocks.<i>.conv1`` ...) are dictated by those files, the code
is ours.

Contract of `ReverseISPUNet.forward`:
- input: ``(N, 3, H, W)`` float32 sRGB from the JPEG, channel order R, G, B, values in [0, 1]
  (``uint8 / 255``, no mean/std normalisation); H and W multiples of 4 (two 2x2 max-pools
  whose outputs are concatenated back after 2x2 up-convolutions). The challenge crops are
  504x504 (S7) and 496x496 (P20).
- output: ``(N, 4, H/2, W/2)`` packed RAW, channels R, G(red row), G(blue row), B, values
  clamped to [0, 1] where 1.0 stands for 1024 (the notebook trained on ``raw / 1024``).

The network itself computes at full input resolution; the notebook then shrinks the 4-channel
result with ``F.interpolate(out, (H/2, W/2))`` (mode 'nearest'), which for an exact factor of
two keeps every second row and column, i.e. the pixel at (2i, 2j). We take that subsample
before the 1x1 head and the clamp: both act per pixel, so the result is the same numbers for a
quarter of the head's work.
"""

from __future__ import annotations

import torch
from torch import nn

from rgb2raw.nets import contract

# Widths of the published checkpoints.
ENCODER_WIDTHS: tuple[int, ...] = (3, 64, 128, 256)
DECODER_WIDTHS: tuple[int, ...] = (256, 128, 64)
RAW_CHANNELS = 4


class _TwoConvs(nn.Module):
    """Two bias-free 3x3 convolutions, each followed by a ReLU (a U-Net stage)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


class _Encoder(nn.Module):
    """Stages at full, 1/2, 1/4 ... resolution; returns every stage's output, finest first."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.enc_blocks = nn.ModuleList(
            _TwoConvs(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features: list[torch.Tensor] = []
        for index, stage in enumerate(self.enc_blocks):
            if index:
                # The original pools after every stage, the last one included, but never uses
                # that final pooled map; pooling only between stages is the same computation.
                x = nn.functional.max_pool2d(x, kernel_size=2)
            x = stage(x)
            features.append(x)
        return features


class _Decoder(nn.Module):
    """2x2 stride-2 transposed convolutions, each followed by a stage on [upsampled, skip]."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        pairs = list(zip(widths[:-1], widths[1:], strict=True))
        self.upconvs = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2) for c_in, c_out in pairs
        )
        self.dec_blocks = nn.ModuleList(_TwoConvs(c_in, c_out) for c_in, c_out in pairs)

    def forward(self, deepest: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """`skips` are the encoder outputs from coarse to fine, one per upsampling step."""
        x = deepest
        for upconv, stage, skip in zip(self.upconvs, self.dec_blocks, skips, strict=True):
            # Upsampled features first, skip connection second: the order the weights expect.
            x = stage(torch.cat((upconv(x), skip), dim=1))
        return x


class ReverseISPUNet(nn.Module):
    """The official AIM 2022 reverse-ISP baseline U-Net (1.86 M parameters, 16 tensors).

    Maps ``(N, 3, H, W)`` sRGB in [0, 1] to ``(N, 4, H/2, W/2)`` packed RGGB RAW in [0, 1]
    (1.0 == 1024 digital numbers). H and W must be multiples of `size_multiple` (4); the model is
    fully convolutional otherwise, so any such size works, including whole frames.
    """

    size_multiple = contract("unet").size_multiple

    def __init__(
        self,
        encoder_widths: tuple[int, ...] = ENCODER_WIDTHS,
        decoder_widths: tuple[int, ...] = DECODER_WIDTHS,
        out_channels: int = RAW_CHANNELS,
    ) -> None:
        super().__init__()
        if encoder_widths[-1] != decoder_widths[0]:
            raise ValueError("the decoder must start at the encoder's deepest width")
        self.encoder = _Encoder(encoder_widths)
        self.decoder = _Decoder(decoder_widths)
        self.head = nn.Conv2d(decoder_widths[-1], out_channels, kernel_size=1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        check_input_size(rgb, self.size_multiple)
        features = self.encoder(rgb)
        decoded = self.decoder(features[-1], features[-2::-1])
        # Nearest-neighbour halving == keep pixel (2i, 2j); see the module docstring.
        return self.head(decoded[:, :, ::2, ::2]).clamp(0.0, 1.0)


def check_input_size(rgb: torch.Tensor, multiple: int) -> None:
    """Reject a wrong input shape with a clear message instead of a deep concat error.

    Skipped while tracing for ONNX export, where the sizes are symbolic.
    """
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"expected an (N, 3, H, W) RGB tensor, got shape {tuple(rgb.shape)}")
    height, width = int(rgb.shape[2]), int(rgb.shape[3])
    if height % multiple or width % multiple:
        raise ValueError(
            f"input height and width must be multiples of {multiple}, got {height}x{width}"
        )
