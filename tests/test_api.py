"""The public API: a few names, lazily re-exported from `rgb2raw`, torch-free on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rgb2raw

PUBLIC = {"load_model": "rgb2raw.pipeline", "infer_image": "rgb2raw.pipeline",
          "infer_paths": "rgb2raw.batch", "read_rgb": "rgb2raw.rgb", "write_raw": "rgb2raw.raw",
          "score": "rgb2raw.scoring", "pack": "rgb2raw.submission"}


def test_importing_rgb2raw_loads_no_heavy_module() -> None:
    code = ("import sys, rgb2raw; heavy = [m for m in ('numpy', 'cv2', 'torch', 'onnxruntime') "
            "if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_every_public_name_is_its_modules_function() -> None:
    import importlib

    for name, module in PUBLIC.items():
        assert getattr(rgb2raw, name) is getattr(importlib.import_module(module), name)
        assert name in rgb2raw.__all__ and name in dir(rgb2raw)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        rgb2raw.nothing  # noqa: B018


def test_the_api_runs_one_image_end_to_end(tmp_path: Path) -> None:
    model = rgb2raw.load_model(camera="p20")
    rgb = np.random.default_rng(0).random((16, 24, 3), dtype=np.float32)
    raw = rgb2raw.infer_image(rgb, model)
    assert raw.shape == (8, 12, 4) and raw.dtype == np.uint16
    assert raw.min() >= 60 and raw.max() <= 1020  # the P20 model's levels
    path = rgb2raw.write_raw(tmp_path / "a.npy", raw)
    np.testing.assert_array_equal(np.load(path), raw)
