"""A batch plan end to end: options per job, one MILP, the plan's assignments, a plain re-check.

The MILP (``plan_milp``) gives instance counts per option and slot; ``realize`` turns them into
runs: untimed options run k instances from the release, timed ones are stacked by level (an
instance runs while the slot's count is at least its level), batches are spread evenly over the
runs within each run's capacity, and requests are handed out run by run. Every run is billed from
its start to its last batch (start-up + batches x batch time), so the plan's cost equals the
MILP's cost expression. The lower bound is CBC's proven bound (or, for the cost objective, the
quota-free bound of ``quota_free_bound_usd`` if larger), over the options kept by pruning.

Also explains infeasible plans: which jobs and which constraints (window, quota, budget) cannot
be met, and by how much.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from llmopt_solver.catalog.loader import Catalog, load_catalog
from llmopt_solver.errors import InfeasibleError, SolverError
from llmopt_solver.diagnose import diagnose
from llmopt_solver.optimize import recheck
from llmopt_solver.selection import resolve_names
from llmopt_solver.plan.input import PlanFile, load_plan
from llmopt_solver.milp.plan_model import OptionData, PlanData, PlanModel, QuotaKey, build_plan_milp, greedy_start, option_limit
from llmopt_solver.plan.options import FIT_EPS, JobOptions, batches_in, build_job_options
from llmopt_solver.milp.solver import SolveResult, SolverName, Status, solve_problem

TIME_EPS_H = 1e-6  # tolerance of the re-check on times (hours): 3.6 ms
COST_EPS_USD = 1e-6
# One round of root cuts: with the warm start the LP bound is usually within the target gap after
# it, while further rounds cost ~1 s each on 100 jobs and barely move the bound (measured).
CBC_OPTIONS = ("passCuts 1",)

Progress = Callable[[str], None]


@dataclass
class Assignment:
    """``count`` identical instances of one option of one job over [start_h, end_h] (billed)."""

    job: int
    option: int  # row of the job's pruned table
    count: int
    start_h: float
    end_h: float
    batches: int  # per instance
    requests: int

    def cost_usd(self, price_usd_h: float) -> float:
        return self.count * (self.end_h - self.start_h) * price_usd_h


@dataclass
class PlanResult:
    """A solved plan: assignments, bound, solver figures."""

    plan: PlanFile
    jobs: list[JobOptions]
    assignments: list[Assignment]
    solve: SolveResult
    lower_bound_usd: float
    model_size: dict[str, int]
    build_s: float
    catalog: Catalog
    phases: list[SolveResult] = field(default_factory=list)

    def price(self, a: Assignment) -> float:
        return float(self.jobs[a.job].price_usd_h[a.option])

    def cost(self, a: Assignment) -> float:
        return a.cost_usd(self.price(a))

    @property
    def status(self) -> Status:
        return self.solve.status

    @property
    def total_cost_usd(self) -> float:
        return sum(self.cost(a) for a in self.assignments)

    @property
    def makespan_h(self) -> float:
        return max((a.end_h for a in self.assignments), default=0.0)

    @property
    def gap(self) -> float:
        c = self.total_cost_usd
        return max(0.0, (c - self.lower_bound_usd) / c) if c > 0 else 0.0

    def job_assignments(self, j: int) -> list[Assignment]:
        return [a for a in self.assignments if a.job == j]

    def n_slots(self) -> int:
        return n_slots(self.plan)

    def usage(self) -> list[dict[str, Any]]:
        """Returns per slot: running instances per type and GPUs per GPU type (nonzero only)."""
        h = self.plan.slot_h
        out = []
        for t in range(self.n_slots()):
            lo, hi = t * h, (t + 1) * h
            inst: dict[str, int] = defaultdict(int)
            gpus: dict[str, int] = defaultdict(int)
            for a in self.assignments:
                if a.start_h < hi - TIME_EPS_H and a.end_h > lo + TIME_EPS_H:
                    x = self.jobs[a.job].table.instances[a.option]
                    inst[x.name] += a.count
                    gpus[x.gpu] += a.count * x.gpu_count
            out.append({"slot": t, "start_h": lo, "end_h": hi, "instances": dict(sorted(inst.items())),
                        "gpus": dict(sorted(gpus.items()))})
        return out


def n_slots(plan: PlanFile) -> int:
    """Returns the number of slots of length slot_h that cover [0, latest deadline]."""
    return max(1, math.ceil(plan.horizon_h / plan.slot_h - FIT_EPS))


def window_slots(release_h: float, deadline_h: float, slot_h: float) -> tuple[tuple[int, float], ...]:
    """Returns (slot, hours of the slot inside [release_h, deadline_h]) for every slot it meets."""
    first = int(math.floor(release_h / slot_h + FIT_EPS))
    last = max(first, math.ceil(deadline_h / slot_h - FIT_EPS) - 1)
    out = []
    for t in range(first, last + 1):
        length = min((t + 1) * slot_h, deadline_h) - max(t * slot_h, release_h)
        if length > TIME_EPS_H:
            out.append((t, length))
    return tuple(out)


def canonical_quotas(catalog: Catalog, plan: PlanFile) -> PlanFile:
    """Returns ``plan`` with quota names as the catalog spells them; InputError for unknown names."""
    canon_i = resolve_names(plan.quotas.instances, catalog.instance, "quotas.instances")
    canon_g = resolve_names(plan.quotas.gpus, catalog.gpu, "quotas.gpus")
    inst = {canon_i[name]: q for name, q in plan.quotas.instances.items()}
    gpus = {canon_g[name]: q for name, q in plan.quotas.gpus.items()}
    quotas = plan.quotas.model_copy(update={"instances": inst, "gpus": gpus})
    return plan.model_copy(update={"quotas": quotas})


def quota_limits(plan: PlanFile) -> dict[QuotaKey, int]:
    out: dict[QuotaKey, int] = {("instance", k): v for k, v in plan.quotas.instances.items()}
    out.update({("gpu", k): v for k, v in plan.quotas.gpus.items()})
    return out


def plan_data(plan: PlanFile, jobs: list[JobOptions], all_timed: bool = False,
              only: list[int] | None = None, budget: bool = True) -> tuple[PlanData, list[tuple[int, int]]]:
    """Returns the MILP data and, per MILP option, its (job, row of the job's pruned table)."""
    opts: list[OptionData] = []
    index: list[tuple[int, int]] = []
    sel = list(range(len(jobs))) if only is None else only
    for pos, j in enumerate(sel):
        jo = jobs[j]
        caps = jo.batches_per_instance()
        slots = window_slots(jo.job.release_h, jo.job.deadline_h, plan.slot_h)
        for r in range(len(jo)):
            quota = jo.quota[r]
            opts.append(OptionData(
                job=pos, price_usd_h=float(jo.price_usd_h[r]), batch_h=float(jo.batch_s[r]) / 3600.0,
                startup_h=jo.startup_s / 3600.0, requests_per_batch=int(jo.requests_per_batch[r]),
                max_batches=int(jo.max_batches[r]), cap_batches=int(caps[r]), quota=quota,
                slots=slots if (quota or all_timed) else ()))
            index.append((j, r))
    data = PlanData(num_requests=tuple(jobs[j].job.num_requests for j in sel), options=tuple(opts),
                    quotas=quota_limits(plan), n_slots=n_slots(plan), slot_h=plan.slot_h,
                    budget_usd=plan.budget_usd if budget else None)
    return data, index


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


def _tracks(jo: JobOptions, od: OptionData, o: int, values: dict[Any, float], slot_h: float) -> list[tuple[float, float]]:
    """Returns the runs (start_h, latest end_h) of option ``o``'s instances (stacked by level)."""
    r, d = jo.job.release_h, jo.job.deadline_h
    if not od.timed:
        return [(r, d)] * int(round(values.get(("k", o), 0.0)))
    prof = [(t, int(round(values.get(("n", o, t), 0.0)))) for t, _ in od.slots]
    runs = []
    top = max((c for _, c in prof), default=0)
    for level in range(1, top + 1):
        start = None
        for pos, (t, c) in enumerate(prof + [(None, 0)]):
            if c >= level and start is None:
                start = pos
            elif c < level and start is not None:
                t0, t1 = prof[start][0], prof[pos - 1][0]
                runs.append((max(t0 * slot_h, r), min((t1 + 1) * slot_h, d)))
                start = None
    return sorted(runs)


def realize(plan: PlanFile, jobs: list[JobOptions], data: PlanData, index: list[tuple[int, int]],
            values: dict[Any, float]) -> list[Assignment]:
    """Returns the assignments of a MILP solution: runs of instances, batches and requests per run."""
    per_job: dict[int, list[tuple[float, int, float, int]]] = defaultdict(list)  # (start, option, end, batches)
    for o, od in enumerate(data.options):
        m = int(round(values.get(("m", o), 0.0)))
        if m <= 0:
            continue
        j, r = index[o]
        jo = jobs[j]
        runs = _tracks(jo, od, o, values, plan.slot_h)
        caps = [batches_in((end - start) * 3600.0, jo.startup_s, float(jo.batch_s[r])) for start, end in runs]
        if sum(caps) < m:
            raise SolverError(f"re-check failed: {jo.label} on {jo.table.instances[r].name}: runs carry "
                              f"{sum(caps)} batches < {m} planned.")
        give = [0] * len(runs)
        left = m
        while left:  # spread evenly (earliest runs first), each run within its capacity
            active = [i for i, c in enumerate(caps) if give[i] < c]
            share = max(1, left // len(active))
            for i in active:
                add = min(share, caps[i] - give[i], left)
                give[i] += add
                left -= add
                if not left:
                    break
        for (start, _), g in zip(runs, give):
            if g:
                per_job[j].append((start, r, 0.0, g))
    out: list[Assignment] = []
    for j in sorted(per_job):
        jo = jobs[j]
        left = jo.job.num_requests
        groups: dict[tuple[int, float, int], list[int]] = defaultdict(list)
        for start, r, _, g in sorted(per_job[j], key=lambda x: (x[0], x[1], -x[3])):
            b = int(jo.requests_per_batch[r])
            req = min(left, g * b)
            if req <= 0:
                continue
            left -= req
            batches = -(-req // b)
            groups[(r, start, batches)].append(req)
        if left > 0:
            raise SolverError(f"re-check failed: {jo.label}: {left} requests not covered by the solution.")
        for (r, start, batches), reqs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0], -kv[0][2])):
            end = start + (jo.startup_s + batches * float(jo.batch_s[r])) / 3600.0
            out.append(Assignment(job=j, option=r, count=len(reqs), start_h=start, end_h=end,
                                  batches=batches, requests=sum(reqs)))
    return out


