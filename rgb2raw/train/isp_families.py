"""A broad phone-camera simulation centred on a calibrated camera, organised in ISP families.

A photo stands for a scene. `simulate` turns it into a (JPEG, RAW) pair in two halves:

**Sensor** (the same for every family; what a real RAW records):
- the photo is unprocessed to linear camera RGB (Brooks et al.'s inverse tone curve and sRGB
  gamma, the camera's sRGB -> camera matrix), after a random power (photos differ in tone);
- an illuminant along the warm-cool locus (with a little tint) colours the scene;
- sensor auto exposure sets the RAW level: the *centre* is the calibrated camera (`CENTRES`:
  the formula's output times gains measured on the real phone figures), and the RAW is brighter
  than the centre for darker scenes and darker for brighter ones by a random share `alpha` of
  the scene's log brightness relative to the real S7 figure's (phones neither fully normalise
  nor ignore scene brightness), plus a random error, and is pulled down when the scene's
  highlights would clip (HDR scenes get darker RAW);
- shot + read noise of the camera profile at a log-uniform ISO, then 10-bit DN.

**ISP** (what a phone makes of that RAW; the family's part): optional RAW-domain denoising,
white balance that adapts only partly to the illuminant, digital gain undoing the sensor
exposure (with an auto-exposure error), a demosaic, the colour matrix, the family's tone
curve (global curves, or local tone mapping), saturation, sharpening, chroma or bilateral
denoising, and JPEG at a quality in the family's range.

`FAMILIES` names the ISPs; `TRAIN_FAMILIES` / `HELD_OUT_FAMILIES` split them so that whole
families (tone operator and pipeline) can be kept out of training and used only to evaluate.
Everything is numpy + OpenCV and seeded by the caller's generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import cv2
import numpy as np

from rgb2raw import bayer, isp
from rgb2raw.cameras import CameraProfile, get_camera
from rgb2raw.inverse import InverseParams
from rgb2raw.train.simulate import jpeg_roundtrip

Demosaic = Literal["ea", "bilinear", "binning"]
Denoise = Literal["none", "raw", "chroma", "bilateral"]
Tone = Literal["brooks", "filmic", "reinhard", "gamma", "aces", "local"]


@dataclass(frozen=True)
class CameraCentre:
    """The calibrated camera the simulation is centred on.

    `gains` multiply the formula's (`InverseParams.from_camera`) linear R, G, B output: the
    measured levels of the real figures (issue 9: S7, one global 0.39 reaches 31.6 dB on the
    S7 figure; P20, per-channel gains 0.44, 0.52, 0.58 above the 60 DN pedestal reach 29.2 dB).
    `reference_green` is the formula's mean green on the real S7 figure's JPEG (the real RAW's
    mean green 0.079 / 0.39): a scene that bright gets exactly the centre exposure.
    """

    camera: str
    gains: tuple[float, float, float]
    reference_green: float = 0.2

    def inverse(self) -> InverseParams:
        """The centre as a pixel-wise inverse ISP (the stand-in for the calibrated camera)."""
        base = InverseParams.from_camera(get_camera(self.camera))
        scale = np.asarray(self.gains, dtype=np.float32)
        return InverseParams(tables=base.tables, matrix=base.matrix, gains=base.gains * scale,
                             highlight_gains=base.highlight_gains * scale, knee=base.knee,
                             black_level=base.black_level, white_level=base.white_level,
                             info={"kind": "formula x measured gains", "camera": self.camera,
                                   "gains": list(self.gains)})


CENTRES: dict[str, CameraCentre] = {
    "s7": CameraCentre("s7", (0.39, 0.39, 0.39)),
    "p20": CameraCentre("p20", (0.44, 0.52, 0.58)),
}


@dataclass(frozen=True)
class SensorRanges:
    """Sensor-side priors shared by every family."""

    photo_gamma: tuple[float, float] = (0.85, 1.2)
    illuminant_sigma: float = 0.2  # log red gain ~ N(0, s); log blue moves -0.8x as far
    tint_sigma: float = 0.04
    alpha: tuple[float, float] = (0.2, 0.6)  # share of scene brightness the AE leaves in the RAW
    exposure_sigma_ev: float = 0.25  # unexplained AE spread
    headroom: tuple[float, float] = (0.9, 1.3)  # the 99.5th percentile may reach this
    iso: tuple[float, float] = (50.0, 200.0)


@dataclass(frozen=True)
class IspFamily:
    """One phone ISP: its tone operator and the ranges of its other steps."""

    name: str
    tone: Tone
    tone_param: tuple[float, float]  # the operator's one free parameter (see `_tone`)
    demosaic: tuple[Demosaic, ...]
    denoise: tuple[Denoise, ...]
    sharpen: tuple[float, float]  # unsharp-mask amount
    saturation: tuple[float, float]
    awb_adaptation: tuple[float, float]  # 1: white balance fully undoes the illuminant
    ae_error_ev: float
    jpeg_quality: tuple[int, int]
    iso: tuple[float, float] | None = None  # overrides SensorRanges.iso


FAMILIES: dict[str, IspFamily] = {f.name: f for f in (
    # The formula's own forward model (smoothstep after sRGB), clean.
    IspFamily("brooks", "brooks", (0.9, 1.1), ("ea",), ("none",), (0.0, 0.2), (1.0, 1.05),
              (0.7, 0.95), 0.1, (85, 98)),
    IspFamily("filmic", "filmic", (2.2, 3.6), ("bilinear", "ea"), ("chroma",), (0.2, 0.6),
              (1.0, 1.15), (0.6, 0.9), 0.15, (80, 95)),
    IspFamily("reinhard", "reinhard", (0.8, 1.6), ("ea",), ("raw", "none"), (0.3, 0.8),
              (0.95, 1.1), (0.6, 0.9), 0.15, (75, 95)),
    IspFamily("gamma", "gamma", (2.0, 2.6), ("binning", "ea"), ("none", "chroma"), (0.5, 1.0),
              (1.0, 1.2), (0.7, 0.95), 0.15, (85, 98)),
    # Held out of training by default: their tone operators are seen only in evaluation.
    IspFamily("aces", "aces", (0.45, 0.75), ("ea",), ("bilateral",), (0.4, 0.8), (1.05, 1.25),
              (0.6, 0.9), 0.15, (70, 92), iso=(50.0, 320.0)),
    IspFamily("local", "local", (0.5, 0.8), ("bilinear",), ("chroma", "bilateral"), (0.5, 1.0),
              (1.0, 1.2), (0.6, 0.9), 0.15, (80, 95), iso=(50.0, 320.0)),
)}
HELD_OUT_FAMILIES: tuple[str, ...] = ("aces", "local")
TRAIN_FAMILIES: tuple[str, ...] = tuple(n for n in FAMILIES if n not in HELD_OUT_FAMILIES)


@dataclass(frozen=True)
class PairSettings:
    """What one pair was made with (for records and tests)."""

    family: str
    photo_gamma: float
    illuminant: tuple[float, float, float]  # white-balance gains of the scene's light, G = 1
    exposure_ev: float  # RAW level relative to the centre, in stops
    iso: float
    awb_gains: tuple[float, float, float]
    digital_ev: float
    demosaic: str
    denoise: str
    tone_param: float
    sharpen: float
    saturation: float
    jpeg_quality: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


# ----------------------------------------------------------------------------- sensor half


def centre_white_balance(camera: CameraProfile, centre: CameraCentre) -> np.ndarray:
    """The white-balance gains (G = 1) the centre implies: daylight gains / measured gains."""
    gains = np.asarray(camera.wb_gains, np.float64) / np.asarray(centre.gains) * centre.gains[1]
    return gains.astype(np.float32)


def scene_linear(photo01: np.ndarray, camera: CameraProfile, gamma: float) -> np.ndarray:
    """Photo (2H, 2W, 3) in [0, 1] -> linear camera RGB of the scene (before any light colour)."""
    toned = np.power(np.clip(photo01, 0.0, 1.0), np.float32(gamma))
    linear = isp.inverse_srgb_gamma(isp.inverse_tone_curve(toned))
    return np.clip(isp.apply_ccm(linear, camera.rgb_to_cam), 0.0, 1.0)


def sensor_exposure_ev(scene: np.ndarray, gain: float, reference: float, alpha: float,
                       error_ev: float, headroom: float) -> float:
    """The RAW's level relative to the centre (stops): partial AE, error, highlight cap."""
    green = float(scene[..., 1].mean())
    ev = alpha * np.log2(reference / max(green, 1e-4)) + error_ev
    top = float(np.percentile(scene.max(axis=-1), 99.5)) * gain
    if top > 1e-6:
        ev = min(ev, float(np.log2(headroom / top)))
    return float(np.clip(ev, -3.0, 2.0))


