"""Random plan portfolios for benchmarks and tests: seeded, over the built-in catalog.

Run: python benchmarks/plan_portfolio.py --jobs 100 --seed 1 > plan.json
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

MODELS = ["OPT-1.3B", "OPT-2.7B", "OPT-6.7B", "OPT-13B", "Llama-2-7B", "Llama-2-13B", "Llama-3-8B",
          "Mistral-7B", "Qwen2-7B", "GPT-J-6B", "OPT-30B", "Mixtral-8x7B", "Llama-3-70B"]
MODEL_WEIGHTS = [8, 8, 10, 6, 8, 5, 10, 8, 6, 4, 3, 2, 2]
# The cheap single-GPU types most jobs want: these get per-type quotas so that they bind.
QUOTA_INSTANCES = ["g4dn.xlarge", "g5.xlarge", "g6.xlarge", "g6e.xlarge", "g2-standard-4",
                   "Standard_NC4as_T4_v3", "Standard_NC8ads_A10_v4", "g6.2xlarge", "g5.2xlarge",
                   "g4dn.2xlarge"]
QUOTA_GPUS = {"A100-80GB-SXM": 16, "H100-SXM": 16, "L40S": 24}


def portfolio(n_jobs: int, seed: int = 0, slot_h: float = 1.0, budget_usd: float | None = None,
              quotas: bool = True) -> dict[str, Any]:
    """Returns a plan document with ``n_jobs`` random jobs (same seed, same plan)."""
    rng = random.Random(seed)
    jobs = []
    for k in range(n_jobs):
        release = rng.choice([0, 0, 0, 1, 2, 4, 6, 8, 12, 18, 24])
        window = rng.choice([2, 3, 4, 6, 8, 12, 16, 24])
        job: dict[str, Any] = {
            "name": f"job{k:04d}",
            "model": rng.choices(MODELS, MODEL_WEIGHTS)[0],
            "num_requests": int(10 ** rng.uniform(3, 5.3)),
            "input_len": rng.choice([128, 256, 512, 1024]),
            "output_len": rng.choice([32, 64, 128, 256]),
            "precision": rng.choices(["fp16", "int8", "int4"], [8, 1, 1])[0],
            "release_h": release,
            "deadline_h": release + window,
        }
        if rng.random() < 0.2:
            job["batch_size"] = rng.choice([16, 32, 64])
        jobs.append(job)
    doc: dict[str, Any] = {"jobs": jobs, "slot_h": slot_h}
    if quotas:
        per_type = max(2, n_jobs // 10)
        doc["quotas"] = {"instances": {name: per_type for name in QUOTA_INSTANCES},
                         "gpus": {g: max(q, n_jobs // 5) for g, q in QUOTA_GPUS.items()}}
    if budget_usd is not None:
        doc["budget_usd"] = budget_usd
    return doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--slot-h", type=float, default=1.0)
    ap.add_argument("--no-quotas", action="store_true")
    args = ap.parse_args()
    print(json.dumps(portfolio(args.jobs, args.seed, args.slot_h, quotas=not args.no_quotas), indent=1))


if __name__ == "__main__":
    main()
