"""Build a CodaLab submission zip that the AIM 2022 scorer cannot reject.

`pack` validates every prediction before writing anything (readable without pickle, numeric,
the expected shape and count, values in [0, 1024], no NaN, one `.npy` per input JPEG when
asked), then writes a deterministic zip: one top-level folder named ``submission`` holding
the `.npy` files (as uint16; floats are rounded and clipped) and ``readme.txt``, sorted
entries, fixed timestamps (1980-01-01) and permissions, deflated. The zip is first built in
an anonymous temporary file, re-opened and checked the way the scorer will read it (first
sub-folder, file count, shapes, readme), and only then copied into place atomically. On any
failure nothing is left behind.
"""

from __future__ import annotations

import enum
import io
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Literal

import numpy as np

from rgb2raw._atomic import atomic_write
from rgb2raw.cameras import get_camera
from rgb2raw.discovery import is_junk_name
from rgb2raw.errors import InvalidParameter, OutputExists, Rgb2RawError
from rgb2raw.raw import CHALLENGE_WHITE_LEVEL, check_raw_values, load_npy, to_uint16
from rgb2raw.scoring import load_npy_bytes

SUBMISSION_FOLDER = "submission"  # the zip's one top-level folder, whatever the zip is called
README_NAME = "readme.txt"
README_LABELS = (
    "runtime per frame [s]",
    "CPU[1] / GPU[0]",
    "Extra Data [1] / No Extra Data [0]",
    "Other description",
)
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store: no build time leaks in
ZIP_COMPRESSLEVEL = 6
MAX_VALUE = int(CHALLENGE_WHITE_LEVEL)  # the scorer divides by 1024 and asserts <= 1
# Validation-set sizes per camera (docs/conventions.md): 480 S7 inputs, 720 P20 inputs.
VALIDATION_COUNTS = {"s7": 480, "p20": 720}
JPEG_SUFFIXES = (".jpg", ".jpeg")
UNPARSED = -1  # what the official scorer records for a readme field it cannot parse

Device = Literal["cpu", "gpu"]


class DeviceChoice(str, enum.Enum):
    """The `--device` choices (readme's CPU[1] / GPU[0] line)."""

    cpu = "cpu"
    gpu = "gpu"


@dataclass(frozen=True)
class SubmissionInfo:
    """The four facts readme.txt reports to the organisers."""

    runtime: float  # seconds per frame
    device: Device
    extra_data: bool
    description: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.runtime) and self.runtime > 0):
            raise InvalidParameter("runtime", f"must be a positive number of seconds, got {self.runtime}")
        if self.device not in ("cpu", "gpu"):
            raise InvalidParameter("device", f"must be cpu or gpu, got {self.device!r}")
        if "\n" in self.description or "\r" in self.description:
            raise InvalidParameter("description", "must be a single line")

    def readme_text(self) -> str:
        values = (repr(float(self.runtime)), "1" if self.device == "cpu" else "0",
                  "1" if self.extra_data else "0", self.description)
        return "".join(f"{label} : {value}\n" for label, value in zip(README_LABELS, values, strict=True))


@dataclass(frozen=True)
class ReadmeFields:
    """readme.txt as the scorer parses it; a field it cannot parse is -1 (UNPARSED)."""

    runtime: float
    cpu: int
    extra_data: int
    description: str | int


def parse_readme(text: str) -> ReadmeFields:
    """Mirror the scorer: the text after the first colon of the first four lines with one."""
    found = [line.split(":", 1)[1].strip() for line in text.splitlines() if ":" in line][:4]
    values = found + [""] * (4 - len(found))

    def number(value: str) -> float:
        try:
            return float(value)
        except ValueError:
            return UNPARSED

    def flag(value: str) -> int:
        parsed = number(value)
        return int(parsed) if parsed in (0, 1) else UNPARSED

    return ReadmeFields(
        runtime=number(values[0]),
        cpu=flag(values[1]),
        extra_data=flag(values[2]),
        description=values[3] if len(found) == 4 else UNPARSED,
    )


@dataclass(frozen=True)
class PackSummary:
    """What `pack` wrote, for the CLI to report."""

    path: Path
    count: int
    shape: tuple[int, ...]
    value_min: int
    value_max: int
    float_files: int  # files that were float and got rounded + clipped to uint16
    ignored: tuple[str, ...]  # non-.npy files in the prediction folder, not packed
    zip_bytes: int


