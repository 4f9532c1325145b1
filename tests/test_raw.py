"""RAW .npy reading/writing: layouts, levels, refusal of pickles, atomic writes."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rgb2raw import bayer
from rgb2raw._atomic import TEMP_PREFIX, atomic_write
from rgb2raw.errors import Rgb2RawError
from rgb2raw.raw import (
    ReusableBuffer,
    load_npy,
    raw_layout,
    read_npy,
    read_raw,
    to_uint16,
    write_raw,
)


def test_write_then_read_packed_and_unpacked(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    packed = rng.integers(0, 1024, size=(6, 8, 4)).astype(np.uint16)
    write_raw(tmp_path / "p.npy", packed)
    write_raw(tmp_path / "u.npy", packed, layout="unpacked")
    on_disk = np.load(tmp_path / "u.npy")
    assert on_disk.shape == (12, 16) and on_disk.dtype == np.uint16
    np.testing.assert_array_equal(on_disk, bayer.unpack(packed))
    for name in ("p.npy", "u.npy"):
        np.testing.assert_array_equal(read_raw(tmp_path / name, white_level=None), packed)
        np.testing.assert_allclose(read_raw(tmp_path / name), packed / 1024, rtol=1e-7)
    np.testing.assert_allclose(read_raw(tmp_path / "p.npy", white_level=4095), packed / 4095, rtol=1e-6)


def test_floats_are_rounded_and_clipped() -> None:
    values = np.array([-3.2, 0.4, 0.5, 1.5, 1023.6, 70000.0])
    np.testing.assert_array_equal(to_uint16(values), [0, 0, 0, 2, 1024, 65535])
    np.testing.assert_array_equal(to_uint16(values, max_value=1023), [0, 0, 0, 2, 1023, 1023])
    with pytest.raises(ValueError, match="outside"):
        to_uint16(np.array([70000]))


def test_uint16_is_written_as_it_is() -> None:
    dn = np.array([[0, 1023, 65535]], dtype=np.uint16)
    assert to_uint16(dn) is dn  # no copy on the way to the file
    with pytest.raises(ValueError, match="outside"):
        to_uint16(dn, max_value=1023)  # a lower ceiling is still checked


def test_layout_is_told_by_shape() -> None:
    assert raw_layout((4, 4, 4)) == "packed"
    assert raw_layout((8, 6)) == "unpacked"
    for bad in [(4, 4, 3), (7, 6), (2, 2, 2, 4)]:
        with pytest.raises(ValueError, match="not RAW"):
            raw_layout(bad)


def test_pickled_object_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(Rgb2RawError, match="pickled") as info:
        load_npy(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a readable"), (b"hello world", "not a readable"), (None, "no such file")],
)
def test_unreadable_files_name_the_file(tmp_path: Path, content, message) -> None:
    path = tmp_path / "x.npy"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(Rgb2RawError, match=message) as info:
        read_raw(path)
    assert info.value.path == str(path)


def test_truncated_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((8, 8, 4), np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[:-50])
    with pytest.raises(Rgb2RawError, match="truncated"):
        read_raw(path)
    path.write_bytes(data[:20])
    with pytest.raises(Rgb2RawError, match="truncated"):
        read_raw(path)


def test_wrong_shape_and_nan_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "rgb.npy", np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(Rgb2RawError, match="not RAW"):
        read_raw(tmp_path / "rgb.npy")
    np.save(tmp_path / "nan.npy", np.full((2, 2, 4), np.nan, np.float32))
    with pytest.raises(Rgb2RawError, match="NaN"):
        read_raw(tmp_path / "nan.npy")


def test_no_overwrite_leaves_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    write_raw(path, np.ones((2, 2, 4)))
    with pytest.raises(Rgb2RawError, match="already exists"):
        write_raw(path, np.zeros((2, 2, 4)), overwrite=False)
    np.testing.assert_array_equal(np.load(path), np.ones((2, 2, 4)))


def test_exception_inside_atomic_write_keeps_old_file_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_killed_process_never_leaves_a_truncated_target(tmp_path: Path) -> None:
    """A process dying mid-write (no cleanup at all) leaves the old file intact."""
    target = tmp_path / "raw.npy"
    write_raw(target, np.full((4, 4, 4), 7))
    script = textwrap.dedent(
        f"""
        import os
        from rgb2raw._atomic import atomic_write
        with atomic_write({str(target)!r}) as handle:
            handle.write(b"\\x93NUMPY partial")
            handle.flush()
            os._exit(9)  # simulated crash: no exception handling, no cleanup
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == 9
    np.testing.assert_array_equal(np.load(target), np.full((4, 4, 4), 7))
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(name.startswith(TEMP_PREFIX) for name in leftovers)


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import stat

    from rgb2raw import _atomic

    write_raw(tmp_path / "a.npy", np.zeros((2, 2, 4)))
    assert stat.S_IMODE((tmp_path / "a.npy").stat().st_mode) == 0o666 & ~_atomic._UMASK


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint16).reshape(2, 3, 4),
        np.asfortranarray(np.arange(24, dtype=np.float32).reshape(4, 6)),
        np.arange(6, dtype=">u2").reshape(3, 2),  # big-endian
        np.zeros((0, 4), dtype=np.float64),
        np.array(3.5),
        np.zeros(3, dtype=[("a", "<u2"), ("b", "<f4")]),  # structured, no objects
    ],
)
def test_load_npy_matches_numpy(tmp_path: Path, array: np.ndarray) -> None:
    np.save(tmp_path / "a.npy", array)
    loaded = load_npy(tmp_path / "a.npy")
    expected = np.load(tmp_path / "a.npy", allow_pickle=False)
    assert loaded.dtype == expected.dtype and loaded.shape == expected.shape
    np.testing.assert_array_equal(loaded, expected)
    assert loaded.flags.writeable


