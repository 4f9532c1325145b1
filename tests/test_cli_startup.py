"""`rgb2raw --help`, every `COMMAND --help` and shell completion import nothing heavy.

Each case runs in a fresh interpreter (an import done by an earlier test would hide one), and
the check reads `sys.modules` after the command has printed. Times are measured by
benchmarks/bench_startup.py, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rgb2raw.cli._app import root_command

HEAVY = ("numpy", "cv2", "torch", "onnxruntime", "onnx", "pydantic", "scipy", "PIL")

PROBE = """
import json, sys
sys.argv = ["rgb2raw", *json.loads(sys.argv[1])]
import rgb2raw.cli
try:
    rgb2raw.cli.main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))


def _command_paths() -> list[list[str]]:
    """Every command and sub-command, found from the app itself (a new one is covered too)."""

    root = root_command()
    paths: list[list[str]] = [[]]

    def walk(group: object, prefix: list[str]) -> None:
        for name, command in getattr(group, "commands", {}).items():
            paths.append([*prefix, name])
            walk(command, [*prefix, name])

    walk(root, [])
    return paths


def _heavy_modules(args: list[str], tmp_path: Path, env: dict[str, str] | None = None
                   ) -> tuple[list[str], str]:
    environ = {**os.environ, "RGB2RAW_HOME": str(tmp_path / "home"), **(env or {})}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], env=environ,
                          capture_output=True, text=True, timeout=120)
    last = done.stderr.strip().splitlines()[-1]
    return json.loads(last), done.stdout


def test_every_command_is_found() -> None:
    names = {" ".join(path) for path in _command_paths()}
    assert {"infer", "train", "score", "pack", "visualize", "models", "models pull"} <= names


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "root")
def test_help_imports_nothing_heavy(path: list[str], tmp_path: Path) -> None:
    heavy, stdout = _heavy_modules([*path, "--help"], tmp_path)
    assert "Usage" in stdout
    assert heavy == []


def test_help_after_verbosity_flags_imports_nothing_heavy(tmp_path: Path) -> None:
    heavy, stdout = _heavy_modules(["-vv", "-q", "infer", "--help"], tmp_path)
    assert "Usage" in stdout and heavy == []


@pytest.mark.parametrize(("words", "cword", "expected"), [
    ("rgb2raw infer --threads 2 --model param", "5", "parametric-s7"),
    ("rgb2raw models pull param", "3", "parametric-p20"),
    ("rgb2raw train --arch ", "3", "liteisp"),
    ("rgb2raw visualize x.npy --camera ", "4", "p20"),
])
def test_completion_is_lazy_and_still_completes(words: str, cword: str, expected: str,
                                                tmp_path: Path) -> None:
    env = {"_RGB2RAW_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    heavy, stdout = _heavy_modules([], tmp_path, env)
    assert expected in stdout.split()
    assert heavy == []