def expected_layout(camera: str | None, expect: int | None) -> tuple[tuple[int, ...] | None, int | None]:
    """(shape, count) a prediction set must have: from `--camera`, `--expect` overriding count."""
    shape: tuple[int, ...] | None = None
    count: int | None = expect
    if camera is not None:
        profile = get_camera(camera)
        if profile.name not in VALIDATION_COUNTS:
            raise InvalidParameter("camera", f"{camera!r} is not a challenge track; use s7 or p20")
        shape = (profile.raw_crop, profile.raw_crop, 4)
        count = VALIDATION_COUNTS[profile.name] if expect is None else expect
    if count is not None and count < 1:
        raise Rgb2RawError(None, f"expected count must be at least 1, got {count}")
    return shape, count


def list_predictions(pred_dir: Path) -> tuple[dict[str, Path], tuple[str, ...]]:
    """The folder's `.npy` files by stem, and the names of other (non-junk) files ignored."""
    if not pred_dir.is_dir():
        raise Rgb2RawError(pred_dir, "no such folder" if not pred_dir.exists() else "is not a folder")
    files: dict[str, Path] = {}
    ignored = []
    for path in sorted(pred_dir.iterdir()):
        if is_junk_name(path.name):
            continue
        if path.suffix == ".npy" and path.is_file():
            files[path.stem] = path
        else:
            ignored.append(path.name)
    return files, tuple(ignored)


def _check_against_rgb(files: dict[str, Path], pred_dir: Path, rgb_dir: Path) -> None:
    if not rgb_dir.is_dir():
        raise Rgb2RawError(rgb_dir, "no such folder")
    jpeg_stems = {p.stem: p for p in sorted(rgb_dir.iterdir())
                  if p.suffix.lower() in JPEG_SUFFIXES and not is_junk_name(p.name)}
    if not jpeg_stems:
        raise Rgb2RawError(rgb_dir, "holds no .jpg files")
    for stem in sorted(jpeg_stems):
        if stem not in files:
            raise Rgb2RawError(pred_dir / f"{stem}.npy", f"missing (expected for {jpeg_stems[stem]})")
    for stem in sorted(files):
        if stem not in jpeg_stems:
            raise Rgb2RawError(files[stem], f"has no matching JPEG in {rgb_dir}")


def validate_array(array: np.ndarray, path: str | os.PathLike[str],
                   shape: tuple[int, ...] | None) -> None:
    """Raise unless `array` is a valid prediction: numeric, packed (H, W, 4), in [0, 1024]."""
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.integer)
                                       or np.issubdtype(array.dtype, np.floating)):
        raise Rgb2RawError(path, f"dtype {array.dtype} is not an integer or float type")
    if shape is not None and array.shape != shape:
        raise Rgb2RawError(path, f"shape {array.shape}, expected {shape}")
    if array.ndim != 3 or array.shape[2] != 4:
        raise Rgb2RawError(path, f"shape {array.shape} is not packed RAW (H, W, 4)")
    check_raw_values(array, path, max_value=MAX_VALUE)


def _zip_entry(name: str, *, folder: bool = False) -> zipfile.ZipInfo:
    """A ZipInfo with nothing machine- or time-dependent in it."""
    info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
    info.create_system = 3  # Unix, so the permission bits below mean what they say
    if folder:
        info.external_attr = (0o40755 << 16) | 0x10  # directory + MS-DOS directory flag
        info.compress_type = zipfile.ZIP_STORED
    else:
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _write_zip(handle: IO[bytes], files: dict[str, Path], readme: str) -> tuple[int, int, int]:
    """Write the submission into `handle`; return (float files, min value, max value)."""
    float_files, low, high = 0, MAX_VALUE, 0
    with zipfile.ZipFile(handle, "w") as archive:
        archive.writestr(_zip_entry(f"{SUBMISSION_FOLDER}/", folder=True), b"")
        # Sorted names, readme.txt sorting with them, so the byte layout is reproducible.
        names = sorted([f"{stem}.npy" for stem in files] + [README_NAME])
        for name in names:
            if name == README_NAME:
                data = readme.encode("utf-8")
            else:
                path = files[name[: -len(".npy")]]
                array = load_npy(path)
                float_files += int(np.issubdtype(array.dtype, np.floating))
                values = np.ascontiguousarray(to_uint16(array, max_value=MAX_VALUE))
                low, high = min(low, int(values.min())), max(high, int(values.max()))
                buffer = io.BytesIO()
                np.save(buffer, values, allow_pickle=False)
                data = buffer.getvalue()
            archive.writestr(_zip_entry(f"{SUBMISSION_FOLDER}/{name}"), data,
                             compresslevel=ZIP_COMPRESSLEVEL)
    return float_files, low, high


