"""A fixed, parametric inverse ISP as a torch module: the offline default model of each camera.

Nothing here is learned. The module computes exactly `rgb2raw.isp.unprocess(rgb, camera)`
(Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019), in torch so that
it exports to an ONNX graph the same engine runs as any trained network:

    inverse smoothstep tone curve -> inverse sRGB gamma -> linear sRGB to camera RGB (clipped)
    -> inverse white balance with highlight protection (clipped) -> sample onto RGGB

with the camera profile's daylight white-balance gains and D65 colour matrix. Every clip and
constant mirrors `rgb2raw.isp`, so the numpy and torch versions agree to float32 rounding.

Contract of `ParametricInverseISP.forward`:
- input: ``(N, 3, H, W)`` float32 sRGB in [0, 1] (values outside are clipped), H and W even;
- output: ``(N, 4, H/2, W/2)`` packed RAW, channels R, Gr, Gb, B, linear in [0, 1] between the
  camera's black level (0) and white level (1).

What it cannot do: the white balance, exposure and tone curve are fixed, so it cannot undo a
phone's per-image auto white balance or local tone mapping, nor restore the noise its
denoiser removed or the vignetting its lens-shading correction flattened.
"""

from __future__ import annotations

import torch
from torch import nn

from rgb2raw.cameras import CameraProfile

# The constants of `rgb2raw.isp` (sRGB transfer curve, IEC 61966-2-1, and Brooks et al.'s
# highlight knee), imported rather than repeated so the two versions cannot drift apart.
from rgb2raw.isp import HIGHLIGHT_KNEE

SRGB_LINEAR_THRESHOLD = 0.04045  # encoded value below which the sRGB curve is linear
SRGB_LINEAR_SLOPE = 12.92
SRGB_OFFSET = 0.055
SRGB_SCALE = 1.055
SRGB_EXPONENT = 2.4


class ParametricInverseISP(nn.Module):
    """sRGB picture -> packed linear RAW for one camera profile, with no learned weights.

    The sRGB-to-camera matrix and the inverse white-balance gains are float32 buffers, so they
    travel with the state dict and become constants of an exported ONNX graph.
    """

    #: Input height and width must be multiples of this (one 2x2 Bayer block per RAW pixel).
    size_multiple = 2

    rgb_to_cam: torch.Tensor
    inverse_gains: torch.Tensor

    def __init__(self, camera: CameraProfile) -> None:
        super().__init__()
        self.camera_name = camera.name
        # Cast to float32 before inverting the gains, as `isp.safe_inverse_gains` does.
        gains = torch.tensor(camera.wb_gains, dtype=torch.float32)
        self.register_buffer("rgb_to_cam", torch.tensor(camera.rgb_to_cam, dtype=torch.float32))
        self.register_buffer("inverse_gains", (1.0 / gains).reshape(1, 3, 1, 1))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        camera_rgb = self.unprocess_rgb(rgb)
        # Keep each Bayer site's own colour: R at (0, 0), G at (0, 1) and (1, 0), B at (1, 1).
        return torch.cat(
            [
                camera_rgb[:, 0:1, 0::2, 0::2],
                camera_rgb[:, 1:2, 0::2, 1::2],
                camera_rgb[:, 1:2, 1::2, 0::2],
                camera_rgb[:, 2:3, 1::2, 1::2],
            ],
            dim=1,
        )

    def unprocess_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """Every step but the mosaic: (N, 3, H, W) sRGB -> linear camera RGB in [0, 1]."""
        # Inverse of the smoothstep tone curve 3x^2 - 2x^3 on [0, 1].
        y = torch.clamp(rgb, 0.0, 1.0)
        tone = 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)
        # Inverse sRGB transfer curve.
        encoded = torch.clamp(tone, 0.0, 1.0)
        linear = torch.where(
            encoded <= SRGB_LINEAR_THRESHOLD,
            encoded / SRGB_LINEAR_SLOPE,
            torch.pow((encoded + SRGB_OFFSET) / SRGB_SCALE, SRGB_EXPONENT),
        )
        # Linear sRGB -> camera RGB; a sensor records no negative light, hence the clip.
        camera_rgb = torch.clamp(torch.einsum("nchw,dc->ndhw", linear, self.rgb_to_cam), 0.0, 1.0)
        # Inverse white balance, fading to gain 1 above the highlight knee (Brooks et al.) so a
        # clipped white stays saturated in every RAW channel.
        gray = camera_rgb.mean(dim=1, keepdim=True)
        weight = torch.square(
            torch.clamp((gray - HIGHLIGHT_KNEE) / (1.0 - HIGHLIGHT_KNEE), 0.0, 1.0)
        )
        safe_gains = torch.maximum(weight + (1.0 - weight) * self.inverse_gains, self.inverse_gains)
        return torch.clamp(camera_rgb * safe_gains, 0.0, 1.0)
