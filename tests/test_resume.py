"""A batch killed mid-run resumes with --skip-existing and ends with every output valid."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from rgb2raw._atomic import TEMP_PREFIX
from rgb2raw.cli import app
from rgb2raw.discovery import list_files

# Runs a batch in a child process that dies without any cleanup (SIGKILL) right after the
# third file is reported done, as a killed job or a machine losing power would.
KILLED_RUN = """
import os, signal, sys
from rgb2raw.pipeline import load_model
from rgb2raw.cameras import get_camera
from rgb2raw.batch import infer_paths

class DieAfterThree:
    done = 0
    def start(self, total):
        pass
    def advance(self, result):
        self.done += 1
        if self.done == 3:
            os.kill(os.getpid(), signal.SIGKILL)

infer_paths([sys.argv[1]], sys.argv[2], load_model(camera="s7"), get_camera("s7"),
            progress=DieAfterThree())
"""


def test_killed_batch_resumes_and_every_output_is_valid(tmp_path: Path) -> None:
    photos, raws = tmp_path / "photos", tmp_path / "raws"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for index in range(8):
        image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        cv2.imwrite(str(photos / f"p{index}.png"), image)

    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_RUN), str(photos),
                             str(raws)], capture_output=True, check=False)
    assert killed.returncode == -9, killed.stderr
    # A write still in flight when the process died leaves a hidden temporary, not an output.
    written_before = sorted(p.name for p in list_files(raws, suffixes=(".npy",)))
    assert 3 <= len(written_before) < 8
    mtimes = {name: (raws / name).stat().st_mtime_ns for name in written_before}
    # SIGKILL cannot be caught: a write in flight on the writer thread leaves its temporary.
    killed_temporaries = {p.name for p in raws.iterdir() if p.name.startswith(TEMP_PREFIX)}

    result = CliRunner().invoke(app, ["infer", str(photos), "-o", str(raws), "--camera", "s7",
                                      "--skip-existing"])
    assert result.exit_code == 0, result.output
    assert f"{8 - len(written_before)} written, {len(written_before)} skipped" in result.stdout

    outputs = list_files(raws, suffixes=(".npy",))
    assert [p.stem for p in outputs] == [f"p{i}" for i in range(8)]
    for path in outputs:
        raw = np.load(path, allow_pickle=False)
        assert raw.shape == (12, 16, 4) and raw.dtype == np.uint16 and raw.max() <= 1023
    # Files finished before the kill were left alone, not rewritten.
    assert {name: (raws / name).stat().st_mtime_ns for name in written_before} == mtimes
    # The resumed run leaves no temporary of its own (the killed run's are hidden and ignored).
    assert {p.name for p in raws.iterdir() if p.name.startswith(TEMP_PREFIX)} <= killed_temporaries
