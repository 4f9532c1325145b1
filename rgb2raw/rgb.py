"""Reading RGB images (JPEG, PNG, TIFF, BMP; 8- or 16-bit) into float RGB for the models.

Policies, in one place:

- **Pixel limit before decoding.** The width and height are read from the file header first
  and an image above `max_pixels` (200 MP by default) is refused, so a crafted header cannot
  make the decoder allocate gigabytes.
- **EXIF orientation is ignored by default.** A camera's ISP writes pixels in sensor order and
  records the phone's rotation in EXIF; the RAW we reconstruct is in sensor order too, so we
  keep the stored pixel order. ``orientation="apply"`` rotates as a photo viewer would.
- **Even sizes.** A Bayer 2x2 block needs even sides: an odd width or height loses its last
  column or row, with a logged warning.
- Grayscale becomes three equal channels; alpha is dropped; paths may be any Unicode.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from rgb2raw._atomic import atomic_write
from rgb2raw.errors import OutputExists, Rgb2RawError, unreadable

log = logging.getLogger("rgb2raw")

DEFAULT_MAX_PIXELS = 200_000_000
#: OpenCV's flag for decoding to RGB order (None before OpenCV 4.10).
_IMREAD_RGB: int | None = getattr(cv2, "IMREAD_COLOR_RGB", None)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
Orientation = Literal["ignore", "apply"]


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first SOF marker; also checks the file is not truncated."""
    pos, sos = 2, -1
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("broken JPEG marker structure")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        is_sof = 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)
        if is_sof:
            if pos + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            # 0xFFD9 cannot occur inside entropy-coded data (0xFF is stuffed), so an image
            # whose last scan is not followed by EOI was cut short.
            sos = data.find(b"\xff\xda", pos)
            if sos < 0 or data.rfind(b"\xff\xd9") < sos:
                raise ValueError("truncated JPEG (no end-of-image marker)")
            return width, height
        pos += 2 + length
    raise ValueError("truncated or corrupt JPEG (no frame header)")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("truncated or corrupt PNG (no IHDR)")
    if b"IEND" not in data[-12:]:
        raise ValueError("truncated PNG (no IEND chunk)")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _tiff_size(data: bytes) -> tuple[int, int]:
    endian = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", data[4:8])
    if offset + 2 > len(data):
        raise ValueError("truncated TIFF (no first directory)")
    (count,) = struct.unpack(endian + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
        if len(entry) < 12:
            raise ValueError("truncated TIFF directory")
        tag, kind = struct.unpack(endian + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = "H" if kind == 3 else "I"
            found[tag] = struct.unpack(endian + fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
    if 256 not in found or 257 not in found:
        raise ValueError("TIFF without width/height")
    return found[256], found[257]


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise ValueError("truncated BMP header")
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of an encoded image from its header, without decoding pixels.

    Raises ValueError for formats rgb2raw does not read, and for headers that are cut short.
    """
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg_size(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png_size(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    if data[:2] == b"BM":
        return _bmp_size(data)
    raise ValueError("not a JPEG, PNG, TIFF or BMP image")


def unit_scale(dtype: np.dtype) -> float:
    """The factor taking pixel values of `dtype` to [0, 1]: 1/255, 1/65535, or 1 for floats."""
    if dtype == np.uint8:
        return 1 / 255
    if dtype == np.uint16:
        return 1 / 65535
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported pixel type {dtype}")


def to_unit(rgb: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """uint8/uint16/float RGB -> float32 in [0, 1]: ``min(1, float32(v) * float32(scale))``.

    `out` (float32, the same shape) receives the result instead of a new array. This is the
    one conversion: `read_rgb` applies it to whole images, the engine to tiles of integer
    images (`read_rgb(..., as_float=False)`), so both give the same float32 numbers.
    Integers take one multiplication and no clip: ``float32(v) * float32(1/255)`` is at most
    exactly 1.0 for every uint8 (and likewise for uint16 with 1/65535).
    """
    scale = unit_scale(rgb.dtype)
    if scale != 1.0:
        return np.multiply(rgb, np.float32(scale), out=out, dtype=np.float32)
    if out is None:
        out = rgb.astype(np.float32)  # the one full-size float copy
    else:
        out[...] = rgb
    return np.clip(out, 0.0, 1.0, out=out)


def _to_rgb(decoded: np.ndarray) -> np.ndarray:
    """OpenCV's BGR/gray/BGRA uint8/uint16/float array -> RGB of the same pixel type."""
    if unit_scale(decoded.dtype) == 1.0 and not np.isfinite(decoded).all():
        raise ValueError("holds NaN or infinite pixel values")
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    if decoded.shape[2] == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB)
    if decoded.shape[2] == 3:
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    raise ValueError(f"unsupported channel count {decoded.shape[2]}")


def decode_rgb(data: bytes, *, name: str | os.PathLike[str] = "<bytes>",
               max_pixels: int = DEFAULT_MAX_PIXELS, orientation: Orientation = "ignore",
               even: bool = True, as_float: bool = True) -> np.ndarray:
    """Decode an encoded image held in memory; see `read_rgb`."""
    if not data:
        raise Rgb2RawError(name, "is empty")
    try:
        width, height = image_size(data)
    except (ValueError, struct.error) as exc:
        raise Rgb2RawError(name, str(exc)) from None
    if width <= 0 or height <= 0:
        raise Rgb2RawError(name, f"header gives an impossible size {width}x{height}")
    if width * height > max_pixels:
        raise Rgb2RawError(
            name, f"{width}x{height} is {width * height / 1e6:.0f} MP, above the limit of "
            f"{max_pixels / 1e6:.0f} MP", param="max_pixels", hint="raise it with {param}")
    # A JPEG decodes straight to RGB where OpenCV can (4.10 and later: the decoder writes
    # that order for free; the same pixels as BGR and a conversion, without the extra pass).
    direct = _IMREAD_RGB is not None and data[:3] == b"\xff\xd8\xff"
    flags = cv2.IMREAD_ANYDEPTH | (_IMREAD_RGB if _IMREAD_RGB is not None and direct
                                   else cv2.IMREAD_ANYCOLOR)
    if orientation == "ignore":
        flags |= cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if decoded is None:
        raise Rgb2RawError(name, "corrupt image data (the decoder gave up)")
    try:
        rgb = decoded if direct and decoded.ndim == 3 and decoded.shape[2] == 3 else _to_rgb(decoded)
        if as_float:
            rgb = to_unit(rgb)
    except ValueError as exc:
        raise Rgb2RawError(name, str(exc)) from None
    if even:
        rgb = crop_even(rgb, name)
    return rgb


def crop_even(rgb: np.ndarray, name: str | os.PathLike[str] = "<image>") -> np.ndarray:
    """Drop the last row and/or column of an odd-sized image, with a logged warning."""
    height, width = rgb.shape[:2]
    even_h, even_w = height - height % 2, width - width % 2
    if (even_h, even_w) == (height, width):
        return rgb
    if even_h == 0 or even_w == 0:
        raise Rgb2RawError(name, f"{width}x{height} is too small for a Bayer image")
    log.warning("%s: %dx%d has an odd side; cropped to %dx%d (Bayer needs even sizes)",
                os.fspath(name), width, height, even_w, even_h)
    return rgb[:even_h, :even_w]


def read_rgb(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS,
             orientation: Orientation = "ignore", even: bool = True,
             as_float: bool = True) -> np.ndarray:
    """Read an image file as float32 RGB (H, W, 3) in [0, 1].

    With `as_float` False the pixels stay as decoded (uint8, uint16, or float32 for float
    files), RGB order, for a caller that converts them piecewise with `to_unit`: a 12 MP
    photo is then 36 MB instead of 144 MB, and never converted as a whole.

    Raises Rgb2RawError naming the file for a missing, empty, truncated, corrupt, non-image or
    oversized file. See the module docstring for orientation and odd-size policies.
    """
    path = Path(path)
    try:
        data = path.read_bytes()  # works for any Unicode path, unlike cv2.imread on Windows
    except OSError as exc:
        raise unreadable(path, exc, "an image") from None
    return decode_rgb(data, name=path, max_pixels=max_pixels, orientation=orientation, even=even,
                      as_float=as_float)


def png_with_dpi(png: bytes, dpi: int) -> bytes:
    """The PNG `png` with a pHYs chunk saying `dpi` (so a paper gets the intended size)."""
    signature, ihdr_end = png[:8], 8 + 8 + 13 + 4  # IHDR is always first, 13 data bytes
    per_metre = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    return signature + png[8:ihdr_end] + chunk + png[ihdr_end:]


def write_rgb(path: str | os.PathLike[str], rgb_uint8: np.ndarray, *, overwrite: bool = False,
              jpeg_quality: int = 92, dpi: int | None = None) -> Path:
    """Write an (H, W, 3) uint8 RGB image as PNG or JPEG (by suffix), atomically.

    An existing file is kept (`OutputExists`) unless `overwrite`. `dpi` is recorded in a PNG.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise Rgb2RawError(path, "write images as .png or .jpg")
    params = [] if suffix == ".png" else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(rgb_uint8, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise Rgb2RawError(path, f"{suffix[1:].upper()} encoding failed")
    data = encoded.tobytes()
    if dpi is not None and suffix == ".png":
        data = png_with_dpi(data, dpi)
    try:
        with atomic_write(path, overwrite=overwrite) as handle:
            handle.write(data)
    except FileExistsError:
        raise OutputExists(path) from None
    return path
