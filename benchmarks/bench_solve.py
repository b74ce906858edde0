"""Times `llmopt solve` end to end against the bare imports, and the option table in process.

Run: python benchmarks/bench_solve.py [--rounds N] [--runs N] [--no-table] [--no-bytecode-cache] [--baseline DIR]
Each round runs, in new processes and interleaved (so machine load hits all three alike), with
the bytecode of every module cached as after an install (a fresh PYTHONPYCACHEPREFIX written by a
warm-up run, also when PYTHONDONTWRITEBYTECODE is set; --no-bytecode-cache measures without):
the bare ``python -c "import numpy, pulp, pydantic, click"``, ``llmopt solve`` on the original
example and the same with ``--batch-size auto``. Prints the medians and the two ratios to the bare
imports against issue 11's targets (solve <= 1.5x, auto <= 2.5x), then the in-process table
figures of issue 2 (table < 5 ms). ``--baseline DIR`` adds both solves run from another copy of
the package (e.g. ``git archive main | tar -x -C DIR``) in the same rounds: before/after side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

TABLE_TARGET_S = 0.005
SOLVE_RATIO_TARGET = 1.5
AUTO_RATIO_TARGET = 2.5
ORIGINAL = ["--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
            "--safety-factor", "0.87", "--slo-tps", "100"]
AUTO = [("auto" if a == "32" else a) for a in ORIGINAL]
COMMANDS = {
    "bare imports": [sys.executable, "-c", "import numpy, pulp, pydantic, click"],
    "solve": [sys.executable, "-m", "llmopt_solver", "solve", *ORIGINAL],
    "solve --batch-size auto": [sys.executable, "-m", "llmopt_solver", "solve", *AUTO],
}


def with_baseline(commands: dict[str, list[str]], baseline: str | None) -> dict[str, tuple[list[str], str | None]]:
    """Returns name -> (command, PYTHONPATH or None): ``commands``, plus both solves from ``baseline``."""
    out: dict[str, tuple[list[str], str | None]] = {k: (v, None) for k, v in commands.items()}
    if baseline:
        for name in ("solve", "solve --batch-size auto"):
            out[f"{name} (baseline)"] = (commands[name], os.path.abspath(baseline))
    return out


def wall_s(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Returns the wall time of one run of ``cmd`` in a new process, seconds (a baseline runs in its
    own folder: ``-m`` puts the working folder first on sys.path)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, env=env, cwd=(env or {}).get("PYTHONPATH"))
    return time.perf_counter() - t0


def bytecode_env(cache_dir: str) -> dict[str, str]:
    """Returns this environment with bytecode written to and read from ``cache_dir`` (every module
    compiled once, as pip does at install, whatever PYTHONDONTWRITEBYTECODE says)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


def median_time(fn, runs: int) -> float:
    """Returns the median wall time of ``fn()`` over ``runs`` calls, seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def end_to_end(rounds: int, bytecode_cache: bool = True, baseline: str | None = None) -> None:
    """Prints the interleaved medians of the commands and the ratios to the bare imports."""
    commands = with_baseline(COMMANDS, baseline)
    with tempfile.TemporaryDirectory(prefix="llmopt-bench-pyc-") as cache_dir:
        base_env = bytecode_env(cache_dir) if bytecode_cache else dict(os.environ)
        envs = {k: base_env if path is None else {**base_env, "PYTHONPATH": path} for k, (_, path) in commands.items()}
        for name, (cmd, _) in commands.items():  # warm the file cache and the bytecode
            wall_s(cmd, envs[name])
        times: dict[str, list[float]] = {k: [] for k in commands}
        load0 = os.getloadavg()[0]
        for _ in range(rounds):
            for name, (cmd, _) in commands.items():
                times[name].append(wall_s(cmd, envs[name]))
        load1 = os.getloadavg()[0]
    med = {k: statistics.median(v) for k, v in times.items()}
    cache = "bytecode cached" if bytecode_cache else "no bytecode cache"
    print(f"end to end, {cache}, median of {rounds} interleaved rounds (1-min load average {load0:.1f} -> {load1:.1f}):")
    for name, t in med.items():
        print(f"  {name:<35} {t:.3f} s  (min {min(times[name]):.3f} s)")
    bare = med["bare imports"]
    for name, target in (("solve", SOLVE_RATIO_TARGET), ("solve --batch-size auto", AUTO_RATIO_TARGET)):
        for label in (name, f"{name} (baseline)"):
            if label in med:
                r = med[label] / bare
                print(f"  ratio {label} / bare imports: {r:.2f}x (target <= {target}x: {'met' if r <= target else 'NOT met'})")


def in_process(runs: int) -> None:
    """Prints the option-table and optimize times of issue 2, in this process."""
    from llmopt_solver.catalog.loader import load_catalog
    from llmopt_solver.optimize import optimize
    from llmopt_solver.selection import offload_levels, select_instances
    from llmopt_solver.table.build import build_table
    from llmopt_solver.table.options import JobSpec

    cat = load_catalog()
    pool = select_instances(cat)
    model = cat.model("OPT-2.7B")
    print(f"in process, catalog: {len(pool)} instances")
    for label, batches in (("fixed batch 32", (32,)), ("batch auto (1..1024)", tuple(2**k for k in range(11)))):
        job = JobSpec(model=model, batch_sizes=batches, input_len=128, output_len=512, safety_factor=0.87,
                      slo_tps=100, offload_ratios=offload_levels(0.1))
        n = len(build_table(cat, job, pool))  # warm-up
        t = median_time(lambda job=job: build_table(cat, job, pool), runs)
        print(f"  option table, {label}: {n} options in {t * 1e3:.2f} ms median -> {t / TABLE_TARGET_S:.2f}x the 5 ms target")
        t = median_time(lambda job=job: optimize(cat, job, pool), max(3, runs // 4))
        print(f"  table + MILP + re-check, {label}: {t * 1e3:.1f} ms median")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15, help="interleaved end-to-end rounds")
    ap.add_argument("--runs", type=int, default=20, help="in-process repetitions of the table")
    ap.add_argument("--no-table", action="store_true", help="skip the in-process figures")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="compile from source when PYTHONDONTWRITEBYTECODE is set (as before; not what an install sees)")
    ap.add_argument("--baseline", metavar="DIR", default=None,
                    help="also run both solves with PYTHONPATH=DIR (another copy of the package), side by side")
    args = ap.parse_args()
    end_to_end(args.rounds, not args.no_bytecode_cache, args.baseline)
    if not args.no_table:
        in_process(args.runs)


if __name__ == "__main__":
    main()
