"""The sample chart the README starts from."""

from pathlib import Path

import numpy as np
import pytest

from rgb2raw.errors import Rgb2RawError
from rgb2raw.rgb import read_rgb
from rgb2raw.sample import COLORCHECKER_SRGB, main, make_chart, write_chart


def test_chart_holds_the_patch_colours() -> None:
    chart = make_chart(600, 450)
    assert chart.shape == (450, 600, 3) and chart.dtype == np.uint8
    colours = {tuple(int(v) for v in pixel) for pixel in chart.reshape(-1, 3)}
    assert set(COLORCHECKER_SRGB) <= colours


def test_written_chart_reads_back_and_is_never_overwritten(tmp_path: Path) -> None:
    path = write_chart(tmp_path / "chart.png", width=200, height=150)
    np.testing.assert_allclose(read_rgb(path), make_chart(200, 150) / 255, atol=1e-6)
    with pytest.raises(Rgb2RawError, match="already exists"):
        write_chart(path, width=200, height=150)
    assert main([str(tmp_path / "c.jpg"), "--width", "128", "--height", "96"]) == 0
    assert read_rgb(tmp_path / "c.jpg").shape == (96, 128, 3)
    assert main([str(tmp_path / "c.jpg")]) == 1
