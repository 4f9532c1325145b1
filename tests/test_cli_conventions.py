"""The conventions every command shares (rgb2raw/cli/common.py) and issue 12's bad inputs.

Usage mistakes exit 2 with one ``error:`` line; runtime problems exit 1 with one line naming
the file; unwritable outputs are named once, before any work; nothing is half-written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from rgb2raw import progress
from rgb2raw.cli import app
from rgb2raw.cli._app import root_command
from rgb2raw.errors import InvalidParameter, OutputExists, Rgb2RawError
from rgb2raw.rgb import read_rgb

runner = CliRunner()


def write_png(path: Path, seed: int = 0, size: tuple[int, int] = (24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def write_raw(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(seed).integers(0, 1023, (12, 16, 4)).astype(np.uint16))
    return path


def invoke(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def unwritable_root() -> Path:
    """A folder where nothing can be created, even by root (sysfs), or skip."""
    root = Path("/sys/rgb2raw-cannot-write-here")
    try:
        root.mkdir()
    except OSError:
        return root
    root.rmdir()  # pragma: no cover - a writable /sys: nothing to test with
    pytest.skip("no unwritable location on this machine")


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    for index in range(3):
        write_png(tmp_path / "in" / f"a{index}.png", seed=index)
    return tmp_path / "in"


# ----------------------------------------------------------------------------- usage: exit 2

USAGE_MISTAKES = {
    "camera s8": ["infer", "IN", "-o", "OUT", "--camera", "s8"],
    "shard one number": ["infer", "IN", "-o", "OUT", "--shard", "1"],
    "shard letters": ["infer", "IN", "-o", "OUT", "--shard", "a/b"],
    "shard out of range": ["infer", "IN", "-o", "OUT", "--shard", "2/2"],
    "shard negative": ["infer", "IN", "-o", "OUT", "--shard", "-1/2"],
    "format tiff": ["infer", "IN", "-o", "OUT", "--format", "tiff"],
    "backend x": ["infer", "IN", "-o", "OUT", "--backend", "x"],
    "device gpu": ["infer", "IN", "-o", "OUT", "--device", "gpu"],
    "stitch yes": ["infer", "IN", "-o", "OUT", "--stitch", "yes"],
    "fp16 on cpu": ["infer", "IN", "-o", "OUT", "--fp16"],
    "skip and overwrite": ["infer", "IN", "-o", "OUT", "--skip-existing", "--overwrite"],
    "output empty": ["infer", "IN", "-o", ""],
    "output dash": ["infer", "IN", "-o", "-"],
    "output txt": ["infer", "IN", "-o", "OUT/x.txt"],
    "wb two gains": ["visualize", "RAW", "-o", "OUT", "--wb", "1,2"],
    "exposure word": ["visualize", "RAW", "-o", "OUT", "--exposure", "bright"],
    "exposure huge": ["visualize", "RAW", "-o", "OUT", "--exposure", "1e6"],
    "exposure nan": ["visualize", "RAW", "-o", "OUT", "--exposure", "nan"],
    "visualize skip and overwrite": ["visualize", "RAW", "-o", "OUT", "--skip-existing",
                                     "--overwrite"],
    "visualize camera": ["visualize", "RAW", "-o", "OUT", "--camera", "nikon"],
    "visualize width": ["visualize", "RAW", "-o", "OUT", "--width", "wide"],
    "pack runtime negative": ["pack", "IN", "-o", "OUT/s.zip", "--runtime", "-1"],
    "pack runtime zero": ["pack", "IN", "-o", "OUT/s.zip", "--runtime", "0"],
    "pack description newline": ["pack", "IN", "-o", "OUT/s.zip", "--runtime", "1",
                                 "--description", "a\nb"],
    "pack zip name": ["pack", "IN", "-o", "OUT/s.tar", "--runtime", "1"],
    "pack camera generic": ["pack", "IN", "-o", "OUT/s.zip", "--runtime", "1", "--camera",
                            "generic"],
    "train crop odd": ["train", "IN", "-o", "OUT", "--crop", "127"],
    "train loss": ["train", "IN", "-o", "OUT", "--loss", "l3:1"],
    "train arch": ["train", "IN", "-o", "OUT", "--arch", "x"],
    "train local unet": ["train", "IN", "-o", "OUT", "--local", "--arch", "unet"],
    "train data and synthetic": ["train", "IN", "-o", "OUT", "--synthetic", "IN"],
    "train no data": ["train", "-o", "OUT"],
    "train no output": ["train", "IN"],
    "train resume overwrite": ["train", "-o", "OUT", "--resume", "--overwrite"],
    "calibrate base": ["calibrate", "IN", "-o", "OUT", "--camera", "x", "--base", "s9"],
    "calibrate output dash": ["calibrate", "IN", "-o", "-", "--camera", "x"],
    "calibrate no name": ["calibrate", "IN", "-o", "OUT", "--camera", " "],
    "train regime": ["train", "--synthetic", "IN", "-o", "OUT", "--synthetic-regime", "x"],
}


@pytest.mark.parametrize("name", list(USAGE_MISTAKES))
def test_usage_mistakes_exit_2_with_one_line(name: str, tmp_path: Path, inputs: Path) -> None:
    raw = write_raw(tmp_path / "r.npy")
    out = tmp_path / "out"
    args = [{"IN": str(inputs), "RAW": str(raw), "OUT": str(out)}.get(a, a)
            for a in USAGE_MISTAKES[name]]
    args = [a.replace("OUT/", f"{out}/") for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_camera_is_case_insensitive_and_listed_in_help(tmp_path: Path, inputs: Path) -> None:
    result = invoke("infer", inputs, "-o", tmp_path / "out", "--camera", "S7")
    assert result.exit_code == 0, result.stderr
    assert "calibrated-s7" in result.stdout
    helped = runner.invoke(app, ["infer", "--help"], env={"COLUMNS": "200"})
    assert "s7|p20|generic" in helped.stdout


# ----------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("command", ["infer", "visualize", "pack", "train", "pull"])
def test_unwritable_output_is_named_once_before_any_work(command: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    root = unwritable_root()
    for index in range(12):
        write_png(tmp_path / "in" / f"p{index}.png", seed=index)
        write_raw(tmp_path / "raws" / f"p{index}.npy", seed=index)
    args = {
        "infer": ["infer", tmp_path / "in", "-o", root / "out"],
        "visualize": ["visualize", tmp_path / "raws", "-o", root / "out"],
        "pack": ["pack", tmp_path / "raws", "-o", root / "s.zip", "--runtime", "1"],
        "train": ["train", "--synthetic", tmp_path / "in", "-o", root / "run"],
        "pull": ["models", "pull", "aim22-unet-s7"],
    }[command]
    if command == "pull":
        monkeypatch.setenv("RGB2RAW_HOME", str(root / "cache"))
    result = invoke(*args)
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {root}"), result.stderr
    assert "cannot be written" in lines[0] and "tmp" not in lines[0]


def test_train_into_an_existing_file_is_one_line(tmp_path: Path) -> None:
    write_png(tmp_path / "photos" / "p.png")
    (tmp_path / "afile").write_text("mine")
    result = invoke("train", "--synthetic", tmp_path / "photos", "-o", tmp_path / "afile")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {tmp_path / 'afile'}: exists and is not a folder")
    assert (tmp_path / "afile").read_text() == "mine"


def test_rerun_into_a_full_folder_prints_one_summary_line(tmp_path: Path, inputs: Path) -> None:
    out = tmp_path / "out"
    assert invoke("infer", inputs, "-o", out).exit_code == 0
    again = invoke("infer", inputs, "-o", out)
    assert again.exit_code == 1
    assert again.stderr.splitlines() == [
        f"error: {out}: 3 outputs already exist, not replaced (use --overwrite to replace "
        "them, or --skip-existing)"]


def test_a_read_error_names_the_input_once(tmp_path: Path, inputs: Path) -> None:
    (inputs / "empty.jpg").write_bytes(b"")
    result = invoke("infer", inputs, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {inputs / 'empty.jpg'}: is empty"]
    assert "3 written, 0 skipped, 1 failed" in result.stdout


def test_iso_without_noise_warns_and_adds_noise(tmp_path: Path, inputs: Path) -> None:
    plain = invoke("infer", inputs, "-o", tmp_path / "plain")
    noisy = invoke("infer", inputs, "-o", tmp_path / "noisy", "--iso", "800")
    assert plain.exit_code == 0 and noisy.exit_code == 0
    assert "--noise" in noisy.stderr and noisy.stderr.startswith("warning: ")
    assert not np.array_equal(np.load(tmp_path / "plain" / "a0.npy"),
                              np.load(tmp_path / "noisy" / "a0.npy"))


def test_max_pixels_is_a_flag_of_infer_and_the_library_names_its_parameter(
        tmp_path: Path, inputs: Path) -> None:
    result = invoke("infer", inputs / "a0.png", "-o", tmp_path / "out", "--max-pixels", "100")
    assert result.exit_code == 1
    assert "raise it with --max-pixels" in result.stderr
    with pytest.raises(Rgb2RawError) as caught:
        read_rgb(inputs / "a0.png", max_pixels=100)
    assert "raise it with max_pixels" in str(caught.value) and "--" not in str(caught.value)


def test_library_errors_name_parameters_not_flags() -> None:
    exists = OutputExists("x.png")
    assert str(exists) == "x.png: already exists (use overwrite to replace it)"
    assert exists.message(lambda p: f"--{p}") == "x.png: already exists (use --overwrite to replace it)"
    assert exists.message(lambda p: None) == "x.png: already exists"
    invalid = InvalidParameter("crop", "must be even")
    assert isinstance(invalid, ValueError) and str(invalid) == "crop: must be even"


# ----------------------------------------------------------------------------- verbosity


def test_verbosity_before_and_after_the_command(tmp_path: Path, inputs: Path) -> None:
    quiet = invoke("infer", inputs, "-o", tmp_path / "a", "--iso", "100", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert not progress._state["enabled"]
    normal = invoke("infer", inputs, "-o", tmp_path / "b")
    assert normal.stderr == "" and progress._state["enabled"]
    for args in (["-v", "infer"], ["infer", "-v"]):
        info = invoke(*args, inputs, "-o", tmp_path / f"c{len(args[0])}")
        assert "info: " in info.stderr and "loaded in" in info.stderr
        assert "debug: " not in info.stderr
    debug = invoke("-vv", "infer", inputs, "-o", tmp_path / "d")
    assert "debug: " in debug.stderr and "tiles:" in debug.stderr
    assert debug.stdout.startswith("3 written")  # logs never reach stdout


def test_progress_bars_are_off_when_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Terminal())
    progress.set_enabled(True)
    with progress.bars() as bars:
        assert bars.live
    progress.set_enabled(False)
    try:
        with progress.bars() as bars:
            assert not bars.live
            bars.advance(bars.task("x", total=2))  # a silent stand-in
    finally:
        progress.set_enabled(True)


# ----------------------------------------------------------------------------- models


def test_models_list_json_and_plain_text_when_piped() -> None:
    as_json = invoke("models", "list", "--json")
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert {"parametric-s7", "parametric-p20"} <= {row["name"] for row in rows}
    assert all({"camera", "arch", "cached", "path"} <= set(row) for row in rows)
    piped = invoke("models", "list")
    lines = piped.stdout.splitlines()
    assert lines[0].split("\t")[0] == "name"
    assert all(len(line.split("\t")) == 6 for line in lines)
    assert "─" not in piped.stdout  # no table drawing in a pipe


def test_pull_keeps_force_as_a_hidden_alias() -> None:
    helped = runner.invoke(app, ["models", "pull", "--help"], env={"COLUMNS": "200"})
    assert "--overwrite" in helped.stdout and "--force" not in helped.stdout
    assert invoke("models", "pull", "parametric-s7", "--force").exit_code == 0


def test_unsupported_download_urls_fail_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("file:///tmp/model.pt", "example.com/model.pt", "ftp://example.com/m.pt"):
        monkeypatch.setenv("RGB2RAW_URL_AIM22_UNET_S7", url)
        result = invoke("models", "pull", "aim22-unet-s7", "--no-progress")
        assert result.exit_code == 1
        assert "unsupported URL" in result.stderr and result.stderr.count("\n") == 1


# ----------------------------------------------------------------------------- help


def _commands() -> list[tuple[str, object]]:
    root = root_command()
    found: list[tuple[str, object]] = []

    def walk(group: object, prefix: str) -> None:
        for name, command in getattr(group, "commands", {}).items():
            found.append((f"{prefix}{name}", command))
            walk(command, f"{prefix}{name} ")

    walk(root, "")
    return found


@pytest.mark.parametrize(("name", "command"), _commands(), ids=lambda v: v if isinstance(v, str) else "")
def test_help_reads_as_words(name: str, command: object) -> None:
    for param in getattr(command, "params", []):
        if getattr(param, "hidden", False) or param.param_type_name != "option":
            continue
        assert (param.help or "").strip(), f"{name} {param.opts} has no help text"
    result = runner.invoke(app, [*name.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    python_types = re.findall(r"<(?:bool|int|float|str|path|list\[[^\]]*\])[^>]*>", result.stdout)
    assert python_types == [], f"{name} --help shows {python_types}"


def test_train_options_named_in_issue_12_have_help() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    for option in ("--batch-size", "--weight-decay", "--seed"):
        line = next(line for line in result.stdout.splitlines() if option in line)
        assert len(line.split(option, 1)[1].strip()) > 10, line


# ----------------------------------------------------------------------------- torch-less

NO_TORCH = """
import sys
sys.modules["torch"] = None
sys.modules["onnx"] = None
sys.argv = ["rgb2raw", *sys.argv[1:]]
from rgb2raw.cli import main
main()
"""


@pytest.mark.parametrize("args", [
    ["train", "--synthetic", "IN", "-o", "OUT"],
    ["infer", "IN", "-o", "OUT", "--model", "MODEL", "--arch", "tiny"],
])
def test_a_torch_less_install_names_the_extra_before_any_work(args: list[str], tmp_path: Path,
                                                              inputs: Path) -> None:
    model = tmp_path / "m.pt"
    model.write_bytes(b"not really")
    out = tmp_path / "out"
    argv = [{"IN": str(inputs), "OUT": str(out), "MODEL": str(model)}.get(a, a) for a in args]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True,
                          text=True, env={**os.environ}, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and 'pip install "rgb2raw[torch]"' in done.stderr
    assert not out.exists()
