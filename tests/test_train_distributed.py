"""`rgb2raw train` under torchrun: 2 CPU processes (gloo), one set of files from rank 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rgb2raw import bayer  # noqa: E402


def _make_data(root: Path) -> Path:
    """Four scenes of two 48x48 crops; the RAW is a darkened naive mosaic of the image."""
    import cv2

    folder = root / "train"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for scene in range(4):
        for k in range(2):
            rgb = cv2.GaussianBlur(rng.random((48, 48, 3)).astype(np.float32), (0, 0), 2)
            rgb_u8 = np.rint(rgb * 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{scene}_{k}.png"), cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2BGR))
            raw = bayer.mosaic_rgb((rgb_u8 / 255.0) ** 2) * 1000
            np.save(folder / f"{scene}_{k}.npy", np.rint(raw).astype(np.uint16))
    return root


@pytest.mark.slow
def test_two_process_torchrun_writes_one_run(tmp_path: Path) -> None:
    data = _make_data(tmp_path / "data")
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
               "--standalone", "-m", "rgb2raw.train", str(data), "-o", str(run),
               "--camera", "s7", "--arch", "tiny", "--epochs", "2", "--crop", "32",
               "--batch-size", "2", "--val-fraction", "0.25", "--device", "cpu"]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240,
                               check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    files = sorted(path.name for path in run.iterdir())
    assert files == ["best.pt", "curves.png", "last.pt", "log.csv", "model.json", "model.onnx"]
    # Only rank 0 reported: one line per epoch, not two.
    assert completed.stderr.count("epoch 2:") == 1
    state = torch.load(run / "last.pt", weights_only=True)
    # 6 training crops over 2 ranks with batches of 2: 2 steps per epoch on each rank.
    assert state["train_state"]["loop"]["global_step"] == 4
    log_lines = (run / "log.csv").read_text().splitlines()
    assert len(log_lines) == 3
