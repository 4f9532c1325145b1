"""Camera profiles hold the documented numbers and consistent colour math."""

import numpy as np
import pytest

from rgb2raw.cameras import CAMERA_NAMES, P20, S7, get_camera
from rgb2raw.errors import Rgb2RawError


def test_challenge_geometry() -> None:
    assert (S7.rgb_crop, S7.raw_crop, S7.frame_size) == (504, 252, (4032, 3024))
    assert (P20.rgb_crop, P20.raw_crop, P20.frame_size) == (496, 248, (3968, 2976))
    for camera in (S7, P20):
        rows, cols = camera.crop_grid
        assert camera.crops_per_frame == 48
        assert (cols * camera.rgb_crop, rows * camera.rgb_crop) == camera.frame_size


def test_levels_and_sensor_patterns() -> None:
    assert (S7.black_level, S7.white_level, S7.sensor_cfa) == (0, 1023, "GRBG")
    assert (P20.black_level, P20.white_level, P20.sensor_cfa) == (60, 1020, "BGGR")


@pytest.mark.parametrize("name", CAMERA_NAMES)
def test_colour_matrices_keep_white_and_invert(name: str) -> None:
    camera = get_camera(name)
    np.testing.assert_allclose(camera.rgb_to_cam @ np.ones(3), np.ones(3), atol=1e-12)
    np.testing.assert_allclose(camera.cam_to_rgb @ camera.rgb_to_cam, np.eye(3), atol=1e-12)
    assert camera.wb_gains[1] == 1.0 and min(camera.wb_gains) > 0
    assert camera.sources


def test_noise_variance_grows_with_signal_and_iso() -> None:
    signal = np.array([0.0, 0.5, 1.0])
    base = P20.noise_variance(signal)
    np.testing.assert_allclose(base[0], P20.noise_read)
    assert np.all(np.diff(base) > 0)
    np.testing.assert_allclose(P20.noise_variance(signal, iso=400)[0], P20.noise_read * 64)


def test_unknown_camera_lists_the_choices() -> None:
    assert get_camera("S7") is S7
    with pytest.raises(Rgb2RawError, match="s7, p20, generic"):
        get_camera("pixel9")
