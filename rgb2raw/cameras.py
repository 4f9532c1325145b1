"""Camera profiles: everything rgb2raw knows about a sensor, as one frozen dataclass.

Numbers come from the public sources listed in docs/conventions.md; each profile
names its sources. Colour math follows the DNG convention: `xyz_to_cam` maps CIE XYZ (D65) to
camera RGB, so linear sRGB -> camera is ``xyz_to_cam @ SRGB_TO_XYZ`` with rows normalised to
sum to one (white stays white, before white balance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rgb2raw.errors import Rgb2RawError

# numpy is imported inside the methods that compute with it: the CLI reads the camera names
# (for --help and shell completion) without paying for numpy.
if TYPE_CHECKING:
    import numpy as np

    from rgb2raw.bayer import CfaPattern

Matrix3 = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]

# Linear sRGB (D65) -> CIE XYZ, from the sRGB standard (IEC 61966-2-1).
SRGB_TO_XYZ: Matrix3 = (
    (0.4124564, 0.3575761, 0.1804375), (0.2126729, 0.7151522, 0.0721750), (0.0193339, 0.1191920, 0.9503041)
)


@dataclass(frozen=True)
class CameraProfile:
    """One camera: its RAW conventions, colour, white balance and noise.

    Levels are in DN of the RAW files rgb2raw reads and writes: a pixel value v maps to the
    linear signal (v - black_level) / (white_level - black_level).
    """

    name: str
    description: str
    sensor_cfa: CfaPattern  # the sensor's own pattern; challenge RAW is re-laid as RGGB
    black_level: float
    white_level: float
    rgb_crop: int  # side of one challenge JPEG crop ...
    raw_crop: int  # ... and of its packed RAW (half the JPEG's side)
    frame_size: tuple[int, int]  # full RGB frame (width, height) that the crops tile
    crop_grid: tuple[int, int]  # (rows, columns) of crops per frame, numbered row-major
    xyz_to_cam: Matrix3  # D65 colour matrix, XYZ -> camera
    wb_gains: tuple[float, float, float]  # typical daylight gains (R, G, B), G = 1
    noise_shot: float  # variance = noise_shot * x + noise_read on [0, 1] signal at base ISO
    noise_read: float
    base_iso: int
    sources: tuple[str, ...]

    @property
    def rgb_to_cam(self) -> np.ndarray:
        """Linear sRGB -> camera RGB (3x3, rows sum to 1)."""
        import numpy as np

        matrix = np.asarray(self.xyz_to_cam, dtype=np.float64) @ np.asarray(SRGB_TO_XYZ)
        return matrix / matrix.sum(axis=1, keepdims=True)

    @property
    def cam_to_rgb(self) -> np.ndarray:
        """Camera RGB -> linear sRGB (3x3): the inverse of `rgb_to_cam`."""
        import numpy as np

        return np.linalg.inv(self.rgb_to_cam)

    @property
    def crops_per_frame(self) -> int:
        return self.crop_grid[0] * self.crop_grid[1]

    def noise_variance(self, signal: np.ndarray, iso: float | None = None) -> np.ndarray:
        """Per-pixel noise variance of a [0, 1] linear signal at `iso` (base ISO if None).

        Shot noise grows linearly with the analogue gain, read noise with its square.
        """
        import numpy as np

        gain = 1.0 if iso is None else iso / self.base_iso
        return self.noise_shot * gain * np.clip(signal, 0, None) + self.noise_read * gain**2


S7 = CameraProfile(
    name="s7",
    description="Samsung Galaxy S7 (AIM 2022 Track 1): 504x504 JPEG crops -> 252x252x4 RAW",
    sensor_cfa="GRBG",
    black_level=0.0,
    white_level=1023.0,
    rgb_crop=504,
    raw_crop=252,
    frame_size=(4032, 3024),
    crop_grid=(6, 8),
    xyz_to_cam=((0.9927, -0.3704, -0.1024), (-0.3935, 1.2758, 0.1257), (-0.0389, 0.1512, 0.4993)),
    # Derived, not measured: 1 / (camera response to D65 white through xyz_to_cam), G = 1.
    wb_gains=(2.250, 1.0, 1.579),
    # No published S7 noise profile: the P20's IMX380 (same sensor class) stands in.
    noise_shot=2.5822882e-4,
    noise_read=2.32350645e-6,
    base_iso=50,
    sources=(
        "levels: black 0 / white 1023 as used by the AIM22 2nd-place team (docs/conventions.md)",
        "xyz_to_cam: Adobe DNG Converter D65 matrix as tabled in LibRaw (docs/conventions.md)",
        "wb_gains: derived from xyz_to_cam for a D65 neutral",
        "noise: stand-in from the Huawei P20 DNG NoiseProfile at ISO 50 (docs/conventions.md)",
    ),
)

P20 = CameraProfile(
    name="p20",
    description="Huawei P20 (AIM 2022 Track 2): 496x496 JPEG crops -> 248x248x4 RAW",
    sensor_cfa="BGGR",
    black_level=60.0,
    white_level=1020.0,
    rgb_crop=496,
    raw_crop=248,
    frame_size=(3968, 2976),
    crop_grid=(6, 8),
    xyz_to_cam=(
        (1.068359375, -0.298828125, -0.142578125),
        (-0.431640625, 1.35546875, 0.05078125),
        (-0.1015625, 0.244140625, 0.5859375),
    ),
    wb_gains=(2.218, 1.0, 1.671),
    noise_shot=2.5822882e-4,
    noise_read=2.32350645e-6,
    base_iso=50,
    sources=(
        "levels: black 60 / white 1020 as used by the AIM22 2nd-place team (docs/conventions.md); "
        "the phone's DNG says BlackLevel 64, WhiteLevel 1023 (docs/conventions.md)",
        "xyz_to_cam: ColorMatrix1 (D65) of a real P20 DNG (docs/conventions.md)",
        "wb_gains: AsShotNeutral 0.4509 1 0.5984 of a daylight P20 DNG (docs/conventions.md)",
        "noise: NoiseProfile of the same DNG at ISO 50 (docs/conventions.md)",
    ),
)

# For photos from an unknown camera: an average of the two phones' colour matrices, gains and
# noise, 10-bit levels with no black offset, and no crop grid of its own (S7-sized crops).
GENERIC = CameraProfile(
    name="generic",
    description="A plausible generic phone camera (mean of the S7 and P20 colour data), 10-bit RGGB",
    sensor_cfa="RGGB",
    black_level=0.0,
    white_level=1023.0,
    rgb_crop=504,
    raw_crop=252,
    frame_size=(4032, 3024),
    crop_grid=(6, 8),
    xyz_to_cam=tuple(  # type: ignore[arg-type]
        tuple(round((a + b) / 2, 6) for a, b in zip(row_s7, row_p20, strict=True))
        for row_s7, row_p20 in zip(S7.xyz_to_cam, P20.xyz_to_cam, strict=True)
    ),
    wb_gains=(2.234, 1.0, 1.625),
    noise_shot=2.5822882e-4,
    noise_read=2.32350645e-6,
    base_iso=50,
    sources=("mean of the s7 and p20 profiles' matrices and gains",),
)

PROFILES: dict[str, CameraProfile] = {p.name: p for p in (S7, P20, GENERIC)}
CAMERA_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_camera(name: str) -> CameraProfile:
    """Look a profile up by name (case-insensitive)."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise Rgb2RawError(None, f"unknown camera {name!r}; choose one of {', '.join(CAMERA_NAMES)}") from None