def check_plan(res: PlanResult, repredict: bool = True) -> None:
    """Re-checks a plan in plain Python; raises SolverError naming the first violation.

    Requests covered, release and deadline, run length = start-up + batches x batch time, quotas
    in every slot, budget, and (``repredict``) each option's batch time against the predictor.
    """
    plan, jobs = res.plan, res.jobs
    for j, jo in enumerate(jobs):
        got = sum(a.requests for a in res.job_assignments(j))
        if got != jo.job.num_requests:
            raise SolverError(f"re-check failed: {jo.label}: {got} requests planned of {jo.job.num_requests}.")
    seen: set[tuple[int, int]] = set()
    for a in res.assignments:
        jo = jobs[a.job]
        ts = float(jo.batch_s[a.option])
        b = int(jo.requests_per_batch[a.option])
        if a.start_h < jo.job.release_h - TIME_EPS_H or a.end_h > jo.job.deadline_h + TIME_EPS_H:
            raise SolverError(f"re-check failed: {jo.label}: run {a.start_h:.4f}-{a.end_h:.4f} h outside its window.")
        if abs((a.end_h - a.start_h) * 3600.0 - (jo.startup_s + a.batches * ts)) > 1e-6 * max(1.0, a.end_h * 3600):
            raise SolverError(f"re-check failed: {jo.label}: run length is not start-up + batches x batch time.")
        if a.requests > a.count * a.batches * b or a.requests <= a.count * (a.batches - 1) * b:
            raise SolverError(f"re-check failed: {jo.label}: {a.requests} requests do not match {a.count} x {a.batches} batches of {b}.")
        if repredict and (a.job, a.option) not in seen:
            seen.add((a.job, a.option))
            recheck(res.catalog, jo.table, a.option)
    limits = quota_limits(plan)
    for row in res.usage():
        for name, c in row["instances"].items():
            q = limits.get(("instance", name))
            if q is not None and c > q:
                raise SolverError(f"re-check failed: quota {name}: {c} running in slot {row['slot']} > {q}.")
        for name, c in row["gpus"].items():
            q = limits.get(("gpu", name))
            if q is not None and c > q:
                raise SolverError(f"re-check failed: GPU quota {name}: {c} GPUs in slot {row['slot']} > {q}.")
    if plan.budget_usd is not None and res.total_cost_usd > plan.budget_usd + COST_EPS_USD:
        raise SolverError(f"re-check failed: cost ${res.total_cost_usd:.2f} exceeds the budget ${plan.budget_usd:.2f}.")


