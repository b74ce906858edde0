"""One solve of a plan model with the plan's solver settings; errors as llmopt's own."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from llmopt_solver.errors import SolverError
from llmopt_solver.milp.plan_highs import solve_plan_highs
from llmopt_solver.milp.plan_lns import LnsBudget, LnsStats, lns
from llmopt_solver.milp.plan_model import PlanData, PlanModel
from llmopt_solver.milp.solver import PROVEN_GAP, SolveResult, SolverName, SolverProgress, Status, cbc_relaxation, solve_problem

# One round of root cuts: with the warm start the LP bound is usually within the target gap after
# it, while further rounds cost ~1 s each on 100 jobs and barely move the bound (measured).
# A deterministic cap on CBC's branch and bound (single-threaded, so deterministic): a solve stops at
# the gap, at MAX_NODES nodes or at the time limit, whichever comes first. A solve that ends on the
# gap or the cap gives the same plan under any load; the time limit is only a safety net (the
# makespan phase of examples/plan_budget.json needs 174 nodes: ~10 s CPU on 2 busy cores).
MAX_NODES = 1000
CBC_OPTIONS = ("passCuts 1", f"maxNodes {MAX_NODES}")
# CBC's cutoff increment (default 1e-4 in absolute objective units) prunes every node that cannot
# beat the incumbent by more than it: on a plan of a few cents CBC then proves "optimal" a plan
# 5e-5 USD (0.06%) above the optimum. The increment is set relative to the plan's cost instead.
INCREMENT_REL = 1e-9
INCREMENT_MIN_USD = 1e-12


# The LNS's work per plan (``plan_lns``): counts, not seconds, so plans do not depend on the load.
# About 0.1-0.5 s per neighbourhood with CBC (a subprocess each); random portfolios of 1,000 jobs
# offer 4-20 (bench_plan.py), of 10,000 about 85: 10 at 1,000 jobs keeps that plan near 15 s.
LNS_NEIGHBOURHOODS_MIN = 10
LNS_JOBS_PER_NEIGHBOURHOOD = 100  # and one neighbourhood more per this many jobs
# From this many jobs, 10 jobs per neighbourhood instead of 8: quotas there hold more jobs per
# slot, and 8 left 51 of 100 neighbourhoods unimproved at 10,000 jobs (10: 2 of 82), measured
LNS_LARGE_JOBS, LNS_LARGE_NEIGHBOURHOOD = 5000, 10
LNS_TIME_SHARE = 0.5  # safety net: the LNS starts no neighbourhood after this share of --time-limit


def improve_by_lns(data: PlanData, values: dict[Any, float], solver: SolverName,
                   time_limit_s: float | None) -> tuple[dict[Any, float], LnsStats]:
    """Returns ``values`` (a feasible plan) after the MILP large-neighbourhood search, and its figures."""
    n_jobs = len(data.num_requests)
    budget = LnsBudget(neighbourhoods=max(LNS_NEIGHBOURHOODS_MIN, n_jobs // LNS_JOBS_PER_NEIGHBOURHOOD),
                       time_limit_s=None if time_limit_s is None else LNS_TIME_SHARE * time_limit_s)
    if n_jobs >= LNS_LARGE_JOBS:
        budget = replace(budget, max_jobs=LNS_LARGE_NEIGHBOURHOOD)
    return lns(data, values, solver, solve_model, budget)


def progress_of(say: Callable[[str], None]) -> SolverProgress:
    """Returns a solver-progress callback that reports elapsed time, incumbent and bound via ``say``."""

    def report(elapsed_s: float, incumbent: float | None, bound: float | None) -> None:
        parts = [f"solving the MILP: {elapsed_s:.0f} s"]
        if incumbent is not None:
            parts.append(f"best plan ${incumbent:,.2f}")
        if bound is not None:
            parts.append(f"bound ${bound:,.2f}")
        if incumbent and bound is not None:
            parts.append(f"gap {100 * max(0.0, incumbent - bound) / incumbent:.2f}%")
        say(", ".join(parts))

    return report


def solve_model(model: PlanModel, solver: SolverName, time_limit_s: float | None, gap_rel: float,
                start: dict[Any, float] | None = None, on_progress: SolverProgress | None = None,
                allow_none: bool = False, node_limit: int | None = None) -> SolveResult:
    """Returns the solve of ``model`` (warm-started from ``start``); SolverError if the solver
    failed or stopped without a plan, unless ``allow_none``. ``node_limit``: branch-and-bound nodes
    at most (a deterministic work limit, unlike the time limit)."""
    if solver == "highs":  # highspy's own API on the builder's rows: warm start, LP first, honest limit
        res = solve_plan_highs(model, time_limit_s, gap_rel, start, node_limit=node_limit)
        if res.status is Status.ERROR and not allow_none:
            raise SolverError(f"solver: {solver} failed or hit the time limit ({time_limit_s} s) without a plan; "
                              "raise --time-limit or --gap.")
        return res
    t0 = time.perf_counter()
    if start is not None and gap_rel > 0 and model.mode == "cost":
        # the LP relaxation first: a warm start within the gap of its bound needs no branching
        start_usd = model_value(model, start)
        lp = cbc_relaxation(model.prob, time_limit_s)
        if lp is not None and start_usd - lp <= gap_rel * abs(start_usd):
            lp = min(lp, start_usd)
            gap = (start_usd - lp) / abs(start_usd) if start_usd else 0.0
            return SolveResult(Status.OPTIMAL if gap <= PROVEN_GAP else Status.FEASIBLE, solver, time.perf_counter() - t0,
                               objective=start_usd, best_bound=lp, gap=gap,
                               values={k: float(start.get(k, 0.0)) for k in model.variables})
        if time_limit_s is not None:
            time_limit_s = max(0.1, time_limit_s - (time.perf_counter() - t0))
    scale = 0.0
    if start is not None:
        for key, v in model.variables.items():
            v.setInitialValue(start.get(key, 0.0))
        scale = abs(model_value(model, start)) if model.mode == "cost" else 0.0
    options: tuple[str, ...] = CBC_OPTIONS if gap_rel > 0 else ()
    if model.mode == "cost":  # (the makespan's objective is in whole slots: CBC finds its increment itself)
        options += (f"increment {max(INCREMENT_MIN_USD, INCREMENT_REL * scale):.3g}",)
    if node_limit is not None:
        options += (f"maxNodes {node_limit}",)
    res = solve_problem(model.prob, model.variables, solver=solver, time_limit_s=time_limit_s,
                        gap_rel=gap_rel, read_bound=True, warm_start=start is not None,
                        cbc_options=options, on_progress=on_progress)
    if res.best_bound is not None and not math.isfinite(res.best_bound):
        # HiGHS stopped by the time limit before its first dual bound reports -inf: no bound, no gap
        res = replace(res, best_bound=None, gap=None)
    if res.status is Status.ERROR and not allow_none:
        raise SolverError(f"solver: {solver} failed or hit the time limit ({time_limit_s} s) without a plan; "
                          "raise --time-limit or --gap.")
    return res


def model_value(model: PlanModel, values: dict[Any, float]) -> float:
    """Returns the model's cost (USD) at ``values`` (keyed like the model's variables)."""
    key_of = {v.name: k for k, v in model.variables.items()}
    return float(sum(c * values.get(key_of[v.name], 0.0) for v, c in model.cost.items()))


def model_size(model: PlanModel) -> dict[str, int]:
    return {"variables": model.n_variables, "integer_variables": model.n_integer,
            "constraints": model.n_constraints}
