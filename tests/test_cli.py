"""The CLI skeleton: help, version, one-line errors, exit codes, no torch at import time."""

import os
import subprocess
import sys

import typer
from typer.testing import CliRunner

from rgb2raw import __version__
from rgb2raw.cli import app
from rgb2raw.cli._app import COMMANDS, reports_errors, root_command
from rgb2raw.errors import Rgb2RawError

runner = CliRunner()

# Runs the CLI in a fresh interpreter where importing torch or onnxruntime fails, as on a
# machine without them.
BLOCK_HEAVY_IMPORTS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnxruntime"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
sys.argv = ["rgb2raw", *sys.argv[1:]]
from rgb2raw.cli import main
main()
"""


def test_help_lists_commands_and_needs_no_torch() -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_HEAVY_IMPORTS, "--help"],
                            capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    for name, summary in COMMANDS.items():
        assert f"{name}  " in result.stdout and summary in result.stdout


def test_the_command_table_matches_what_the_modules_register() -> None:
    root = root_command()
    assert set(root.commands) == set(COMMANDS)
    for name, summary in COMMANDS.items():
        command = root.commands[name]
        assert command.name == name
        assert command.short_help == summary


def test_help_and_one_command_import_no_other_command_module() -> None:
    code = ("import sys; sys.argv = ['rgb2raw'] + sys.argv[1:]\n"
            "from rgb2raw.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('rgb2raw.cli.')"
            " and not m.rsplit('.', 1)[1].startswith('_') and m != 'rgb2raw.cli.common'),"
            " file=sys.stderr)")
    for args, expected in ((["--help"], "[]"), (["score", "--help"], "['score']"),
                           (["pack", "--help"], "['pack']")):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                                text=True, check=False)
        assert result.stderr.strip().splitlines()[-1] == expected, (args, result.stderr)


def test_importing_the_library_does_not_import_torch() -> None:
    code = ("import sys, rgb2raw, rgb2raw.cli, rgb2raw.raw, rgb2raw.rgb, rgb2raw.cameras; "
            "print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"rgb2raw {__version__}"


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output


def test_unknown_option_is_a_usage_error_with_exit_2() -> None:
    assert runner.invoke(app, ["--no-such-option"]).exit_code == 2


def make_failing_app() -> typer.Typer:
    demo = typer.Typer()

    @demo.command()
    @reports_errors
    def fail(path: str) -> None:
        raise Rgb2RawError(path, "values span [0, 1025], outside [0, 1024]")

    @demo.command()
    def other() -> None:  # a second command keeps Typer in multi-command mode
        pass

    return demo


def test_known_errors_are_one_line_with_exit_1(monkeypatch) -> None:
    monkeypatch.delenv("RGB2RAW_DEBUG", raising=False)
    result = runner.invoke(make_failing_app(), ["fail", "pred/10_0.npy"])
    assert result.exit_code == 1
    assert result.stderr == "error: pred/10_0.npy: values span [0, 1025], outside [0, 1024]\n"
    assert result.stdout == ""


def test_debug_mode_raises_the_full_exception(monkeypatch) -> None:
    monkeypatch.setenv("RGB2RAW_DEBUG", "1")
    result = runner.invoke(make_failing_app(), ["fail", "x.npy"])
    assert isinstance(result.exception, Rgb2RawError)
