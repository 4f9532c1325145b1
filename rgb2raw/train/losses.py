"""Training losses: L1, MSE and a differentiable SSIM, combined by a weight spec.

The SSIM here is for gradients, not for reporting: it uses the same Gaussian window as the
official scorer (sigma 1.5, 13 taps) and constants (K1 0.01, K2 0.03, data range 1), but only
the "valid" part of each image (no border padding). Reported scores always come from
`rgb2raw.metrics`, the official semantics.

A loss spec is a comma-separated list of ``name:weight`` (weight 1 if omitted), e.g.
``l1:1,ssim:0.5``; the terms are L1, MSE and SSIM (which contributes ``1 - SSIM``).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOSS_TERMS = ("l1", "mse", "ssim")
DEFAULT_LOSS = "l1:1,ssim:0.5"

_SIGMA = 1.5
_RADIUS = 6  # 13 taps: scipy's gaussian_filter with truncate=4.0 at sigma 1.5
_C1 = 0.01**2
_C2 = 0.03**2


def parse_loss_spec(spec: str) -> dict[str, float]:
    """``"l1:1,ssim:0.5"`` -> ``{"l1": 1.0, "ssim": 0.5}``; raises ValueError on a bad spec."""
    weights: dict[str, float] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, weight = part.partition(":")
        name = name.strip().lower()
        if name not in LOSS_TERMS:
            raise ValueError(f"unknown loss term {name!r} in {spec!r}; use {', '.join(LOSS_TERMS)}")
        try:
            value = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise ValueError(f"bad weight {weight!r} for {name} in {spec!r}") from None
        if value < 0:
            raise ValueError(f"loss weight for {name} must be >= 0, got {value}")
        weights[name] = value
    if not weights or not any(weights.values()):
        raise ValueError(f"loss spec {spec!r} has no term with a positive weight")
    return weights


def _gaussian_window(channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    taps = torch.arange(-_RADIUS, _RADIUS + 1, device=device, dtype=dtype)
    kernel = torch.exp(-(taps**2) / (2 * _SIGMA**2))
    kernel = kernel / kernel.sum()
    window = kernel[:, None] * kernel[None, :]
    return window.expand(channels, 1, 2 * _RADIUS + 1, 2 * _RADIUS + 1).contiguous()


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of two (N, C, H, W) batches over the valid window positions (differentiable).

    Images smaller than the 13-pixel window are compared with their global statistics.
    """
    channels = prediction.shape[1]
    if min(prediction.shape[-2:]) < 2 * _RADIUS + 1:
        dims = (2, 3)
        mu_x, mu_y = prediction.mean(dims), target.mean(dims)
        var_x = prediction.var(dims, unbiased=False)
        var_y = target.var(dims, unbiased=False)
        cov = ((prediction - mu_x[..., None, None]) * (target - mu_y[..., None, None])).mean(dims)
    else:
        window = _gaussian_window(channels, prediction.device, prediction.dtype)

        def blur(x: torch.Tensor) -> torch.Tensor:
            return F.conv2d(x, window, groups=channels)

        mu_x, mu_y = blur(prediction), blur(target)
        var_x = blur(prediction * prediction) - mu_x * mu_x
        var_y = blur(target * target) - mu_y * mu_y
        cov = blur(prediction * target) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + _C1) * (2 * cov + _C2)
    denominator = (mu_x * mu_x + mu_y * mu_y + _C1) * (var_x + var_y + _C2)
    return (numerator / denominator).mean()


def combined_loss(prediction: torch.Tensor, target: torch.Tensor,
                  weights: dict[str, float]) -> torch.Tensor:
    """The weighted sum of the terms in `weights` (see `parse_loss_spec`)."""
    total = prediction.new_zeros(())
    if weights.get("l1"):
        total = total + weights["l1"] * F.l1_loss(prediction, target)
    if weights.get("mse"):
        total = total + weights["mse"] * F.mse_loss(prediction, target)
    if weights.get("ssim"):
        total = total + weights["ssim"] * (1.0 - ssim(prediction, target))
    return total
