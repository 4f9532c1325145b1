"""LiteISPNet_s on a full P20 frame: one whole-frame pass against the two-pass strip runner.

Usage:  python benchmarks/bench_fullframe.py [--repeat 3] [--tile 64] [--height 2976 --width 3968]
                                             [--no-channels-last] [--out benchmarks/results/fullframe]

Every run is a fresh subprocess that imports torch, builds `LiteISPNetS` with random weights
(std 1/sqrt(fan-in), as in tests/test_twopass.py: speed does not depend on the weights, and the
output then spans several units so the agreement check below is demanding), makes a random
float32 RGB frame (3968x2976 by default: a stitched P20 scene) and runs ONE of:

- ``whole``: ``net(rgb)``, the module as written, on the whole frame: the reference (our module
  equals MiAlgo's code on random weights, so this is the authors' computation);
- ``whole-cl``: the same with the input in channels-last layout (what the runner uses inside),
  to show how much of the runner's speed is the layout rather than the strips;
- ``twopass``: `rgb2raw.nets.twopass.run_full_frame` with the given strip height.

Each run reports wall seconds, CPU seconds (user + system of the process: less disturbed by
other jobs on a shared machine than wall time) and the peak resident memory of the whole process
(VmHWM: interpreter, torch, model and the input frame included; the "floor" column is VmHWM
just before the run). The runs are interleaved (whole, twopass, whole-cl, whole, twopass, ...)
so a change of machine load hits all cases alike; the table shows medians and the ratio of the
medians to the whole-frame pass's. Every run's output is saved, and the largest difference of
each case's output from the whole-frame output is reported in DN of the P20 (white 1020 -
black 60 = 960 DN per unit).

Results (with machine info and load) go to ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
P20_DN_PER_UNIT = 1020 - 60  # white - black (/work/shared/aim22/FORMAT.md)


def _peak_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(case: str, height: int, width: int, tile: int, out: str) -> None:
    """One run in this (fresh) process; prints one JSON line."""
    import numpy as np
    import torch

    from rgb2raw.nets.liteisp import LiteISPNetS
    from rgb2raw.nets.twopass import demanding_weights, run_full_frame

    net = demanding_weights(LiteISPNetS().eval(), 0)
    rgb = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(1))
    floor = _peak_mib()
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        if case == "whole":
            result = net(rgb)
        elif case == "whole-cl":
            result = net(rgb.contiguous(memory_format=torch.channels_last))
        elif case == "twopass":
            result = run_full_frame(net, rgb, tile=tile)
        else:
            raise ValueError(case)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _peak_mib()
    np.save(out, result.contiguous().numpy())
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_mib": peak, "floor_mib": floor}))


def _run(case: str, args: argparse.Namespace, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", case, "--height", str(args.height),
           "--width", str(args.width), "--tile", str(args.tile), "--save", str(out)]
    load = os.getloadavg()[0]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    record = json.loads(done.stdout.strip().splitlines()[-1])
    record.update(case=case, load_before=load, load_after=os.getloadavg()[0])
    print(f"{case:9s} wall {record['wall_s']:7.1f} s  cpu {record['cpu_s']:7.1f} s  "
          f"peak {record['peak_mib']:6.0f} MiB  (load {load:.1f})", file=sys.stderr, flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tile", type=int, default=None, help="strip height (rows per level)")
    parser.add_argument("--height", type=int, default=2976)
    parser.add_argument("--width", type=int, default=3968)
    parser.add_argument("--no-channels-last", action="store_true",
                        help="skip the whole-frame channels-last case")
    parser.add_argument("--out", default=str(HERE / "results" / "fullframe"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tile is None:
        from rgb2raw.nets.twopass import DEFAULT_TILE

        args.tile = DEFAULT_TILE
    if args.worker:
        worker(args.worker, args.height, args.width, args.tile, args.save)
        return

    import numpy as np

    cases = ["whole", "twopass"] + ([] if args.no_channels_last else ["whole-cl"])
    records: list[dict] = []
    diffs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "whole.npy"
        for repeat in range(args.repeat):
            for case in cases:
                out = Path(tmp) / f"{case}.npy"
                # The first whole-frame output is the reference for every other run.
                target = reference if case == "whole" and repeat == 0 else out
                records.append(_run(case, args, target))
                if target != reference:
                    diff = float(np.abs(np.load(target) - np.load(reference)).max())
                    diffs[case] = max(diffs.get(case, 0.0), diff)
        scale = float(np.abs(np.load(reference)).max())

    whole_wall = statistics.median(r["wall_s"] for r in records if r["case"] == "whole")
    whole_cpu = statistics.median(r["cpu_s"] for r in records if r["case"] == "whole")
    summary = []
    for case in cases:
        runs = [r for r in records if r["case"] == case]
        wall = statistics.median(r["wall_s"] for r in runs)
        cpu = statistics.median(r["cpu_s"] for r in runs)
        summary.append({
            "case": case, "tile": args.tile if case == "twopass" else None,
            "wall_s": wall, "cpu_s": cpu, "wall_vs_whole": wall / whole_wall,
            "cpu_vs_whole": cpu / whole_cpu,
            "peak_mib": max(r["peak_mib"] for r in runs),
            "floor_mib": max(r["floor_mib"] for r in runs),
            "max_diff_dn": diffs.get(case, 0.0) * P20_DN_PER_UNIT,
            "runs_wall_s": [round(r["wall_s"], 1) for r in runs],
            "runs_cpu_s": [round(r["cpu_s"], 1) for r in runs],
        })
    import torch

    machine = {
        "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
        "torch": torch.__version__,
        "mem_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "load_min": min(r["load_before"] for r in records),
        "load_max": max(max(r["load_before"], r["load_after"]) for r in records),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    _cpu_name(machine)
    frame = {"height": args.height, "width": args.width, "output_abs_max": scale}
    command = "python benchmarks/bench_fullframe.py " + " ".join(sys.argv[1:])
    result = {"command": command, "machine": machine, "frame": frame, "summary": summary,
              "runs": records}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    table = _markdown(result)
    Path(args.out + ".md").write_text(table)
    print(table)


def _cpu_name(machine: dict) -> None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                machine["cpu"] = line.split(":", 1)[1].strip()
                return
    except OSError:
        pass


def _markdown(result: dict) -> str:
    m, f = result["machine"], result["frame"]
    lines = [
        "# LiteISPNet_s on a full P20 frame: whole-frame pass vs two-pass strips",
        "",
        f"`{result['command']}` on {m['cpu']}, {m['cpus']} CPUs ({m['torch_threads']} torch "
        f"threads), {m['mem_gib']:.1f} GiB, load average {m['load_min']:.1f}-{m['load_max']:.1f} "
        f"(other jobs were running); Python {m['python']}, torch {m['torch']}; {m['date']}.",
        "",
        f"Input {f['width']}x{f['height']} RGB -> {f['width'] // 2}x{f['height'] // 2}x4, random "
        f"weights; each run a fresh process, interleaved; medians; peak = VmHWM of the whole "
        f"process (torch, model and the {f['width']}x{f['height']} float32 input included; floor "
        f"= VmHWM before the run); max diff = largest |output - whole-frame output| over all runs,"
        f" in P20 DN (output |max| {f['output_abs_max']:.2f} units).",
        "",
        "| case | tile | wall s | x whole | CPU s | x whole | peak MiB | floor MiB | max diff DN |"
        " runs wall s | runs CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in result["summary"]:
        lines.append(
            f"| {s['case']} | {s['tile'] or '-'} | {s['wall_s']:.1f} | {s['wall_vs_whole']:.2f} "
            f"| {s['cpu_s']:.1f} | {s['cpu_vs_whole']:.2f} | {s['peak_mib']:.0f} "
            f"| {s['floor_mib']:.0f} | {s['max_diff_dn']:.4f} "
            f"| {', '.join(map(str, s['runs_wall_s']))} | {', '.join(map(str, s['runs_cpu_s']))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
