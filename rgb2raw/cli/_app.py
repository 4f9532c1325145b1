"""The Typer application object and the error handling every command shares.

Commands live in their own modules (`visualize.py`, `score.py`, ...) and register themselves
on `app`. Each command body is wrapped by `reports_errors`, which turns the library's
`Rgb2RawError` into one line on stderr and exit code 1, and its `InvalidParameter` (and
typer's own checks) into a usage error, exit 2. Set RGB2RAW_DEBUG=1 to get the full
traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from rgb2raw import __version__
from rgb2raw.cli import common
from rgb2raw.errors import InvalidParameter, Rgb2RawError

P = ParamSpec("P")
R = TypeVar("R")



def _skip_coercion(command: Any, ctx: Any) -> None:
    """Spare `command` typer's pydantic-based value coercion where it is not needed.

    A group processes all its own options before running a subcommand, even for
    ``rgb2raw infer --help``, and shell completion processes every option of the command
    line it completes. typer builds a pydantic adapter for the first non-bool value it meets
    (even an unset None), and importing pydantic costs more than the rest of the start-up.
    Flags only ever hold None or a bool, so they need no coercion; while completing
    (`resilient_parsing`) no value is used at all. If typer's internals change, this does
    nothing and typer coerces as before.
    """
    try:
        from typer._coercion import PassThroughRuntimeParam
        from typer.core import TyperArgument, TyperOption

        class AsIs(PassThroughRuntimeParam):
            def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
                return value

        for param in command.get_params(ctx):
            if not isinstance(param, (TyperOption, TyperArgument)):
                continue
            if param._runtime_param is not None:
                continue
            info = param.type_descriptor.parameter_info
            if ctx.resilient_parsing:
                param._runtime_param = AsIs(annotation=param.type_descriptor.annotation,
                                            parameter_info=info)
            elif (isinstance(param, TyperOption) and param.is_flag
                  and param.type_descriptor.annotation is bool):
                param._runtime_param = PassThroughRuntimeParam(annotation=bool,
                                                               parameter_info=info)
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - another typer
        pass


_TYPE_WORDS = {"int": "INTEGER", "float": "NUMBER", "str": "TEXT", "Path": "PATH"}


def _value_word(param: Any) -> str | None:
    """A word for an option's value (``PATH``, ``INTEGER``), or None for a choice (typer then
    lists the choices, which is better)."""
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        return None
    annotation = descriptor.annotation
    if getattr(annotation, "__origin__", None) is list:
        annotation = annotation.__args__[0]
    name = getattr(annotation, "__name__", str(annotation))
    return _TYPE_WORDS.get(name, name.upper())


def _plain_help(command: Any, ctx: Any) -> None:
    """Show no Python type in --help: no ``<bool>`` after a flag (typer's own --help and
    completion flags included), words instead of ``<path>`` or ``<int>`` where a command did
    not name its value, and nothing after an argument (its name says it)."""
    try:
        from typer.core import TyperArgument, TyperOption

        for param in [*command.get_params(ctx), command.get_help_option(ctx)]:
            if isinstance(param, TyperOption) and param.metavar is None:
                param.metavar = "" if param.is_flag else _value_word(param)
            elif isinstance(param, TyperArgument):
                param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    except (ImportError, AttributeError):  # pragma: no cover - another typer: its own style
        pass


class FastFlags(TyperGroup):
    """A command group that skips needless value coercion (see `_skip_coercion`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _skip_coercion(self, ctx)
        return list(super().parse_args(ctx, args))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self, ctx)
        super().format_help(ctx, formatter)