def _solve(model: PlanModel, solver: SolverName, time_limit_s: float | None, gap_rel: float,
           start: dict[Any, float] | None = None) -> SolveResult:
    if start is not None:
        for key, v in model.variables.items():
            v.setInitialValue(start.get(key, 0.0))
    res = solve_problem(model.prob, model.variables, solver=solver, time_limit_s=time_limit_s,
                        gap_rel=gap_rel, read_bound=True, warm_start=start is not None,
                        cbc_options=CBC_OPTIONS if gap_rel > 0 else ())
    if res.status is Status.ERROR:
        raise SolverError(f"solver: {solver} failed or hit the time limit ({time_limit_s} s) without a plan; "
                          "raise --time-limit or --gap.")
    return res


def _value(model: PlanModel, values: dict[Any, float]) -> float:
    """Returns the model's cost (USD) at ``values`` (keyed like the model's variables)."""
    key_of = {v.name: k for k, v in model.variables.items()}
    return float(sum(c * values.get(key_of[v.name], 0.0) for v, c in model.cost.items()))


def _size(model: PlanModel) -> dict[str, int]:
    return {"variables": model.n_variables, "integer_variables": model.n_integer,
            "constraints": model.n_constraints}


def run_plan(plan: PlanFile, catalog: Catalog, base: Path | None = None, solver: SolverName = "cbc",
             time_limit_s: float | None = None, gap_rel: float = 0.005, progress: Progress | None = None,
             repredict: bool = True) -> PlanResult:
    """Returns the cheapest (or earliest-finishing) plan, re-checked; InfeasibleError explains failure."""
    say = progress or (lambda msg: None)
    t0 = time.perf_counter()
    plan = canonical_quotas(catalog, plan)
    total = len(plan.jobs)
    jobs = build_job_options(catalog, plan, base, on_job=lambda j: say(f"predicting job {j + 1}/{total}"))
    if any(len(jo) == 0 for jo in jobs):
        raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
    makespan = plan.objective == "makespan"
    data, index = plan_data(plan, jobs, all_timed=makespan)
    usable = {od.job for od in data.options if option_limit(od, data.quotas) > 0 and od.cap_batches > 0}
    if len(usable) < len(jobs):
        raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
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
        r1 = _solve(m1, solver, time_limit_s, min(gap_rel, 0.5 / max(1, data.n_slots)), start1)
        if r1.status is Status.INFEASIBLE:
            raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
        phases.append(r1)
        last_slot = sum(1 for t in range(data.n_slots) if r1.values.get(("y", t), 0.0) > 0.5)
        t1 = time.perf_counter()
        model = build_plan_milp(data, "cost", last_slot=last_slot)
        build_s += time.perf_counter() - t1
    else:
        model = build_plan_milp(data, "cost")
        build_s = time.perf_counter() - t0
    # warm start: the makespan phase's plan (feasible here), or a greedy plan built job by job
    start = {k: v for k, v in phases[0].values.items() if k[0] != "y"} if makespan else greedy_start(data)
    if start is not None and plan.budget_usd is not None and _value(model, start) > plan.budget_usd:
        start = None
    say(f"solving the MILP ({model.n_variables} variables, {model.n_constraints} constraints)")
    res = _solve(model, solver, time_limit_s, gap_rel, start)
    if res.status is Status.INFEASIBLE:
        raise InfeasibleError(explain_infeasible(plan, jobs, solver, time_limit_s))
    phases.append(res)
    assignments = realize(plan, jobs, data, index, res.values)
    bound = res.best_bound if res.best_bound is not None else 0.0
    if not makespan:
        bound = max(bound, quota_free_bound_usd(jobs))
    out = PlanResult(plan=plan, jobs=jobs, assignments=assignments, solve=res, lower_bound_usd=bound,
                     model_size=_size(model), build_s=build_s, catalog=catalog, phases=phases)
    out.lower_bound_usd = min(out.lower_bound_usd, out.total_cost_usd)
    say("re-checking the plan")
    check_plan(out, repredict=repredict)
    return out


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


