"""The one exception type the library raises for problems a user can fix.

The CLI turns every `Rgb2RawError` into a single line, ``error: <file>: <problem>``,
and exit code 1. Anything else is a bug and gets a traceback (with RGB2RAW_DEBUG=1).
"""

from __future__ import annotations

import os


class Rgb2RawError(Exception):
    """A user-facing error about one file (or about the run, when `path` is None)."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return self.problem if self.path is None else f"{self.path}: {self.problem}"


def unreadable(path: str | os.PathLike[str], exc: OSError, expected: str) -> Rgb2RawError:
    """The one-line error for a file that could not be opened; `expected` names what it should be.

    Use as ``except OSError as exc: raise unreadable(path, exc, "a .npy file") from None``.
    """
    if isinstance(exc, FileNotFoundError):
        return Rgb2RawError(path, "no such file")
    if isinstance(exc, IsADirectoryError):
        return Rgb2RawError(path, f"is a folder, expected {expected}")
    return Rgb2RawError(path, f"cannot read ({exc.strerror or exc})")
