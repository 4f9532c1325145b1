"""`rgb2raw models ...`: list the model zoo, download, verify and locate checkpoints.

Tables and paths go to stdout (so they can be piped); progress bars and errors go to stderr.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from rgb2raw import zoo
from rgb2raw.cli._app import app, reports_errors
from rgb2raw.errors import Rgb2RawError

# Re-exported for other commands: `typer.Option(..., autocompletion=complete_model_name)`.
complete_model_name = zoo.complete_model_name

models_app = typer.Typer(
    help="List, download and verify the pretrained models.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@contextlib.contextmanager
def download_progress(enabled: bool = True) -> Iterator[zoo.PullProgress | None]:
    """A `zoo.pull` progress callback drawing one rich bar per file on stderr.

    Yields None when disabled, or when stderr is not a terminal (no bar noise in logs).
    """
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        tasks: dict[str, TaskID] = {}

        def update(filename: str, done: int, total: int | None) -> None:
            if filename not in tasks:
                tasks[filename] = bars.add_task(filename, total=total)
            bars.update(tasks[filename], completed=done, total=total)

        yield update


def _size_text(card: zoo.ModelCard) -> str:
    """Total size from the card, or from the files on disk when the card does not say."""
    total = 0
    for entry in card.files:
        path = zoo.file_path(card, entry)
        if entry.size is not None:
            total += entry.size
        elif path.is_file():
            total += path.stat().st_size
        else:
            return "?"
    return f"{total / 1e6:.1f} MB"


@models_app.command("list")
@reports_errors
def list_command() -> None:
    """Show every model: camera, architecture, size, published score, cached or not."""
    table = Table(title=None, header_style="bold")
    for column in ("name", "camera", "arch", "size", "Test1 PSNR/SSIM", "cached"):
        table.add_column(column, no_wrap=column == "name")
    for card in zoo.list_models():
        score = "-" if card.reported is None else (
            f"{card.reported.psnr:.2f} / {card.reported.ssim:.2f}")
        table.add_row(card.name, card.camera, card.arch, _size_text(card), score,
                      "yes" if zoo.is_cached(card) else "no")
    Console(soft_wrap=True).print(table)


@models_app.command("pull")
@reports_errors
def pull_command(
    names: Annotated[list[str], typer.Argument(
        help="Model names (see `rgb2raw models list`).", autocompletion=complete_model_name)],
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress bar on stderr (only on a terminal).")] = True,
) -> None:
    """Download and verify models; print each model's path."""
    cards = [zoo.get_model(name) for name in names]  # every name checked before any download
    with download_progress(progress) as callback:
        paths = [zoo.pull(card, force=force, progress=callback) for card in cards]
    for path in paths:
        typer.echo(str(path))


@models_app.command("verify")
@reports_errors
def verify_command(
    names: Annotated[list[str] | None, typer.Argument(
        help="Models to check (default: every cached one).", autocompletion=complete_model_name,
        show_default=False)] = None,
) -> None:
    """Re-hash cached model files against their pins; exit 1 if one is bad or missing."""
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
    name: Annotated[str, typer.Argument(help="Model name.", autocompletion=complete_model_name)],
) -> None:
    """Print where the model's file is; exit 1 if it is not downloaded yet."""
    card = zoo.get_model(name)
    path = zoo.model_path(card)
    if not zoo.is_cached(card):
        raise Rgb2RawError(path, f"model {card.name} is not cached; "
                                 f"run `rgb2raw models pull {card.name}`")
    typer.echo(str(path))


app.add_typer(models_app, name="models", rich_help_panel="Models")
