"""`rgb2raw infer` from the command line: outputs, summary, exit codes, option checks."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from rgb2raw.cli import app

runner = CliRunner()


def write_png(path: Path, height: int = 12, width: int = 16, seed: int = 0) -> None:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 3x3-conv + 2x2 stride-2 network exported to ONNX (needs torch)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 4, 2, stride=2), torch.nn.Sigmoid()).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (torch.rand(1, 3, 32, 32),), str(path), input_names=["rgb"],
                          output_names=["raw"], opset_version=17, dynamo=False,
                          dynamic_axes={"rgb": {0: "n", 2: "h", 3: "w"},
                                        "raw": {0: "n", 2: "h2", 3: "w2"}})
    return path


def test_infer_writes_outputs_and_a_summary(tmp_path: Path, tiny_onnx: Path) -> None:
    write_png(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "sub" / "b.png", seed=1)
    result = runner.invoke(app, ["infer", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                 "--model", str(tiny_onnx), "--recursive", "--tile", "8",
                                 "--overlap", "4", "--threads", "1"])
    assert result.exit_code == 0, result.stderr
    assert "2 written, 0 skipped, 0 failed" in result.stdout and "tiny" in result.stdout
    raw = np.load(tmp_path / "out" / "sub" / "b.npy")
    assert raw.shape == (6, 8, 4) and raw.dtype == np.uint16 and raw.max() <= 1024


def test_the_default_model_runs_offline_with_tta_and_noise(tmp_path: Path) -> None:
    write_png(tmp_path / "a.png")
    result = runner.invoke(app, ["infer", str(tmp_path / "a.png"), "-o", str(tmp_path / "a.npy"),
                                 "--camera", "p20", "--tta", "--noise", "--iso", "200"])
    assert result.exit_code == 0, result.stderr
    assert "calibrated-p20" in result.stdout
    assert np.load(tmp_path / "a.npy").shape == (6, 8, 4)


def test_existing_output_fails_with_exit_1_and_one_line_per_file(tmp_path: Path,
                                                                  tiny_onnx: Path) -> None:
    write_png(tmp_path / "in" / "a.png")
    write_png(tmp_path / "in" / "b.png")
    args = ["infer", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(tiny_onnx)]
    assert runner.invoke(app, args).exit_code == 0
    (tmp_path / "out" / "b.npy").unlink()
    again = runner.invoke(app, args)
    assert again.exit_code == 1
    assert again.stderr.count("error: ") == 1 and "a.png" in again.stderr
    assert "1 written, 0 skipped, 1 failed" in again.stdout
    skip = runner.invoke(app, [*args, "--skip-existing"])
    assert skip.exit_code == 0 and "0 written, 2 skipped" in skip.stdout
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(("extra", "message", "code"), [
    (["--skip-existing", "--overwrite"], "exclude each other", 2),
    (["--shard", "3/2"], "--shard", 2),
    (["--format", "tiff"], "--format", 2),
    (["--backend", "tensorflow"], "--backend", 2),
    (["--model", "no-such-model"], "unknown model", 1),
    (["--camera", "nikon"], "--camera", 2),
])
def test_bad_options_are_one_line_errors(tmp_path: Path, extra: list[str], message: str,
                                         code: int) -> None:
    write_png(tmp_path / "a.png")
    result = runner.invoke(app, ["infer", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), *extra])
    assert result.exit_code == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_shards_from_the_environment_split_the_work(tmp_path: Path, tiny_onnx: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(5):
        write_png(tmp_path / "in" / f"{index}.png", seed=index)
    counts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        result = runner.invoke(app, ["infer", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                     "--model", str(tiny_onnx)])
        assert result.exit_code == 0, result.stderr
        counts.append(int(result.stdout.split()[0]))
    assert counts == [3, 2] and len(list((tmp_path / "out").glob("*.npy"))) == 5


def test_infer_parses_its_values_without_pydantic(tmp_path: Path) -> None:
    """Start-up is part of what `rgb2raw infer` costs: its values are converted without
    typer's pydantic adapters, typed as before, and bad ones are still usage errors."""
    import subprocess
    import sys

    write_png(tmp_path / "a.png")
    code = ("import sys\n"
            "sys.argv = ['rgb2raw', *sys.argv[1:]]\n"
            "from rgb2raw.cli import main\n"
            "try:\n    main()\nexcept SystemExit as stop:\n    assert not stop.code, stop.code\n"
            "print(sorted(m for m in ('pydantic', 'torch') if m in sys.modules))\n")
    args = ["infer", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--camera", "S7",
            "--shard", "0/1", "--tile", "-1", "--threads", "1", "--format", "UNPACKED"]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert np.load(tmp_path / "out" / "a.npy").shape == (12, 16)  # unpacked, as asked
    for bad, word in ((["--camera", "nikon"], "--camera"), (["--shard", "2/2"], "--shard"),
                      (["--threads", "-1"], "--threads"), (["--tile", "big"], "--tile")):
        run = CliRunner().invoke(app, ["infer", str(tmp_path / "a.png"), "-o",
                                       str(tmp_path / "bad"), *bad])
        assert run.exit_code == 2, (bad, run.output)
        assert word in run.output
    assert not (tmp_path / "bad").exists()


def test_a_corrupt_first_image_is_one_error_line_and_the_rest_is_written(tmp_path: Path) -> None:
    write_png(tmp_path / "in" / "b.png")
    (tmp_path / "in" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)  # not decodable
    result = runner.invoke(app, ["infer", str(tmp_path / "in"), "-o", str(tmp_path / "out"),
                                 "--no-progress"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "a.jpg" in errors[0]
    assert (tmp_path / "out" / "b.npy").is_file() and not (tmp_path / "out" / "a.npy").exists()