# --- infeasibility -------------------------------------------------------------------------------


def _no_option_reason(jo: JobOptions) -> str:
    """Returns why a job has no usable option: nothing fits at all, or not one batch in its window."""
    t = jo.full
    ok = t.feasible & np.isfinite(t.hourly_cost_usd) & np.isfinite(t.planning_total_s)
    if not ok.any():
        return f"{jo.label}: {diagnose(t).message}"
    fastest = float(np.min(t.planning_total_s[ok]))
    need_h = (jo.startup_s + fastest) / 3600.0
    return (f"{jo.label}: window {jo.window_h:g} h (release {jo.job.release_h:g} h, deadline {jo.job.deadline_h:g} h) "
            f"too tight for start-up ({jo.startup_s / 60:.1f} min) plus one batch ({fastest:.3g} s): needs >= {need_h:.3g} h")


def _needed_window_h(plan: PlanFile, jo: JobOptions) -> float | None:
    """Returns a lower bound on the window job ``jo`` needs alone with every quota to itself (h).

    Each option runs at its own quota limit at once (shared GPU quotas counted for each option),
    so the capacity is overestimated and the time underestimated. None if some option is unlimited.
    """
    limits = quota_limits(plan)
    rows = []
    for r in range(len(jo)):
        od = OptionData(job=0, price_usd_h=0, batch_h=1, startup_h=0, requests_per_batch=1,
                        max_batches=10**12, cap_batches=1, quota=jo.quota[r])
        u = option_limit(od, limits)
        if not jo.quota[r]:
            return None
        rows.append((u, int(jo.requests_per_batch[r]), float(jo.batch_s[r])))

    def capacity(window_h: float) -> int:
        return sum(u * b * batches_in(window_h * 3600, jo.startup_s, ts) for u, b, ts in rows)

    lo, hi = 0.0, 1.0
    while capacity(hi) < jo.job.num_requests:
        hi *= 2
        if hi > 1e6:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if capacity(mid) >= jo.job.num_requests else (mid, hi)
    return hi


