"""Lower bounds on a plan's cost that hold without the MILP (quota-free, per job, integral).

Quotas only forbid plans, so the sum over jobs of each job's cheapest cost alone (no quotas, no
other jobs) bounds every plan of the problem — not only of the slotted model. Per job j, with
options o (price p_o, start-up sigma_j, hours per batch tau_o, requests per batch b_o, batches
that cover the job B_o, batches one instance finishes in the window c_o, u_o = min(B_o, c_o)):

- a plan that uses one option only costs at least S1 = min_o p_o (sigma_j ceil(B_o / u_o) + tau_o B_o)
  (exact: K instances carry at most K u_o batches and B_o batches are needed);
- a plan that uses two options or more starts two instances at least, so it costs at least
  M2 = (the two smallest p_o sigma_j) + N_j min_o p_o tau_o / b_o;
- every plan costs at least LP = N_j min_o p_o (sigma_j / u_o + tau_o) / b_o (the LP relaxation).

The job's bound is min(S1, max(M2, LP)). Options that cannot finish one batch in the window are
left out (no plan uses them).
"""

from __future__ import annotations

import numpy as np

from llmopt_solver.plan.options import JobOptions


def job_bounds_usd(jobs: list[JobOptions]) -> np.ndarray:
    """Returns per job the lower bound (USD) of the module docstring (0 for a job with no usable option)."""
    out = np.zeros(len(jobs))
    for j, jo in enumerate(jobs):
        c = jo.batches_per_instance() if len(jo) else np.zeros(0)
        ok = c > 0
        if not ok.any():
            continue
        p, tau, b = jo.price_usd_h[ok], jo.batch_s[ok] / 3600.0, jo.requests_per_batch[ok].astype(float)
        big_b = jo.max_batches[ok].astype(float)
        u = np.minimum(big_b, c[ok])
        sigma, n = jo.startup_s / 3600.0, jo.job.num_requests
        one = float(np.min(p * (sigma * np.ceil(big_b / u) + tau * big_b)))
        lp = float(n * np.min(p * (sigma / u + tau) / b))
        starts = np.sort(p * sigma)
        two = float(starts[0] + starts[1] + n * np.min(p * tau / b)) if len(starts) > 1 else float("inf")
        out[j] = min(one, max(two, lp))
    return out


def quota_free_bound_usd(jobs: list[JobOptions]) -> float:
    """Returns a lower bound on any plan's cost, USD: the sum of ``job_bounds_usd``."""
    return float(job_bounds_usd(jobs).sum())