def check_submission_zip(source: str | os.PathLike[str] | IO[bytes], *, count: int,
                         shape: tuple[int, ...] | None = None,
                         readme: ReadmeFields | None = None, label: str = "zip") -> ReadmeFields:
    """Read a submission zip the way the scorer will, raising on anything it would trip on.

    Checks: exactly one top-level folder and nothing else at the top, no hidden or junk
    entries, `count` `.npy` files in that folder, each loadable without pickle, uint16, of
    `shape` (or all one packed shape), within [0, 1024], and a readme.txt whose four fields
    parse (and equal `readme`, if given). Returns the parsed readme.
    """
    try:
        with zipfile.ZipFile(source) as archive:
            names = archive.namelist()
            junk = [n for n in names if is_junk_name(n)]
            if junk:
                raise Rgb2RawError(label, f"holds hidden or junk entries ({', '.join(junk[:3])})")
            tops = {PurePosixPath(n).parts[0] for n in names}
            if len(tops) != 1 or any("/" not in n for n in names):
                raise Rgb2RawError(label, f"must hold exactly one top-level folder, found {sorted(tops)}")
            folder = tops.pop()
            inside = [n[len(folder) + 1:] for n in names if n != f"{folder}/"]
            if any("/" in n for n in inside):
                raise Rgb2RawError(label, f"{folder}/ holds sub-folders; the scorer reads files only")
            npy_names = sorted(n for n in inside if "npy" in n)  # the scorer's own filter
            if len(npy_names) != count:
                raise Rgb2RawError(label, f"{folder}/ holds {len(npy_names)} .npy files, expected {count}")
            if README_NAME not in inside:
                raise Rgb2RawError(label, f"{folder}/{README_NAME} is missing")
            first_shape = shape
            for name in npy_names:
                member = f"{label}:{folder}/{name}"
                array = load_npy_bytes(archive.read(f"{folder}/{name}"), member)
                if array.dtype != np.uint16:
                    raise Rgb2RawError(member, f"dtype {array.dtype}, expected uint16")
                first_shape = first_shape or array.shape
                validate_array(array, member, first_shape)
            parsed = parse_readme(archive.read(f"{folder}/{README_NAME}").decode("utf-8", "replace"))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise Rgb2RawError(label, f"not a readable zip ({exc})") from None
    if UNPARSED in (parsed.runtime, parsed.cpu, parsed.extra_data, parsed.description):
        raise Rgb2RawError(label, f"{README_NAME} does not parse: {parsed}")
    if readme is not None and parsed != readme:
        raise Rgb2RawError(label, f"{README_NAME} parses as {parsed}, expected {readme}")
    return parsed


def pack(pred_dir: str | os.PathLike[str], out: str | os.PathLike[str], info: SubmissionInfo, *,
         camera: str | None = None, expect: int | None = None,
         rgb_dir: str | os.PathLike[str] | None = None, overwrite: bool = False,
         force: bool = False) -> PackSummary:
    """Validate the predictions in `pred_dir` and write the submission zip `out`.

    Raises Rgb2RawError naming the first bad file (in stem order) before anything is
    written; refuses an existing `out` unless `overwrite` (`force` is its old name).
    """
    force = overwrite or force
    pred_path, out_path = Path(pred_dir), Path(out)
    if out_path.exists() and not force:
        raise OutputExists(out_path)
    if out_path.is_dir():
        raise Rgb2RawError(out_path, "is a folder, expected a .zip file path")
    shape, count = expected_layout(camera, expect)
    files, ignored = list_predictions(pred_path)
    if not files:
        raise Rgb2RawError(pred_path, "holds no .npy files")
    if rgb_dir is not None:
        _check_against_rgb(files, pred_path, Path(rgb_dir))
    if count is not None and len(files) != count:
        raise Rgb2RawError(pred_path, f"holds {len(files)} .npy files, expected {count}")

    # Every file is checked before a byte is written; one packed shape for the whole set.
    for stem in sorted(files):
        array = load_npy(files[stem])
        validate_array(array, files[stem], shape)
        shape = shape or array.shape

    readme = info.readme_text()
    expected_readme = parse_readme(readme)
    # Built and checked in an anonymous temporary file (gone on any exit), then copied in.
    with tempfile.TemporaryFile(dir=out_path.parent if out_path.parent.is_dir() else None) as scratch:
        float_files, low, high = _write_zip(scratch, files, readme)
        scratch.seek(0)
        check_submission_zip(scratch, count=len(files), shape=shape, readme=expected_readme,
                             label=str(out_path))
        size = scratch.seek(0, os.SEEK_END)
        scratch.seek(0)
        with atomic_write(out_path, overwrite=force) as handle:
            shutil.copyfileobj(scratch, handle, length=1 << 20)
    assert shape is not None
    return PackSummary(out_path, len(files), shape, low, high, float_files, ignored, size)
