"""A small parametric camera ISP in numpy: forward (RAW -> picture), inverse, and sensor noise.

Forward (`render`): make a packed RAW look like a photo for people. The steps are those of a
simple phone pipeline, in the order Brooks et al. model it:

    linearize (black/white levels) -> white balance -> demosaic -> camera-to-sRGB matrix
    -> sRGB gamma -> tone curve (smoothstep) -> uint8

Inverse (`unprocess`): Brooks, Mildenhall, Xue, Chen, Sharlet, Barron, "Unprocessing Images
for Learned Raw Denoising", CVPR 2019. Each forward step is undone in reverse order and the
result is sampled onto the Bayer grid; `render` with the same white balance and exposure is
its inverse up to the demosaicing loss and highlight clipping.

Noise (`add_noise`): heteroscedastic Gaussian shot + read noise with the camera's variance
model, the usual stand-in for Poisson-Gaussian sensor noise.

Every array here is float32; packed RAW is (H, W, 4) in canonical R, Gr, Gb, B order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

import cv2
import numpy as np

from rgb2raw import bayer
from rgb2raw.cameras import CameraProfile

WhiteBalance: TypeAlias = Literal["auto", "camera"] | Sequence[float]
Exposure: TypeAlias = float | Literal["auto"]

# Gains outside this range are not plausible for daylight-to-tungsten scenes on a phone sensor;
# gray-world on a scene dominated by one colour would otherwise produce extreme casts.
_WB_GAIN_RANGE = (0.5, 5.0)
# Brooks et al.'s highlight protection starts at this (gray) level: above it the inverse gain
# fades towards 1 so that bright whites stay bright in every RAW channel.
HIGHLIGHT_KNEE = 0.9
# Auto exposure brightens at most this many stops (phone RAW can be very dark) and never darkens.
_AUTO_EXPOSURE_MAX_EV = 3.0
_AUTO_EXPOSURE_MEAN = 0.15  # linear mean it aims for: a little under 18 % mid-grey
# Auto white balance moves only this far (in log gain) from the camera's daylight gains towards
# the gray-world estimate. Full gray-world bleaches scenes that really are coloured (a beige
# wall turns white); phone AWB also adapts only partially, keeping some of the scene's mood.
_AUTO_WB_STRENGTH = 0.75


# ---------------------------------------------------------------------------------------------
# Elementary steps (forward and inverse)
# ---------------------------------------------------------------------------------------------


def linearize(packed_dn: np.ndarray, camera: CameraProfile) -> np.ndarray:
    """Map RAW in DN to a linear [0, 1] signal with the camera's black and white levels."""
    span = np.float32(camera.white_level - camera.black_level)
    signal = (np.asarray(packed_dn, dtype=np.float32) - np.float32(camera.black_level)) / span
    return np.clip(signal, 0.0, 1.0)


def to_dn(packed01: np.ndarray, camera: CameraProfile) -> np.ndarray:
    """Map a linear [0, 1] signal to DN: black + v * (white - black), float32, not rounded."""
    span = np.float32(camera.white_level - camera.black_level)
    return np.asarray(packed01, dtype=np.float32) * span + np.float32(camera.black_level)


def demosaic(packed: np.ndarray) -> np.ndarray:
    """Interpolate packed (H, W, 4) planes in [0, 1] to a full (2H, 2W, 3) RGB image.

    Uses OpenCV's edge-aware Bayer interpolation on 16-bit data (OpenCV's Bayer conversions
    only take 8- or 16-bit input, and 16 bits keep 10-bit RAW lossless). Values are clipped to
    [0, 1] first. The two greens are both used as measured: no green-imbalance correction.
    """
    mosaic = bayer.unpack(np.clip(packed, 0.0, 1.0).astype(np.float32), "RGGB")
    mosaic16 = np.rint(mosaic * 65535.0).astype(np.uint16)
    # OpenCV names Bayer layouts after the 2x2 block starting at row 1, column 1, so an RGGB
    # mosaic is its "BG" pattern (tests check this with a coloured image).
    rgb16 = cv2.cvtColor(mosaic16, cv2.COLOR_BayerBG2RGB_EA)
    return rgb16.astype(np.float32) / np.float32(65535.0)


