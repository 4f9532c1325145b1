"""Which files, grouped how, on which shard, written where: the plan of a batch run.

Every input gets a *relative path*: its path below the folder it was found in (or just its
name when given as a file). Relative paths decide everything that must be reproducible across
machines and runs: the sorted order, the shard a file goes to, the output path (the output
folder mirrors the input sub-folders) and the per-file noise seed.

A *job* is the unit of work: one image, or all crops of one challenge scene to be stitched
into a frame. Shards split jobs, never files, so a stitched scene is never split.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rgb2raw.discovery import list_files
from rgb2raw.errors import Rgb2RawError
from rgb2raw.rgb import IMAGE_SUFFIXES
from rgb2raw.stitch import parse_crop_stem


@dataclass(frozen=True)
class InputFile:
    """An input image: where it is, and its path relative to the input it was found under."""

    path: Path
    rel: PurePosixPath


@dataclass(frozen=True)
class Job:
    """One image, or (when `scene` is set) a scene's crops in row-major order to stitch."""

    files: tuple[InputFile, ...]
    scene: str | None = None
    #: Set when the files cannot be processed at all; reported as failed, one line each.
    problem: str | None = None

    @property
    def key(self) -> PurePosixPath:
        """Sort key: the relative path of the job's first file."""
        return self.files[0].rel


def discover_inputs(inputs: Sequence[str | os.PathLike[str]], *, recursive: bool = False,
                    pattern: str | None = None) -> list[InputFile]:
    """Expand files and folders into input files sorted by relative path.

    A folder contributes the images directly in it (all levels with `recursive`), chosen by
    `pattern` (a glob such as ``*.jpg`` matched against names) or else by image suffix. Two
    inputs with the same relative path would write the same output, so that is an error.
    """
    found: dict[PurePosixPath, InputFile] = {}
    for given in inputs:
        root = Path(given)
        if root.is_dir():
            candidates = list_files(root, suffixes=IMAGE_SUFFIXES, pattern=pattern,
                                    recursive=recursive)
            entries = [InputFile(p, PurePosixPath(p.relative_to(root).as_posix()))
                       for p in candidates]
        elif root.is_file():
            entries = [InputFile(root, PurePosixPath(root.name))]
        else:
            raise Rgb2RawError(root, "no such file or folder")
        for entry in entries:
            previous = found.get(entry.rel)
            if previous is not None and previous.path.resolve() != entry.path.resolve():
                raise Rgb2RawError(entry.path, f"has the same relative path as {previous.path}; "
                                               "outputs would collide")
            found[entry.rel] = entry
    return [found[rel] for rel in sorted(found)]


def output_rel(rel: PurePosixPath, suffix: str) -> PurePosixPath:
    """The output's relative path: the input's, with the output suffix."""
    return rel.with_suffix(suffix)


def find_collisions(files: Iterable[InputFile], suffix: str) -> dict[PurePosixPath, str]:
    """Inputs whose outputs would land on the same path (``a.jpg`` and ``a.png``): rel -> why."""
    by_output: dict[PurePosixPath, list[InputFile]] = defaultdict(list)
    for entry in files:
        by_output[output_rel(entry.rel, suffix)].append(entry)
    return {entry.rel: f"output {out} would collide with "
                       f"{', '.join(str(o.path) for o in group if o is not entry)}"
            for out, group in by_output.items() if len(group) > 1 for entry in group}


def group_scenes(files: Sequence[InputFile], crops_per_frame: int
                 ) -> tuple[dict[tuple[str, str], list[InputFile | None]], list[InputFile]]:
    """Split files into challenge scenes (by folder and scene name) and other files.

    Each scene maps to a list indexed by crop number (None where a crop is missing). A name
    whose index is past the grid is not a crop of that grid and counts as an ordinary file.
    """
    scenes: dict[tuple[str, str], list[InputFile | None]] = {}
    others: list[InputFile] = []
    for entry in files:
        parsed = parse_crop_stem(entry.rel.stem)
        if parsed is None or parsed[1] >= crops_per_frame:
            others.append(entry)
            continue
        scene, index = parsed
        key = (entry.rel.parent.as_posix(), scene)
        slots = scenes.setdefault(key, [None] * crops_per_frame)
        if slots[index] is not None:  # e.g. 12_3.jpg and 12_3.png
            others.append(entry)
            continue
        slots[index] = entry
    return scenes, others


def _is_crop_sized(path: Path, side: int) -> bool:
    """Whether the image at `path` is `side` x `side` pixels, from its header alone; False
    when the header cannot be read (the job then fails with the file's own read error)."""
    from rgb2raw.rgb import image_size

    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
        return image_size(head) == (side, side)
    except (OSError, ValueError):
        return False


def plan_jobs(files: Sequence[InputFile], *, crops_per_frame: int, stitch: bool,
              require_frames: bool, crop_size: int | None = None) -> list[Job]:
    """Group files into jobs sorted by key.

    With `stitch`, a scene whose crops are all present becomes one job. With `require_frames`
    (a full-frame model), each crop of an incomplete scene becomes a job carrying a problem;
    with `crop_size`, only files of the challenge's crop size count as crops there, so an
    ordinary photo whose name happens to end in ``_<number>`` runs as its own frame.
    """
    if not stitch:
        return [Job((entry,)) for entry in files]
    scenes, others = group_scenes(files, crops_per_frame)
    jobs = [Job((entry,)) for entry in others]
    for (_folder, scene), slots in scenes.items():
        present = [entry for entry in slots if entry is not None]
        if len(present) == crops_per_frame:
            jobs.append(Job(tuple(present), scene=scene))
        elif require_frames:
            if crop_size is not None:
                frames = [e for e in present if not _is_crop_sized(e.path, crop_size)]
                jobs.extend(Job((entry,)) for entry in frames)
                present = [e for e in present if e not in frames]
                if not present:
                    continue
            missing = [str(i) for i, entry in enumerate(slots) if entry is None]
            shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
            problem = (f"scene {scene} has {len(present)} of {crops_per_frame} crops (missing "
                       f"{shown}); this model needs full frames")
            jobs.extend(Job((entry,), problem=problem) for entry in present)
        else:
            jobs.extend(Job((entry,)) for entry in present)
    jobs.sort(key=lambda job: job.key)
    return jobs


def shard_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> tuple[int, int]:
    """(RANK, WORLD_SIZE) as set by torchrun, or (0, 1) when not under a launcher."""
    env = os.environ if environ is None else environ
    try:
        rank, world = int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        raise Rgb2RawError(None, "RANK and WORLD_SIZE must be integers") from None
    if world < 1 or not 0 <= rank < world:
        raise Rgb2RawError(None, f"RANK={rank} WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
    return rank, world


def shard_jobs(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """Jobs of shard `index` of `count`: round-robin over jobs sorted by key.

    Every shard sees the same sorted list, so the shards are disjoint and together cover it.
    """
    ordered = sorted(jobs, key=lambda job: job.key)
    return ordered[index::count]


def file_seed(seed: int, rel: PurePosixPath) -> int:
    """A 64-bit seed for one file, fixed by the run's seed and the file's relative path.

    The same file gets the same noise whatever the shard, order or machine.
    """
    digest = hashlib.sha256(f"{seed}\0{rel.as_posix()}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


__all__ = [
    "InputFile",
    "Job",
    "discover_inputs",
    "file_seed",
    "find_collisions",
    "group_scenes",
    "output_rel",
    "plan_jobs",
    "shard_from_env",
    "shard_jobs",
]
