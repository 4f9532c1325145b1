"""DNG writer: LibRaw (via rawpy) reads back exactly what we wrote, and the TIFF is well formed."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from rgb2raw import bayer
from rgb2raw.cameras import GENERIC, P20, S7, CameraProfile
from rgb2raw.dng import dng_bytes, write_dng
from rgb2raw.errors import Rgb2RawError

rawpy = pytest.importorskip("rawpy")

# TIFF type -> (struct code, size); the test's own table, independent of rgb2raw.dng.
TIFF_TYPES = {1: ("B", 1), 2: ("c", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 10: ("ii", 8)}
# LibRaw refuses images under 22 pixels a side as "not RAW", so rawpy checks use larger ones.
LIBRAW_MIN_SIDE = 22


def parse_tiff(data: bytes) -> dict[int, tuple[int, list]]:
    """Parse a little-endian single-IFD TIFF into {tag: (type, values)}, checking its structure."""
    assert data[:4] == b"II*\0", "not a little-endian TIFF"
    (ifd_offset,) = struct.unpack_from("<I", data, 4)
    assert ifd_offset % 2 == 0 and ifd_offset + 2 <= len(data)
    (count,) = struct.unpack_from("<H", data, ifd_offset)
    tags: dict[int, tuple[int, list]] = {}
    previous_tag = -1
    for index in range(count):
        tag, kind, n = struct.unpack_from("<HHI", data, ifd_offset + 2 + 12 * index)
        assert tag > previous_tag, f"tag {tag} out of order or repeated"
        previous_tag = tag
        assert kind in TIFF_TYPES, f"tag {tag} has unknown type {kind}"
        code, size = TIFF_TYPES[kind]
        field = ifd_offset + 2 + 12 * index + 8
        if n * size > 4:
            (field,) = struct.unpack_from("<I", data, field)
            assert field % 2 == 0, f"tag {tag} value at odd offset {field}"
            assert field + n * size <= len(data), f"tag {tag} value runs past the end"
        raw = data[field:field + n * size]
        if kind == 2:
            assert raw.endswith(b"\0"), f"ascii tag {tag} not NUL-terminated"
            values: list = [raw[:-1].decode("ascii")]
        else:
            values = list(struct.unpack(f"<{code * n}", raw))
        tags[tag] = (kind, values)
    (next_ifd,) = struct.unpack_from("<I", data, ifd_offset + 2 + 12 * count)
    assert next_ifd == 0
    return tags


def random_packed(shape: tuple[int, int], camera: CameraProfile, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low, high = int(camera.black_level), int(camera.white_level)
    return rng.integers(low, high + 1, size=(*shape, 4)).astype(np.uint16)


@pytest.mark.parametrize("camera", [S7, P20, GENERIC], ids=lambda c: c.name)
@pytest.mark.parametrize("shape", [(11, 13), (16, 24), (33, 12)])
def test_rawpy_reads_back_mosaic_levels_and_colour(tmp_path: Path, camera: CameraProfile,
                                                   shape: tuple[int, int]) -> None:
    packed = random_packed(shape, camera)
    path = write_dng(tmp_path / "out.dng", packed, camera)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, bayer.unpack(packed, "RGGB"))
        # raw_pattern indexes color_desc; read the 2x2 block's colours back as letters.
        letters = "".join(chr(raw.color_desc[i]) for i in raw.raw_pattern.flatten())
        assert letters == "RGGB"
        assert raw.black_level_per_channel == [round(camera.black_level)] * 4
        assert raw.white_level == round(camera.white_level)
        gains = np.asarray(raw.camera_whitebalance[:3]) / raw.camera_whitebalance[1]
        np.testing.assert_allclose(gains, camera.wb_gains, rtol=1e-3)
        # LibRaw derives camera -> sRGB from ColorMatrix1 the same way CameraProfile does.
        np.testing.assert_allclose(raw.color_matrix[:, :3], camera.cam_to_rgb, atol=1e-3)
        assert raw.postprocess().shape == (2 * shape[0], 2 * shape[1], 3)


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (7, 5), (3, 8)])
def test_tags_are_well_formed_and_strip_holds_the_mosaic(tmp_path: Path,
                                                         shape: tuple[int, int]) -> None:
    packed = random_packed(shape, P20, seed=shape[0])
    data = write_dng(tmp_path / "tiny.dng", packed, P20).read_bytes()
    tags = parse_tiff(data)
    height, width = 2 * shape[0], 2 * shape[1]
    expected = {
        254: [0], 256: [width], 257: [height], 258: [16], 259: [1], 262: [32803], 274: [1],
        277: [1], 278: [height], 279: [2 * width * height], 284: [1], 33421: [2, 2],
        33422: [0, 1, 1, 2], 50706: [1, 4, 0, 0], 50714: [60], 50717: [1020], 50778: [21],
        271: ["rgb2raw"], 272: ["p20"], 50708: ["rgb2raw p20"],
    }
    for tag, values in expected.items():
        assert tags[tag][1] == values, f"tag {tag}"
    assert tags[50707][1][:2] == [1, 1]
    assert tags[305][1][0].startswith("rgb2raw ")
    (offset,) = tags[273][1]
    strip = np.frombuffer(data[offset:offset + 2 * width * height], dtype="<u2")
    np.testing.assert_array_equal(strip.reshape(height, width), bayer.unpack(packed, "RGGB"))
    assert offset + 2 * width * height == len(data)

    kind, words = tags[50721]
    assert kind == 10  # SRATIONAL
    matrix = np.array(words[0::2]) / np.array(words[1::2])
    np.testing.assert_allclose(matrix.reshape(3, 3), P20.xyz_to_cam, atol=1e-4)
    kind, words = tags[50728]
    assert kind == 5  # RATIONAL
    neutral = np.array(words[0::2]) / np.array(words[1::2])
    np.testing.assert_allclose(neutral, 1 / np.asarray(P20.wb_gains), atol=1e-4)


def test_given_as_shot_neutral_is_written(tmp_path: Path) -> None:
    packed = random_packed((12, 12), S7)
    path = write_dng(tmp_path / "wb.dng", packed, S7, as_shot_neutral=(0.5, 1.0, 0.25))
    with rawpy.imread(str(path)) as raw:
        gains = np.asarray(raw.camera_whitebalance[:3]) / raw.camera_whitebalance[1]
    np.testing.assert_allclose(gains, [2.0, 1.0, 4.0], rtol=1e-4)


def test_existing_file_needs_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "keep.dng"
    target.write_bytes(b"user data")
    with pytest.raises(Rgb2RawError, match="already exists"):
        write_dng(target, random_packed((2, 2), S7), S7, overwrite=False)
    assert target.read_bytes() == b"user data"
    write_dng(target, random_packed((2, 2), S7), S7, overwrite=True)
    assert target.read_bytes()[:4] == b"II*\0"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.dng"]  # no temporary left behind


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.zeros((4, 4), np.uint16), "shape"),
        (np.zeros((4, 4, 3), np.uint16), "shape"),
        (np.zeros((0, 4, 4), np.uint16), "shape"),
        (np.zeros((2, 2, 4), np.float32), "integer DN"),
        (np.full((2, 2, 4), 70000, np.int32), "outside"),
    ],
)
def test_bad_input_is_refused(tmp_path: Path, array: np.ndarray, problem: str) -> None:
    with pytest.raises(Rgb2RawError, match=problem):
        write_dng(tmp_path / "bad.dng", array, S7)
    assert not (tmp_path / "bad.dng").exists()


def test_other_integer_dtypes_in_range_are_accepted() -> None:
    packed = random_packed((3, 3), S7)
    assert dng_bytes(packed.astype(np.int64), S7) == dng_bytes(packed, S7)


def test_bad_as_shot_neutral_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Rgb2RawError, match="as_shot_neutral"):
        write_dng(tmp_path / "x.dng", random_packed((2, 2), S7), S7, as_shot_neutral=(1, 0, 1))
