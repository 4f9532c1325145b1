"""Optional packages: a missing onnx or torch is one line naming the extra, before any work.

Each case runs the CLI in a fresh process whose import system refuses the package (a
meta-path finder that raises ModuleNotFoundError, as a missing package would).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from rgb2raw._optional import available, require
from rgb2raw.errors import Rgb2RawError

BLOCKED_RUN = """
import sys

class Missing:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing(sys.argv[1].split(",")))
sys.argv = ["rgb2raw", *sys.argv[2:]]
from rgb2raw.cli import main
main()
"""

EXTRA = 'pip install "rgb2raw[torch]"'


def run_without(packages: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Offline: a check that failed to fire must not reach for the network instead.
    env = {**os.environ, "RGB2RAW_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, packages, *args],
                          capture_output=True, text=True, timeout=120, env=env)


def assert_one_line_naming_the_extra(result: subprocess.CompletedProcess[str], package: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and f"the {package} package" in lines[0]
    assert EXTRA in lines[0] and "Traceback" not in result.stderr


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(path), rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
    return path


def test_require_names_the_extra() -> None:
    assert available("json") and not available("rgb2raw_no_such_package")
    require("json")
    with pytest.raises(Rgb2RawError, match=r'needs the rgb2raw_no_such_package package.*'
                                           r'pip install "rgb2raw\[torch\]"'):
        require("rgb2raw_no_such_package", "torch", purpose="this test")


def test_onnx_export_of_a_checkpoint_without_onnx_fails_at_once(tmp_path: Path, photo: Path) -> None:
    torch = pytest.importorskip("torch")
    from rgb2raw.nets import build_net

    checkpoint = tmp_path / "unet.pth"
    torch.save(build_net("unet").state_dict(), checkpoint)
    result = run_without("onnx", "infer", str(photo), "-o", str(tmp_path / "out"),
                         "--model", str(checkpoint), "--arch", "unet", "--backend", "onnx")
    assert_one_line_naming_the_extra(result, "onnx")
    assert not (tmp_path / "out").exists()
    # The same checkpoint still runs on the torch backend, which needs no onnx.
    fine = run_without("onnx", "infer", str(photo), "-o", str(tmp_path / "torch"),
                       "--model", str(checkpoint), "--arch", "unet", "--backend", "torch")
    assert fine.returncode == 0, fine.stderr
    assert (tmp_path / "torch" / "photo.npy").is_file()


def test_train_without_onnx_fails_before_training(tmp_path: Path, photo: Path) -> None:
    pytest.importorskip("torch")
    photos = photo.parent
    run = tmp_path / "run"
    result = run_without("onnx", "train", "--synthetic", str(photos), "-o", str(run),
                         "--epochs", "1", "--crop", "16", "--camera", "s7")
    assert_one_line_naming_the_extra(result, "onnx")
    assert not run.exists()


def test_torch_paths_without_torch_fail_at_once(tmp_path: Path, photo: Path) -> None:
    result = run_without("torch", "infer", str(photo), "-o", str(tmp_path / "out"),
                         "--backend", "torch", "--model", "aim22-unet-s7")
    assert_one_line_naming_the_extra(result, "torch")
    assert not (tmp_path / "out").exists()
    trained = run_without("torch", "train", "--synthetic", str(photo.parent), "-o",
                          str(tmp_path / "run"), "--epochs", "1")
    assert_one_line_naming_the_extra(trained, "torch")
    assert not (tmp_path / "run").exists()


def test_the_default_model_needs_neither_torch_nor_onnx(tmp_path: Path, photo: Path) -> None:
    result = run_without("torch,onnx", "infer", str(photo), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "out" / "photo.npy").shape == (16, 24, 4)


def test_calibrate_without_onnx_fails_at_once(tmp_path: Path) -> None:
    """calibrate writes an ONNX graph: with onnx missing it says so before reading any pair."""
    data = tmp_path / "train"
    data.mkdir()
    result = run_without("onnx", "calibrate", str(data), "-o", str(tmp_path / "run"),
                         "--camera", "mine")
    assert_one_line_naming_the_extra(result, "onnx")
    assert not (tmp_path / "run").exists()
