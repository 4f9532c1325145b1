"""The one file-discovery rule: hidden files, rgb2raw temporaries and OS litter are never inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from rgb2raw._atomic import TEMP_PREFIX
from rgb2raw.discovery import is_junk_name, list_files


@pytest.mark.parametrize(("name", "junk"), [
    ("a.npy", False), ("sub/a.npy", False), ("./a.npy", False), ("../x/a.npy", False),
    (".DS_Store", True), ("._a.npy", True), (f"{TEMP_PREFIX}abc.npy", True),
    ("__MACOSX/a.npy", True), ("sub/.git/a.npy", True), ("Thumbs.db", True),
    ("DESKTOP.INI", True), ("sub\\.hidden\\a.npy", True),
])
def test_is_junk_name(name: str, junk: bool) -> None:
    assert is_junk_name(name) is junk


def make_tree(root: Path) -> None:
    for rel in ("b.npy", "a.NPY", "c.jpg", ".h.npy", f"{TEMP_PREFIX}x.npy", "Thumbs.db",
                "sub/d.npy", "sub/.git/e.npy", "__MACOSX/f.npy", ".hidden/g.npy"):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_list_files_skips_junk_sorted(tmp_path: Path) -> None:
    make_tree(tmp_path)
    assert [p.name for p in list_files(tmp_path, suffixes=(".npy",))] == ["a.NPY", "b.npy"]
    assert [p.relative_to(tmp_path).as_posix()
            for p in list_files(tmp_path, suffixes=(".npy",), recursive=True)] == [
        "a.NPY", "b.npy", "sub/d.npy"]
    assert [p.name for p in list_files(tmp_path, pattern="*.jpg")] == ["c.jpg"]
    assert [p.name for p in list_files(tmp_path)] == ["a.NPY", "b.npy", "c.jpg"]


def test_infer_discovery_uses_the_same_rule(tmp_path: Path) -> None:
    from rgb2raw.jobs import discover_inputs

    for rel in ("a.png", ".b.png", f"{TEMP_PREFIX}c.png", "__MACOSX/d.png", "sub/e.png"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = discover_inputs([tmp_path], recursive=True)
    assert [f.rel.as_posix() for f in found] == ["a.png", "sub/e.png"]
