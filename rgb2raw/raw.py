"""Reading and writing RAW `.npy` files.

On disk a RAW image is a uint16 `.npy` holding either the packed (H, W, 4) planes in canonical
R, Gr, Gb, B order (the challenge's layout) or the unpacked (2H, 2W) RGGB mosaic; the shape
tells which. Values are sensor digital numbers (DN); `white_level` divides them into [0, 1]
(1024 for the challenge, 4095 or 16383 for 12/14-bit data).

Loading never unpickles (`allow_pickle=False`): a `.npy` holding Python objects is refused,
since unpickling runs arbitrary code. Writing is atomic (see `_atomic`).
"""

from __future__ import annotations

import ast
import functools
import io
import math
import os
import struct
from pathlib import Path
from typing import IO, Literal

import numpy as np

from rgb2raw import bayer
from rgb2raw._atomic import atomic_write
from rgb2raw.errors import OutputExists, Rgb2RawError, unreadable
from rgb2raw.levels import SCORER_WHITE

RawLayout = Literal["packed", "unpacked"]
CHALLENGE_WHITE_LEVEL = SCORER_WHITE  # the one definition lives in rgb2raw.levels
UINT16_MAX = 65535


NPY_MAGIC = b"\x93NUMPY"
PICKLE_REFUSED = "holds pickled Python objects; refused (not plain numbers)"
# Longest header accepted. numpy's own reader stops at 10000 characters (safety of
# literal_eval); structured dtypes with many fields can need more, nothing needs 64 KiB.
_MAX_HEADER = 1 << 16
_PARSE_ERRORS = (ValueError, SyntaxError, TypeError, KeyError, MemoryError, RecursionError,
                 UnicodeDecodeError)


