"""Start-up time of the CLI as users feel it: whole commands in fresh processes.

Times, interleaved in one run (so machine load hits every case alike), the median wall time
of N fresh processes for

- the baselines ``python -c pass`` and a two-command Typer app printing its rich --help;
- ``rgb2raw --help``, ``rgb2raw COMMAND --help`` for every command (piped, as a timing tool
  runs them; piped help is plain text), ``infer --help`` on a pseudo-terminal (rich boxes),
  and one shell-completion request (``--model`` names, which reads the model cards);

and, per case, which of numpy, cv2, torch, onnxruntime, pydantic got imported (from
``python -X importtime``). Results, with the machine and its load, go to
benchmarks/results/startup.json and a markdown table beside it.

    python benchmarks/bench_startup.py [--repeats 15] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "startup.json"
HEAVY = ("numpy", "cv2", "torch", "onnxruntime", "onnx", "pydantic")
COMMANDS = ("infer", "train", "score", "pack", "visualize", "models", "models list",
            "models pull")
# Marks a case whose stdout is a pseudo-terminal (rich help is drawn only on a terminal).
TERMINAL = "_BENCH_TERMINAL"
TYPER_BASELINE = '''
import typer
app = typer.Typer(rich_markup_mode="rich")
@app.command()
def a(x: int = typer.Option(1, help="x")) -> None: ...
@app.command()
def b(y: int = typer.Option(1, help="y")) -> None: ...
app()
'''


def cases(baseline_script: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """name -> (argv, extra environment)."""
    # The console script pip installed, run by this interpreter (as the shell would run it).
    script = shutil.which("rgb2raw", path=str(Path(sys.executable).parent)) or "rgb2raw"
    rgb2raw = [sys.executable, script]
    found: dict[str, tuple[list[str], dict[str, str]]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], {}),
        "typer app --help (baseline)": ([sys.executable, str(baseline_script), "--help"], {}),
        "rgb2raw --help": ([*rgb2raw, "--help"], {}),
    }
    for command in COMMANDS:
        found[f"rgb2raw {command} --help"] = ([*rgb2raw, *command.split(), "--help"], {})
    found["rgb2raw infer --help (terminal)"] = ([*rgb2raw, "infer", "--help"], {TERMINAL: "1"})
    found["completion: infer --model <Tab>"] = (rgb2raw, {
        "_RGB2RAW_COMPLETE": "complete_bash", "COMP_WORDS": "rgb2raw infer --model par",
        "COMP_CWORD": "3"})
    return found


def run_once(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one fresh process; stdout a pseudo-terminal for TERMINAL cases."""
    if env.get(TERMINAL) != "1":
        started = time.perf_counter()
        subprocess.run(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return time.perf_counter() - started
    import pty
    import threading

    master, slave = pty.openpty()

    def drain() -> None:  # a full terminal buffer would block the child
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    started = time.perf_counter()
    subprocess.run(command, env={**os.environ, **env, "COLUMNS": "100"}, stdout=slave,
                   stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - started
    os.close(slave)
    reader.join(timeout=5)
    os.close(master)
    return elapsed


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    command = [argv[0], "-X", "importtime", *argv[1:]]
    done = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines()
             if line.startswith("import time:")}
    return [name for name in HEAVY if name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "typer_baseline.py"
        script.write_text(TYPER_BASELINE)
        table = cases(script)
        times: dict[str, list[float]] = {name: [] for name in table}
        load_before = os.getloadavg()
        for _ in range(args.repeats):
            for name, (command, env) in table.items():
                times[name].append(run_once(command, env))
        load_after = os.getloadavg()
        imports = {name: heavy_imports(command, env) for name, (command, env) in table.items()}
    rows = []
    for name, samples in times.items():
        rows.append({"case": name, "median_s": statistics.median(samples),
                     "min_s": min(samples), "heavy_imports": imports[name]})
    width = max(len(row["case"]) for row in rows)
    for row in rows:
        print(f"{row['case']:<{width}}  median {row['median_s']:.3f} s  min {row['min_s']:.3f} s"
              f"  heavy imports: {', '.join(row['heavy_imports']) or 'none'}")
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
          f"{os.cpu_count()} cores")
    if not args.no_record:
        record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                  "machine": {"platform": platform.platform(), "python": platform.python_version(),
                              "cores": os.cpu_count(), "load_before": load_before,
                              "load_after": load_after},
                  "repeats": args.repeats, "rows": rows}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(record, indent=2) + "\n")
        lines = ["| case | median (s) | min (s) | heavy imports |", "| --- | --- | --- | --- |"]
        lines += [f"| {row['case']} | {row['median_s']:.3f} | {row['min_s']:.3f} | "
                  f"{', '.join(row['heavy_imports']) or 'none'} |" for row in rows]
        lines.append(f"\n{args.repeats} repeats, interleaved; load average "
                     f"{load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} cores.")
        RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
