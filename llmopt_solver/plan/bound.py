"""Lower bounds on a plan's cost that hold without the MILP (quota-free, per job)."""

from __future__ import annotations

import numpy as np

from llmopt_solver.plan.options import JobOptions


def quota_free_bound_usd(jobs: list[JobOptions]) -> float:
    """Returns a lower bound on any plan's cost, USD: per job, ignoring quotas and other jobs.

    Per job: at least one instance start (min_o p_o sigma) plus every request at the cheapest
    batch cost per request (min_o p_o tau_o / b_o); or the LP value N min_o p_o (sigma/u_o + tau_o)/b_o.
    """
    total = 0.0
    for jo in jobs:
        if len(jo) == 0:
            continue
        p, tau, b = jo.price_usd_h, jo.batch_s / 3600.0, jo.requests_per_batch
        sigma = jo.startup_s / 3600.0
        u = np.minimum(jo.max_batches, np.maximum(jo.batches_per_instance(), 1))
        n = jo.job.num_requests
        a = float(np.min(p * sigma) + n * np.min(p * tau / b))
        lp = float(n * np.min(p * (sigma / u + tau) / b))
        total += max(a, lp)
    return total
