"""Which files in a folder are inputs: the one place that decides it for every command.

A file is never an input when its name, or the name of a folder between it and the folder
searched, is

- hidden (starts with ``.``): ``.DS_Store``, macOS ``._x`` resource forks, editor swap files,
  and rgb2raw's own temporaries (``.rgb2raw-tmp-*``, left behind only by a killed run);
- operating-system or zip-tool litter: ``__MACOSX/``, ``Thumbs.db``, ``desktop.ini``.

`is_junk_name` answers for a name or a relative path (also for zip member names, with ``/``
or ``\\``); `list_files` lists a folder's inputs, sorted, optionally by suffix, pattern and
recursively. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from rgb2raw._atomic import TEMP_PREFIX

JUNK_DIRS = ("__MACOSX",)
JUNK_FILES = ("thumbs.db", "desktop.ini")



def is_junk_name(name: str | os.PathLike[str]) -> bool:
    """True for hidden files and folders, rgb2raw temporaries and OS/zip-tool litter."""
    parts = PurePosixPath(os.fspath(name).replace("\\", "/")).parts
    if any(part.startswith((".", TEMP_PREFIX)) and part not in (".", "..") or part in JUNK_DIRS
           for part in parts):
        return True
    return bool(parts) and parts[-1].lower() in JUNK_FILES


def _matches(path: Path, suffixes: Iterable[str] | None, pattern: str | None) -> bool:
    if pattern is not None:
        return path.match(pattern)
    return suffixes is None or path.suffix.lower() in suffixes


def list_files(folder: str | os.PathLike[str], *, suffixes: Iterable[str] | None = None,
               pattern: str | None = None, recursive: bool = False) -> list[Path]:
    """The input files in `folder`, sorted by path, junk left out (see the module docstring).

    `suffixes` (lower case, with the dot) or `pattern` (a glob matched against the path's
    end, e.g. ``*.jpg``) choose the files; `recursive` descends into sub-folders, skipping
    junk folders entirely.
    """
    root = Path(folder)
    wanted = None if suffixes is None else tuple(suffix.lower() for suffix in suffixes)
    found: list[Path] = []
    if recursive:
        for current, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not is_junk_name(d))
            base = Path(current)
            found.extend(base / name for name in files if not is_junk_name(name))
    else:
        with os.scandir(root) as entries:
            found.extend(Path(entry.path) for entry in entries
                         if not is_junk_name(entry.name) and entry.is_file())
    return sorted(p for p in found if p.is_file() and _matches(p, wanted, pattern))


__all__ = ["JUNK_DIRS", "JUNK_FILES", "is_junk_name", "list_files"]