def explain_infeasible(plan: PlanFile, jobs: list[JobOptions], solver: SolverName,
                       time_limit_s: float | None) -> str:
    """Returns one line naming the jobs and constraints that cannot be met, and by how much."""
    reasons = []
    for jo in jobs:
        if len(jo) == 0:
            reasons.append(_no_option_reason(jo))
            continue
        need = _needed_window_h(plan, jo)
        if need is not None and need > jo.window_h * (1 + FIT_EPS):
            what = "quota is 0 for all its options" if math.isinf(need) else f"needs >= {need:.2f} h"
            reasons.append(f"{jo.label}: window {jo.window_h:g} h (deadline {jo.job.deadline_h:g} h) too tight even "
                           f"with the whole quota: {what}")
    if reasons:
        return "; ".join(reasons)
    if plan.budget_usd is not None:
        data, _ = plan_data(plan, jobs, budget=False)
        res = _solve(build_plan_milp(data, "cost"), solver, time_limit_s, 1e-4)
        if res.has_solution and res.objective is not None:
            lb = res.best_bound if res.best_bound is not None else res.objective
            if lb > plan.budget_usd:
                return (f"budget ${plan.budget_usd:,.2f} too small by ${lb - plan.budget_usd:,.2f}: the cheapest plan "
                        f"costs ${res.objective:,.2f}" + ("" if res.status is Status.OPTIMAL else f" (proven >= ${lb:,.2f})"))
            return (f"budget ${plan.budget_usd:,.2f}: the cheapest plan found costs ${res.objective:,.2f} "
                    f"(proven >= ${lb:,.2f}); the solver found none within the budget in time")
    return _explain_quotas(plan, jobs, solver, time_limit_s)


def _explain_quotas(plan: PlanFile, jobs: list[JobOptions], solver: SolverName, time_limit_s: float | None) -> str:
    data, index = plan_data(plan, jobs, budget=False)
    model = build_plan_milp(data, "elastic")
    res = _solve(model, solver, time_limit_s, 1e-4)
    if not res.has_solution:
        return "no plan meets the deadlines within the quotas (the solver found no relaxation either)"
    short: dict[QuotaKey, list[tuple[int, float]]] = defaultdict(list)
    for key, v in res.values.items():
        if key[0] == "e" and v > 1e-6:
            short[key[1]].append((key[2], v))
    limits = quota_limits(plan)
    parts = []
    for q, rows in sorted(short.items()):
        slots = sorted(t for t, _ in rows)
        excess = max(v for _, v in rows)
        users = sorted({jobs[index[o][0]].job.name for o, od in enumerate(data.options)
                        if q in od.quota and any(res.values.get(("n", o, t), 0) > 0.5 for t in slots)})
        unit = "instances" if q[0] == "instance" else "GPUs"
        parts.append(f"quota {q[1]} ({limits[q]} {unit}) too small by {math.ceil(excess - 1e-6)} {unit} in hours "
                     f"{slots[0] * plan.slot_h:g}-{(slots[-1] + 1) * plan.slot_h:g} for jobs {', '.join(users)}")
    if not parts:
        return "no plan meets every deadline within the quotas"
    return "the jobs fit alone but not together: " + "; ".join(parts) + " (raise the quota or loosen deadlines)"