class FastCommand(TyperCommand):
    """A command that skips value coercion while completing (see `_skip_coercion`)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:
            _skip_coercion(self, ctx)
        return list(super().parse_args(ctx, args))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_help(self, ctx)
        super().format_help(ctx, formatter)


def use_fast_commands(typer_app: typer.Typer) -> None:
    """Give every command of `typer_app` (and its sub-groups) the `FastCommand` class."""
    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = FastCommand
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            use_fast_commands(group.typer_instance)


class _OneLineErrors(FastFlags):
    """The root command, printing usage mistakes as one ``error:`` line with exit code 2.

    typer would draw a box with the usage text around the message; one line is what every
    other error of rgb2raw looks like, and what scripts and logs read best.

    It also loads subcommands lazily (`COMMANDS`): a command's module (`rgb2raw.cli.<name>`)
    is imported when the command is looked up to run, while the listing in ``rgb2raw --help``
    and the completion of command names use placeholders that carry only the table's summary.
    """

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            if self._listing:
                return TyperCommand(name=cmd_name, short_help=COMMANDS[cmd_name])
            self.commands[cmd_name] = _load_command(cmd_name)
        return self.commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: Any, incomplete: str) -> Any:
        # Only the names (and the root's options) are completed here; completing inside a
        # command resolves it through `get_command` outside this method, for real.
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        argv = _take_root_verbosity(list(sys.argv[1:] if args is None else args))

        def run() -> Any:
            return super(_OneLineErrors, self).main(
                argv, prog_name, complete_var, False, windows_expand_args, **extra)

        if not standalone_mode:
            return run()
        try:
            code = run()
        except typer.TyperException as exc:  # click's usage errors derive from it
            # typer passes pydantic's "Value error, " prefix through; it says nothing here.
            message = exc.format_message().replace("Value error, ", "")
            typer.echo(f"error: {message}{_help_hint(exc)}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _take_root_verbosity(argv: list[str]) -> list[str]:
    """Count and remove -v/-vv/-q/--verbose/--quiet given before the subcommand.

    typer would coerce a counted option through pydantic, whose import alone costs more
    than the rest of `rgb2raw COMMAND --help`; the root options are therefore counted here
    and declared below only so that --help lists them.
    """
    verbose, quiet, kept = 0, False, []
    for index, token in enumerate(argv):
        if token == "--" or not token.startswith("-"):
            kept.extend(argv[index:])
            break
        if token == "--verbose":
            verbose += 1
        elif token == "--quiet":
            quiet = True
        elif len(token) > 1 and token[1] != "-" and set(token[1:]) <= {"v", "q"}:
            verbose += token.count("v")
            quiet = quiet or "q" in token
        else:
            kept.append(token)
    common.set_verbosity(verbose=verbose, quiet=quiet, root=True)
    return kept


def _help_hint(exc: Exception) -> str:
    ctx = getattr(exc, "ctx", None)
    return "" if ctx is None else f" (see: {ctx.command_path} --help)"


#: Every subcommand and its line in `rgb2raw --help`, in the order listed there. Subcommand
#: `name` lives in module `rgb2raw.cli.<name>`, imported only when the command runs (or its
#: own help or completion is asked for): importing all of them and converting every command's
#: signature costs about as much as the rest of the start-up.
COMMANDS: dict[str, str] = {
    "calibrate": "Fit a camera's inverse ISP from RAW + JPEG pairs.",
    "infer": "Reconstruct RAW from JPEGs with a bundled, zoo or own model.",
    "train": "Train a reverse-ISP network on challenge pairs or photos.",
    "pack": "Validate predictions and write a CodaLab submission zip.",
    "score": "Score predictions exactly like the AIM 2022 CodaLab scorer.",
    "visualize": "Render RAW .npy files as PNG pictures and figures.",
    "models": "List, download and verify the pretrained models.",
}


def command_options(name: str) -> dict[str, Any]:
    """The `app.command` / `app.add_typer` keywords of subcommand `name`, from `COMMANDS`."""
    return {"name": name, "short_help": COMMANDS[name]}


def _load_command(name: str) -> Any:
    """Import subcommand `name`'s module and convert its registration into a click command."""
    import importlib

    import typer.main

    importlib.import_module(f"rgb2raw.cli.{name}")
    use_fast_commands(app)
    short, markup = app.pretty_exceptions_short, app.rich_markup_mode
    for info in app.registered_commands:
        if info.name == name:
            return typer.main.get_command_from_info(info, pretty_exceptions_short=short,
                                                    rich_markup_mode=markup)
    for group in app.registered_groups:
        if group.name == name:
            return typer.main.get_group_from_info(group, pretty_exceptions_short=short,
                                                  suggest_commands=True, rich_markup_mode=markup)
    raise LookupError(f"rgb2raw.cli.{name} registers no command {name!r}")


def root_command() -> Any:
    """The root click group with every subcommand loaded, for tools and tests that walk the
    whole command line (the CLI itself loads only the command it runs)."""
    import typer.main

    root = typer.main.get_group(app)
    context = root.make_context("rgb2raw", [], resilient_parsing=True)
    for name in COMMANDS:
        root.get_command(context, name)
    return root


app = typer.Typer(
    cls=_OneLineErrors,
    name="rgb2raw",
    help="Reconstruct camera RAW sensor data from the JPEGs a phone's ISP produced.",
    no_args_is_help=True,
    # Plain-text help, on a terminal too: rich's boxes and colours took `infer --help` on a
    # terminal to 0.29 s against 0.12 s plain (benchmarks/bench_startup.py), and help must
    # appear at once. Progress bars still use rich.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Optional packages, and the extra that installs each.
_EXTRAS = {"torch": "torch", "onnx": "torch", "onnxscript": "torch"}


def debug_enabled() -> bool:
    """True when RGB2RAW_DEBUG asks for tracebacks instead of one-line errors."""
    return os.environ.get("RGB2RAW_DEBUG", "") not in ("", "0")


def _fail(line: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {line}", err=True)
    return typer.Exit(code)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so a known error prints `error: <file>: <problem>` and exits 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.BadParameter):
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if debug_enabled():
                raise
            raise _known(exc) from None

    return wrapper


def _known(exc: Exception) -> Exception:
    """The exit for an error a user can act on; anything else is re-raised as a bug."""
    if isinstance(exc, InvalidParameter) and exc.param is not None:
        flag = common.flag_for(exc.param)
        if flag is not None:
            return typer.BadParameter(exc.detail(common.flag_for), param_hint=flag)
    if isinstance(exc, Rgb2RawError):
        return _fail(common.describe(exc))
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in _EXTRAS:
        extra = _EXTRAS[(exc.name or "").split(".")[0]]
        return _fail(f"this needs the optional package {exc.name}: "
                     f'pip install "rgb2raw[{extra}]"')
    if isinstance(exc, OSError) and exc.filename is not None:
        # The net under the up-front checks: a disk that fills up or goes read-only mid-run.
        return _fail(f"{exc.filename}: {exc.strerror or exc}")
    if isinstance(exc, MemoryError):
        return _fail("out of memory")
    raise exc


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"rgb2raw {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, metavar="",
        help="Print the version and exit.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", metavar="", show_default=False,
        help="More log lines on stderr: -v info, -vv debug (also after the command).")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", metavar="",
        help="Only errors on stderr: no warnings, no progress bars (also after the command).")
    ] = False,
) -> None:
    """Reconstruct camera RAW sensor data from the JPEGs a phone's ISP produced."""
    # -v and -q before the command are counted by `_take_root_verbosity`; these parameters
    # only document them (and catch them when the app is driven without `main`).
    if verbose or quiet:
        common.set_verbosity(verbose=int(verbose), quiet=quiet, root=True)