# ----------------------------------------------------------------------------- ISP half


def demosaic(packed01: np.ndarray, method: str) -> np.ndarray:
    """Packed RGGB [0, 1] -> (2H, 2W, 3): OpenCV's edge-aware or bilinear, or 2x2 binning."""
    if method == "ea":
        return isp.demosaic(packed01)
    if method == "bilinear":
        mosaic = bayer.unpack(np.clip(packed01, 0.0, 1.0).astype(np.float32), "RGGB")
        rgb16 = cv2.cvtColor(np.rint(mosaic * 65535.0).astype(np.uint16), cv2.COLOR_BayerBG2RGB)
        return rgb16.astype(np.float32) / np.float32(65535.0)
    if method == "binning":  # a cheap ISP: one RGB value per 2x2 block, upsampled
        planes = np.clip(packed01, 0.0, 1.0)
        small = np.stack([planes[..., 0], planes[..., 1:3].mean(axis=-1), planes[..., 3]], -1)
        height, width = small.shape[:2]
        return cv2.resize(small, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
    raise ValueError(f"unknown demosaic {method!r}")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def _hable(x: np.ndarray) -> np.ndarray:
    a, b, c, d, e, f = 0.15, 0.50, 0.10, 0.20, 0.02, 0.30
    return ((x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f)) - e / f


def tone(linear: np.ndarray, kind: str, param: float) -> np.ndarray:
    """Linear sRGB (>= 0) -> display-encoded [0, 1] by a tone operator with one parameter.

    brooks: sRGB gamma then smoothstep, after a power `param`; filmic: Hable's curve at exposure
    `param`; reinhard: extended Reinhard on luminance at key `param` (chroma kept); gamma: a power
    1/`param` with a gentle S; aces: Narkowicz's ACES fit at exposure `param`; local: log
    luminance split into a blurred base, compressed by `param`, and detail, then brooks.
    """
    x = np.clip(linear, 0.0, None).astype(np.float32)
    if kind == "brooks":
        out = isp.tone_curve(np.power(isp.srgb_gamma(np.clip(x, 0, 1)), np.float32(param)))
    elif kind == "filmic":
        out = isp.srgb_gamma(np.clip(_hable(x * param) / _hable(np.float32(11.2)), 0, 1))
    elif kind == "reinhard":
        lum = _luminance(x)[..., None] * np.float32(param)
        white = np.float32(max(float(np.percentile(lum, 99.5)), 1.0))
        mapped = lum * (1 + lum / (white * white)) / (1 + lum)
        out = isp.srgb_gamma(np.clip(x * np.float32(param) * mapped / np.maximum(lum, 1e-6), 0, 1))
    elif kind == "gamma":
        y = np.power(np.clip(x, 0, 1), np.float32(1.0 / param))
        out = y + 0.4 * y * (1 - y) * (y - 0.5)
    elif kind == "aces":
        v = x * np.float32(param) * 1.6
        out = isp.srgb_gamma(np.clip((v * (2.51 * v + 0.03)) / (v * (2.43 * v + 0.59) + 0.14), 0, 1))
    elif kind == "local":
        lum = np.maximum(_luminance(x), 1e-5)
        log_lum = np.log(lum)
        sigma = 0.04 * max(x.shape[:2])
        base = cv2.GaussianBlur(log_lum, (0, 0), sigmaX=sigma)
        anchor = float(np.percentile(base, 70))
        new_log = anchor + param * (base - anchor) + 1.15 * (log_lum - base)
        ratio = np.exp(new_log - log_lum)[..., None]
        out = isp.tone_curve(isp.srgb_gamma(np.clip(x * ratio, 0, 1)))
    else:
        raise ValueError(f"unknown tone operator {kind!r}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _saturate(rgb: np.ndarray, amount: float) -> np.ndarray:
    lum = _luminance(rgb)[..., None]
    return np.clip(lum + amount * (rgb - lum), 0.0, 1.0)


def _sharpen(rgb: np.ndarray, amount: float) -> np.ndarray:
    if amount <= 0:
        return rgb
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigmaX=1.0)
    return np.clip(rgb + amount * (rgb - blurred), 0.0, 1.0)


def _denoise_output(rgb: np.ndarray, method: str) -> np.ndarray:
    if method == "chroma":  # phones blur colour much more than luminance
        ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
        ycc[..., 1:] = cv2.GaussianBlur(ycc[..., 1:], (0, 0), sigmaX=2.0)
        return np.clip(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB), 0.0, 1.0)
    if method == "bilateral":
        return np.clip(cv2.bilateralFilter(rgb, 5, 0.06, 3.0), 0.0, 1.0)
    return rgb


