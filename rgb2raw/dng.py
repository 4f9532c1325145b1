"""Write reconstructed RAW as a DNG that raw converters (Lightroom, darktable, LibRaw) can open.

A DNG is a TIFF file with a few extra tags. We write the simplest form the DNG specification
allows: one little-endian IFD (IFD0) that *is* the raw image (NewSubFileType 0), holding the
unpacked Bayer mosaic as a single uncompressed strip of 16-bit samples, plus the colour tags a
converter needs to render it (ColorMatrix1 for D65, AsShotNeutral, black and white levels).
No preview, no EXIF sub-IFD, no compression: the file is as small and as easy to verify as a
DNG can be, and needs nothing beyond `struct` and numpy.

Layout of the bytes:

    header (8) | IFD0: entry count, 12-byte entries sorted by tag, next-IFD 0 |
    values too large to sit inside their entry (each at an even offset) | pixel strip

The mosaic is always written as RGGB (``bayer.unpack(packed, "RGGB")``) whatever the sensor's
own pattern was: packed RAW has already lost that information's relevance, and RGGB keeps the
CFAPattern tag the same for every camera.

Make is "rgb2raw", not the phone's maker: LibRaw keys its built-in per-camera tables (black
level, colour matrix) on Make/Model, and those must not override the levels we write.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from rgb2raw import __version__, bayer
from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import CameraProfile
from rgb2raw.errors import Rgb2RawError

# TIFF field types (TIFF 6.0, section 2) and their sizes in bytes.
BYTE, ASCII, SHORT, LONG, RATIONAL, SRATIONAL = 1, 2, 3, 4, 5, 10
TYPE_SIZES: dict[int, int] = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8, SRATIONAL: 8}

# Tag numbers: baseline TIFF 6.0, TIFF/EP (CFA) and the DNG specification.
NEW_SUBFILE_TYPE = 254
IMAGE_WIDTH = 256
IMAGE_LENGTH = 257
BITS_PER_SAMPLE = 258
COMPRESSION = 259
PHOTOMETRIC_INTERPRETATION = 262
MAKE = 271
MODEL = 272
STRIP_OFFSETS = 273
ORIENTATION = 274
SAMPLES_PER_PIXEL = 277
ROWS_PER_STRIP = 278
STRIP_BYTE_COUNTS = 279
PLANAR_CONFIGURATION = 284
SOFTWARE = 305
CFA_REPEAT_PATTERN_DIM = 33421
CFA_PATTERN = 33422
DNG_VERSION = 50706
DNG_BACKWARD_VERSION = 50707
UNIQUE_CAMERA_MODEL = 50708
CFA_PLANE_COLOR = 50710
CFA_LAYOUT = 50711
BLACK_LEVEL_REPEAT_DIM = 50713
BLACK_LEVEL = 50714
WHITE_LEVEL = 50717
COLOR_MATRIX_1 = 50721
AS_SHOT_NEUTRAL = 50728
CALIBRATION_ILLUMINANT_1 = 50778

PHOTOMETRIC_CFA = 32803
ILLUMINANT_D65 = 21
# CFAPattern colour codes (0 = red, 1 = green, 2 = blue) of an RGGB 2x2 block, row by row.
RGGB_CFA_CODES = (0, 1, 1, 2)
# ColorMatrix1 and AsShotNeutral are stored as fractions with this denominator (the precision
# Adobe's converter uses); 1e-4 is far below what colour rendering can show.
MATRIX_DENOMINATOR = 10000
# Pixel data starts on this boundary; readers do not need it, but it keeps the strip aligned
# for memory-mapped reads.
STRIP_ALIGNMENT = 16


@dataclass(frozen=True)
class _Entry:
    """One IFD entry: tag, TIFF type and the already-encoded value bytes."""

    tag: int
    type: int
    count: int
    payload: bytes


def _shorts(tag: int, values: Sequence[int]) -> _Entry:
    return _Entry(tag, SHORT, len(values), struct.pack(f"<{len(values)}H", *values))


def _longs(tag: int, values: Sequence[int]) -> _Entry:
    return _Entry(tag, LONG, len(values), struct.pack(f"<{len(values)}I", *values))


def _bytes(tag: int, values: Sequence[int]) -> _Entry:
    return _Entry(tag, BYTE, len(values), bytes(values))


def _ascii(tag: int, text: str) -> _Entry:
    # TIFF ASCII values are NUL-terminated 7-bit text; replace anything else rather than fail.
    encoded = text.encode("ascii", errors="replace") + b"\0"
    return _Entry(tag, ASCII, len(encoded), encoded)


def _rationals(tag: int, values: Sequence[float], *, signed: bool) -> _Entry:
    """Encode floats as (numerator, denominator) pairs over MATRIX_DENOMINATOR, reduced."""
    words: list[int] = []
    for value in values:
        if not math.isfinite(value):
            raise ValueError(f"cannot store non-finite value {value} in tag {tag}")
        fraction = Fraction(round(value * MATRIX_DENOMINATOR), MATRIX_DENOMINATOR)
        words += [fraction.numerator, fraction.denominator]
    code = "i" if signed else "I"
    return _Entry(tag, SRATIONAL if signed else RATIONAL, len(values),
                  struct.pack(f"<{len(words)}{code}", *words))


def _layout_ifd(entries: list[_Entry], ifd_offset: int) -> tuple[bytes, int]:
    """Encode an IFD at `ifd_offset` followed by its out-of-line values.

    Returns the bytes (IFD plus value area, padded to an even length) and the offset just
    past them. Values of 4 bytes or fewer live inside their entry, left-justified (TIFF 6.0).
    """
    entries = sorted(entries, key=lambda entry: entry.tag)  # TIFF requires ascending tags
    ifd_size = 2 + 12 * len(entries) + 4
    value_offset = ifd_offset + ifd_size
    table = bytearray(struct.pack("<H", len(entries)))
    values = bytearray()
    for entry in entries:
        if len(entry.payload) <= 4:
            inline = entry.payload.ljust(4, b"\0")
        else:
            inline = struct.pack("<I", value_offset + len(values))
            values += entry.payload
            if len(values) % 2:  # every value starts on a word boundary
                values += b"\0"
        table += struct.pack("<HHI", entry.tag, entry.type, entry.count) + inline
    table += struct.pack("<I", 0)  # no next IFD
    return bytes(table + values), value_offset + len(values)


def _check_packed(packed_dn: np.ndarray, path: Path) -> np.ndarray:
    """Return `packed_dn` as little-endian uint16, or raise naming what is wrong with it."""
    if packed_dn.ndim != 3 or packed_dn.shape[2] != 4 or 0 in packed_dn.shape:
        raise Rgb2RawError(path, f"packed RAW must have shape (H, W, 4), got {packed_dn.shape}")
    if packed_dn.dtype != np.uint16:
        if not np.issubdtype(packed_dn.dtype, np.integer):
            raise Rgb2RawError(path, f"packed RAW must hold integer DN, not {packed_dn.dtype}")
        low, high = int(packed_dn.min()), int(packed_dn.max())
        if low < 0 or high > 65535:
            raise Rgb2RawError(path, f"values span [{low}, {high}], outside 16-bit [0, 65535]")
    return packed_dn.astype("<u2", copy=False)


def dng_bytes(packed_dn: np.ndarray, camera: CameraProfile, *,
              as_shot_neutral: Sequence[float] | None = None,
              path: str | os.PathLike[str] = "<memory>") -> bytes:
    """Encode packed (H, W, 4) uint16 DN (canonical R, Gr, Gb, B) as the bytes of a DNG file.

    `as_shot_neutral` is the camera-RGB colour of a neutral grey (the DNG convention); by
    default it is ``1 / camera.wb_gains``, i.e. the profile's daylight white balance.
    """
    target = Path(path)
    mosaic = bayer.unpack(_check_packed(packed_dn, target), "RGGB")
    height, width = mosaic.shape
    pixels = np.ascontiguousarray(mosaic, dtype="<u2").tobytes()

    neutral = (tuple(1.0 / gain for gain in camera.wb_gains) if as_shot_neutral is None
               else tuple(float(value) for value in as_shot_neutral))
    if len(neutral) != 3 or not all(math.isfinite(v) and v > 0 for v in neutral):
        raise Rgb2RawError(target, f"as_shot_neutral must be three positive numbers, got {neutral}")
    color_matrix = [value for row in camera.xyz_to_cam for value in row]

    entries = [
        _longs(NEW_SUBFILE_TYPE, [0]),
        _longs(IMAGE_WIDTH, [width]),
        _longs(IMAGE_LENGTH, [height]),
        _shorts(BITS_PER_SAMPLE, [16]),
        _shorts(COMPRESSION, [1]),
        _shorts(PHOTOMETRIC_INTERPRETATION, [PHOTOMETRIC_CFA]),
        _ascii(MAKE, "rgb2raw"),
        _ascii(MODEL, camera.name),
        _longs(STRIP_OFFSETS, [0]),  # patched below once the value area's size is known
        _shorts(ORIENTATION, [1]),
        _shorts(SAMPLES_PER_PIXEL, [1]),
        _longs(ROWS_PER_STRIP, [height]),
        _longs(STRIP_BYTE_COUNTS, [len(pixels)]),
        _shorts(PLANAR_CONFIGURATION, [1]),
        _ascii(SOFTWARE, f"rgb2raw {__version__}"),
        _shorts(CFA_REPEAT_PATTERN_DIM, [2, 2]),
        _bytes(CFA_PATTERN, RGGB_CFA_CODES),
        _bytes(DNG_VERSION, [1, 4, 0, 0]),
        # Nothing here needs a reader newer than DNG 1.1 (uncompressed CFA in IFD0).
        _bytes(DNG_BACKWARD_VERSION, [1, 1, 0, 0]),
        _ascii(UNIQUE_CAMERA_MODEL, f"rgb2raw {camera.name}"),
        _bytes(CFA_PLANE_COLOR, [0, 1, 2]),
        _shorts(CFA_LAYOUT, [1]),  # rectangular grid
        _shorts(BLACK_LEVEL_REPEAT_DIM, [1, 1]),
        _longs(BLACK_LEVEL, [round(camera.black_level)]),
        _longs(WHITE_LEVEL, [round(camera.white_level)]),
        _rationals(COLOR_MATRIX_1, color_matrix, signed=True),
        _rationals(AS_SHOT_NEUTRAL, neutral, signed=False),
        _shorts(CALIBRATION_ILLUMINANT_1, [ILLUMINANT_D65]),
    ]
    # The strip offset depends on the IFD's size but not on its own value, so lay out once to
    # learn where the values end, then again with the real offset.
    _, values_end = _layout_ifd(entries, ifd_offset=8)
    strip_offset = -(-values_end // STRIP_ALIGNMENT) * STRIP_ALIGNMENT
    if strip_offset + len(pixels) > 0xFFFFFFFF:
        raise Rgb2RawError(target, f"image {width}x{height} is too large for a classic TIFF/DNG")
    entries = [_longs(STRIP_OFFSETS, [strip_offset]) if e.tag == STRIP_OFFSETS else e
               for e in entries]
    ifd, values_end = _layout_ifd(entries, ifd_offset=8)
    header = b"II" + struct.pack("<HI", 42, 8)
    head = header + ifd
    return head + b"\0" * (strip_offset - len(head)) + pixels


def write_dng(path: str | os.PathLike[str], packed_dn: np.ndarray, camera: CameraProfile, *,
              overwrite: bool = True, as_shot_neutral: Sequence[float] | None = None) -> Path:
    """Write packed (H, W, 4) uint16 DN as a DNG at `path` (atomically) and return the path.

    The DNG holds the (2H, 2W) RGGB mosaic and `camera`'s levels and D65 colour matrix. An
    existing file is replaced only with ``overwrite=True``; otherwise Rgb2RawError is raised.
    """
    target = Path(path)
    if target.is_dir():
        raise Rgb2RawError(target, "is a folder, expected a .dng file path")
    if not overwrite and target.exists():
        raise Rgb2RawError(target, "already exists (pass overwrite to replace it)")
    data = dng_bytes(packed_dn, camera, as_shot_neutral=as_shot_neutral, path=target)
    try:
        with atomic_write(target, overwrite=overwrite) as handle:
            handle.write(data)
    except FileExistsError:  # created by someone else since the check above
        raise Rgb2RawError(target, "already exists (pass overwrite to replace it)") from None
    except OSError as exc:
        raise Rgb2RawError(target, f"cannot write ({exc.strerror or exc})") from None
    return target
