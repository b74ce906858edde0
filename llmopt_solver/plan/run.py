"""A batch plan end to end: options per job, one MILP, the plan's assignments, a plain re-check.

The flow only: tables and pruning (``plan.options``, with a ``TableCache`` owned by the caller),
the MILP data (``plan.data``), the solve (``plan.solving``), the runs (``plan.realize``), the
re-check (``plan.check``), bounds (``plan.bound``) and infeasibility (``plan.explain``). The lower
bound is the solver's proven bound (or, for the cost objective, the quota-free bound of
``quota_free_bound_usd`` if larger), over the options kept by pruning.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmopt_solver.catalog.loader import Catalog, load_catalog
from llmopt_solver.errors import InfeasibleError, SolverError
from llmopt_solver.milp.plan_greedy import greedy_and_search, greedy_start, values_cost_usd
from llmopt_solver.milp.plan_lns import LnsStats
from llmopt_solver.milp.plan_model import PlanData, PlanModel, build_plan_milp, option_limit
from llmopt_solver.milp.solver import PROVEN_GAP, SolveResult, SolverName, Status
from llmopt_solver.plan.bound import quota_free_bound_usd
from llmopt_solver.plan.check import COST_EPS_USD, check_plan
from llmopt_solver.plan.data import canonical_quotas, plan_data, quota_limits
from llmopt_solver.plan.explain import explain_infeasible
from llmopt_solver.plan.input import MAX_MILP_JOBS, PlanFile, load_plan
from llmopt_solver.plan.options import TableCache, build_job_options
from llmopt_solver.plan.realize import realize
from llmopt_solver.plan.result import Assignment, PlanResult
from llmopt_solver.plan.solving import improve_by_lns, model_size, model_value, progress_of, solve_model

__all__ = ["Assignment", "PlanResult", "check_plan", "plan_from_file", "quota_limits", "run_plan"]

Progress = Callable[[str], None]
# What ran when no MILP was solved (the searched greedy plan; ``solver.name`` of the JSON)
NO_SOLVER = "greedy+search"


def _silent(msg: str) -> None:
    """The progress callback when nobody listens."""


def run_plan(plan: PlanFile, catalog: Catalog, base: Path | None = None, solver: SolverName = "cbc",
             time_limit_s: float | None = None, gap_rel: float = 0.005, progress: Progress | None = None,
             repredict: bool = True, tables: TableCache | None = None,
             only_engines: tuple[str, ...] | None = None) -> PlanResult:
    """Returns the cheapest (or earliest-finishing) plan, re-checked; InfeasibleError explains failure.

    ``tables``: option tables to reuse across calls (same catalog); a fresh cache by default.
    ``only_engines``: the engines every job is restricted to (``--emit``: those with a recipe).
    """
    say = progress or _silent
    t0 = time.perf_counter()
    plan = canonical_quotas(catalog, plan)
    total = len(plan.jobs)
    done = itertools.count(1)  # jobs come back out of order when built in workers
    jobs = build_job_options(catalog, plan, base, tables=tables, on_job=lambda j: say(f"predicted {next(done)}/{total} jobs"),
                            only_engines=only_engines)
    if any(len(jo) == 0 for jo in jobs):
        raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
    makespan = plan.objective == "makespan"
    data, index = plan_data(plan, jobs, all_timed=makespan)
    usable = {od.job for od in data.options if option_limit(od, data.quotas) > 0 and od.cap_batches > 0}
    if len(usable) < len(jobs):
        raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
    t_opts = time.perf_counter()  # options and data built: what follows is the plan's search
    pair = None if makespan else greedy_and_search(data)
    lns = None
    if pair is not None:
        # MILP neighbourhoods of the searched plan (milp/plan_lns.py): the plan above MAX_MILP_JOBS,
        # a better warm start below (no neighbourhood, no work, when no job was kept off its best option)
        say("improving the plan by MILP neighbourhoods")
        better, lns = improve_by_lns(data, pair[1], solver, time_limit_s)
        pair = (pair[0], better)
        lns = lns if lns.tried else None
    searched = NO_SOLVER if lns is None else f"{NO_SOLVER}+lns-{lns.solver}"  # what made the plan when no MILP runs
    if pair is not None:
        # the bound first: a start within the gap of the quota-free bound needs no MILP at all
        quick = _bound_first(plan, jobs, data, pair, gap_rel, searched, t_opts)
        if quick is not None:
            return _finish(plan, jobs, data, index, quick, catalog, repredict, say, start_usd=quick.objective,
                           greedy_usd=values_cost_usd(data, pair[0]), build_s=t_opts - t0, phases=[quick], lns=lns)
    if not makespan and len(jobs) > MAX_MILP_JOBS:
        # too large for the MILP (README "Limits"): the searched plan, with its gap to the quota-free bound
        res = _large(plan, jobs, data, pair, searched, t_opts)
        return _finish(plan, jobs, data, index, res, catalog, repredict, say, start_usd=res.objective,
                       greedy_usd=values_cost_usd(data, pair[0]) if pair else None, build_s=t_opts - t0, phases=[res],
                       lns=lns)
    say(f"building the MILP ({len(data.options)} options)")
    phases: list[SolveResult] = []
    last_slot = None
    if makespan:
        m1 = build_plan_milp(data, "makespan")
        build_s = time.perf_counter() - t0
        say(f"solving for the makespan ({m1.n_variables} variables)")
        # a relative gap below one slot out of the horizon keeps the makespan exact
        start1 = greedy_start(data)
        if start1 is not None:
            last = max((k[2] for k, v in start1.items() if k[0] == "n" and v > 0), default=0)
            start1.update({("y", t): float(t <= last) for t in range(data.n_slots)})
        r1 = solve_model(m1, solver, time_limit_s, min(gap_rel, 0.5 / max(1, data.n_slots)), start1)
        if r1.status is Status.INFEASIBLE:
            raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
        phases.append(r1)
        last_slot = sum(1 for t in range(data.n_slots) if r1.values.get(("y", t), 0.0) > 0.5)
        t1 = time.perf_counter()
        model = build_plan_milp(data, "cost", last_slot=last_slot)
        build_s += time.perf_counter() - t1
    else:
        # With a budget, first the plan without it: if it fits the budget it is the answer; if its
        # proven bound exceeds the budget, no plan fits (answered from the bound, in one solve).
        free = data if plan.budget_usd is None else plan_data(plan, jobs, budget=False)[0]
        model = build_plan_milp(free, "cost")
        build_s = time.perf_counter() - t0
    # warm start: the makespan phase's plan (feasible here), or a greedy plan built job by job
    greedy_usd = None
    start: dict[Any, float] | None
    if makespan:
        start = {k: v for k, v in phases[0].values.items() if k[0] != "y"}
    else:  # the greedy plan, improved by local search (plan_greedy.improve)
        start = None if pair is None else pair[1]
        greedy_usd = None if pair is None else values_cost_usd(data, pair[0])
    if makespan and start is not None and plan.budget_usd is not None and model_value(model, start) > plan.budget_usd:
        start = None
    start_usd = model_value(model, start) if start is not None else None
    say(f"solving the MILP ({model.n_variables} variables, {model.n_constraints} constraints)")
    res = solve_model(model, solver, time_limit_s, gap_rel, start, on_progress=progress_of(say) if progress else None)
    if res.status is Status.INFEASIBLE:
        raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
    if not makespan and plan.budget_usd is not None and (res.objective or 0.0) > plan.budget_usd + COST_EPS_USD:
        phases.append(res)
        res = _within_budget(plan, jobs, model, res, solver, time_limit_s, gap_rel, say)
    phases.append(res)
    bound_of = "slotted model" if any(od.timed for od in data.options) else "problem"
    return _finish(plan, jobs, data, index, res, catalog, repredict, say, start_usd=start_usd, greedy_usd=greedy_usd,
                   build_s=build_s, phases=phases, model=model, bound_of=bound_of)


def _searched(usd: float, bound: float, values: dict, name: str, t0: float) -> SolveResult:
    """Returns the searched plan ``values`` (cost ``usd``) as the solve's result: the quota-free
    ``bound`` (at most the cost), the gap between them, and ``name`` as the solver."""
    bound = min(bound, usd)
    gap = (usd - bound) / usd if usd > 0 else 0.0
    return SolveResult(Status.OPTIMAL if gap <= PROVEN_GAP else Status.FEASIBLE, name, time.perf_counter() - t0,
                       objective=usd, best_bound=bound, gap=gap, values=values)


def _bound_first(plan: PlanFile, jobs: list, data: PlanData, pair: tuple[dict, dict], gap_rel: float, name: str,
                 t0: float) -> SolveResult | None:
    """Returns the searched greedy plan as the answer when it is within ``gap_rel`` of the
    quota-free bound (and within the budget), else None (the MILP decides)."""
    start_usd = values_cost_usd(data, pair[1])
    if plan.budget_usd is not None and start_usd > plan.budget_usd + COST_EPS_USD:
        return None
    res = _searched(start_usd, quota_free_bound_usd(jobs), pair[1], name, t0)
    return res if res.gap is not None and res.gap <= gap_rel else None


def _large(plan: PlanFile, jobs: list, data: PlanData, pair: tuple[dict, dict] | None, name: str,
           t0: float) -> SolveResult:
    """Returns the searched greedy plan of a portfolio beyond MAX_MILP_JOBS, with its proven gap;
    InfeasibleError when the bound exceeds the budget, SolverError when no plan is found."""
    limit = f"{len(jobs)} jobs, above the MILP's {MAX_MILP_JOBS}"
    bound = quota_free_bound_usd(jobs)
    budget = plan.budget_usd
    if budget is not None and bound > budget + COST_EPS_USD:
        raise InfeasibleError(f"budget ${budget:,.2f} too small by {_short(bound - budget)}: no plan costs less than "
                              f"${bound:,.2f}")
    if pair is None:
        raise SolverError(f"solver: the greedy plan could not place every job within the quotas ({limit}); "
                          f"split the portfolio into plans of at most {MAX_MILP_JOBS} jobs")
    usd = values_cost_usd(data, pair[1])
    if budget is not None and usd > budget + COST_EPS_USD:
        raise InfeasibleError([f"budget ${budget:,.2f}: undecided ({limit}): the best plan found costs ${usd:,.2f}, "
                               f"above the budget, and no plan costs less than ${bound:,.2f}, below it",
                               f"raise the budget to the plan found, or split the portfolio into plans of at most "
                               f"{MAX_MILP_JOBS} jobs"])
    return _searched(usd, bound, pair[1], name, t0)


def _finish(plan: PlanFile, jobs: list, data: PlanData, index: list, res: SolveResult, catalog: Catalog,
            repredict: bool, say: Progress, start_usd: float | None, greedy_usd: float | None, build_s: float,
            phases: list[SolveResult], model: PlanModel | None = None, bound_of: str = "problem",
            lns: LnsStats | None = None) -> PlanResult:
    """Returns the plan of ``res`` (runs realized, bound, sizes), re-checked."""
    assignments = realize(plan, jobs, data, index, res.values)
    bound = res.best_bound if res.best_bound is not None else 0.0
    if plan.objective != "makespan":
        free = quota_free_bound_usd(jobs)
        if free >= bound:  # the quota-free bound holds for the problem, whatever the solver's bounded
            bound, bound_of = free, "problem"
    size = model_size(model) if model is not None else {"variables": 0, "integer_variables": 0, "constraints": 0}
    out = PlanResult(plan=plan, jobs=jobs, assignments=assignments, solve=res, lower_bound_usd=bound,
                     model_size=size, build_s=build_s, catalog=catalog, phases=phases,
                     start_usd=start_usd, greedy_usd=greedy_usd, bound_of=bound_of, lns=lns)
    out.lower_bound_usd = min(out.lower_bound_usd, out.total_cost_usd)
    say("re-checking the plan")
    check_plan(out, repredict=repredict)
    return out


def _within_budget(plan: PlanFile, jobs: list, model: PlanModel, free: SolveResult, solver: SolverName,
                   time_limit_s: float | None, gap_rel: float, say: Progress) -> SolveResult:
    """Returns the cheapest plan within the budget, given ``free``, the best plan without it.

    The budget only bounds the objective, so the free model decides it: below the proven bound,
    InfeasibleError at once (no second solve); between the bound and ``free``'s plan, one more
    solve of the same model, warm-started from ``free``, with a gap narrow enough that it ends with
    a plan within the budget or a bound above it. Every message quotes the best plan and the bound
    (never a plan dearer than the one a run without the budget returns).
    """
    budget = float(plan.budget_usd or 0.0)
    bound, best = _bound_usd(free, jobs), float(free.objective or 0.0)
    if bound > budget + COST_EPS_USD:
        raise InfeasibleError(f"budget ${budget:,.2f} too small by {_short(bound - budget)}: {_cheapest(free, bound)}")
    say("solving again to decide the budget")
    # stops once (best - bound) <= gap * best: at the free plan that means a bound above the budget
    gap = min(gap_rel, 0.5 * (best - budget) / best) if best > 0 else gap_rel
    res = solve_model(model, solver, time_limit_s, max(gap, 1e-9), free.values,
                      on_progress=progress_of(say) if say is not _silent else None, allow_none=True)
    if not res.has_solution or res.objective is None:
        res = free
    if res.objective is not None and res.objective <= budget + COST_EPS_USD:
        return res
    bound, best = _bound_usd(res, jobs), float(res.objective or best)
    if bound > budget + COST_EPS_USD:
        raise InfeasibleError(f"budget ${budget:,.2f} too small by {_short(bound - budget)}: {_cheapest(res, bound)}")
    raise InfeasibleError([f"budget ${budget:,.2f}: undecided in the time limit ({time_limit_s} s): the best plan found "
                           f"costs ${best:,.2f}, above the budget, and no plan costs less than ${bound:,.2f}, below it",
                           "raise --time-limit to decide, or the budget to the plan found"])


def _short(usd: float) -> str:
    """Returns a shortfall in USD, with cents, or two significant digits below a cent."""
    return f"${usd:,.2f}" if usd >= 0.01 else f"${usd:.2g}"


def _bound_usd(res: SolveResult, jobs: list) -> float:
    """Returns the proven lower bound (USD) of a cost solve: the solver's or the quota-free one."""
    bound = max(res.best_bound if res.best_bound is not None else 0.0, quota_free_bound_usd(jobs))
    return min(bound, float(res.objective or 0.0))


