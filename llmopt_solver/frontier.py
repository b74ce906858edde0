"""The cost-vs-speed trade-off of one job, computed exactly from its option table.

- ``pareto``: the options no other option beats on both axes (lower cost, higher speed);
- ``frontier``: that set over (cost per million tokens, TPS), and, given a request count, over
  (cost of the whole job, job time);
- ``sweep_slo``: the cheapest option for each SLO of a range, re-solving one MILP whose SLO
  right-hand side changes between solves (built once over the options that can be cheapest at
  some SLO; ``milp.resolve``).

Job model (stated, not measured): the job is ceil(N / batch) static batches run back to back on
one instance, so job time = batches x batch time, and the instance is billed for exactly that
time at its hourly price (no start-up, no per-hour rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmopt_solver.milp.resolve import SloResolver
from llmopt_solver.milp.solver import SolverName
from llmopt_solver.optimize import COST_TIE_REL, coefficients
from llmopt_solver.table.options import OptionTable

JOB_ASSUMPTION = ("job = ceil(num_requests / batch) batches back to back on one instance; "
                  "cost = job hours x hourly price, per-second billing, no start-up time")


def pareto(cost: np.ndarray, speed: np.ndarray, idx: np.ndarray) -> list[int]:
    """Returns the options of ``idx`` not dominated in (min ``cost``, max ``speed``), cheapest first.

    q dominates p when cost_q <= cost_p and speed_q >= speed_p with one strict. Exact ties (same
    cost and speed) dominate neither way, so all of them are kept. O(n log n): sort by cost, then
    a point is kept when it is faster than everything cheaper.
    """
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) == 0:
        return []
    order = idx[np.lexsort((-speed[idx], cost[idx]))]  # cost ascending, then speed descending
    out: list[int] = []
    best_speed, last = -np.inf, None
    for i in order:
        c, s = float(cost[i]), float(speed[i])
        if s > best_speed:
            out.append(int(i))
            best_speed, last = s, (c, s)
        elif last is not None and (c, s) == last:
            out.append(int(i))
    return out


def feasible_options(table: OptionTable) -> np.ndarray:
    """Returns indices of the options meeting memory and SLO constraints with a finite price."""
    ok = table.feasible & np.isfinite(table.cost_per_million_tokens_usd) & np.isfinite(table.pred.tps)
    return np.nonzero(ok)[0]


def job_batches(table: OptionTable, num_requests: int) -> np.ndarray:
    """Returns per option the number of batches of the job: ceil(num_requests / batch size)."""
    return np.ceil(num_requests / table.batch_size).astype(np.int64)


def job_time_h(table: OptionTable, num_requests: int) -> np.ndarray:
    """Returns per option the job time, hours (batches x predicted batch time)."""
    return job_batches(table, num_requests) * table.pred.total_s / 3600.0


def job_cost_usd(table: OptionTable, num_requests: int) -> np.ndarray:
    """Returns per option the job cost, USD (job hours x hourly price)."""
    return job_time_h(table, num_requests) * table.hourly_cost_usd


@dataclass
class Frontier:
    """Pareto-optimal options of one job; ``job_points`` only when a request count was given."""

    table: OptionTable
    pick: int | None
    points: list[int]  # over (cost per million tokens, TPS), cheapest first
    num_requests: int | None = None
    job_points: list[int] | None = None  # over (job cost, job time), cheapest first

    def record(self, i: int, with_job: bool = False) -> dict[str, Any]:
        """Returns option ``i`` as a frontier record: the option record's keys plus ``pick``."""
        rec = self.table.record(i)
        # Every key of the option record but memory/timing details, so keys added to the option
        # record later (e.g. an engine) are carried too.
        out = {k: v for k, v in rec.items() if k not in _OPTION_DETAIL_KEYS}
        out["pick"] = i == self.pick
        if with_job and self.num_requests is not None:
            out["batches"] = int(job_batches(self.table, self.num_requests)[i])
            out["job_time_h"] = round(float(job_time_h(self.table, self.num_requests)[i]), 6)
            out["job_cost_usd"] = round(float(job_cost_usd(self.table, self.num_requests)[i]), 6)
        return out

    def to_json(self) -> dict[str, Any]:
        """Returns the ``frontier`` key of ``solve --json``."""
        doc: dict[str, Any] = {
            "axes": ["cost_per_million_tokens_usd (min)", "tps (max)"],
            "options_considered": int(len(feasible_options(self.table))),
            "pick_on_frontier": self.pick in self.points,
            "points": [self.record(i, with_job=self.num_requests is not None) for i in self.points],
        }
        if self.num_requests is not None and self.job_points is not None:
            doc["job"] = {"num_requests": self.num_requests, "assumption": JOB_ASSUMPTION,
                          "axes": ["job_cost_usd (min)", "job_time_h (min)"],
                          "points": [self.record(i, with_job=True) for i in self.job_points]}
        return doc


