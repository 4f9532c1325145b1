"""A broad phone-camera simulation centred on a calibrated camera, organised in ISP families.

The centre is the bundled ``calibrated-<camera>`` model (`Centre`: its `InverseParams` and lens
shading). A photo stands for a scene; `simulate` turns it into a (JPEG, RAW) pair in two halves:

**Sensor** (the same for every family; what a real RAW records):
- the photo, after a random power (photos differ in tone), is taken through the calibrated
  inverse (its tables, matrix and gains): that is the scene's RAW at the centre, so a pair made
  with every spread at zero is exactly what ``calibrated-<camera>`` predicts;
- an illuminant along the warm-cool locus (with a little tint) moves the RAW's channel ratios
  away from the calibrated white balance;
- sensor auto exposure moves the RAW level away from the centre: brighter for darker scenes and
  darker for brighter ones by a random share `alpha` of the scene's log brightness relative to
  the real figure's (`REFERENCE_GREEN`: at that brightness the centre exposure is kept), plus a
  random error, and pulled down when the scene's highlights would clip;
- the calibrated lens shading (P20) darkens the view's corners, the view taken as a whole frame;
- shot + read noise of the camera profile at a log-uniform ISO, then whole DN.

**ISP** (what a phone makes of that RAW; the family's part): lens shading corrected, optional
RAW denoising, a white balance that adapts only partly to the illuminant and a digital gain
that undoes a share of the sensor exposure (with an error), a demosaic, then *the calibrated
camera's forward*: its gains undone (highlight fade included), its matrix inverted, its tone
tables inverted; the family's tone operator is a perturbation of that forward (`tone`):
contrast and power, highlight roll-off, filmic and Reinhard-like curves blended in, local tone
mapping; then saturation, sharpening, chroma or bilateral denoising, and JPEG.

`FAMILIES` names the ISPs; `TRAIN_FAMILIES` / `HELD_OUT_FAMILIES` split them so that whole
families (a global and a local tone operator) are kept out of training and used only to
evaluate. Everything is numpy + OpenCV and seeded by the caller's generator.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import cv2
import numpy as np

from rgb2raw import bayer, isp
from rgb2raw.cameras import get_camera
from rgb2raw.inverse import InverseParams, table_levels
from rgb2raw.shading import RadialShading
from rgb2raw.train.isp_tones import TONES, apply_tone
from rgb2raw.train.simulate import jpeg_roundtrip

Demosaic = Literal["ea", "bilinear", "binning"]
Denoise = Literal["none", "raw", "chroma", "bilateral"]

#: Mean green of ``calibrated-<camera>``'s shading-free output on the real figure's JPEG, in
#: [0, 1] above black (computed once from ../shared/data/real-pairs with
#: benchmarks/real_pairs.py; S7 0.0814 against the real RAW's 0.0787): a scene that bright
#: keeps the centre exposure.
REFERENCE_GREEN: dict[str, float] = {"s7": 0.0814, "p20": 0.1194}
# Headroom of the ISP's demosaic: digital gains above 1 must not clip before the tone curve.
_DEMOSAIC_RANGE = 4.0


@dataclass(frozen=True, eq=False)
class Centre:
    """The calibrated camera the simulation is centred on, with its forward (the inverse's
    inverse)."""

    camera: str
    params: InverseParams
    shading: RadialShading | None = None
    reference_green: float = 0.08

    @functools.cached_property
    def _strict_tables(self) -> np.ndarray:
        # np.interp needs increasing sample points: lift flat stretches by a negligible ramp.
        ramp = np.arange(self.params.tables.shape[1], dtype=np.float64) * 1e-12
        return self.params.tables.astype(np.float64) + ramp

    def forward_tone(self, linear: np.ndarray) -> np.ndarray:
        """(..., 3) linear RGB -> encoded [0, 1]: each channel's table inverted."""
        levels = table_levels()
        x = np.asarray(linear, dtype=np.float64)
        out = np.empty(x.shape, dtype=np.float32)
        for c in range(3):
            out[..., c] = np.interp(x[..., c], self._strict_tables[c], levels)
        return out

    def to_linear(self, camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera RGB -> linear RGB by the inverse matrix (clipped at 0)."""
        inverse = np.linalg.inv(self.params.matrix.astype(np.float64)).astype(np.float32)
        return np.clip(np.einsum("...c,dc->...d", camera, inverse), 0.0, None)

    def undo_gains(self, raw3: np.ndarray) -> np.ndarray:
        """(..., 3) gained camera RGB -> camera RGB: the gains and their highlight fade undone.

        Below the knee the gain is constant; above it the gain depends on the result's own
        mean, so that mean is found by bisection (it is monotone in the mean)."""
        p = self.params
        raw = np.asarray(raw3, dtype=np.float32)
        camera = raw / p.gains
        mean = camera.mean(axis=-1)
        over = mean > p.knee
        if np.any(over):
            values = raw[over]
            low = np.full(values.shape[0], p.knee, np.float32)
            high = np.ones(values.shape[0], np.float32)
            for _ in range(24):
                mid = 0.5 * (low + high)
                gain = self._gain(mid)
                above = (values / gain).mean(axis=-1) > mid
                low, high = np.where(above, mid, low), np.where(above, high, mid)
            camera[over] = values / self._gain(high)
        return np.clip(camera, 0.0, 1.0)

    def _gain(self, mean: np.ndarray) -> np.ndarray:
        p = self.params
        weight = np.square(np.clip((mean - p.knee) / (1.0 - p.knee), 0.0, 1.0))[..., None]
        return p.gains + weight * (p.highlight_gains - p.gains)

    def shading_map(self, packed_shape: tuple[int, int]) -> np.ndarray:
        """(h, w, 4) lens shading of a view taken as a whole frame (ones without shading)."""
        if self.shading is None:
            return np.ones((*packed_shape, 4), np.float32)
        return np.asarray(self.shading.gain_map(packed_shape), dtype=np.float32)

    def dn(self, packed01: np.ndarray) -> np.ndarray:
        span = self.params.white_level - self.params.black_level
        return np.clip(np.rint(self.params.black_level + packed01 * span),
                       self.params.black_level, self.params.white_level).astype(np.float32)

    def unit(self, raw_dn: np.ndarray) -> np.ndarray:
        span = self.params.white_level - self.params.black_level
        return np.clip((raw_dn - self.params.black_level) / span, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def centre(camera: str) -> Centre:
    """The bundled ``calibrated-<camera>`` model (models/) as a simulation centre."""
    from rgb2raw.nets.build_defaults import load_calibration
    from rgb2raw.zoo import models_dir

    params, shading = load_calibration(models_dir() / f"calibrated-{camera}.npz")
    return Centre(camera, params, shading, REFERENCE_GREEN.get(camera, 0.08))


def flat_target(raw_dn: np.ndarray, where: Centre) -> np.ndarray:
    """A simulated RAW in DN -> [0, 1] above black with the lens shading divided out (what a
    model whose card carries the same shading must output)."""
    return (where.unit(raw_dn) / where.shading_map(raw_dn.shape[:2])).astype(np.float32)


@dataclass(frozen=True)
class SensorRanges:
    """Sensor-side priors shared by every family.

    Defaults: the scene-brightness auto-exposure model and spreads of the first learned
    attempt (alpha 0.2-0.6, 0.25 EV unexplained, highlight headroom), now around the
    calibrated gains. `ae_compensation` bounds the share of the sensor's exposure change the
    ISP's digital gain undoes (1: the JPEG's brightness does not show it; 0: a fixed ISP)."""

    photo_gamma: tuple[float, float] = (0.85, 1.2)
    illuminant_sigma: float = 0.2  # log red gain ~ N(0, s); log blue moves -0.8x as far
    tint_sigma: float = 0.04
    alpha: tuple[float, float] = (0.2, 0.6)  # share of scene brightness the AE leaves in the RAW
    exposure_sigma_ev: float = 0.25  # unexplained AE spread
    headroom: tuple[float, float] = (0.9, 1.3)  # the 99.5th percentile may reach this
    iso: tuple[float, float] = (50.0, 200.0)
    ae_compensation: tuple[float, float] = (1.0, 1.0)

    @classmethod
    def still(cls, **changes: Any) -> SensorRanges:
        """Every spread at zero (the centre), then `changes`."""
        base = cls(photo_gamma=(1.0, 1.0), illuminant_sigma=0.0, tint_sigma=0.0,
                   alpha=(0.0, 0.0), exposure_sigma_ev=0.0, headroom=(1e3, 1e3),
                   iso=(50.0, 50.0))
        return replace(base, **changes)


@dataclass(frozen=True)
class IspFamily:
    """One phone ISP: its tone operator and the ranges of its other steps."""

    name: str
    tone: str  # a key of `isp_tones.TONES`
    tone_param: tuple[float, float]  # the operator's one free parameter
    demosaic: tuple[Demosaic, ...]
    denoise: tuple[Denoise, ...]
    sharpen: tuple[float, float]  # unsharp-mask amount
    saturation: tuple[float, float]
    awb_adaptation: tuple[float, float]  # 1: white balance fully undoes the illuminant
    ae_error_ev: float
    jpeg_quality: tuple[int, int]
    iso: tuple[float, float] | None = None  # overrides SensorRanges.iso


FAMILIES: dict[str, IspFamily] = {f.name: f for f in (
    # The calibrated camera itself (clean): the identity perturbation.
    IspFamily("centre", "identity", (0.0, 0.0), ("ea",), ("none",), (0.0, 0.1), (1.0, 1.0),
              (0.8, 1.0), 0.05, (88, 98)),
    IspFamily("contrast", "contrast", (-0.5, 0.8), ("ea", "bilinear"), ("none", "chroma"),
              (0.1, 0.5), (0.95, 1.15), (0.6, 0.95), 0.12, (80, 97)),
    IspFamily("rolloff", "rolloff", (0.35, 0.75), ("ea",), ("raw", "none"), (0.2, 0.6),
              (1.0, 1.1), (0.6, 0.9), 0.12, (78, 96)),
    IspFamily("filmic", "filmic", (0.3, 0.8), ("bilinear", "ea"), ("chroma",), (0.2, 0.6),
              (1.0, 1.15), (0.6, 0.9), 0.15, (80, 95)),
    IspFamily("reinhard", "reinhard", (0.3, 0.9), ("ea", "binning"), ("raw", "none"), (0.3, 0.8),
              (0.95, 1.1), (0.6, 0.9), 0.15, (75, 95)),
    IspFamily("shadowlift", "shadowlift", (0.08, 0.3), ("ea", "binning"), ("none", "chroma"),
              (0.4, 0.9), (1.0, 1.2), (0.7, 0.95), 0.15, (82, 97)),
    # Held out of training: their tone operators are seen only in evaluation.
    IspFamily("aces", "aces", (0.4, 0.9), ("ea",), ("bilateral",), (0.4, 0.8), (1.05, 1.25),
              (0.6, 0.9), 0.15, (70, 92), iso=(50.0, 320.0)),
    IspFamily("local", "local", (0.5, 0.8), ("bilinear",), ("chroma", "bilateral"), (0.5, 1.0),
              (1.0, 1.2), (0.6, 0.9), 0.15, (80, 95), iso=(50.0, 320.0)),
)}
HELD_OUT_FAMILIES: tuple[str, ...] = ("aces", "local")
TRAIN_FAMILIES: tuple[str, ...] = tuple(n for n in FAMILIES if n not in HELD_OUT_FAMILIES)
assert all(f.tone in TONES for f in FAMILIES.values())


@dataclass(frozen=True)
class PairSettings:
    """What one pair was made with (for records and tests)."""

    family: str
    photo_gamma: float
    illuminant: tuple[float, float, float]  # RAW channel multipliers of the light, G = 1
    exposure_ev: float  # RAW level relative to the centre, in stops
    iso: float
    awb: tuple[float, float, float]  # what the ISP's white balance divided by, relative
    digital_ev: float  # the ISP's exposure estimate (it divides by 2 ** this)
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


def sensor_exposure_ev(flat: np.ndarray, reference: float, alpha: float, error_ev: float,
                       headroom: float) -> float:
    """The RAW's level relative to the centre (stops): partial AE, error, highlight cap.

    `flat` is the scene's RAW at the centre exposure, (..., 3) in [0, 1]."""
    green = float(flat[..., 1].mean())
    ev = alpha * np.log2(reference / max(green, 1e-4)) + error_ev
    top = float(np.percentile(flat.max(axis=-1), 99.5))
    if top > 1e-6:
        ev = min(ev, float(np.log2(headroom / top)))
    return float(np.clip(ev, -3.0, 2.0))


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


