"""`TinyReverseISP`: a small, fast reverse-ISP network of our own design (about 25 k weights).

It follows the shape of a camera pipeline run backwards, in the spirit of the AIM 2022 team
0noise's 0.17 M-parameter model (global tone, colour, then the Bayer sampling), with a small
residual CNN for what global steps cannot express:

1. **tone** (per pixel): ``x**2`` (a rough inverse of sRGB gamma plus tone curve) corrected
   by a learned 1x1-convolution MLP, so training starts from a physically sensible curve;
2. **colour**: a learned 3x3 matrix (a 1x1 convolution), initialised to the identity;
3. **mosaic**: a 2x2 stride-2 convolution to the 4 packed planes, initialised to plain Bayer
   sampling (R at (0, 0), Gr at (0, 1), Gb at (1, 0), B at (1, 1));
4. **global gains**: a per-channel gain from the image's mean colour (a learned, content-
   adaptive inverse white balance / exposure), initialised to 1;
5. **residual**: three 3x3 convolutions at half resolution on the packed estimate and the
   space-to-depth RGB, whose last layer starts at zero.

Contract of `TinyReverseISP.forward` (the same as the other rgb2raw networks):
- input ``(N, 3, H, W)`` float32 sRGB in [0, 1], H and W even (`size_multiple` = 2);
- output ``(N, 4, H/2, W/2)`` packed R, Gr, Gb, B, normalised between the black and white
  level of the training targets (see the run's model card), not clamped.

Step 4 uses the mean over the whole input, so a tile's gains can differ from the whole
frame's; the model is small enough to run on whole frames.

`LocalReverseISP` is the local sibling: the camera's parametric inverse ISP
(`rgb2raw.nets.parametric.ParametricInverseISP`) corrected per pixel by a small dilated CNN,
with no global pooling, so its receptive field is known exactly (`LocalReverseISP.context`)
and tiled inference is exact. It starts as the parametric model (last layer zero).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from rgb2raw.nets import contract

RAW_CHANNELS = 4


class TinyReverseISP(nn.Module):
    """sRGB (N, 3, H, W) in [0, 1] -> packed RAW (N, 4, H/2, W/2); see the module docstring."""

    size_multiple = contract("tiny").size_multiple

    def __init__(self, tone_width: int = 16, width: int = 32, gain_width: int = 16) -> None:
        super().__init__()
        self.tone = nn.Sequential(
            nn.Conv2d(3, tone_width, 1), nn.Tanh(), nn.Conv2d(tone_width, 3, 1)
        )
        self.colour = nn.Conv2d(3, 3, 1, bias=False)
        self.mosaic = nn.Conv2d(3, RAW_CHANNELS, 2, stride=2, bias=False)
        self.gain = nn.Sequential(
            nn.Linear(3, gain_width), nn.Tanh(), nn.Linear(gain_width, RAW_CHANNELS)
        )
        self.residual = nn.Sequential(
            nn.Conv2d(RAW_CHANNELS + 12, width, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(width, width, 3, padding=1),
            nn.LeakyReLU(0.1),
            nn.Conv2d(width, RAW_CHANNELS, 3, padding=1),
        )
        self._init_as_plain_pipeline()

    @torch.no_grad()
    def _init_as_plain_pipeline(self) -> None:
        """Start as tone x**2 -> identity colour -> Bayer sampling, gains 1, no residual."""
        tone_out, gain_out, residual_out = self.tone[2], self.gain[2], self.residual[4]
        for layer in (tone_out, gain_out, residual_out):
            assert isinstance(layer, (nn.Conv2d, nn.Linear))
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        self.colour.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
        sampling = torch.zeros(RAW_CHANNELS, 3, 2, 2)
        for channel, (colour, row, col) in enumerate(((0, 0, 0), (1, 0, 1), (1, 1, 0), (2, 1, 1))):
            sampling[channel, colour, row, col] = 1.0
        self.mosaic.weight.copy_(sampling)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        linear = rgb * rgb + self.tone(rgb)
        packed = self.mosaic(self.colour(linear))
        # log-gains from the mean linear colour; exp keeps them positive and 1 at the start.
        gains = torch.exp(self.gain(linear.mean(dim=(2, 3))))
        packed = packed * gains[:, :, None, None]
        context = torch.cat((packed, F.pixel_unshuffle(rgb, 2)), dim=1)
        return packed + self.residual(context)


class LocalReverseISP(nn.Module):
    """sRGB (N, 3, H, W) -> packed RAW (N, 4, H/2, W/2): parametric inverse + local correction.

    ``base`` is the camera's parametric inverse (fixed buffers, no weights), rescaled from its
    [0, white level] units to the training targets' (`base_scale`, e.g. 1023/1024 for a
    camera with white level 1023 trained in the scorer's units of 1024). A stack of 3x3
    convolutions at half resolution, with dilations `dilations`, sees the space-to-depth RGB and
    the base estimate and outputs a per-pixel log-gain and an offset per RAW channel:
    ``out = base * exp(log_gain) + offset``. Every padding is zero, and nothing pools globally.
    """

    size_multiple = contract("tiny").size_multiple

    def __init__(self, camera: str, width: int = 32,
                 dilations: tuple[int, ...] = (1, 2, 4, 8, 1), base_scale: float = 1.0) -> None:
        super().__init__()
        from rgb2raw.cameras import get_camera
        from rgb2raw.nets.parametric import ParametricInverseISP

        if not dilations or min(dilations) < 1:
            raise ValueError(f"dilations must be one or more positive integers, got {dilations}")
        self.base = ParametricInverseISP(get_camera(camera))
        self.base_scale = float(base_scale)
        self.correction = dilated_stack(12 + RAW_CHANNELS, width, 2 * RAW_CHANNELS, dilations)
        # Each half-resolution 3x3 layer reaches `dilation` packed pixels further, i.e. two RGB
        # pixels per packed pixel beyond the output's own 2x2 block.
        self.context = 2 * sum(int(d) for d in dilations)
        final = self.correction[-1]
        assert isinstance(final, nn.Conv2d)
        with torch.no_grad():
            nn.init.zeros_(final.weight)
            if final.bias is not None:
                nn.init.zeros_(final.bias)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        base = self.base(rgb) * self.base_scale
        features = torch.cat((F.pixel_unshuffle(rgb, 2), base), dim=1)
        log_gain, offset = torch.split(self.correction(features), RAW_CHANNELS, dim=1)
        return base * torch.exp(log_gain) + offset


def dilated_stack(channels: int, width: int, out: int, dilations: Sequence[int]) -> nn.Sequential:
    """3x3 convolutions with the given dilations (LeakyReLU between them), `channels` in,
    `width` wide, `out` channels from the last; padding keeps the size."""
    layers: list[nn.Module] = []
    for index, dilation in enumerate(dilations):
        last = index == len(dilations) - 1
        width_out = out if last else width
        layers.append(nn.Conv2d(channels, width_out, 3, padding=dilation, dilation=dilation))
        if not last:
            layers.append(nn.LeakyReLU(0.1))
        channels = width_out
    return nn.Sequential(*layers)


def build(local: bool = False, **kwargs: object) -> nn.Module:
    """The registry's factory for ``"tiny"``: `LocalReverseISP` with `local`, else `TinyReverseISP`."""
    return LocalReverseISP(**kwargs) if local else TinyReverseISP(**kwargs)  # type: ignore[arg-type]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable weights."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