@functools.lru_cache(maxsize=256)
def _parse_npy_header(size_field: bytes, header: bytes, major: int
                      ) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of a .npy header, parsed once per distinct header.

    A folder of same-shaped files shares one header, so this costs one parse per folder.
    Versions 1 and 2 go through numpy's own header reader; version 3 (the same dict in
    UTF-8) has no public reader, so it is evaluated here the way numpy does it. Either way
    only literals are evaluated (`ast.literal_eval`), never code.
    """
    fmt = np.lib.format
    if major in (1, 2):
        reader = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, fortran_order, dtype = reader(io.BytesIO(size_field + header),
                                             max_header_size=_MAX_HEADER)
    else:
        fields = ast.literal_eval(header.decode("utf8"))
        if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
            raise ValueError("malformed .npy header")
        shape, fortran_order = fields["shape"], fields["fortran_order"]
        if not isinstance(shape, tuple) or not isinstance(fortran_order, bool):
            raise ValueError("malformed .npy header")
        dtype = fmt.descr_to_dtype(fields["descr"])
    # numpy checks the entries are ints; a negative one would only fail later, in np.empty.
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise ValueError("malformed .npy shape")
    return tuple(shape), bool(fortran_order), dtype


def _bytes_left(handle: IO[bytes]) -> int | None:
    """Bytes between the read position and the end of `handle`; None if it cannot tell."""
    try:
        here = handle.tell()
        if isinstance(handle, io.BytesIO):
            return handle.getbuffer().nbytes - here
        return os.fstat(handle.fileno()).st_size - here
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


class ReusableBuffer:
    """Memory that one reader fills file after file, so reading costs no fresh pages.

    Allocating and touching a new half-megabyte array per image costs more than reading it
    on some virtual machines (page faults). An array read into a `ReusableBuffer` is valid
    only until the next read into the same buffer; one buffer per thread.
    """

    def __init__(self) -> None:
        self._memory = np.empty(0, np.uint8)

    def get(self, nbytes: int) -> np.ndarray:
        """At least `nbytes` of aligned, writable memory (grown when a bigger file comes)."""
        if self._memory.nbytes < nbytes:
            self._memory = np.empty(nbytes, np.uint8)
        return self._memory[:nbytes]


def read_npy(handle: IO[bytes], label: str | os.PathLike[str], *,
             reuse: ReusableBuffer | None = None, size: int | None = None) -> np.ndarray:
    """Read one `.npy` array from an open binary file; errors name `label`.

    Equivalent to ``np.load(..., allow_pickle=False)`` for plain arrays, but it never
    unpickles anything, says precisely what is wrong with a bad file, compares the header
    with the file's size before allocating anything (a 200-byte file cannot ask for
    terabytes), and reads the data straight into the array. With `reuse` the array lives in
    that buffer's memory (see `ReusableBuffer`). `size` is the stream's total length when the
    handle cannot tell it (a zip member); otherwise it is read from the file.
    """
    prefix = handle.read(8)
    if prefix[:2] == b"PK":
        raise Rgb2RawError(label, "is an .npz archive, expected a single .npy array")
    if len(prefix) < 8 or prefix[:6] != NPY_MAGIC:
        raise Rgb2RawError(label, "not a readable .npy file (no NumPy header)")
    major = prefix[6]
    if major not in (1, 2, 3):
        raise Rgb2RawError(label, f"not a readable .npy file (unknown format version {major})")
    size_field = handle.read(2 if major == 1 else 4)
    if len(size_field) not in (2, 4):
        raise Rgb2RawError(label, "truncated .npy file (cut inside the header)")
    (length,) = struct.unpack("<H" if major == 1 else "<I", size_field)
    left = _bytes_left(handle) if size is None else size - len(prefix) - len(size_field)
    if left is not None and length > left:
        raise Rgb2RawError(label, "truncated .npy file (cut inside the header)")
    if length > _MAX_HEADER:
        raise Rgb2RawError(label, f"not a readable .npy file (header of {length} bytes)")
    header = handle.read(length)
    if len(header) != length:
        raise Rgb2RawError(label, "truncated .npy file (cut inside the header)")
    try:
        shape, fortran_order, dtype = _parse_npy_header(bytes(size_field), bytes(header), major)
    except _PARSE_ERRORS:
        raise Rgb2RawError(label, "not a readable .npy file (malformed header)") from None
    if dtype.hasobject:
        raise Rgb2RawError(label, PICKLE_REFUSED)
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if left is not None and nbytes > left - length:
        raise Rgb2RawError(label, f"truncated .npy file: the header promises shape {shape} "
                                  f"{dtype} ({nbytes} bytes), the file holds {left - length}")
    try:
        memory = reuse.get(nbytes) if reuse is not None else np.empty(nbytes, np.uint8)
    except (MemoryError, ValueError):  # only for streams whose size could not be told
        raise Rgb2RawError(label, f"shape {shape} {dtype} does not fit in memory") from None
    array = np.ndarray(shape, dtype, buffer=memory, order="F" if fortran_order else "C")
    target = memoryview(memory)  # type: ignore[arg-type]
    filled = 0
    while filled < nbytes:
        got = handle.readinto(target[filled:])  # type: ignore[attr-defined]
        if not got:
            raise Rgb2RawError(label, f"truncated .npy file ({filled} of {nbytes} data bytes)")
        filled += got
    return array


def load_npy(path: str | os.PathLike[str], *, reuse: ReusableBuffer | None = None) -> np.ndarray:
    """Load a `.npy` file as stored, refusing pickles and naming the file in every error."""
    try:
        # Unbuffered: the data goes straight from the OS into the array, in one read.
        with open(path, "rb", buffering=0) as handle:
            return read_npy(handle, path, reuse=reuse)
    except OSError as exc:
        raise unreadable(path, exc, "a .npy file") from None


def raw_layout(shape: tuple[int, ...]) -> RawLayout:
    """Tell the layout of a RAW array from its shape; raise ValueError if it is neither."""
    if len(shape) == 3 and shape[2] == 4:
        return "packed"
    if len(shape) == 2 and shape[0] % 2 == 0 and shape[1] % 2 == 0:
        return "unpacked"
    raise ValueError(
        f"shape {shape} is not RAW: expected packed (H, W, 4) or an unpacked (2H, 2W) mosaic"
    )


def check_raw_values(array: np.ndarray, path: str | os.PathLike[str] | None, *,
                     max_value: float) -> None:
    """Raise if `array` is not numeric, holds NaN/inf, or leaves [0, max_value]."""
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise Rgb2RawError(path, f"dtype {array.dtype} is not an integer or float type")
    if array.size == 0:
        raise Rgb2RawError(path, "is empty")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise Rgb2RawError(path, "contains NaN or infinite values")
    low, high = array.min(), array.max()
    if low < 0 or high > max_value:
        raise Rgb2RawError(path, f"values span [{low}, {high}], outside [0, {max_value:g}]")


def read_raw(path: str | os.PathLike[str], *, white_level: float | None = CHALLENGE_WHITE_LEVEL,
             pattern: str = "RGGB") -> np.ndarray:
    """Read a RAW `.npy` (packed or unpacked) as packed float32 (H, W, 4) planes.

    With a `white_level` the values are divided by it (so 0..1024 becomes 0..1 for the
    challenge); with None they stay in DN. `pattern` is the CFA of an *unpacked* file.
    """
    array = load_npy(path)
    try:
        layout = raw_layout(array.shape)
    except ValueError as exc:
        raise Rgb2RawError(path, str(exc)) from None
    check_raw_values(array, path, max_value=float("inf"))
    planes = array if layout == "packed" else bayer.pack(array, pattern)
    planes = planes.astype(np.float32)
    if white_level is not None:
        planes /= np.float32(white_level)
    return planes


def to_uint16(raw: np.ndarray, *, max_value: int = UINT16_MAX) -> np.ndarray:
    """Round floats to the nearest integer and clip into [0, max_value] as uint16.

    Integer input is checked, not clipped: an integer out of range is an error upstream.
    """
    if np.issubdtype(raw.dtype, np.floating):
        return np.clip(np.rint(raw), 0, max_value).astype(np.uint16)
    if raw.dtype == np.uint16 and max_value >= UINT16_MAX:
        return raw  # every value fits: no check, no copy (what the engine hands the writer)
    if raw.size and (raw.min() < 0 or raw.max() > max_value):
        raise ValueError(f"integer RAW values span [{raw.min()}, {raw.max()}], outside [0, {max_value}]")
    return raw.astype(np.uint16)


def write_raw(path: str | os.PathLike[str], raw: np.ndarray, *, layout: RawLayout = "packed",
              pattern: str = "RGGB", overwrite: bool = True) -> Path:
    """Write packed (H, W, 4) RAW in DN to `path` as uint16, packed or unpacked, atomically.

    Float values are rounded and clipped to [0, 65535]; clip to a camera's own white level
    before calling when that matters. Without `overwrite` an existing file raises
    Rgb2RawError and nothing is written.
    """
    path = Path(path)
    if raw.ndim != 3 or raw.shape[2] != 4:
        raise ValueError(f"write_raw takes packed (H, W, 4) RAW, got shape {raw.shape}")
    data = to_uint16(raw)
    if layout == "unpacked":
        data = bayer.unpack(data, pattern)
    elif layout != "packed":
        raise ValueError(f"unknown RAW layout {layout!r}")
    try:
        with atomic_write(path, overwrite=overwrite) as handle:
            np.save(handle, np.ascontiguousarray(data), allow_pickle=False)
    except FileExistsError:
        raise OutputExists(path) from None
    return path
