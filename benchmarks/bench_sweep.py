"""Times `solve --sweep-slo`: the MILP rebuilt per SLO against one MILP re-solved (only the SLO's
right-hand side changed, warm-started), for CBC and HiGHS.

Run: python benchmarks/bench_sweep.py [--slos 9] [--runs 3]
Job: the original example (OPT-2.7B, input 128, output 512, safety factor 0.87) with batch auto,
SLOs evenly from 0 to 8,000 tokens/s. Three ways, same answers (checked):
  rebuilt, all options  -- per SLO, a fresh single-job MILP over every option meeting it
                           (what a fresh `llmopt solve --slo-tps S` builds, after its presolve);
  rebuilt, pruned       -- per SLO, a fresh MILP over the undominated options only;
  re-used               -- `frontier.sweep_slo`: one model over the undominated options.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.frontier import slo_values, sweep_options, sweep_slo
from llmopt_solver.milp.single_job import solve_single_job
from llmopt_solver.optimize import coefficients, presolve
from llmopt_solver.selection import offload_levels, select_instances
from llmopt_solver.table.build import build_table
from llmopt_solver.table.options import JobSpec, OptionTable


def rebuilt(table: OptionTable, slos: list[float], solver: str, pruned: bool) -> list[float]:
    """Returns the cost per million tokens picked per SLO, building the MILP anew for each."""
    out = []
    pool = sweep_options(table)
    for s in slos:
        t = dataclasses.replace(table, job=dataclasses.replace(table.job, slo_tps=s))
        cand = presolve(t)  # what optimize hands the MILP at this SLO
        if pruned:
            cand = np.intersect1d(cand, pool)
        _, best = solve_single_job(coefficients(t), cand, solver=solver)  # type: ignore[arg-type]
        out.append(float(table.cost_per_million_tokens_usd[best]) if best is not None else float("inf"))
    return out


def reused(table: OptionTable, slos: list[float], solver: str) -> list[float]:
    rows = sweep_slo(table, slos, solver=solver)  # type: ignore[arg-type]
    return [float(table.cost_per_million_tokens_usd[r.option]) if r.option is not None else float("inf") for r in rows]


def median_s(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slos", type=int, default=9)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    cat = load_catalog()
    pool = select_instances(cat)
    job = JobSpec(model=cat.model("OPT-2.7B"), batch_sizes=tuple(2**k for k in range(11)), input_len=128,
                  output_len=512, safety_factor=0.87, slo_tps=0, offload_ratios=offload_levels(0.1))
    table = build_table(cat, job, pool)
    slos = slo_values(0, 8000, args.slos)
    print(f"{len(table)} options, {len(presolve(table))} after the solve's presolve at SLO 0, "
          f"{len(sweep_options(table))} undominated (the re-used model); {len(slos)} SLOs 0..8000 tok/s")
    solvers = ["cbc"]
    try:
        import highspy  # noqa: F401

        solvers.append("highs")
    except ImportError:
        print("highs: not installed (pip install '.[highs]')")
    for solver in solvers:
        t_all, c_all = median_s(lambda s=solver: rebuilt(table, slos, s, pruned=False), args.runs)
        t_pr, c_pr = median_s(lambda s=solver: rebuilt(table, slos, s, pruned=True), args.runs)
        t_re, c_re = median_s(lambda s=solver: reused(table, slos, s), args.runs)
        same = np.allclose(c_all, c_pr, rtol=1e-9) and np.allclose(c_all, c_re, rtol=1e-9)
        print(f"{solver}: rebuilt, all options {t_all:.3f} s; rebuilt, pruned {t_pr:.3f} s; re-used {t_re:.3f} s "
              f"(median of {args.runs}; same picks' cost: {same})")


if __name__ == "__main__":
    main()