def simulate(photo: np.ndarray, camera_name: str, family: str | IspFamily,
             rng: np.random.Generator, sensor: SensorRanges | None = None,
             where: Centre | None = None) -> tuple[np.ndarray, np.ndarray, PairSettings]:
    """One (JPEG, RAW) pair from a photo through an ISP family (a name in `FAMILIES` or one).

    `photo`: (2H, 2W, 3) uint8 sRGB, even sides. `where`: the centre (default: the bundled
    ``calibrated-<camera_name>``). Returns the decoded JPEG (2H, 2W, 3) uint8, the packed RGGB
    RAW (H, W, 4) as float32 whole DN within the centre's levels (lens shading included), and
    the settings drawn.
    """
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.shape[0] % 2 or photo.shape[1] % 2:
        raise ValueError(f"expected an (2H, 2W, 3) photo with even sides, got {photo.shape}")
    sensor = sensor or SensorRanges()
    family = FAMILIES[family] if isinstance(family, str) else family
    where = where or centre(camera_name)
    profile = get_camera(camera_name)

    # Sensor: the scene's RAW at the centre, then light, exposure, shading, noise.
    gamma = _uniform(rng, sensor.photo_gamma)
    toned = np.power(photo.astype(np.float32) / np.float32(255.0), np.float32(gamma))
    at_centre = where.params.camera_rgb(toned)
    shift = float(rng.normal(0.0, sensor.illuminant_sigma))
    tint = float(rng.normal(0.0, sensor.tint_sigma))
    light = np.array([np.exp(shift), 1.0, np.exp(-0.8 * shift + tint)], np.float32)
    lit = at_centre * light
    ev = sensor_exposure_ev(lit, where.reference_green, _uniform(rng, sensor.alpha),
                            float(rng.normal(0.0, sensor.exposure_sigma_ev)),
                            _uniform(rng, sensor.headroom))
    flat = bayer.mosaic_rgb(np.clip(lit * np.float32(2.0**ev), 0.0, 1.0))
    shading = where.shading_map(flat.shape[:2])
    iso = _log_uniform(rng, family.iso or sensor.iso)
    noisy = isp.add_noise(flat * shading, profile, iso=iso, rng=rng)
    raw_dn = where.dn(noisy)

    # The phone's ISP: shading, white balance and exposure corrected, then the calibrated
    # forward, perturbed by the family's tone operator.
    packed = where.unit(raw_dn) / shading
    denoise = str(rng.choice(family.denoise))
    if denoise == "raw":
        packed = cv2.GaussianBlur(packed, (0, 0), sigmaX=0.7)
    adaptation = _uniform(rng, family.awb_adaptation)
    awb = light ** np.float32(adaptation) * np.exp(rng.normal(0.0, 0.02, 3)).astype(np.float32)
    awb = (awb / awb[1]).astype(np.float32)
    low, high = sensor.ae_compensation
    compensation = low if low == high else _uniform(rng, (low, high))  # no draw when fixed
    digital_ev = compensation * ev + float(rng.normal(0.0, family.ae_error_ev))
    adjusted = isp.white_balance(packed, 1.0 / awb) * np.float32(2.0 ** -digital_ev)
    method = str(rng.choice(family.demosaic))
    gained = demosaic(adjusted / _DEMOSAIC_RANGE, method) * np.float32(_DEMOSAIC_RANGE)
    linear = where.to_linear(where.undo_gains(np.minimum(gained, 1.0)))
    # Values the digital gain pushed above the camera's range keep their headroom for the
    # tone operator (a roll-off may bring them back).
    over = np.maximum(gained - 1.0, 0.0) / where.params.gains
    linear = linear + where.to_linear(over)
    tone_param = _uniform(rng, family.tone_param)
    picture = apply_tone(family.tone, linear, tone_param, where.forward_tone, rng)
    saturation = _uniform(rng, family.saturation)
    picture = _saturate(picture, saturation)
    picture = _denoise_output(picture, denoise)
    sharpen = _uniform(rng, family.sharpen)
    picture = _sharpen(picture, sharpen)
    quality = int(rng.integers(family.jpeg_quality[0], family.jpeg_quality[1] + 1))
    jpeg = jpeg_roundtrip(np.clip(np.rint(picture * 255.0), 0, 255).astype(np.uint8), quality)
    settings = PairSettings(
        family=family.name, photo_gamma=gamma, illuminant=tuple(float(v) for v in light),  # type: ignore[arg-type]
        exposure_ev=ev, iso=iso, awb=tuple(float(v) for v in awb),  # type: ignore[arg-type]
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
