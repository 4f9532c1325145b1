"""What the benchmark scripts share: the machine record, timed fresh processes, made-up inputs.

- `machine_info()`: CPU model, cores, load average, versions (read from package metadata, so
  recording them imports nothing), the commit measured.
- `run_timed()`: one whole command in a fresh process, wall time from `subprocess` start to exit,
  and that child's CPU time.
- `alternate()`: repeats of several cases, interleaved and with the order rotated each round, so
  a burst of load from another process is shared instead of landing on one case.
- `make_score_pairs()` and `write_photo_jpegs()`: the inputs, generated (never read from
  elsewhere), deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"


# ----------------------------------------------------------------------------- the machine

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() + ("+uncommitted" if dirty else "")


def machine_info() -> dict[str, object]:
    packages = ("rgb2raw", "numpy", "scipy", "opencv-python-headless", "opencv-python",
                "onnxruntime", "torch", "typer", "rich")
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf") else None,
        "loadavg_1_5_15": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {name: v for name in packages if (v := _version(name)) is not None},
        "commit": git_commit(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# ----------------------------------------------------------------------------- timing

def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(command: Sequence[str], *, env: dict[str, str] | None = None,
              capture: bool = False) -> tuple[float, float, str]:
    """(wall seconds, child CPU seconds, stdout if `capture`) of one fresh process; exit 0 required."""
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(list(command), env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark command failed ({done.returncode}): {' '.join(command)}\n"
                         f"{done.stderr.strip()}")
    return wall, children_cpu() - cpu, done.stdout if capture else ""


def alternate(cases: dict[str, Callable[[], tuple[float, float]]], repeats: int,
              prepare: Callable[[], None] | None = None
              ) -> dict[str, dict[str, list[float]]]:
    """Run every case `repeats` times, interleaved, rotating the order each round.

    Each case returns (wall, cpu) seconds; the result maps names to {"wall": [...], "cpu": [...]}.
    """
    names = list(cases)
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            if prepare is not None:
                prepare()
            wall, cpu = cases[name]()
            times[name]["wall"].append(wall)
            times[name]["cpu"].append(cpu)
    return times


def in_process(function: Callable[..., object], *args: object) -> tuple[float, float]:
    """(wall, CPU of this process) seconds of one call."""
    cpu = time.process_time()
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start, time.process_time() - cpu


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def clean_env() -> dict[str, str]:
    """The user's environment without our debug switch (benchmarks time the normal path)."""
    env = dict(os.environ)
    env.pop("RGB2RAW_DEBUG", None)
    return env


def console_script(name: str = "rgb2raw") -> str:
    """The installed command next to this interpreter (what a user of this venv runs)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def write_record(stem: str, record: dict[str, object], markdown: str) -> list[Path]:
    """benchmarks/results/<stem>.json and .md, each replaced atomically."""
    from rgb2raw._atomic import atomic_write

    paths = [RESULTS / f"{stem}.json", RESULTS / f"{stem}.md"]
    with atomic_write(paths[0]) as handle:
        handle.write((json.dumps(record, indent=2) + "\n").encode("utf-8"))
    with atomic_write(paths[1]) as handle:
        handle.write(markdown.encode("utf-8"))
    return paths


# ----------------------------------------------------------------------------- inputs

S7_PACKED_SHAPE = (252, 252, 4)  # one S7 validation crop's RAW (504x504 RGB), packed


def make_score_pairs(folder: Path, pairs: int, *, size: int = S7_PACKED_SHAPE[0],
                     seed: int = 0) -> tuple[Path, Path]:
    """Smooth random 10-bit 'RAW' ground truth and noisy, biased predictions of it.

    Stems follow the challenge's ``scene_crop`` naming (``0_0`` .. ``9_47`` for 480).
    """
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    pred_dir, gt_dir = folder / "pred", folder / "gt"
    pred_dir.mkdir(parents=True)
    gt_dir.mkdir()
    for index in range(pairs):
        base = rng.random((size // 8, size // 8, 4)).astype(np.float32)
        smooth = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
        gt = np.clip(smooth * rng.uniform(300, 1000), 0, 1024)
        pred = gt * rng.uniform(0.9, 1.1) + rng.normal(0, rng.uniform(2, 40), gt.shape)
        stem = f"{index // 48}_{index % 48}"
        np.save(gt_dir / f"{stem}.npy", np.rint(gt).astype(np.uint16))
        np.save(pred_dir / f"{stem}.npy", np.clip(np.rint(pred), 0, 1024).astype(np.uint16))
    return pred_dir, gt_dir


def photo_like(height: int, width: int, seed: int = 0):  # -> np.ndarray (numpy imported lazily)
    """A photo-like 8-bit BGR frame: the project's colour chart scaled up, with shading,
    texture and sensor-like noise, so the JPEG's size and decode cost resemble a photo's."""
    import cv2
    import numpy as np

    from rgb2raw.sample import make_chart

    rng = np.random.default_rng(seed)
    chart = make_chart(1008, 756)  # RGB
    image = cv2.resize(chart, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    rows = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    cols = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    vignette = 1.0 - 0.35 * (rows**2 + cols**2)  # lens shading
    image *= vignette[..., None]
    texture = cv2.resize(rng.random((height // 8, width // 8, 3)).astype(np.float32),
                         (width, height), interpolation=cv2.INTER_CUBIC)
    image += 40 * (texture - 0.5)
    image += rng.normal(0, 3, image.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR)


def write_photo_jpegs(folder: Path, count: int, *, width: int = 4032, height: int = 3024,
                      quality: int = 95) -> list[Path]:
    """`count` different 12 MP photo-like JPEGs (phone quality 95) in `folder`."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"photo_{index}.jpg"
        if not cv2.imwrite(str(path), photo_like(height, width, seed=index),
                           [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise SystemExit(f"could not write {path}")
        paths.append(path)
    return paths
