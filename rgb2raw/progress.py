"""The one progress-bar factory: rich bars on stderr, drawn only on a terminal, never under -q.

Every command that shows progress opens its bars with `bars(...)` and talks to the returned
`Bars`, which is a silent stand-in when bars are off, so callers never branch on it. Lines a
command prints while bars run (an epoch summary, a skipped file) go through `Bars.echo`, which
keeps them above a live bar and still prints them when there is none.

The CLI turns bars off for ``-q`` with `set_enabled(False)`. rich is imported only when a bar
is really drawn, so a quiet or piped run never pays for it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rich.progress import Progress

Style = Literal["count", "bytes", "training"]

_state = {"enabled": True}


def set_enabled(enabled: bool) -> None:
    """Allow (the default) or forbid progress bars for the rest of the process."""
    _state["enabled"] = enabled


def is_enabled() -> bool:
    """True when a bar would be drawn: allowed, and stderr is a terminal."""
    return _state["enabled"] and sys.stderr.isatty()


class Bars:
    """Tasks on a live rich `Progress`, or no-ops when `progress` is None."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    @property
    def live(self) -> bool:
        return self._progress is not None

    def task(self, description: str, total: float | None = None, **fields: Any) -> int:
        """Start a bar; returns its id (0 when bars are off)."""
        if self._progress is None:
            return 0
        return int(self._progress.add_task(description, total=total, **fields))

    def update(self, task: int, **changes: Any) -> None:
        """Change a bar: completed=, total=, description= or a style's own fields."""
        if self._progress is not None:
            self._progress.update(task, **changes)  # type: ignore[arg-type]

    def advance(self, task: int, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(task, amount)  # type: ignore[arg-type]

    def remove(self, task: int) -> None:
        if self._progress is not None:
            self._progress.remove_task(task)  # type: ignore[arg-type]

    def echo(self, line: str) -> None:
        """Print a line on stderr, above the bars when they are live."""
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=sys.stderr, flush=True)


def _columns(style: Style) -> tuple[Any, ...]:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if style == "bytes":
        return (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn())
    if style == "training":
        return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  {task.fields[speed]:.1f} img/s"),
                TimeElapsedColumn(), TimeRemainingColumn())
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn())


@contextlib.contextmanager
def bars(style: Style = "count", *, enabled: bool = True, transient: bool = True) -> Iterator[Bars]:
    """Open progress bars on stderr for the block; silent unless `enabled` and `is_enabled()`.

    `style`: "count" (done/total and times), "bytes" (downloads: sizes and speed) or
    "training" (also the task fields ``loss`` and ``speed``).
    """
    if not (enabled and is_enabled()):
        yield Bars(None)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*_columns(style), console=Console(stderr=True), transient=transient) as live:
        yield Bars(live)


__all__ = ["Bars", "Style", "bars", "is_enabled", "set_enabled"]
