"""Lens shading: regions get exactly the frame's gains, the centre and corners are where they
should be, and storage round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgb2raw.errors import Rgb2RawError
from rgb2raw.shading import FrameBox, RadialShading

# A typical fall-off: 1 at the centre, about 0.45 at the corners.
FALL_OFF = RadialShading.from_rgb([[1.0, -0.9, 0.4, -0.05]] * 3)


def test_centre_and_corners() -> None:
    gains = FALL_OFF.gain_map((100, 140))
    centre = gains[49:51, 69:71, 1].mean()
    corner = gains[0, 0, 1]
    assert centre == pytest.approx(1.0, abs=1e-3)
    assert corner == pytest.approx(1.0 - 0.9 + 0.4 - 0.05, abs=0.03)
    # The map is symmetric about the centre (a lens is).
    np.testing.assert_allclose(gains, gains[::-1, ::-1], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(top=st.integers(0, 30), left=st.integers(0, 50), height=st.integers(1, 30),
       width=st.integers(1, 40))
def test_region_equals_cut_from_frame(top: int, left: int, height: int, width: int) -> None:
    frame = FALL_OFF.gain_map((60, 90))
    box = FrameBox(top, left, 60, 90)
    height, width = min(height, 60 - top), min(width, 90 - left)
    np.testing.assert_allclose(FALL_OFF.gain_map((height, width), box),
                               frame[top: top + height, left: left + width], atol=1e-6)


def test_region_without_box_is_its_own_frame() -> None:
    # Negative control: a crop treated as a whole frame gets different gains than in place.
    in_place = FALL_OFF.gain_map((20, 20), FrameBox(0, 0, 60, 90))
    alone = FALL_OFF.gain_map((20, 20))
    assert np.abs(in_place - alone).max() > 0.1


def test_channels_are_separate() -> None:
    shading = RadialShading.from_rgb([[1, 0, 0, 0], [1, -0.5, 0, 0], [2, 0, 0, 0]])
    corner = shading.gain_map((10, 10))[0, 0]
    assert corner[0] == pytest.approx(1.0)
    assert corner[1] == corner[2] < 1.0
    assert corner[3] == pytest.approx(2.0)


def test_apply_multiplies() -> None:
    packed = np.full((8, 8, 4), 0.5, np.float32)
    np.testing.assert_allclose(FALL_OFF.apply(packed), 0.5 * FALL_OFF.gain_map((8, 8)))


def test_dict_round_trip_and_refusals() -> None:
    again = RadialShading.from_dict(FALL_OFF.to_dict())
    np.testing.assert_allclose(again.coefficients, FALL_OFF.coefficients)
    with pytest.raises(Rgb2RawError, match="unknown"):
        RadialShading.from_dict({"kind": "grid"})
    with pytest.raises(Rgb2RawError, match="coefficients"):
        RadialShading(np.array([1.0, np.nan, 0, 0]))