def test_load_npy_reads_format_version_2(tmp_path: Path) -> None:
    array = np.arange(8, dtype=np.uint16).reshape(2, 4)
    with (tmp_path / "v2.npy").open("wb") as handle:
        np.lib.format.write_array(handle, array, version=(2, 0))
    np.testing.assert_array_equal(load_npy(tmp_path / "v2.npy"), array)


def test_structured_arrays_with_objects_and_npz_are_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.zeros(2, dtype=[("a", "O")]), allow_pickle=True)
    with pytest.raises(Rgb2RawError, match="pickled"):
        load_npy(tmp_path / "obj.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros(2))
    with pytest.raises(Rgb2RawError, match="npz"):
        load_npy(tmp_path / "two.npz")
    with pytest.raises(Rgb2RawError, match="is a folder"):
        load_npy(tmp_path)


def test_a_malformed_header_is_refused(tmp_path: Path) -> None:
    header = b"{'descr': '<u2', 'fortran_order': False, 'shape': (2, -1), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    payload = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\x00" * 8
    (tmp_path / "bad.npy").write_bytes(payload)
    with pytest.raises(Rgb2RawError, match="malformed header"):
        load_npy(tmp_path / "bad.npy")


def _npy_with_header(shape_text: str, data: bytes = b"", size_field: int | None = None) -> bytes:
    header = ("{'descr': '<u2', 'fortran_order': False, 'shape': " + shape_text + ", }").encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    length = len(header) if size_field is None else size_field
    return b"\x93NUMPY\x01\x00" + length.to_bytes(2, "little") + header + data


def test_a_header_promising_more_than_the_file_holds_is_refused_before_allocating(
        tmp_path: Path) -> None:
    """200 bytes claiming 320 GB: one clear error, never a MemoryError (nor an allocation)."""
    payload = _npy_with_header("(200000, 200000, 4)")
    payload += b"\x00" * (200 - len(payload))
    path = tmp_path / "liar.npy"
    path.write_bytes(payload)
    with pytest.raises(Rgb2RawError, match=r"truncated .npy file: the header promises shape "
                                           r"\(200000, 200000, 4\)") as info:
        load_npy(path)
    assert info.value.path == str(path)
    # The same through a stream that cannot tell its size (a zip member): `size` says it.
    import io

    with pytest.raises(Rgb2RawError, match="header promises"):
        read_npy(io.BufferedReader(io.BytesIO(payload)), "member", size=len(payload))  # type: ignore[arg-type]


def test_a_header_length_beyond_the_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cut.npy").write_bytes(_npy_with_header("(2, 2)", size_field=60000))
    with pytest.raises(Rgb2RawError, match="cut inside the header"):
        load_npy(tmp_path / "cut.npy")


def test_reused_buffer_holds_the_latest_file_and_grows(tmp_path: Path) -> None:
    small = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    large = np.arange(120, dtype=np.uint16).reshape(5, 6, 4)
    np.save(tmp_path / "s.npy", small)
    np.save(tmp_path / "l.npy", large)
    memory = ReusableBuffer()
    first = load_npy(tmp_path / "l.npy", reuse=memory)
    np.testing.assert_array_equal(first, large)
    second = load_npy(tmp_path / "s.npy", reuse=memory)
    np.testing.assert_array_equal(second, small)
    assert np.shares_memory(first, second)  # no fresh memory for the smaller file
    third = load_npy(tmp_path / "l.npy", reuse=memory)
    np.testing.assert_array_equal(third, large)


def test_load_npy_reads_format_version_3(tmp_path: Path) -> None:
    array = np.zeros(3, dtype=[("\u00e9t\u00e9", "<u2")])  # a non-Latin-1 name needs version 3
    with (tmp_path / "v3.npy").open("wb") as handle:
        np.lib.format.write_array(handle, array, version=(3, 0))
    loaded = load_npy(tmp_path / "v3.npy")
    assert loaded.dtype == array.dtype
    np.testing.assert_array_equal(loaded, array)


def test_reading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle.load called")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object), allow_pickle=True)
    with pytest.raises(Rgb2RawError, match="pickled"):
        load_npy(tmp_path / "obj.npy")
