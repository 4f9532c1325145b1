"""`GlobalReverseISP`: a calibrated camera's inverse, corrected per image from global statistics.

What a phone JPEG hides about its RAW is mostly *global*: how many stops the ISP brightened
it, how far its white balance moved from the light, how its tone curve differs from the
camera's usual one. So the network is the calibrated camera's pixel-wise inverse
(`rgb2raw.inverse.InverseParams`: tables, matrix, gains with highlight fade, clip) whose
*parameters* are corrected per image:

1. **statistics** of a point sample of the picture (every `STRIDE`-th pixel in each direction:
   the log mean of each camera channel after the calibrated inverse, soft histograms of that
   green and of the picture's luminance, mid-tone gray-world chroma, channel means, clipped
   share) feed a small MLP;
2. it outputs, per colour, a **log gain** (exposure and white balance) and `knots` values of a
   smooth **log correction of the tone table** (linear interpolation between knots spread
   evenly over the encoded level), so each image gets its own tables and gains;
3. the rest is exactly the calibrated inverse with those tables and gains, pixel by pixel.

Every correction starts at zero, so an untrained network *is* the calibrated camera (equal to
`InverseParams.apply` to float32 rounding). The per-image part sees 1/16 of the pixels and makes
one pass over the 65536-entry tables, so a 12 MP frame costs little more than the calibrated
graph (`rgb2raw.nets.globalnet_graph`; measured in benchmarks/results/quality-learned.md). The statistics are means over the whole frame, so the model declares ``full_frame``
(tiles would see other statistics); they are point samples, means and histograms, so they do
not depend on the frame's resolution (trained on small views, run on 12 MP frames).

Contract: input ``(N, 3, H, W)`` sRGB in [0, 1], H and W even; output ``(N, 4, H/2, W/2)``
packed R, Gr, Gb, B in [0, 1] between the calibrated camera's black and white levels (lens
shading, if the camera has it, is applied by the engine from the model card).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

HIST_BINS = 12
STRIDE = 4
LEVELS = 65536
SITE_CHANNELS = (0, 1, 1, 2)  # packed R, Gr, Gb, B take camera R, G, G, B


def _soft_histogram(values: torch.Tensor, bins: int) -> torch.Tensor:
    """(N, P) in [0, 1] -> (N, bins): share of values near each of `bins` centres."""
    parts = []
    for k in range(bins):
        weight = torch.relu(1.0 - torch.abs(values * (bins - 1) - k))
        parts.append(weight.mean(dim=1))
    return torch.stack(parts, dim=1)


class GlobalReverseISP(nn.Module):
    """sRGB (N, 3, H, W) -> packed RAW (N, 4, H/2, W/2); see the module docstring.

    `tables` (3, 65536), `matrix` (3, 3), `gains` and `highlight_gains` (3,), `knee`: the
    calibrated `InverseParams` (arrays; `from_params` builds one from the object); without
    them, `camera` names the bundled ``calibrated-<camera>`` to start from (a checkpoint's
    buffers replace whatever the constructor loaded).
    """

    size_multiple = 2
    full_frame = True

    tables: torch.Tensor
    matrix: torch.Tensor
    gains: torch.Tensor
    highlight_gains: torch.Tensor

    def __init__(self, tables: Any = None, matrix: Any = None, gains: Any = None,
                 highlight_gains: Any = None, knee: float = 0.9, hidden: int = 64,
                 knots: int = 12, camera: str | None = None) -> None:
        super().__init__()
        if tables is None and camera is not None:  # the bundled calibrated-<camera>
            from rgb2raw.nets.build_defaults import load_calibration
            from rgb2raw.zoo import models_dir

            params, _ = load_calibration(models_dir() / f"calibrated-{camera}.npz")
            tables, matrix, gains = params.tables, params.matrix, params.gains
            highlight_gains, knee = params.highlight_gains, params.knee
        if tables is None:  # a placeholder; load_state_dict fills the real buffers in
            tables = torch.linspace(0.0, 1.0, LEVELS).repeat(3, 1)
        self.register_buffer("tables", torch.as_tensor(tables, dtype=torch.float32).reshape(3, LEVELS).clone())
        self.register_buffer("matrix", torch.as_tensor(
            torch.eye(3) if matrix is None else matrix, dtype=torch.float32).reshape(3, 3).clone())
        self.register_buffer("gains", torch.as_tensor(
            [1.0, 1.0, 1.0] if gains is None else gains, dtype=torch.float32).reshape(3).clone())
        self.register_buffer("highlight_gains", torch.as_tensor(
            [1.0, 1.0, 1.0] if highlight_gains is None else highlight_gains,
            dtype=torch.float32).reshape(3).clone())
        self.knee = float(knee)
        self.knots = int(knots)
        features = 3 + 2 * HIST_BINS + 2 + 3 + 1
        self.mlp = nn.Sequential(
            nn.Linear(features, hidden), nn.LeakyReLU(0.1),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.1),
            nn.Linear(hidden, 3 * (1 + self.knots)),
        )
        final = self.mlp[-1]
        assert isinstance(final, nn.Linear)
        with torch.no_grad():
            nn.init.zeros_(final.weight)
            nn.init.zeros_(final.bias)

    @classmethod
    def from_params(cls, params: Any, **kwargs: Any) -> GlobalReverseISP:
        return cls(tables=params.tables, matrix=params.matrix, gains=params.gains,
                   highlight_gains=params.highlight_gains, knee=params.knee, **kwargs)

    # -- the calibrated inverse with per-image tables and gains -------------------------------

    def _camera(self, rgb: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
        """(N, 3, P) encoded -> (N, 3, P) camera RGB in [0, 1] through per-image tables."""
        n, _, points = rgb.shape
        level = (torch.clamp(rgb, 0.0, 1.0) * (LEVELS - 1) + 0.5).to(torch.int64)
        offsets = (torch.arange(3, device=rgb.device) * LEVELS).reshape(1, 3, 1)
        index = (level + offsets).reshape(n, 3 * points)
        linear = torch.gather(tables.reshape(n, 3 * LEVELS), 1, index).reshape(n, 3, points)
        return torch.clamp(torch.matmul(self.matrix, linear), 0.0, 1.0)

    def _weight(self, camera: torch.Tensor) -> torch.Tensor:
        """(N, 3, ...) camera RGB -> (N, 1, ...) highlight-fade weight in [0, 1]."""
        return torch.clamp((camera.mean(dim=1, keepdim=True) - self.knee) / (1.0 - self.knee),
                           0.0, 1.0) ** 2

    def _gained(self, camera: torch.Tensor, gains: torch.Tensor,
                highlight: torch.Tensor) -> torch.Tensor:
        """(N, 3, P) camera RGB -> gains with the highlight fade, clipped (all three colours)."""
        gain = gains[:, :, None] + self._weight(camera) * (highlight - gains)[:, :, None]
        return torch.clamp(camera * gain, 0.0, 1.0)

    def statistics(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, features) image-level statistics of a point sample (module docstring)."""
        sample = rgb[:, :, ::STRIDE, ::STRIDE].reshape(rgb.shape[0], 3, -1)
        n = rgb.shape[0]
        base_tables = self.tables.unsqueeze(0).expand(n, 3, LEVELS)
        gains = self.gains.unsqueeze(0).expand(n, 3)
        highlight = self.highlight_gains.unsqueeze(0).expand(n, 3)
        base = self._gained(self._camera(sample, base_tables), gains, highlight)
        eps = 1e-4
        log_means = torch.log(base.mean(dim=2) + eps)
        base_hist = _soft_histogram(torch.sqrt(base[:, 1] + 1e-8), HIST_BINS)
        picture = torch.clamp(sample, 0.0, 1.0)
        luma = 0.2126 * picture[:, 0] + 0.7152 * picture[:, 1] + 0.0722 * picture[:, 2]
        luma_hist = _soft_histogram(luma, HIST_BINS)
        # Gray world of the picture over mid-tones: a partial white balance leaves a cast.
        weight = torch.relu(1.0 - torch.abs(luma - 0.45) * 2.5)
        total = weight.sum(dim=1) + eps
        log_picture = torch.log(picture + 0.01)
        chroma = torch.stack([
            ((log_picture[:, 0] - log_picture[:, 1]) * weight).sum(dim=1) / total,
            ((log_picture[:, 2] - log_picture[:, 1]) * weight).sum(dim=1) / total,
        ], dim=1)
        clipped = (torch.relu(picture.amax(dim=1) - 0.97) * 33.0).mean(dim=1)
        return torch.cat([log_means, base_hist, luma_hist, chroma, picture.mean(dim=2),
                          clipped[:, None]], dim=1)

    def corrections(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-image (tables (N, 3, 65536), gains (N, 3), highlight gains (N, 3))."""
        params = self.mlp(self.statistics(rgb))
        n = rgb.shape[0]
        log_gain = params[:, :3]
        knots = params[:, 3:].reshape(n, 3, 1, self.knots)
        # Linear interpolation between knots at encoded levels k / (knots - 1).
        curve = F.interpolate(knots, size=(1, LEVELS), mode="bilinear", align_corners=True)
        tables = self.tables.unsqueeze(0) * torch.exp(curve.reshape(n, 3, LEVELS))
        scale = torch.exp(log_gain)
        return tables, self.gains * scale, self.highlight_gains * scale

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        tables, gains, highlight = self.corrections(rgb)
        n, _, height, width = rgb.shape
        # (N, 3, H, W) -> (N, 3, 4, h * w): the four sites of each 2x2 block, per colour.
        blocks = F.pixel_unshuffle(rgb, 2).reshape(n, 3, 4 * (height // 2) * (width // 2))
        camera = self._camera(blocks, tables).reshape(n, 3, 4, height // 2, width // 2)
        weight = self._weight(camera)[:, 0]  # (N, 4, h, w): the fade needs all three colours
        # Each Bayer site keeps only its own colour: the gains act on that one alone.
        own = torch.stack([camera[:, colour, site] for site, colour in enumerate(SITE_CHANNELS)],
                          dim=1)
        site_gains = gains[:, list(SITE_CHANNELS), None, None]
        site_rise = (highlight - gains)[:, list(SITE_CHANNELS), None, None]
        return torch.clamp(own * (site_gains + weight * site_rise), 0.0, 1.0)
