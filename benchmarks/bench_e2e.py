"""End to end: whole `rgb2raw` commands in fresh processes against plain baselines, one run.

    python benchmarks/bench_e2e.py [--model NAME] [--quick] [--repeats N] [--pairs N]
                                   [--only score,infer,help] [--no-record]

What users feel is the command, start-up and model loading included, so every figure here is
the wall time of a fresh process (`subprocess`, start to exit), the median of `--repeats`
rounds (default 3, help 5), with the cases of one comparison interleaved and their order
rotated each round so that load from other processes falls on both sides. Ratios are taken
between medians of the same run. An untimed warm-up run of every command comes first (page
cache, .pyc files). In-process figures, where given, are a second column, not the headline.

Cases:
- score: `rgb2raw score PRED GT` on generated S7-sized pairs (480 x 252x252x4 uint16) against
  the official computation written straightforwardly (benchmarks/official_reference.py: scipy,
  one core), as a fresh process and, second column, in-process; plus both in-process. The
  numbers of `rgb2raw score --json -` must match the reference to 1e-6 (exit 1 otherwise). The
  floor (16 float64 13-tap filterings per image through OpenCV, one core, and what a second
  thread adds), the parts of scoring per image and, when the C extension is built, scoring
  through the OpenCV path in-process are measured in the same run.
- infer: `rgb2raw infer` (default model, or `--model NAME`) on four generated 12 MP photo-like
  JPEGs (4032x3024) and on one, without --camera (the default camera) and with --camera p20
  (lens shading) and s7, against benchmarks/baseline_decode_write.py (decode each JPEG and
  write an output-sized uint16 .npy), all eight commands interleaved in one run; peak RSS of
  each process; the model load time in fresh processes (default backend and --backend onnx);
  and, second column, the same comparison in-process with the model loaded.
- help: `rgb2raw --help` and `rgb2raw infer --help` against `python -c pass`, and the heavy
  modules `--help` imports (python -X importtime).

The machine (CPU model, cores, memory), the load average before and after each case, the
versions and the commit are recorded in benchmarks/results/e2e.json and e2e.md (e2e-quick.*
with --quick, e2e-<model>.* with --model; a run of only some cases adds them to the name, e.g.
e2e-infer.* for --only infer).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TOLERANCE = 1e-6
HEAVY_MODULES = ("numpy", "cv2", "scipy", "torch", "onnxruntime", "onnx", "rich")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fresh(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    wall, cpu, _ = common.run_timed(command, env=env)
    return wall, cpu


def _summary(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, object]]:
    return {name: {"median_s": round(common.median(v["wall"]), 4),
                   "runs_s": [round(x, 4) for x in v["wall"]],
                   "cpu_median_s": round(common.median(v["cpu"]), 4)}
            for name, v in times.items()}


def _median_wall(times: dict[str, dict[str, list[float]]], name: str) -> float:
    return common.median(times[name]["wall"])


# ----------------------------------------------------------------------------- help

def help_imports(env: dict[str, str], argv: list[str]) -> list[str]:
    """The heavy top-level modules that `rgb2raw <argv>` imports (python -X importtime)."""
    code = ("import sys; sys.argv = ['rgb2raw', *sys.argv[1:]]\n"
            "from rgb2raw.cli import main\nmain()")
    done = common.subprocess.run([sys.executable, "-X", "importtime", "-c", code, *argv], env=env,
                                 capture_output=True, text=True, check=False)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    return sorted(imported & set(HEAVY_MODULES))


def bench_help(repeats: int, env: dict[str, str]) -> dict[str, object]:
    rgb2raw = common.console_script()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "rgb2raw --help": [rgb2raw, "--help"],
        "rgb2raw infer --help": [rgb2raw, "infer", "--help"],
        "rgb2raw score --help": [rgb2raw, "score", "--help"],
    }
    for command in commands.values():
        _fresh(command, env)  # warm-up
    load = [common.load_average()]
    times = common.alternate({name: (lambda c=c: _fresh(c, env)) for name, c in commands.items()},
                             repeats)
    load.append(common.load_average())
    return {"commands": {name: _shown(c, Path("/nonexistent")) for name, c in commands.items()},
            "times": _summary(times), "loadavg_before_after": load,
            "heavy_imports": {"--help": help_imports(env, ["--help"]),
                              "infer --help": help_imports(env, ["infer", "--help"])}}


# ----------------------------------------------------------------------------- score

def filter_floor(pairs: int) -> dict[str, float]:
    """CPU ms per image, one thread: 16 float64 13-tap filterings through OpenCV (the floor the
    issue names), and the same kernels on one thread and on every core at once (how much a
    second thread adds on this machine's cores)."""
    import threading

    import cv2
    import numpy as np

    from rgb2raw.metrics import _KERNEL

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    planes = [rng.random((252, 252)) * 1024 for _ in range(16)]  # 8 MB: out of L2, as in scoring
    rounds = min(pairs, 120)

    def filterings(count: int) -> None:
        out = np.empty((252, 252))
        for _ in range(count):
            for plane in planes:
                cv2.sepFilter2D(plane, cv2.CV_64F, _KERNEL, _KERNEL, dst=out,
                                borderType=cv2.BORDER_REFLECT)

    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        filterings(rounds)
        best = min(best, (time.process_time() - start) / rounds)
    cores = common.usable_cores()
    walls = {}
    for threads in (1, cores):
        workers = [threading.Thread(target=filterings, args=(rounds,)) for _ in range(threads)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        walls[threads] = (time.perf_counter() - start) / (rounds * threads)
    return {"filter_floor_ms_per_image": round(1000 * best, 3),
            "filter_throughput_gain_all_cores": round(walls[1] / walls[cores], 2)}


def metrics_cpu_per_image(pred: Path, gt: Path, pairs: int) -> dict[str, float]:
    """CPU ms per image, one thread, of the parts of scoring: reading both files, and PSNR + SSIM
    on pairs already in memory (through the path scoring uses, and through OpenCV)."""
    from rgb2raw import metrics, scoring
    from rgb2raw.raw import ReusableBuffer

    pred_source, gt_source = scoring.open_source(pred), scoring.open_source(gt)
    stems = sorted(pred_source.entries)[:min(pairs, 120)]
    memory = (ReusableBuffer(), ReusableBuffer())
    read = float("inf")
    for _ in range(2):  # as scoring reads: into memory reused from file to file
        start = time.process_time()
        for stem in stems:
            pred_source.load(stem, memory[0])
            gt_source.load(stem, memory[1])
        read = min(read, (time.process_time() - start) / len(stems))
    loaded = [(pred_source.load(stem), gt_source.load(stem)) for stem in stems]
    workspace = metrics.SsimWorkspace(*loaded[0][0].shape[:2])

    def per_image() -> float:
        best = float("inf")
        for _ in range(2):
            start = time.process_time()
            for x, y in loaded:
                metrics.psnr(x, y, data_range=1024.0)
                metrics.ssim(x, y, data_range=1024.0, workspace=workspace)
            best = min(best, (time.process_time() - start) / len(loaded))
        return best

    figures = {"read_ms_per_image": round(1000 * read, 3),
               "metrics_ms_per_image": round(1000 * per_image(), 3)}
    native, metrics.native = metrics.native, None
    try:
        figures["metrics_opencv_ms_per_image"] = round(1000 * per_image(), 3)
    finally:
        metrics.native = native
    return figures


def scoring_cpu_per_image(pred: Path, gt: Path, pairs: int) -> float:
    from rgb2raw import scoring

    best = float("inf")
    for _ in range(2):
        start = time.process_time()
        scoring.score(pred, gt, workers=1)
        best = min(best, (time.process_time() - start) / pairs)
    return round(1000 * best, 3)


def _opencv_score(pred: Path, gt: Path) -> object:
    """scoring.score through the OpenCV path of `metrics` (as without the C extension)."""
    from rgb2raw import metrics, scoring

    native, metrics.native = metrics.native, None
    try:
        return scoring.score(pred, gt)
    finally:
        metrics.native = native


def max_deviation(reference: dict, ours: dict) -> float:
    if set(reference["per_image"]) != set(ours["per_image"]) or reference["count"] != ours["count"]:
        raise SystemExit("reference and rgb2raw scored different images")
    deviations = [abs(reference["psnr"] - ours["psnr"]), abs(reference["ssim"] - ours["ssim"])]
    for stem, numbers in ours["per_image"].items():
        deviations += [abs(reference["per_image"][stem]["psnr"] - numbers["psnr"]),
                       abs(reference["per_image"][stem]["ssim"] - numbers["ssim"])]
    return max(deviations)


def bench_score(tmp: Path, pairs: int, repeats: int, env: dict[str, str]) -> dict[str, object]:
    import official_reference

    from rgb2raw import scoring

    _log(f"score: making {pairs} pairs")
    pred, gt = common.make_score_pairs(tmp / "score", pairs)
    rgb2raw = common.console_script()
    ours_cmd = [rgb2raw, "score", str(pred), str(gt)]
    ref_cmd = [sys.executable, str(common.HERE / "official_reference.py"), str(pred), str(gt)]

    _log("score: parity and warm-up")
    wall, cpu, text = common.run_timed([*ours_cmd, "--json", "-"], env=env, capture=True)
    ours = json.loads(text)
    reference = official_reference.score_folders(str(pred), str(gt))
    deviation = max_deviation(reference, ours)
    common.run_timed(ref_cmd, env=env)
    scoring.score(pred, gt)  # in-process warm-up (imports, thread pool)

    from rgb2raw import metrics

    _log(f"score: {repeats} rounds")
    load = [common.load_average()]
    times = common.alternate({
        "rgb2raw score (command)": lambda: _fresh(ours_cmd, env),
        "official reference (fresh process)": lambda: _fresh(ref_cmd, env),
        "rgb2raw scoring.score (in-process)": lambda: common.in_process(scoring.score, pred, gt),
        "official reference (in-process)": lambda: common.in_process(
            official_reference.score_folders, str(pred), str(gt)),
        **({"rgb2raw scoring.score, OpenCV path (in-process)": lambda: common.in_process(
            _opencv_score, pred, gt)} if metrics.native is not None else {}),
    }, repeats)
    load.append(common.load_average())
    medians = {name: _median_wall(times, name) for name in times}
    command = medians["rgb2raw score (command)"]
    floor = filter_floor(pairs)
    parts = metrics_cpu_per_image(pred, gt, pairs)
    ours_cpu = scoring_cpu_per_image(pred, gt, pairs)
    command_cpu = 1000 * common.median(times["rgb2raw score (command)"]["cpu"]) / pairs
    cores = common.usable_cores()
    return {
        "pairs": pairs, "shape": list(common.S7_PACKED_SHAPE),
        "metrics_path": ("C extension rgb2raw._ssim" if metrics.native is not None
                         else "OpenCV (rgb2raw._ssim not built)"),
        "commands": {"rgb2raw": _shown(ours_cmd, tmp), "reference": _shown(ref_cmd, tmp)},
        "times": _summary(times),
        "ratio_command_vs_reference_process": round(
            medians["official reference (fresh process)"] / command, 2),
        "ratio_command_vs_reference_in_process": round(
            medians["official reference (in-process)"] / command, 2),
        "ratio_in_process": round(medians["official reference (in-process)"]
                                  / medians["rgb2raw scoring.score (in-process)"], 2),
        "max_abs_deviation": deviation,
        "tolerance": TOLERANCE,
        "mean_psnr": ours["psnr"], "mean_ssim": ours["ssim"],
        "floor": {
            **floor,
            **parts,
            "scoring_cpu_ms_per_image_one_thread": ours_cpu,
            "command_cpu_ms_per_image": round(command_cpu, 3),
            "command_wall_ms_per_image_per_core": round(1000 * command * cores / pairs, 3),
            "scoring_over_floor": round(ours_cpu / floor["filter_floor_ms_per_image"], 2),
            "command_wall_floor_s": round(
                pairs * floor["filter_floor_ms_per_image"] / 1000 / cores, 3),
        },
        "loadavg_before_after": load,
    }


# ----------------------------------------------------------------------------- infer

#: Cameras of the infer case: None is no --camera (the default camera, generic); P20's
#: calibrated model has lens shading, S7's has none.
INFER_CAMERAS: tuple[str | None, ...] = (None, "p20", "s7")

LOAD_CODE = """
import json, sys, time
started = time.perf_counter()
from rgb2raw import pipeline
imported = time.perf_counter()
camera, backend = sys.argv[1] or None, sys.argv[2]
model = pipeline.load_model(sys.argv[3] or None, camera=camera, backend=backend)
model.backend.ready()
print(json.dumps({"import_s": imported - started, "load_s": time.perf_counter() - imported,
                  "model": model.description}))
"""


def _fresh_rss(command: list[str], env: dict[str, str]) -> tuple[float, float, float | None]:
    """(wall s, CPU s, peak RSS MiB or None) of one fresh process.

    The peak comes from GNU time (``/usr/bin/time -f %M``), whose child starts from a small
    process: Linux carries a process's peak RSS across fork and exec, so a command started
    straight from this (large) benchmark process would report this process's peak instead.
    """
    import os
    import subprocess

    timer = Path("/usr/bin/time")
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        wrapped = ([str(timer), "-f", "%M", "-o", rss_file.name, *command] if timer.exists()
                   else command)
        start = time.perf_counter()
        process = subprocess.Popen(wrapped, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        stderr = process.stderr.read().decode() if process.stderr else ""
        _, status, usage = os.wait4(process.pid, 0)  # its own usage and its child's
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"benchmark command failed ({process.returncode}): "
                             f"{' '.join(command)}\n{stderr.strip()}")
        text = rss_file.read().strip().splitlines() if timer.exists() else []
    peak = int(text[-1]) / 1024 if text and text[-1].isdigit() else None
    return wall, usage.ru_utime + usage.ru_stime, peak


def _camera_label(camera: str | None) -> str:
    return f"--camera {camera}" if camera else "no --camera"


def model_load(env: dict[str, str], model: str | None, repeats: int) -> list[dict[str, object]]:
    """Engine import and model load (session creation included) in fresh processes, per
    camera, with the default backend and with --backend onnx (ONNX Runtime's session)."""
    rows = []
    for camera in INFER_CAMERAS:
        for backend in ("auto", "onnx"):
            runs = []
            for _ in range(repeats):
                _, _, text = common.run_timed(
                    [sys.executable, "-c", LOAD_CODE, camera or "", backend, model or ""],
                    env=env, capture=True)
                runs.append(json.loads(text))
            rows.append({"camera": _camera_label(camera), "backend": backend,
                         "model": runs[0]["model"],
                         "import_median_s": round(common.median([r["import_s"] for r in runs]), 4),
                         "load_median_s": round(common.median([r["load_s"] for r in runs]), 4)})
    return rows


def in_process_infer(jpegs: dict[str, Path], out: Path, model: str | None,
                     repeats: int) -> dict[str, float]:
    """Median seconds in-process, model loaded and warm: `batch.infer_paths` per camera and
    the baseline's own loop (second column; start-up and model loading excluded)."""
    import baseline_decode_write

    from rgb2raw import batch, pipeline
    from rgb2raw.cameras import get_camera

    settings = batch.OutputSettings(overwrite=True)
    cases = {}
    for count, folder in jpegs.items():
        files = sorted(folder.glob("*.jpg"))
        target = out / f"inproc-base{count}"
        target.mkdir(parents=True, exist_ok=True)
        cases[f"baseline, {count}"] = (
            lambda files=files, target=target: common.in_process(
                lambda: [baseline_decode_write.decode_and_write(f, target) for f in files]))
        for camera in INFER_CAMERAS:
            loaded = pipeline.load_model(model, camera=camera)
            loaded.backend.ready()
            profile = get_camera(camera or loaded.card.camera)
            cases[f"rgb2raw, {count}, {_camera_label(camera)}"] = (
                lambda loaded=loaded, profile=profile, folder=folder, count=count: common.in_process(
                    lambda: batch.infer_paths([folder], out / f"inproc{count}", loaded, profile,
                                              out=settings)))
    for case in cases.values():
        case()  # warm-up
    times = common.alternate(cases, repeats)
    return {name: round(_median_wall(times, name), 4) for name in times}


def bench_infer(tmp: Path, repeats: int, env: dict[str, str], model: str | None
                ) -> dict[str, object]:
    import numpy as np

    _log("infer: making four 12 MP JPEGs")
    four = tmp / "jpegs4"
    photos = common.write_photo_jpegs(four, 4)
    one = tmp / "jpegs1"
    one.mkdir()
    shutil.copy(photos[0], one / photos[0].name)
    out = tmp / "out"
    rgb2raw = common.console_script()
    baseline = [sys.executable, str(common.HERE / "baseline_decode_write.py")]
    model_args = ["--model", model] if model else []
    commands = {"baseline, 4 x 12 MP": [*baseline, str(four), str(out / "base4")],
                "baseline, 1 x 12 MP": [*baseline, str(one / photos[0].name), str(out / "base1")]}
    for camera in INFER_CAMERAS:
        tag, camera_args = camera or "default", ["--camera", camera] if camera else []
        commands[f"rgb2raw infer, 4 x 12 MP, {_camera_label(camera)}"] = [
            rgb2raw, "infer", str(four), "-o", str(out / f"ours4-{tag}"), *model_args, *camera_args]
        commands[f"rgb2raw infer, 1 x 12 MP, {_camera_label(camera)}"] = [
            rgb2raw, "infer", str(one / photos[0].name), "-o",
            str(out / f"ours1-{tag}" / "photo_0.npy"), *model_args, *camera_args]

    def fresh_outputs() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    _log("infer: warm-up")
    fresh_outputs()
    first_name = f"rgb2raw infer, 4 x 12 MP, {_camera_label(None)}"
    first = common.run_timed(commands[first_name], env=env, capture=True)
    summary = [line.replace(str(tmp), "TMP") for line in first[2].strip().splitlines()]
    for name, command in commands.items():
        if name != first_name:
            common.run_timed(command, env=env)
    ours_shape = np.load(out / "ours4-default" / "photo_0.npy", mmap_mode="r").shape
    base_shape = np.load(out / "base4" / "photo_0.npy", mmap_mode="r").shape
    if ours_shape != base_shape:
        raise SystemExit(f"baseline writes {base_shape}, rgb2raw {ours_shape}: not comparable")

    _log(f"infer: {repeats} rounds of {len(commands)} commands")
    load = [common.load_average()]
    rss: dict[str, list[float | None]] = {name: [] for name in commands}

    def case(name: str) -> tuple[float, float]:
        wall, cpu, peak = _fresh_rss(commands[name], env)
        rss[name].append(peak)
        return wall, cpu

    times = common.alternate({name: (lambda n=name: case(n)) for name in commands}, repeats,
                             prepare=fresh_outputs)
    load.append(common.load_average())
    medians = {name: _median_wall(times, name) for name in commands}
    cpus = {name: common.median(times[name]["cpu"]) for name in commands}
    _log("infer: model load times (fresh processes)")
    loads = model_load(env, model, repeats)
    _log("infer: in-process (second column)")
    inproc = in_process_infer({"4": four, "1": one}, out, model, repeats)
    ratios = {}
    for camera in INFER_CAMERAS:
        label = _camera_label(camera)
        ratios[label] = {
            count: {"ratio": round(medians[f"rgb2raw infer, {count} x 12 MP, {label}"]
                                   / medians[f"baseline, {count} x 12 MP"], 2),
                    "cpu_ratio": round(cpus[f"rgb2raw infer, {count} x 12 MP, {label}"]
                                       / cpus[f"baseline, {count} x 12 MP"], 2),
                    "in_process_ratio": round(inproc[f"rgb2raw, {count}, {label}"]
                                              / inproc[f"baseline, {count}"], 2)}
            for count in ("4", "1")}
    summary_times = _summary(times)
    for name in commands:
        peaks = [x for x in rss[name] if x is not None]
        summary_times[name]["peak_rss_mib_median"] = (round(common.median(peaks), 1) if peaks
                                                      else None)
    return {"model": model or "default", "input": "4032x3024 JPEG q95",
            "output_shape": list(ours_shape), "rgb2raw_stdout_first_run": summary[-3:],
            "times": summary_times, "ratios": ratios, "in_process_s": inproc,
            "model_load": loads, "loadavg_before_after": load,
            "commands": {name: _shown(c, tmp) for name, c in commands.items()}}


# ----------------------------------------------------------------------------- report

def _shown(command: list[str], tmp: Path) -> str:
    """A command as a reader would type it: `rgb2raw ...`, `python benchmarks/...`, TMP/ paths."""
    words = ["rgb2raw" if command[0] == common.console_script() else "python", *command[1:]]
    text = " ".join(words).replace(str(common.HERE) + "/", "benchmarks/")
    return text.replace(str(tmp), "TMP")


def markdown(record: dict) -> str:
    machine = record["machine"]
    lines = [
        "# End-to-end timings (whole commands, fresh processes)",
        "",
        f"`{record['command']}` on {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB; load average (1/5/15 min) at the start "
        f"{machine['loadavg_1_5_15']}, at the end {record['loadavg_end']}; commit "
        f"{machine['commit']}; {machine['date']}. Python {machine['python']}, "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + ".",
        "",
        "Median of the runs listed; cases of one comparison interleaved within the run. The "
        "machine is shared with other jobs: the load averages are part of the result.",
        "",
    ]
    if "score" in record:
        s = record["score"]
        t = s["times"]
        f = s["floor"]
        lines += [
            f"## score: {s['pairs']} pairs of {'x'.join(map(str, s['shape']))} uint16",
            "",
            "| what | median s | runs s | CPU s (median) |",
            "| --- | ---: | --- | ---: |",
            *[f"| {name} | {v['median_s']:.3f} | {', '.join(f'{x:.2f}' for x in v['runs_s'])} "
              f"| {v['cpu_median_s']:.2f} |" for name, v in t.items()],
            "",
            f"- **`rgb2raw score` (whole command) vs the official computation as a fresh process: "
            f"{s['ratio_command_vs_reference_process']}x**; vs the reference in-process: "
            f"{s['ratio_command_vs_reference_in_process']}x; both in-process: {s['ratio_in_process']}x.",
            f"- Largest difference from the reference over every per-image and mean PSNR/SSIM: "
            f"{s['max_abs_deviation']:.2e} (tolerance {s['tolerance']:g}).",
            f"- Metrics computed by: {s.get('metrics_path', 'OpenCV')}.",
            f"- Floor: 16 float64 13-tap filterings through OpenCV take "
            f"{f['filter_floor_ms_per_image']} ms per image on one core (CPU time); "
            f"{machine['cores']} threads of them run {f.get('filter_throughput_gain_all_cores', '?')}x "
            f"as fast as one. Scoring takes {f['scoring_cpu_ms_per_image_one_thread']} ms per "
            f"image on one thread ({f['scoring_over_floor']}x the floor): reading both files "
            f"{f.get('read_ms_per_image', '?')} ms, PSNR + SSIM {f.get('metrics_ms_per_image', '?')} ms "
            f"(OpenCV path: {f.get('metrics_opencv_ms_per_image', '?')} ms). The whole command "
            f"takes {f['command_cpu_ms_per_image']} ms of CPU per image (start-up included) and "
            f"{f.get('command_wall_ms_per_image_per_core', '?')} ms of wall time per image per core. "
            f"The floor for {s['pairs']} images on {machine['cores']} cores is "
            f"{f['command_wall_floor_s']} s.",
            f"- Load average before/after: {s['loadavg_before_after']}.",
            "",
        ]
    if "infer" in record:
        i = record["infer"]
        lines += [f"## infer: model {i['model']}, {i['input']}, output {i['output_shape']} uint16",
                  "", "| what | median s | runs s | CPU s (median) | peak RSS MiB |",
                  "| --- | ---: | --- | ---: | ---: |"]
        for name, v in i["times"].items():
            peak = v["peak_rss_mib_median"]
            lines.append(f"| {name} | {v['median_s']:.3f} | "
                         f"{', '.join(f'{x:.2f}' for x in v['runs_s'])} | {v['cpu_median_s']:.2f} "
                         f"| {'-' if peak is None else f'{peak:.0f}'} |")
        lines += ["", "Whole command / baseline command (wall, median), CPU-time ratio, and the "
                  "same comparison in-process (second column: model loaded and warm, "
                  "`batch.infer_paths` against the baseline's own loop):", "",
                  "| camera | 4 images | CPU | in-process | 1 image | CPU | in-process |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for label, r in i["ratios"].items():
            lines.append(f"| {label} | **{r['4']['ratio']}x** | {r['4']['cpu_ratio']}x | "
                         f"{r['4']['in_process_ratio']}x | **{r['1']['ratio']}x** | "
                         f"{r['1']['cpu_ratio']}x | {r['1']['in_process_ratio']}x |")
        lines += ["", "Model load in a fresh process (median; import of the engine, then "
                  "`pipeline.load_model` until the backend is ready, ONNX Runtime's import and "
                  "session included for --backend onnx):", "",
                  "| camera | backend | model | engine import s | load s |",
                  "| --- | --- | --- | ---: | ---: |"]
        for row in i["model_load"]:
            lines.append(f"| {row['camera']} | {row['backend']} | {row['model']} | "
                         f"{row['import_median_s']:.3f} | {row['load_median_s']:.3f} |")
        lines += ["", f"- Load average before/after the command rounds: {i['loadavg_before_after']}.",
                  "- Commands: " + "; ".join(f"`{c}`" for c in i["commands"].values()), ""]
    if "help" in record:
        h = record["help"]
        lines += ["## start-up", "", "| command | median s | runs s | CPU s (median) |",
                  "| --- | ---: | --- | ---: |",
                  *[f"| `{h['commands'][name]}` | {v['median_s']:.3f} | "
                    f"{', '.join(f'{x:.2f}' for x in v['runs_s'])} | {v['cpu_median_s']:.2f} |"
                    for name, v in h["times"].items()],
                  "", f"- Heavy modules imported (python -X importtime): --help "
                  f"{h['heavy_imports']['--help'] or 'none'}; infer --help "
                  f"{h['heavy_imports']['infer --help'] or 'none'}.",
                  f"- Load average before/after: {h['loadavg_before_after']}.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="infer with this model instead of the default")
    parser.add_argument("--quick", action="store_true",
                        help="a short run: 96 pairs, one round (recorded as e2e-quick)")
    parser.add_argument("--repeats", type=int, help="rounds per comparison (default 3; help 5)")
    parser.add_argument("--pairs", type=int, help="score pairs (default 480)")
    parser.add_argument("--only", default="score,infer,help",
                        help="comma-separated subset of score, infer, help")
    parser.add_argument("--no-record", action="store_true", help="print only; write no results")
    args = parser.parse_args()
    wanted = {part.strip() for part in args.only.split(",") if part.strip()}
    if not wanted <= {"score", "infer", "help"}:
        parser.error(f"--only: unknown case(s) {sorted(wanted - {'score', 'infer', 'help'})}")
    repeats = args.repeats or (1 if args.quick else 3)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    pairs = args.pairs or (96 if args.quick else 480)
    env = common.clean_env()

    record: dict[str, object] = {"command": "python benchmarks/bench_e2e.py " + " ".join(sys.argv[1:]),
                                 "machine": common.machine_info(), "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="rgb2raw-e2e-") as name:
        tmp = Path(name)
        if "score" in wanted:
            record["score"] = bench_score(tmp, pairs, repeats, env)
        if "infer" in wanted:
            record["infer"] = bench_infer(tmp, repeats, env, args.model)
        if "help" in wanted:
            record["help"] = bench_help(max(repeats, 3 if args.quick else 5), env)
    record["loadavg_end"] = common.load_average()
    text = markdown(record)
    print(text)
    if not args.no_record:
        model_tag = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(args.model).stem) if args.model else ""
        stem = "e2e-quick" if args.quick else (f"e2e-{model_tag}" if model_tag else "e2e")
        if wanted != {"score", "infer", "help"}:  # a partial run never replaces the full record
            stem += "-" + "-".join(sorted(wanted))
        for path in common.write_record(stem, record, text):
            _log(f"recorded {path.relative_to(common.REPO)}")
    score = record.get("score")
    if isinstance(score, dict) and score["max_abs_deviation"] > TOLERANCE:
        _log(f"FAIL: scores differ from the reference by {score['max_abs_deviation']:.2e}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
