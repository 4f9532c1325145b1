"""Reading RGB images: formats, bit depths, policies and every class of bad input."""

import logging
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgb2raw.errors import Rgb2RawError
from rgb2raw.rgb import image_size, read_rgb


def gradient(height: int, width: int) -> np.ndarray:
    """A smooth BGR uint8 test image (compresses well, so JPEG stays close)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                     np.full_like(x, 128)], axis=-1).astype(np.uint8)


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF APP1 segment holding only the Orientation tag."""
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHII", 0x0112, 3, 1, orientation) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".bmp"])
def test_formats_read_as_float_rgb(tmp_path: Path, suffix: str) -> None:
    bgr = gradient(16, 24)
    path = tmp_path / f"image{suffix}"
    cv2.imwrite(str(path), bgr)
    rgb = read_rgb(path)
    assert rgb.shape == (16, 24, 3) and rgb.dtype == np.float32
    tolerance = 0.05 if suffix == ".jpg" else 1e-6
    np.testing.assert_allclose(rgb, bgr[..., ::-1] / 255, atol=tolerance)


@pytest.mark.parametrize("gray", [False, True], ids=["colour", "gray"])
def test_jpeg_decodes_to_the_pixels_of_bgr_and_a_conversion(tmp_path: Path, gray: bool) -> None:
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    image = image[..., 0] if gray else image
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), image)
    decoded = cv2.imread(str(path), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    expected = cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB if gray else cv2.COLOR_BGR2RGB)
    got = read_rgb(path, as_float=False)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


def test_16_bit_png_keeps_its_precision(tmp_path: Path) -> None:
    bgr16 = (gradient(8, 8).astype(np.uint16) * 257 + 3)
    cv2.imwrite(str(tmp_path / "deep.png"), bgr16)
    np.testing.assert_allclose(read_rgb(tmp_path / "deep.png"), bgr16[..., ::-1] / 65535, atol=1e-6)


def test_grayscale_becomes_three_channels_and_alpha_is_dropped(tmp_path: Path) -> None:
    gray = gradient(8, 8)[..., 0]
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    rgb = read_rgb(tmp_path / "gray.png")
    assert rgb.shape == (8, 8, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    bgra = np.dstack([gradient(8, 8), np.zeros((8, 8), np.uint8)])
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    np.testing.assert_allclose(read_rgb(tmp_path / "alpha.png"), gradient(8, 8)[..., ::-1] / 255, atol=1e-6)


def test_odd_sizes_are_cropped_with_a_warning(tmp_path: Path, caplog) -> None:
    cv2.imwrite(str(tmp_path / "odd.png"), gradient(9, 13))
    with caplog.at_level(logging.WARNING, logger="rgb2raw"):
        rgb = read_rgb(tmp_path / "odd.png")
    assert rgb.shape == (8, 12, 3)
    assert "odd.png" in caplog.text and "13x9" in caplog.text and "12x8" in caplog.text


def test_non_ascii_paths(tmp_path: Path) -> None:
    folder = tmp_path / "фото 写真"
    folder.mkdir()
    path = folder / "ç.png"
    ok, encoded = cv2.imencode(".png", gradient(4, 4))
    path.write_bytes(encoded.tobytes())
    assert read_rgb(path).shape == (4, 4, 3)


def test_exif_orientation_policy(tmp_path: Path) -> None:
    ok, encoded = cv2.imencode(".jpg", gradient(4, 6))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(with_exif_orientation(encoded.tobytes(), 6))  # 6: rotate 90 degrees
    assert read_rgb(path).shape == (4, 6, 3)  # default: stored (sensor) order
    assert read_rgb(path, orientation="apply").shape == (6, 4, 3)


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    ok, encoded = cv2.imencode(".jpg", gradient(8, 8))
    data = bytearray(encoded.tobytes())
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # claims 3.6 gigapixels
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    with pytest.raises(Rgb2RawError, match="above the limit") as info:
        read_rgb(tmp_path / "bomb.jpg")
    assert "bomb.jpg" in str(info.value)
    cv2.imwrite(str(tmp_path / "ok.png"), gradient(8, 8))
    with pytest.raises(Rgb2RawError, match="above the limit"):
        read_rgb(tmp_path / "ok.png", max_pixels=63)
    assert read_rgb(tmp_path / "ok.png", max_pixels=64).shape == (8, 8, 3)


def make_bad(tmp_path: Path, kind: str) -> Path:
    ok, jpeg = cv2.imencode(".jpg", gradient(32, 32))
    ok, png = cv2.imencode(".png", gradient(32, 32))
    contents = {
        "empty.jpg": b"",
        "text.jpg": b"this is not an image at all",
        "truncated.jpg": jpeg.tobytes()[: len(jpeg) // 2],
        "truncated.png": png.tobytes()[: len(png) // 2],
        "corrupt.jpg": jpeg.tobytes()[:30] + b"\x00" * (len(jpeg) - 32) + b"\xff\xd9",
    }
    path = tmp_path / kind
    if kind != "missing.jpg":
        path.write_bytes(contents[kind])
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty.jpg", "is empty"),
        ("text.jpg", "not a JPEG, PNG, TIFF or BMP"),
        ("truncated.jpg", "truncated"),
        ("truncated.png", "truncated"),
        ("corrupt.jpg", "corrupt"),
        ("missing.jpg", "no such file"),
    ],
)
def test_bad_inputs_name_the_file(tmp_path: Path, kind: str, message: str) -> None:
    path = make_bad(tmp_path, kind)
    with pytest.raises(Rgb2RawError, match=message) as info:
        read_rgb(path)
    assert info.value.path == str(path)
    assert "\n" not in str(info.value)


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(Rgb2RawError, match="is a folder"):
        read_rgb(tmp_path)


def test_image_size_reads_headers_only() -> None:
    for suffix in (".jpg", ".png", ".tif", ".bmp"):
        ok, encoded = cv2.imencode(suffix, gradient(10, 14))
        assert image_size(encoded.tobytes()) == (14, 10), suffix


def test_write_rgb_round_trips_and_keeps_existing_files(tmp_path: Path) -> None:
    from rgb2raw.rgb import write_rgb

    image = gradient(6, 8)[..., ::-1].copy()  # RGB
    path = write_rgb(tmp_path / "a.png", image)
    np.testing.assert_allclose(read_rgb(path), image / 255, atol=1e-6)
    with pytest.raises(Rgb2RawError, match="already exists"):
        write_rgb(path, np.zeros_like(image))
    write_rgb(path, np.zeros_like(image), overwrite=True)
    assert read_rgb(path).max() == 0
    with pytest.raises(Rgb2RawError, match=r"\.png or \.jpg"):
        write_rgb(tmp_path / "a.gif", image)


def test_float_tiff_with_nan_is_refused(tmp_path: Path) -> None:
    image = np.full((4, 4, 3), 0.5, np.float32)
    image[1, 2, 0] = np.nan
    cv2.imwrite(str(tmp_path / "nan.tif"), image)
    with pytest.raises(Rgb2RawError, match="NaN") as info:
        read_rgb(tmp_path / "nan.tif")
    assert "nan.tif" in str(info.value)
    image[1, 2, 0] = 0.25
    cv2.imwrite(str(tmp_path / "ok.tif"), image)
    np.testing.assert_allclose(read_rgb(tmp_path / "ok.tif")[1, 2], [0.5, 0.5, 0.25])
