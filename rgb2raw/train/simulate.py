"""A camera simulation that turns ordinary photos into (JPEG, RAW) training and test pairs.

The photo stands for what a phone's ISP would have produced. We invert a randomised ISP to get
a plausible RAW, add sensor noise, and render that RAW forward again through an ISP with
demosaicing and real JPEG compression, so the pair's JPEG carries the artefacts a reverse ISP
meets in practice (demosaic, noise, quantisation, JPEG blocks) and its RAW is exactly known.

Per pair, drawn from `SimulationRanges` with the caller's generator:

- a **tone** perturbation: the scene is raised to a power gamma before unprocessing and the
  rendered picture to 1/gamma after, so each pair's tone curve differs from the fixed one;
- **white balance**: the camera's daylight gains times a log-uniform factor per red and blue
  (the illuminant); the forward ISP uses them with a small auto-white-balance error;
- **exposure**: the RAW is darker than the picture by a uniform number of stops; the forward
  ISP brightens it back with a small auto-exposure error;
- **noise**: shot + read noise of the camera profile at a log-uniform ISO;
- **JPEG** quality, uniform in a range (OpenCV's encoder, 4:2:0 chroma subsampling).

With probability `SimulationRanges.plain_probability` a pair is instead made with exactly the
assumptions of the parametric inverse ISP (tone unchanged, the camera's daylight white balance,
no exposure change and no auto-exposure or white-balance error, the lowest ISO of the range);
only its JPEG quality is still drawn. `REGIMES` names the ranges the benchmark and training use.

The unprocessing, noise and forward steps are `rgb2raw.isp`'s; only the randomisation is here.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rgb2raw import isp
from rgb2raw.cameras import CameraProfile


@dataclass(frozen=True)
class SimulationRanges:
    """The ranges each simulated pair's ISP settings are drawn from (see the module docstring)."""

    gamma: tuple[float, float] = (0.8, 1.25)
    wb_log_jitter: float = 0.3  # red and blue gains times exp(U(-j, j))
    exposure_ev: tuple[float, float] = (0.0, 1.5)
    awb_error: float = 0.05  # forward gains times exp(U(-e, e))
    ae_error_ev: float = 0.1
    iso: tuple[float, float] = (50.0, 800.0)
    jpeg_quality: tuple[int, int] = (85, 98)
    plain_probability: float = 0.0  # share of pairs made in the parametric regime (see above)


DEFAULT_RANGES = SimulationRanges()
# Named simulation regimes. "default", "parametric" and "harsh" are benchmark regimes (the
# parametric one is exactly what `ParametricInverseISP` assumes; "harsh" has stronger JPEG
# compression, more noise and a milder tone/white-balance/exposure spread); "broad" is a
# training distribution: half the pairs in the parametric regime, half from wide ranges that
# cover the other two.
REGIMES: dict[str, SimulationRanges] = {
    "default": DEFAULT_RANGES,
    "parametric": SimulationRanges(gamma=(1.0, 1.0), wb_log_jitter=0.0, exposure_ev=(0.0, 0.0),
                                   awb_error=0.0, ae_error_ev=0.0, iso=(50.0, 50.0)),
    "harsh": SimulationRanges(gamma=(0.9, 1.1), wb_log_jitter=0.15, exposure_ev=(0.0, 1.0),
                              awb_error=0.08, ae_error_ev=0.15, iso=(200.0, 1600.0),
                              jpeg_quality=(60, 80)),
    "broad": SimulationRanges(gamma=(0.75, 1.3), wb_log_jitter=0.35, exposure_ev=(0.0, 2.0),
                              awb_error=0.08, ae_error_ev=0.15, iso=(50.0, 1600.0),
                              jpeg_quality=(60, 98), plain_probability=0.5),
}


@dataclass(frozen=True)
class SimulatedSettings:
    """The settings one pair was made with (for tests and benchmark records)."""

    gamma: float
    wb_gains: tuple[float, float, float]
    exposure_ev: float
    render_gains: tuple[float, float, float]
    render_ev: float
    iso: float
    jpeg_quality: int


def draw_settings(camera: CameraProfile, rng: np.random.Generator,
                  ranges: SimulationRanges = DEFAULT_RANGES) -> SimulatedSettings:
    """Draw one pair's ISP settings from `ranges`."""
    # Only a mixture draws its extra number, so pairs of plain ranges stay as they always were.
    if ranges.plain_probability > 0 and rng.uniform() < ranges.plain_probability:
        quality = int(rng.integers(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1))
        return SimulatedSettings(1.0, camera.wb_gains, 0.0, camera.wb_gains, 0.0,
                                 float(ranges.iso[0]), quality)
    gamma = float(rng.uniform(*ranges.gamma))
    red, _, blue = camera.wb_gains
    jitter = np.exp(rng.uniform(-ranges.wb_log_jitter, ranges.wb_log_jitter, size=2))
    gains = (float(red * jitter[0]), 1.0, float(blue * jitter[1]))
    error = np.exp(rng.uniform(-ranges.awb_error, ranges.awb_error, size=2))
    render_gains = (gains[0] * float(error[0]), 1.0, gains[2] * float(error[1]))
    exposure_ev = float(rng.uniform(*ranges.exposure_ev))
    render_ev = exposure_ev + float(rng.uniform(-ranges.ae_error_ev, ranges.ae_error_ev))
    low, high = np.log(ranges.iso[0]), np.log(ranges.iso[1])
    iso = float(np.exp(rng.uniform(low, high)))
    quality = int(rng.integers(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1))
    return SimulatedSettings(gamma, gains, exposure_ev, render_gains, render_ev, iso, quality)


def jpeg_roundtrip(rgb_u8: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB uint8 image as JPEG at `quality` and decode it again (RGB uint8)."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise RuntimeError("OpenCV could not decode the JPEG it encoded")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def simulate_pair(
    photo: np.ndarray,
    camera: CameraProfile,
    rng: np.random.Generator,
    ranges: SimulationRanges = DEFAULT_RANGES,
) -> tuple[np.ndarray, np.ndarray, SimulatedSettings]:
    """Make one (JPEG picture, RAW) pair from a photo.

    `photo`: (2H, 2W, 3) sRGB, uint8 or float in [0, 1]. Returns the decoded JPEG as uint8
    (2H, 2W, 3), the packed RGGB RAW (H, W, 4) as float32 whole digital numbers within the
    camera's [0, white level], and the settings that were drawn.
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.shape[0] % 2 or photo.shape[1] % 2:
        raise ValueError(f"expected an (2H, 2W, 3) photo with even sides, got {photo.shape}")
    scene = photo.astype(np.float32) / 255.0 if photo.dtype == np.uint8 else photo.astype(np.float32)
    settings = draw_settings(camera, rng, ranges)
    toned = np.power(np.clip(scene, 0.0, 1.0), np.float32(settings.gamma))
    clean = isp.unprocess(toned, camera, wb_gains=settings.wb_gains, exposure_ev=settings.exposure_ev)
    noisy = isp.add_noise(clean, camera, iso=settings.iso, rng=rng)
    raw_dn = np.clip(np.rint(isp.to_dn(noisy, camera)), 0.0, camera.white_level).astype(np.float32)

    rendered = isp.process_linear(isp.linearize(raw_dn, camera), camera,
                                  gains=settings.render_gains, exposure_ev=settings.render_ev)
    rendered = np.power(np.clip(rendered, 0.0, 1.0), np.float32(1.0 / settings.gamma))
    picture = np.clip(np.rint(rendered * 255.0), 0, 255).astype(np.uint8)
    return jpeg_roundtrip(picture, settings.jpeg_quality), raw_dn, settings
