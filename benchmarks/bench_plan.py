"""Times `llmopt plan` on random portfolios of 10, 100 and 1,000 jobs over the full catalog.

Run: python benchmarks/bench_plan.py [--sizes 10 100 1000] [--seeds 2] [--time-limit 60]
Prints, per run: model size (options, variables, integer variables, constraints), build and solve
time, end-to-end wall time of the command, status, proven gap, and whether issue 3's target is met
(100 jobs: < 10 s to a gap <= 0.5%; 1,000 jobs: < 60 s to a gap <= 1%; on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_portfolio import portfolio  # noqa: E402

TARGETS = {10: (10.0, 0.005), 100: (10.0, 0.005), 1000: (60.0, 0.01)}  # jobs -> (seconds, gap)


def run(n_jobs: int, seed: int, time_limit_s: float) -> dict:
    """Returns the figures of one `llmopt plan --json` run on a seeded portfolio of ``n_jobs``."""
    limit_s, gap = TARGETS.get(n_jobs, (60.0, 0.01))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.json"
        path.write_text(json.dumps(portfolio(n_jobs, seed=seed)))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "llmopt_solver", "plan", str(path), "--json", "--no-progress",
                              "--gap", str(gap), "--time-limit", str(time_limit_s)], capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if out.returncode != 0:
        return {"jobs": n_jobs, "seed": seed, "error": out.stderr.strip(), "wall_s": wall}
    doc = json.loads(out.stdout)
    s = doc["solver"]
    return {"jobs": n_jobs, "seed": seed, "options": s["options"], "variables": s["variables"],
            "integer": s["integer_variables"], "constraints": s["constraints"], "build_s": s["build_s"],
            "solve_s": s["wall_s"], "wall_s": wall, "status": doc["status"], "gap": doc["gap"],
            "cost_usd": doc["total_cost_usd"], "met": wall < limit_s and doc["gap"] <= gap + 1e-12}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args()
    cols = ["jobs", "seed", "options", "variables", "integer", "constraints", "build_s", "solve_s", "wall_s",
            "status", "gap", "cost_usd", "met"]
    print(" | ".join(cols))
    for n in args.sizes:
        for seed in range(1, args.seeds + 1):
            r = run(n, seed, args.time_limit)
            if "error" in r:
                print(f"{n} | {seed} | error after {r['wall_s']:.1f} s: {r['error']}")
                continue
            print(" | ".join(f"{r[c]:.2f}" if c.endswith("_s") else (f"{100 * r[c]:.3f}%" if c == "gap" else str(r[c]))
                             for c in cols), flush=True)


if __name__ == "__main__":
    main()
