"""The one exception type the library raises for problems a user can fix.

The CLI turns every `Rgb2RawError` into a single line, ``error: <file>: <problem>``,
and exit code 1. Anything else is a bug and gets a traceback (with RGB2RAW_DEBUG=1).

The library never names a command-line flag. When a problem is about one of a function's
parameters, or is fixed by changing one, the error says which in `param` (the keyword's
name, e.g. ``"overwrite"``) and `hint` (what to do, with ``{param}`` where its name goes).
`str(error)` names the keyword, for library users; the CLI calls `message` with its own
naming, so its users read about ``--overwrite`` instead. `InvalidParameter` marks a value
that is wrong in itself (a usage mistake, exit 2 on the command line).
"""

from __future__ import annotations

import os
from collections.abc import Callable


def _keyword(param: str) -> str | None:
    return param


class Rgb2RawError(Exception):
    """A user-facing error about one file (or about the run, when `path` is None)."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str, *,
                 param: str | None = None, hint: str | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        #: The library parameter the problem is about, or whose change fixes it.
        self.param = param
        #: How to fix it, e.g. "set {param} to replace it"; needs `param`.
        self.hint = hint
        super().__init__(str(self))

    def detail(self, name: Callable[[str], str | None] = _keyword) -> str:
        """The problem and its hint, with the parameter spelled by `name` (no path).

        The hint is left out when `name` gives None (a caller that has no such setting).
        """
        spelled = None if self.param is None else name(self.param)
        if self.hint is None or spelled is None:
            return self.problem
        return f"{self.problem} ({self.hint.format(param=spelled)})"

    def message(self, name: Callable[[str], str | None] = _keyword) -> str:
        """``<path>: <problem> (<hint>)``, with the parameter spelled by `name`."""
        text = self.detail(name)
        return text if self.path is None else f"{self.path}: {text}"

    def __str__(self) -> str:
        return self.message()


class InvalidParameter(Rgb2RawError, ValueError):
    """The value given for `param` is not allowed (on the command line: a usage error).

    Also a ValueError, which is what Python code expects from a bad argument.
    """

    def __init__(self, param: str, problem: str, *, hint: str | None = None) -> None:
        super().__init__(None, problem, param=param, hint=hint)

    def message(self, name: Callable[[str], str | None] = _keyword) -> str:
        """``<param>: <problem>``, the parameter spelled by `name`."""
        spelled = name(self.param or "")
        return self.detail(name) if spelled is None else f"{spelled}: {self.detail(name)}"


class OutputExists(Rgb2RawError):
    """An output is already there and was kept (the caller did not ask to replace it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, "already exists", param="overwrite", hint="use {param} to replace it")


def unreadable(path: str | os.PathLike[str], exc: OSError, expected: str) -> Rgb2RawError:
    """The one-line error for a file that could not be opened; `expected` names what it should be.

    Use as ``except OSError as exc: raise unreadable(path, exc, "a .npy file") from None``.
    """
    if isinstance(exc, FileNotFoundError):
        return Rgb2RawError(path, "no such file")
    if isinstance(exc, IsADirectoryError):
        return Rgb2RawError(path, f"is a folder, expected {expected}")
    return Rgb2RawError(path, f"cannot read ({exc.strerror or exc})")


def unwritable(path: str | os.PathLike[str], exc: OSError) -> Rgb2RawError:
    """The one-line error for an output that cannot be created (read-only, no permission...)."""
    if isinstance(exc, NotADirectoryError):
        return Rgb2RawError(path, "cannot be written: a parent is a file, not a folder")
    return Rgb2RawError(path, f"cannot be written ({exc.strerror or exc})")