def _cheapest(res: SolveResult, bound: float) -> str:
    """Returns how a message quotes the best plan of ``res``: exact when proven, else with its bound."""
    if res.status is Status.OPTIMAL or (res.objective or 0.0) - bound <= COST_EPS_USD:
        return f"the cheapest plan costs ${res.objective:,.2f}"
    return f"the best plan found costs ${res.objective:,.2f} and none costs less than ${bound:,.2f}"


def plan_from_file(path: str | Path, extra_catalogs: tuple[str, ...] = (), confidence: float | None = None,
                   engine: str | None = None, **kw: Any) -> PlanResult:
    """Loads ``path`` (and its catalog files, relative to it) and returns ``run_plan``'s result.

    ``confidence`` (when given) replaces the file's ``confidence``.
    """
    p = Path(path)
    plan = load_plan(p)
    if confidence is not None:
        plan = plan.model_copy(update={"confidence": confidence})
    if engine is not None:  # --engine: the default of jobs without their own 'engine' key
        plan = plan.model_copy(update={"jobs": [j if j.engine is not None else j.model_copy(update={"engine": engine})
                                                for j in plan.jobs]})
    files = [str((p.parent / c) if not Path(c).is_absolute() else Path(c)) for c in plan.catalog]
    catalog = load_catalog(files + list(extra_catalogs))
    return run_plan(plan, catalog, base=p.parent, **kw)
