"""Bayer packing and pattern conversion are exact and invertible."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rgb2raw import bayer

mosaics = st.tuples(st.integers(1, 6), st.integers(1, 6)).flatmap(
    lambda hw: arrays(np.uint16, (2 * hw[0], 2 * hw[1]), elements=st.integers(0, 65535))
)
patterns = st.sampled_from(bayer.CFA_PATTERNS)


@given(mosaics, patterns)
def test_pack_unpack_round_trip(mosaic: np.ndarray, pattern: str) -> None:
    planes = bayer.pack(mosaic, pattern)
    assert planes.shape == (mosaic.shape[0] // 2, mosaic.shape[1] // 2, 4)
    assert planes.dtype == mosaic.dtype
    np.testing.assert_array_equal(bayer.unpack(planes, pattern), mosaic)


@given(mosaics, patterns, patterns)
def test_pattern_conversion_round_trips_and_keeps_colours(mosaic, source, target) -> None:
    converted = bayer.convert_mosaic(mosaic, source, target)
    np.testing.assert_array_equal(bayer.convert_mosaic(converted, target, source), mosaic)
    # Same samples, same colour meaning: packing each with its own pattern agrees.
    np.testing.assert_array_equal(bayer.pack(converted, target), bayer.pack(mosaic, source))


def test_challenge_packed_order_is_r_gr_gb_b() -> None:
    # docs/conventions.md: raw[:,:,0] = bayer[0::2,0::2], 1 = [0::2,1::2], 2 = [1::2,0::2], 3 = [1::2,1::2]
    mosaic = np.arange(16).reshape(4, 4)
    planes = bayer.pack(mosaic, "RGGB")
    np.testing.assert_array_equal(planes[..., 0], mosaic[0::2, 0::2])
    np.testing.assert_array_equal(planes[..., 1], mosaic[0::2, 1::2])
    np.testing.assert_array_equal(planes[..., 2], mosaic[1::2, 0::2])
    np.testing.assert_array_equal(planes[..., 3], mosaic[1::2, 1::2])


@pytest.mark.parametrize(
    ("pattern", "block", "expected"),
    [
        # Each block written as its colour letters; expected canonical R, Gr, Gb, B.
        ("GRBG", [["Gr", "R"], ["B", "Gb"]], ["R", "Gr", "Gb", "B"]),
        ("GBRG", [["Gb", "B"], ["R", "Gr"]], ["R", "Gr", "Gb", "B"]),
        ("BGGR", [["B", "Gb"], ["Gr", "R"]], ["R", "Gr", "Gb", "B"]),
    ],
)
def test_non_rggb_patterns_pack_to_canonical_order(pattern, block, expected) -> None:
    mosaic = np.array(block, dtype=object)
    assert list(bayer.pack(mosaic, pattern)[0, 0]) == expected


def test_mosaic_rgb_samples_each_site_colour() -> None:
    rgb = np.zeros((2, 2, 3))
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1.0, 2.0, 3.0
    np.testing.assert_array_equal(bayer.mosaic_rgb(rgb)[0, 0], [1.0, 2.0, 2.0, 3.0])


def test_bad_shapes_and_patterns_raise() -> None:
    with pytest.raises(ValueError, match="even"):
        bayer.pack(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(H, W, 4\)"):
        bayer.unpack(np.zeros((2, 2, 3)))
    with pytest.raises(ValueError, match="unknown CFA"):
        bayer.pack(np.zeros((2, 2)), "RGBG")
    assert bayer.check_pattern("rggb") == "RGGB"
