"""`rgb2raw models ...`: list the model zoo, download, verify and locate checkpoints.

Tables and paths go to stdout (so they can be piped; a pipe gets plain tab-separated text,
`--json` gets everything); progress bars and errors go to stderr. The zoo is imported when a
command runs, so --help and completion stay light.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from rgb2raw.cli import common
from rgb2raw.cli._app import FastFlags, app, command_options, reports_errors
from rgb2raw.cli.common import ForceAlias, Quiet, Verbose

if TYPE_CHECKING:
    from rgb2raw import zoo
    from rgb2raw.progress import Bars


def complete_model_name(incomplete: str) -> list[str]:
    """Shell completion for model names (reads the cards only)."""
    from rgb2raw import zoo

    return zoo.complete_model_name(incomplete)


models_app = typer.Typer(
    cls=FastFlags,
    help="List, download and verify the pretrained models.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _size_bytes(card: zoo.ModelCard) -> int | None:
    """Total size from the card, or from the files on disk when the card does not say."""
    from rgb2raw import zoo

    total = 0
    for entry in card.files:
        path = zoo.file_path(card, entry)
        if entry.size is not None:
            total += entry.size
        elif path.is_file():
            total += path.stat().st_size
        else:
            return None
    return total


def _row(card: zoo.ModelCard) -> dict[str, object]:
    from rgb2raw import zoo

    reported = None if card.reported is None else {
        "set": card.reported.set, "psnr": card.reported.psnr, "ssim": card.reported.ssim}
    return {"name": card.name, "camera": card.camera, "arch": card.arch,
            "size_bytes": _size_bytes(card), "reported": reported,
            "cached": zoo.is_cached(card), "path": str(zoo.model_path(card))}


@models_app.command("list")
@reports_errors
def list_command(
    as_json: Annotated[bool, common.flag(
        "--json", help_text="Print every model as a JSON list on stdout.")] = False,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Show every model: camera, architecture, size, published score, cached or not."""
    from rgb2raw import zoo

    rows = [_row(card) for card in zoo.list_models()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    columns = ("name", "camera", "arch", "size", "Test1 PSNR/SSIM", "cached")
    table = []
    for row in rows:
        size = row["size_bytes"]
        reported = row["reported"]
        table.append((
            str(row["name"]), str(row["camera"]), str(row["arch"]),
            "?" if size is None else f"{int(size) / 1e6:.1f} MB",  # type: ignore[call-overload]
            "-" if not isinstance(reported, dict) else
            f"{reported['psnr']:.2f} / {reported['ssim']:.2f}",
            "yes" if row["cached"] else "no"))
    if not sys.stdout.isatty():  # piped: one plain line per model, tab-separated
        typer.echo("\t".join(columns))
        for values in table:
            typer.echo("\t".join(values))
        return
    from rich.console import Console
    from rich.table import Table

    pretty = Table(title=None, header_style="bold")
    for column in columns:
        pretty.add_column(column, no_wrap=column == "name")
    for values in table:
        pretty.add_row(*values)
    Console(soft_wrap=True).print(pretty)


def _download_callback(bars: Bars) -> zoo.PullProgress | None:
    if not bars.live:
        return None
    tasks: dict[str, int] = {}

    def update(filename: str, done: int, total: int | None) -> None:
        if filename not in tasks:
            tasks[filename] = bars.task(filename, total=total)
        bars.update(tasks[filename], completed=done, total=total)

    return update


def _check_cache_writable(cards: list[zoo.ModelCard], overwrite: bool) -> None:
    """The cache folder is checked once, before any download, when something will be written."""
    from rgb2raw import zoo

    if any(not entry.bundled for card in cards for entry in card.files) and (
            overwrite or not all(zoo.is_cached(card) for card in cards)):
        common.check_output_folder(zoo.cache_dir(), flag_name="RGB2RAW_HOME")


@models_app.command("pull")
@reports_errors
def pull_command(
    names: Annotated[list[str], typer.Argument(
        metavar="NAME", help="Model names (see `rgb2raw models list`).",
        autocompletion=complete_model_name, show_default=False)],
    overwrite: Annotated[bool, common.flag(
        "--overwrite", help_text="Download again even if cached.")] = False,
    force: ForceAlias = False,
    show_progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", metavar="",
        help="Progress bar on stderr (only on a terminal).")] = True,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Download and verify models; print each model's path."""
    import logging

    from rgb2raw import progress, zoo

    log = logging.getLogger("rgb2raw.cli")
    overwrite = common.overwrite_flags(overwrite=overwrite, force=force)
    cards = [zoo.get_model(name) for name in names]  # every name checked before any download
    _check_cache_writable(cards, overwrite)
    paths = []
    with progress.bars("bytes", enabled=show_progress) as bars:
        callback = _download_callback(bars)
        for card in cards:
            if not overwrite and zoo.is_cached(card):
                log.info("cache hit: %s at %s", card.name, zoo.model_path(card))
            paths.append(zoo.pull(card, force=overwrite, progress=callback))
    for path in paths:
        typer.echo(str(path))


@models_app.command("verify")
@reports_errors
def verify_command(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="[NAME]", help="Models to check (default: every cached one).",
        autocompletion=complete_model_name, show_default=False)] = None,
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Re-hash cached model files against their pins; exit 1 if one is bad or missing."""
    from rgb2raw import zoo

    cards = [zoo.get_model(name) for name in names] if names else [
        card for card in zoo.list_models() if any(
            zoo.file_path(card, entry).is_file() for entry in card.files)]
    failed = False
    for card in cards:
        result = zoo.verify(card)
        for check in result.checks:
            if check.status == "ok":
                typer.echo(f"ok {card.name} {check.path}")
            else:
                failed = True
                typer.echo(f"error: {check.path}: {card.name}: {check.problem}", err=True)
    if not cards:
        typer.echo("no model is cached", err=True)
    if failed:
        raise typer.Exit(1)


@models_app.command("path")
@reports_errors
def path_command(
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="Model name.", autocompletion=complete_model_name,
        show_default=False)],
    _verbose: Verbose = 0,
    _quiet: Quiet = False,
) -> None:
    """Print where the model's file is; exit 1 if it is not downloaded yet."""
    from rgb2raw import zoo
    from rgb2raw.errors import Rgb2RawError

    card = zoo.get_model(name)
    path = zoo.model_path(card)
    if not zoo.is_cached(card):
        raise Rgb2RawError(path, f"model {card.name} is not cached; "
                                 f"run `rgb2raw models pull {card.name}`")
    typer.echo(str(path))


app.add_typer(models_app, **command_options("models"))