# ----------------------------------------------------------------------------- one pair


def simulate(photo: np.ndarray, camera_name: str, family: str | IspFamily,
             rng: np.random.Generator, sensor: SensorRanges | None = None
             ) -> tuple[np.ndarray, np.ndarray, PairSettings]:
    """One (JPEG, RAW) pair from a photo through an ISP family (a name in `FAMILIES` or one).

    `photo`: (2H, 2W, 3) uint8 sRGB, even sides. Returns the decoded JPEG (2H, 2W, 3) uint8,
    the packed RGGB RAW (H, W, 4) as float32 whole DN within the camera's levels, and the
    settings drawn.
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.shape[0] % 2 or photo.shape[1] % 2:
        raise ValueError(f"expected an (2H, 2W, 3) photo with even sides, got {photo.shape}")
    sensor = sensor or SensorRanges()
    family = FAMILIES[family] if isinstance(family, str) else family
    camera, centre = get_camera(camera_name), CENTRES[camera_name]
    gamma = _uniform(rng, sensor.photo_gamma)
    scene = scene_linear(photo.astype(np.float32) / 255.0, camera, gamma)

    # The light's colour, as the white-balance gains that would neutralise it.
    shift = float(rng.normal(0.0, sensor.illuminant_sigma))
    tint = float(rng.normal(0.0, sensor.tint_sigma))
    centre_wb = centre_white_balance(camera, centre)
    light = centre_wb * np.array([np.exp(shift), 1.0, np.exp(-0.8 * shift + tint)], np.float32)
    lit = isp.safe_inverse_gains(scene, [float(v) for v in light])
    gain = float(centre.gains[1])
    ev = sensor_exposure_ev(lit, gain, centre.reference_green, _uniform(rng, sensor.alpha),
                            float(rng.normal(0.0, sensor.exposure_sigma_ev)),
                            _uniform(rng, sensor.headroom))
    clean = bayer.mosaic_rgb(np.clip(lit * np.float32(gain * 2.0**ev), 0.0, 1.0))
    iso = _log_uniform(rng, family.iso or sensor.iso)
    noisy = isp.add_noise(clean, camera, iso=iso, rng=rng)
    raw_dn = np.clip(np.rint(isp.to_dn(noisy, camera)), camera.black_level,
                     camera.white_level).astype(np.float32)

    # The phone's ISP.
    packed = isp.linearize(raw_dn, camera)
    denoise = str(rng.choice(family.denoise))
    if denoise == "raw":
        packed = cv2.GaussianBlur(packed, (0, 0), sigmaX=0.7)
    adaptation = _uniform(rng, family.awb_adaptation)
    awb = centre_wb * (light / centre_wb) ** np.float32(adaptation)
    awb = awb * np.exp(rng.normal(0.0, 0.02, size=3)).astype(np.float32)
    awb = (awb / awb[1]).astype(np.float32)
    digital_ev = -np.log2(gain) - ev + float(rng.normal(0.0, family.ae_error_ev))
    balanced = np.clip(isp.white_balance(packed, awb) * np.float32(2.0**digital_ev), 0.0, 1.0)
    method = str(rng.choice(family.demosaic))
    linear = np.clip(isp.apply_ccm(demosaic(balanced, method), camera.cam_to_rgb), 0.0, None)
    tone_param = _uniform(rng, family.tone_param)
    picture = tone(linear, family.tone, tone_param)
    saturation = _uniform(rng, family.saturation)
    picture = _saturate(picture, saturation)
    picture = _denoise_output(picture, denoise)
    sharpen = _uniform(rng, family.sharpen)
    picture = _sharpen(picture, sharpen)
    quality = int(rng.integers(family.jpeg_quality[0], family.jpeg_quality[1] + 1))
    jpeg = jpeg_roundtrip(np.clip(np.rint(picture * 255.0), 0, 255).astype(np.uint8), quality)
    settings = PairSettings(
        family=family.name, photo_gamma=gamma, illuminant=tuple(float(v) for v in light),  # type: ignore[arg-type]
        exposure_ev=ev, iso=iso, awb_gains=tuple(float(v) for v in awb),  # type: ignore[arg-type]
        digital_ev=float(digital_ev), demosaic=method, denoise=denoise, tone_param=tone_param,
        sharpen=sharpen, saturation=saturation, jpeg_quality=quality)
    return jpeg, raw_dn, settings


def random_view(photo: np.ndarray, rng: np.random.Generator, size: tuple[int, int],
                scale: tuple[float, float] = (0.35, 1.0)) -> np.ndarray:
    """A random even-sized (height, width) = `size` view of a photo: shrunk by a random factor
    (at least enough to fit), cropped, maybe mirrored; the simulation treats it as a whole shot."""
    height, width = size
    fit = max(height / photo.shape[0], width / photo.shape[1])
    factor = max(fit, _uniform(rng, scale) * min(1.0, 2.0 * fit))
    if factor < 1.0:
        new = (max(width, int(round(photo.shape[1] * factor))),
               max(height, int(round(photo.shape[0] * factor))))
        photo = cv2.resize(photo, new, interpolation=cv2.INTER_AREA)
    top = int(rng.integers(0, photo.shape[0] - height + 1))
    left = int(rng.integers(0, photo.shape[1] - width + 1))
    view = photo[top: top + height, left: left + width]
    if rng.uniform() < 0.5:
        view = view[:, ::-1]
    return np.ascontiguousarray(view)
