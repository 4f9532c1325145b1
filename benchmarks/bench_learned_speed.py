"""Speed of the learned offline models against calibrated and the decode + write floor.

    python benchmarks/bench_learned_speed.py [--model learned-s7] [--model RUN_DIR] [--repeats 3]

One generated 12 MP photo-like JPEG (4032x3024, quality 95, `common.write_photo_jpegs`); each
case is a whole command in a fresh process, rounds interleaved (`common.alternate`), median of
`--repeats`:

- ``python benchmarks/baseline_decode_write.py FILE OUTDIR`` (the floor);
- ``rgb2raw infer FILE -o OUT.npy --camera s7 --model calibrated-s7``;
- ``rgb2raw infer FILE -o OUT.npy --camera s7 --model M`` for every ``--model``.

Writes ``benchmarks/results/quality-speed.json`` and ``.md`` with the machine and the load
before and after.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import common


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--camera", default="s7")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    env = common.clean_env()
    with tempfile.TemporaryDirectory(prefix="rgb2raw-speed-") as scratch:
        tmp = Path(scratch)
        photo = common.write_photo_jpegs(tmp / "in", 1)[0]
        out = tmp / "out"
        rgb2raw = common.console_script()
        commands = {"baseline decode + write": [sys.executable,
                                                str(common.HERE / "baseline_decode_write.py"),
                                                str(photo), str(out / "base")]}
        for model in [f"calibrated-{args.camera}", *args.model]:
            commands[f"infer --model {model}"] = [rgb2raw, "infer", str(photo), "-o",
                                                  str(out / "ours.npy"), "--camera", args.camera,
                                                  "--model", model]

        def fresh() -> None:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()

        for command in commands.values():  # warm-up: page cache, lazy imports
            fresh()
            common.run_timed(command, env=env)
        load = [common.load_average()]
        times = common.alternate({name: (lambda c=c: common.run_timed(c, env=env)[:2])
                                  for name, c in commands.items()}, args.repeats, prepare=fresh)
        load.append(common.load_average())
    floor = common.median(times["baseline decode + write"]["wall"])
    rows = {name: {"median_s": round(common.median(v["wall"]), 3),
                   "runs_s": [round(x, 3) for x in v["wall"]],
                   "cpu_median_s": round(common.median(v["cpu"]), 3),
                   "ratio_to_floor": round(common.median(v["wall"]) / floor, 2)}
            for name, v in times.items()}
    record = {"benchmark": "quality-speed", "input": "one 4032x3024 JPEG q95 (photo-like)",
              "repeats": args.repeats, "rows": rows, "loadavg_before_after": load,
              "machine": common.machine_info(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    lines = ["# Speed of the learned offline models (one 12 MP JPEG, fresh processes)", "",
             f"{record['date']}; {args.repeats} interleaved rounds, median; load before/after "
             f"{load}; machine: {record['machine'].get('cpu', '')}", "",
             "| command | median s | runs s | CPU s | x floor |", "|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['median_s']} | {row['runs_s']} | {row['cpu_median_s']} | "
                     f"{row['ratio_to_floor']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_record:
        for path in common.write_record("quality-speed", record, text):
            print(f"recorded in {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