def white_balance(image: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """Multiply by per-channel gains (R, G, B); packed input uses G's gain for both greens."""
    r, g, b = (float(x) for x in gains)
    if image.shape[-1] == 4:
        scale = np.array([r, g, g, b], dtype=np.float32)
    elif image.shape[-1] == 3:
        scale = np.array([r, g, b], dtype=np.float32)
    else:
        raise ValueError(f"white balance needs 3 or 4 channels, got shape {image.shape}")
    return image.astype(np.float32) * scale


def apply_ccm(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 colour matrix to every pixel: out = matrix @ pixel."""
    return np.einsum("...c,dc->...d", rgb.astype(np.float32), np.asarray(matrix, np.float32))


def srgb_gamma(linear: np.ndarray) -> np.ndarray:
    """Encode linear [0, 1] values with the sRGB transfer curve (IEC 61966-2-1)."""
    x = np.clip(linear, 0.0, 1.0).astype(np.float32)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(
        np.float32
    )


def inverse_srgb_gamma(encoded: np.ndarray) -> np.ndarray:
    """Decode sRGB-encoded [0, 1] values to linear light."""
    y = np.clip(encoded, 0.0, 1.0).astype(np.float32)
    return np.where(y <= 0.04045, y / 12.92, np.power((y + 0.055) / 1.055, 2.4)).astype(
        np.float32
    )


def tone_curve(x: np.ndarray) -> np.ndarray:
    """The smoothstep 3x^2 - 2x^3 that Brooks et al. use as a generic global tone curve.

    It adds the mild S-shaped contrast most camera pipelines apply after gamma.
    """
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    return (3.0 * x * x - 2.0 * x * x * x).astype(np.float32)


def inverse_tone_curve(y: np.ndarray) -> np.ndarray:
    """Closed-form inverse of the smoothstep on [0, 1]: 0.5 - sin(asin(1 - 2y) / 3)."""
    y = np.clip(y, 0.0, 1.0).astype(np.float32)
    return (0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)).astype(np.float32)


def safe_inverse_gains(rgb_linear: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """Divide an (..., 3) linear image by white-balance gains, sparing the highlights.

    A plain division would turn a clipped white (1, 1, 1) into (1/g_r, 1, 1/g_b): a RAW whose
    red channel is far below saturation where the real sensor was saturated, so the forward
    white balance could never clip it back to white. Following Brooks et al., the inverse gain
    is blended towards 1 for pixels whose mean is above a knee (0.9), quadratically, and never
    made smaller than the plain inverse gain.
    """
    inverse = 1.0 / np.asarray(gains, dtype=np.float32)
    gray = rgb_linear.mean(axis=-1, keepdims=True)
    weight = np.square(np.clip((gray - HIGHLIGHT_KNEE) / (1.0 - HIGHLIGHT_KNEE), 0.0, 1.0))
    safe = np.maximum(weight + (1.0 - weight) * inverse, inverse)
    return (rgb_linear * safe).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Estimating render settings
# ---------------------------------------------------------------------------------------------


def estimate_wb_gains(packed01: np.ndarray) -> tuple[float, float, float]:
    """Gray-world white balance gains (R, G, B), G = 1, estimated on linear packed RAW.

    Robust version: only pixels that are neither near black (noise, black-level error) nor
    near saturation (clipped channels have lost their colour) vote, and the result is limited
    to a plausible range. Falls back to all pixels if too few qualify.
    """
    planes = packed01.reshape(-1, 4).astype(np.float64)
    rgb = np.stack([planes[:, 0], 0.5 * (planes[:, 1] + planes[:, 2]), planes[:, 3]], axis=1)
    brightest = rgb.max(axis=1)
    usable = (brightest < 0.95) & (rgb.min(axis=1) > 0.002)
    if usable.sum() < max(16, rgb.shape[0] // 100):
        usable = np.ones(rgb.shape[0], dtype=bool)
    means = rgb[usable].mean(axis=0)
    if means.min() <= 0:
        return (1.0, 1.0, 1.0)
    low, high = _WB_GAIN_RANGE
    red = float(np.clip(means[1] / means[0], low, high))
    blue = float(np.clip(means[1] / means[2], low, high))
    return (red, 1.0, blue)


def resolve_wb_gains(
    packed01: np.ndarray, camera: CameraProfile, wb: WhiteBalance
) -> tuple[float, float, float]:
    """Turn a white-balance choice ("auto", "camera" or explicit gains) into (R, G, B) gains."""
    if isinstance(wb, str):
        if wb == "auto":
            estimate = np.asarray(estimate_wb_gains(packed01))
            prior = np.asarray(camera.wb_gains, dtype=np.float64)
            blended = prior * (estimate / prior) ** _AUTO_WB_STRENGTH
            return (float(blended[0]), 1.0, float(blended[2]))
        if wb == "camera":
            return camera.wb_gains
        raise ValueError(f"unknown white balance {wb!r}; expected 'auto', 'camera' or 3 gains")
    values = [float(x) for x in wb]
    if len(values) != 3 or min(values) <= 0:
        raise ValueError(f"white balance gains must be 3 positive numbers, got {wb!r}")
    return (values[0], values[1], values[2])


def estimate_exposure(packed01: np.ndarray, gains: Sequence[float]) -> float:
    """Auto exposure in EV: brighten dark RAW towards a mid-grey mean, never darken.

    Phone RAW is often exposed to protect highlights and looks dark before the phone's own
    local tone mapping. The gain aims the mean green (after white balance) at 15 %, just under
    the classic 18 % metering target (crops are often of bright walls and sky), but stops where
    the 99th percentile of the brightest channel would pass 0.95, so highlights do not blow
    out; it is at most 3 stops (dark scenes stay dark-ish) and never below 0.
    """
    balanced = white_balance(packed01, gains)
    mean_green = float(balanced[..., 1:3].mean())
    top = float(np.percentile(balanced.max(axis=-1), 99))
    if mean_green <= 1e-6 or top <= 1e-6:
        return 0.0
    stops = min(np.log2(_AUTO_EXPOSURE_MEAN / mean_green), np.log2(0.95 / top))
    return float(np.clip(stops, 0.0, _AUTO_EXPOSURE_MAX_EV))


def resolve_exposure(packed01: np.ndarray, gains: Sequence[float], exposure: Exposure) -> float:
    """Turn an exposure choice (EV stops or "auto") into EV stops."""
    if isinstance(exposure, str):
        if exposure != "auto":
            raise ValueError(f"unknown exposure {exposure!r}; expected 'auto' or a number of stops")
        return estimate_exposure(packed01, gains)
    return float(exposure)


# ---------------------------------------------------------------------------------------------
# The whole pipelines
# ---------------------------------------------------------------------------------------------


def process_linear(
    packed01: np.ndarray, camera: CameraProfile, *, gains: Sequence[float], exposure_ev: float
) -> np.ndarray:
    """Forward ISP on linear packed [0, 1] RAW with fixed settings -> float (2H, 2W, 3) sRGB."""
    balanced = np.clip(white_balance(packed01, gains) * np.float32(2.0**exposure_ev), 0.0, 1.0)
    camera_rgb = demosaic(balanced)
    linear_srgb = np.clip(apply_ccm(camera_rgb, camera.cam_to_rgb), 0.0, 1.0)
    return tone_curve(srgb_gamma(linear_srgb))


def render(
    packed_dn: np.ndarray,
    camera: CameraProfile,
    *,
    wb: WhiteBalance = "auto",
    exposure: Exposure = "auto",
) -> np.ndarray:
    """Render packed RAW in DN as an 8-bit (2H, 2W, 3) RGB picture for people to look at.

    `wb`: "auto" (robust gray world on the RAW, partially adapted from the profile's daylight
    gains), "camera" (the daylight gains) or explicit (R, G, B) gains. `exposure`: stops of extra brightness, or "auto" to brighten dark
    RAW. To compare two RAW images fairly, resolve the settings on one of them with
    `resolve_wb_gains` / `resolve_exposure` and pass the numbers to both renders.
    """
    linear = linearize(packed_dn, camera)
    gains = resolve_wb_gains(linear, camera, wb)
    exposure_ev = resolve_exposure(linear, gains, exposure)
    picture = process_linear(linear, camera, gains=gains, exposure_ev=exposure_ev)
    return np.clip(np.rint(picture * 255.0), 0, 255).astype(np.uint8)


def unprocess_rgb(
    rgb01: np.ndarray,
    camera: CameraProfile,
    *,
    wb_gains: Sequence[float] | None = None,
    exposure_ev: float = 0.0,
    protect_highlights: bool = True,
) -> np.ndarray:
    """The inverse ISP without the final mosaic: sRGB [0, 1] (H, W, 3) -> linear camera RGB.

    `render` undoes it exactly (before demosaicing) wherever nothing clips.
    """
    if rgb01.ndim != 3 or rgb01.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb01.shape}")
    gains = camera.wb_gains if wb_gains is None else tuple(wb_gains)
    linear_srgb = inverse_srgb_gamma(inverse_tone_curve(rgb01))
    # Clipping after the inverse matrix: saturated sRGB colours can fall outside the camera's
    # gamut in the negative direction, which a sensor cannot record.
    camera_rgb = np.clip(apply_ccm(linear_srgb, camera.rgb_to_cam), 0.0, 1.0)
    if protect_highlights:
        raw_rgb = safe_inverse_gains(camera_rgb, gains)
    else:
        raw_rgb = camera_rgb / np.asarray(gains, dtype=np.float32)
    return np.clip(raw_rgb * np.float32(2.0**-exposure_ev), 0.0, 1.0).astype(np.float32)


def unprocess(
    rgb01: np.ndarray,
    camera: CameraProfile,
    *,
    wb_gains: Sequence[float] | None = None,
    exposure_ev: float = 0.0,
    protect_highlights: bool = True,
) -> np.ndarray:
    """Brooks et al.'s parametric inverse ISP: sRGB (2H, 2W, 3) in [0, 1] -> packed RGGB [0, 1].

    Inverse tone curve, inverse sRGB gamma, sRGB -> camera matrix, inverse white balance
    (with highlight protection), optional darkening by `exposure_ev` stops, then Bayer
    sampling. `wb_gains` default to the profile's daylight gains. Use `to_dn` for DN values.
    """
    if rgb01.shape[0] % 2 or rgb01.shape[1] % 2:
        raise ValueError(f"unprocess needs even image sides, got shape {rgb01.shape}")
    raw_rgb = unprocess_rgb(
        rgb01, camera, wb_gains=wb_gains, exposure_ev=exposure_ev,
        protect_highlights=protect_highlights,
    )
    return bayer.mosaic_rgb(raw_rgb)


def add_noise(
    packed01: np.ndarray,
    camera: CameraProfile,
    *,
    iso: float | None = None,
    rng: np.random.Generator,
    clip: bool = True,
) -> np.ndarray:
    """Add shot + read noise to linear [0, 1] RAW with the camera's variance at `iso`.

    The variance is `camera.noise_variance(x, iso)` evaluated on the clean signal; the
    Gaussian approximation of Poisson shot noise is accurate at the photon counts of these
    sensors. `clip` keeps the result in [0, 1] like a sensor's range (it biases the mean very
    near 0 and 1, as real clipped data does).
    """
    clean = np.asarray(packed01, dtype=np.float32)
    sigma = np.sqrt(camera.noise_variance(clean, iso)).astype(np.float32)
    noisy = clean + sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    return np.clip(noisy, 0.0, 1.0) if clip else noisy
