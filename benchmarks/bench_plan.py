"""Times `llmopt plan` on random portfolios with binding quotas, CBC and HiGHS side by side.

Run: python benchmarks/bench_plan.py [--sizes 100 1000] [--seeds 1] [--solvers cbc highs]
(plan files hold at most 10,000 jobs, ``MAX_JOBS`` in plan/input.py; above
``MAX_MILP_JOBS`` = 200 no full MILP is built: the searched greedy plan is improved by MILP
neighbourhoods, milp/plan_lns.py, and the quota-free bound gives the gap)
Per run (one `llmopt plan --json` subprocess): wall time, peak memory (summed RSS of its process tree),
status, proven gap, plan cost, the plain greedy plan's cost, the searched plan's cost (the MILP's
warm start, or the LNS's start), the cost after the LNS and its neighbourhoods improved / solved
(above 200 jobs), and whether the plan beats the greedy plan strictly ("greedy_opt": the greedy
plan already meets the lower bound, so nothing can beat it), and
the ratio of each figure to its target (issue 11, on 2 cores): 1,000 jobs <= 15 s and <= 1 GB,
10,000 jobs <= 5 min, gap <= 0.5%; 100 jobs <= 10 s (issue 3). A ratio <= 1 meets the target.
Last, per portfolio, CBC's cost over HiGHS's (they should agree within the gap).
The solver's time limit is the size's wall-time target, so a run that misses it shows how far
it got. The machine may be shared: figures are noisy; run the big sizes sparingly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_portfolio import portfolio  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GAP = 0.005
TARGETS = {100: (10.0, 1.0), 1000: (15.0, 1.0), 10000: (300.0, 8.0)}  # jobs -> (seconds, GB)



def _tree_rss_bytes(pid: int) -> int:
    """Returns the summed resident memory of ``pid`` and its descendants (Linux /proc; 0 elsewhere).
    Pages shared by forked workers count once per process: an upper bound."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_tree_rss_bytes(int(c)) for c in children)


def run_sampling_rss(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """Runs ``cmd``; returns its result and the peak summed RSS of its process tree, GB (sampled
    every 20 ms, so the plan's option workers count together with the main process)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        peak = 0
        while p.poll() is None:
            peak = max(peak, _tree_rss_bytes(p.pid))
            time.sleep(0.02)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(cmd, p.returncode, out.read(), err.read()), peak / 1e9

def run(n_jobs: int, seed: int, solver: str) -> dict:
    """Returns the figures of one `llmopt plan --json` run on a seeded portfolio of ``n_jobs``."""
    limit_s, mem_gb = TARGETS.get(n_jobs, (60.0, 1.0))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(portfolio(n_jobs, seed=seed)))
        cmd = [sys.executable, "-m", "llmopt_solver", "plan", str(path), "--json",
               "--quiet", "--gap", str(GAP), "--time-limit", str(limit_s), "--solver", solver]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        out, rss_gb = run_sampling_rss(cmd, env)
        wall = time.perf_counter() - t0
    lines = out.stderr.strip().splitlines()
    base = {"jobs": n_jobs, "seed": seed, "solver": solver, "wall_s": wall, "rss_gb": rss_gb,
            "wall_x": wall / limit_s, "mem_x": rss_gb / mem_gb}
    if out.returncode != 0:
        return {**base, "error": " ".join(lines)[:300]}
    doc = json.loads(out.stdout)
    s = doc["solver"]
    greedy = s.get("greedy_usd")
    cost = doc["total_cost_usd"]
    lns = s.get("lns") or {}
    return {**base, "options": s["options"], "variables": s["variables"], "build_s": s["build_s"],
            "status": doc["status"], "gap": doc["gap"], "gap_x": doc["gap"] / GAP, "cost_usd": cost,
            "greedy_usd": greedy, "searched_usd": lns.get("searched_usd", s.get("start_usd")),
            "lns_usd": lns.get("lns_usd"), "lns_improved": f"{lns['improved']}/{lns['neighbourhoods']}" if lns else None,
            "lns_s": lns.get("wall_s"), "beats_greedy": None if greedy is None else cost < greedy - 1e-6,
            "greedy_opt": None if greedy is None else greedy <= doc["lower_bound_usd"] * (1 + 1e-6) + 1e-6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--solvers", nargs="+", default=["cbc", "highs"], choices=["cbc", "highs"])
    args = ap.parse_args()
    cols = ["jobs", "seed", "solver", "options", "variables", "build_s", "wall_s", "wall_x", "rss_gb", "mem_x", "status",
            "gap", "gap_x", "cost_usd", "greedy_usd", "searched_usd", "lns_usd", "lns_improved", "lns_s", "beats_greedy",
            "greedy_opt"]
    print(" | ".join(cols))
    costs: dict[tuple[int, int], dict[str, float]] = {}
    beats: dict[int, list[tuple[bool | None, bool | None]]] = {}
    for n in args.sizes:
        for seed in range(1, args.seeds + 1):
            for solver in args.solvers:
                r = run(n, seed, solver)
                if "error" in r:
                    print(f"{n} | {seed} | {solver} | error after {r['wall_s']:.1f} s ({r['rss_gb']:.2f} GB): {r['error']}",
                          flush=True)
                    continue
                costs.setdefault((n, seed), {})[solver] = r["cost_usd"]
                beats.setdefault(n, []).append((r["beats_greedy"], r["greedy_opt"]))
                print(" | ".join(f"{100 * r[c]:.3f}%" if c == "gap" else (f"{r[c]:.4f}" if c.endswith("_usd") and r[c]
                                 else f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c])) for c in cols), flush=True)
    for (n, seed), by in costs.items():
        if len(by) == 2:
            print(f"{n} jobs seed {seed}: CBC / HiGHS cost = {by['cbc'] / by['highs']:.5f} (agree within the gap: "
                  f"{abs(by['cbc'] / by['highs'] - 1) <= GAP})")
    for n, runs in beats.items():
        open_ = [b for b, opt in runs if opt is False]
        print(f"{n} jobs: plan strictly below the greedy plan in {sum(1 for b in open_ if b)} of {len(open_)} runs where "
              f"the greedy plan does not meet the bound ({sum(1 for _, opt in runs if opt)} runs: greedy proven optimal)")


if __name__ == "__main__":
    main()
