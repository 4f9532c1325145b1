"""`GlobalReverseISP`: the calibrated inverse ISP, corrected per image from global statistics.

What a phone JPEG hides about its RAW is mostly *global*: how many stops the ISP brightened
it, how far its white balance moved from the light, which tone curve it used. So the network
is the camera's pixel-wise inverse (the formula times the calibrated centre gains, exactly
what `rgb2raw.train.isp_families.CENTRES` measures) with three corrections:

1. **global branch**: image-level statistics of the whole input (log mean of each RAW channel,
   soft histograms of the base's green and of the picture's luminance, gray-world chroma,
   the share of clipped pixels), computed on a 4x4 area-pooled copy, feed a small MLP that
   outputs, per RAW channel, a log gain and the coefficients of a smooth tone correction
   (hat functions of the base value's square root);
2. **pixel-wise curve**: ``out = base * exp(log_gain + sum_k coef_k * hat_k(sqrt(base)))``;
3. **local residual**: a few dilated 3x3 convolutions at half resolution (demosaic, sharpening
   and JPEG traces), whose output (a log gain and an offset per channel) starts at zero.

Every correction starts at zero, so an untrained network is exactly the centre. The global
statistics are means over the whole frame, so the model declares ``full_frame``: tiles would
see other statistics. Statistics are means and histograms, so they do not depend on the
frame's resolution (the network trains on small views and runs on 12 MP frames).

Contract: input ``(N, 3, H, W)`` sRGB in [0, 1], H and W even; output ``(N, 4, H/2, W/2)``
packed R, Gr, Gb, B in [0, 1] between the camera's black and white levels (not clamped).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rgb2raw.nets.tiny import dilated_stack

RAW_CHANNELS = 4
HIST_BINS = 12
POOL = 4


def _soft_histogram(values: torch.Tensor, bins: int) -> torch.Tensor:
    """(N, 1, h, w) in [0, 1] -> (N, bins): share of pixels near each of `bins` centres."""
    parts = []
    for k in range(bins):
        centre = k / (bins - 1)
        weight = torch.relu(1.0 - torch.abs(values - centre) * (bins - 1))
        parts.append(weight.mean(dim=(1, 2, 3)))
    return torch.stack(parts, dim=1)


class GlobalReverseISP(nn.Module):
    """sRGB (N, 3, H, W) -> packed RAW (N, 4, H/2, W/2); see the module docstring."""

    size_multiple = 2
    full_frame = True

    centre_gains: torch.Tensor

    def __init__(self, camera: str = "generic",
                 centre_gains: tuple[float, float, float] = (1.0, 1.0, 1.0),
                 hidden: int = 64, knots: int = 8, width: int = 16,
                 dilations: tuple[int, ...] = (1, 2, 4, 1)) -> None:
        super().__init__()
        from rgb2raw.cameras import get_camera
        from rgb2raw.nets.parametric import ParametricInverseISP

        self.base = ParametricInverseISP(get_camera(camera))
        red, green, blue = (float(g) for g in centre_gains)
        self.register_buffer("centre_gains",
                             torch.tensor([red, green, green, blue]).reshape(1, 4, 1, 1))
        self.knots = int(knots)
        features = RAW_CHANNELS + 2 * HIST_BINS + 2 + 3 + 1
        self.mlp = nn.Sequential(
            nn.Linear(features, hidden), nn.LeakyReLU(0.1),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.1),
            nn.Linear(hidden, RAW_CHANNELS * (1 + self.knots)),
        )
        self.local = dilated_stack(12 + RAW_CHANNELS, width, 2 * RAW_CHANNELS, dilations)
        for final in (self.mlp[-1], self.local[-1]):
            assert isinstance(final, (nn.Linear, nn.Conv2d))
            with torch.no_grad():
                nn.init.zeros_(final.weight)
                if final.bias is not None:
                    nn.init.zeros_(final.bias)

    def statistics(self, rgb: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """(N, features) image-level statistics (see the module docstring)."""
        small = F.avg_pool2d(base, POOL // 2)  # base is at half resolution already
        picture = F.avg_pool2d(rgb, POOL)
        eps = 1e-4
        log_means = torch.log(small.mean(dim=(2, 3)) + eps)
        green = 0.5 * (small[:, 1:2] + small[:, 2:3])
        base_hist = _soft_histogram(torch.sqrt(torch.clamp(green, 0.0, 1.0) + 1e-8), HIST_BINS)
        luma = (0.2126 * picture[:, 0:1] + 0.7152 * picture[:, 1:2] + 0.0722 * picture[:, 2:3])
        luma_hist = _soft_histogram(torch.clamp(luma, 0.0, 1.0), HIST_BINS)
        # Gray world of the picture over mid-tones: a partial white balance leaves a cast.
        weight = torch.relu(1.0 - torch.abs(luma - 0.45) * 2.5)
        total = weight.sum(dim=(2, 3)) + eps
        log_picture = torch.log(picture + 0.01)
        chroma = torch.cat([
            ((log_picture[:, 0:1] - log_picture[:, 1:2]) * weight).sum(dim=(2, 3)) / total,
            ((log_picture[:, 2:3] - log_picture[:, 1:2]) * weight).sum(dim=(2, 3)) / total,
        ], dim=1)
        picture_means = picture.mean(dim=(2, 3))
        clipped = (torch.relu(picture.amax(dim=1, keepdim=True) - 0.97) * 33.0).mean(dim=(1, 2, 3))
        return torch.cat([log_means, base_hist, luma_hist, chroma, picture_means,
                          clipped[:, None]], dim=1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        base = self.base(rgb) * self.centre_gains
        params = self.mlp(self.statistics(rgb, base))
        log_gain = params[:, :RAW_CHANNELS, None, None]
        coefs = params[:, RAW_CHANNELS:].reshape(-1, RAW_CHANNELS, self.knots)
        u = torch.sqrt(torch.clamp(base, 0.0, 1.0) + 1e-8)
        curve = log_gain
        for k in range(self.knots):
            hat = torch.relu(1.0 - torch.abs(u * (self.knots - 1) - k))
            curve = curve + coefs[:, :, k, None, None] * hat
        out = base * torch.exp(curve)
        features = torch.cat((F.pixel_unshuffle(rgb, 2), out), dim=1)
        local_gain, offset = torch.split(self.local(features), RAW_CHANNELS, dim=1)
        return out * torch.exp(local_gain) + offset