# Option-record keys a frontier record leaves out (memory and timing details, feasibility).
_OPTION_DETAIL_KEYS = frozenset({"gpu_memory_gb", "host_memory_gb", "gpu_memory_needed_gb", "host_memory_needed_gb",
                                 "prefill_s", "decode_s", "tps_per_seq", "tps_per_usd_hour", "feasible",
                                 "infeasible_reasons"})


def frontier(table: OptionTable, pick: int | None, num_requests: int | None = None) -> Frontier:
    """Returns the Pareto frontier of the feasible options of ``table`` (exact, every option)."""
    idx = feasible_options(table)
    pts = pareto(table.cost_per_million_tokens_usd, table.pred.tps, idx)
    job_pts = None
    if num_requests is not None:
        # Job time is minimised: maximise its negative.
        job_pts = pareto(job_cost_usd(table, num_requests), -job_time_h(table, num_requests), idx)
    return Frontier(table=table, pick=pick, points=pts, num_requests=num_requests, job_points=job_pts)


@dataclass
class SweepRow:
    """The cheapest option at one SLO (None when no option meets it)."""

    slo_tps: float
    option: int | None
    status: str


def parse_sweep(text: str) -> tuple[float, float, int]:
    """Returns (A, B, N) from 'A:B:N' (0 <= A <= B, 1 <= N <= 200); InputError otherwise."""
    from llmopt_solver.errors import InputError

    allowed = "A:B:N with 0 <= A <= B tokens/s and a whole N in 1..200 (e.g. 0:2000:9)"
    parts = text.split(":")
    try:
        a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3 or not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError
    except (ValueError, IndexError):
        raise InputError(field="--sweep-slo", problem=f"{text!r} is not a range", allowed=allowed) from None
    if not (0 <= a <= b) or not (1 <= n <= 200) or (n == 1 and a != b):
        raise InputError(field="--sweep-slo", problem=f"{text!r} is out of range", allowed=allowed)
    return a, b, n


def slo_values(a: float, b: float, n: int) -> list[float]:
    """Returns n evenly spaced SLOs from a to b inclusive, tokens/s."""
    return [a] if n == 1 else [float(x) for x in np.linspace(a, b, n)]


def sweep_options(table: OptionTable) -> np.ndarray:
    """Returns the options that can be the cheapest at some throughput SLO (exact).

    Eligible: priced, runnable, fitting GPU and host memory and meeting the per-sequence SLO (the
    throughput SLO is left out: the sweep varies it). Of those, an option dominated in (lower cost
    per token, higher planning TPS) by another can never be the pick: whenever it meets an SLO its
    dominator does too, at no higher cost. So the undominated ones (``pareto``) are the model.
    """
    return np.asarray(pareto(table.cost_per_million_tokens_usd, table.planning_tps, _sweep_eligible(table)),
                      dtype=np.int64)


def _sweep_eligible(table: OptionTable) -> np.ndarray:
    """Returns indices of options feasible at a throughput SLO of 0 (per-sequence SLO kept)."""
    with np.errstate(invalid="ignore"):
        ok = (table.usable & np.isfinite(table.cost_per_million_tokens_usd) & np.isfinite(table.pred.tps)
              & table.fits_gpu & table.fits_host
              & (table.planning_tps_per_seq >= table.job.slo_tps_per_seq * (1 - 1e-12)))
    return np.nonzero(ok)[0]


def sweep_slo(table: OptionTable, slos: list[float], solver: SolverName = "cbc",
              time_limit_s: float | None = None) -> list[SweepRow]:
    """Returns the cheapest option per SLO (tokens/s), by one MILP re-solved with a new SLO RHS.

    Independent of the solve's own ``--slo-tps``: the model (``milp.resolve.SloResolver``) is
    built once over ``sweep_options`` and only its SLO right-hand side changes. SLOs are solved
    from the highest down, so each previous pick is a feasible warm start. Ties within
    COST_TIE_REL are broken as ``optimize`` does, over every option meeting the SLO; a pick
    above the cheapest such option is reported as status "error" (the re-check of ``optimize``).
    """
    resolver = SloResolver(coefficients(table), sweep_options(table), solver=solver, time_limit_s=time_limit_s)
    eligible = _sweep_eligible(table)
    cost, tps = table.cost_per_million_tokens_usd, table.planning_tps
    rows: dict[int, SweepRow] = {}
    for k in sorted(range(len(slos)), key=lambda k: -slos[k]):
        s = float(slos[k])
        status, chosen = resolver.solve(s)
        meets = eligible[tps[eligible] >= s * (1 - 1e-12)]
        if chosen is None or not len(meets):
            rows[k] = SweepRow(s, None, status.value if chosen is None else "error")
            continue
        z = cost[chosen]
        if z > float(np.min(cost[meets])) * (1 + COST_TIE_REL):
            rows[k] = SweepRow(s, None, "error")
            continue
        ties = [int(o) for o in meets if cost[o] <= z * (1 + COST_TIE_REL)]
        rows[k] = SweepRow(s, min(ties, key=table.sort_key), status.value)
    return [rows[k] for k in range(len(slos))]
