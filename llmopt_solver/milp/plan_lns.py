"""MILP-based large-neighbourhood search (LNS) on a feasible plan: re-solve a few interacting jobs
at a time with every other job's runs fixed, keep the change only if the cost falls.

Reads the builder's data (``PlanData``) and a plan as values keyed like ``build_plan_milp``'s
variables (e.g. the searched greedy plan of ``plan_greedy``); returns values of the same kind,
never dearer. The work is bounded by counts (neighbourhoods, options per job, branch-and-bound
nodes per sub-MILP), not by the clock, so the plan does not depend on the machine's load; the
time limit is only a safety net. CBC (through pulp) or HiGHS (through highspy) solve the
sub-MILPs from the same warm start: the current plan restricted to the neighbourhood.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from llmopt_solver.milp.plan_greedy import Greedy, values_cost_usd
from llmopt_solver.milp.plan_model import OptionData, PlanData, QuotaKey, build_plan_milp
from llmopt_solver.milp.solver import SolveResult, SolverName

Cell = tuple[QuotaKey, int]
Values = dict[Any, float]
# solve(model, solver, time limit s, gap, start, allow_none, node_limit): ``plan.solving.solve_model``
SubSolve = Callable[..., SolveResult]
COST_TOL_REL = 1e-9  # a neighbourhood's plan must be cheaper by more than this fraction to be kept
CAP_TOL = 1e-7  # tolerance (batches) when re-checking a sub-MILP's capacity rows


@dataclass(frozen=True)
class LnsBudget:
    """The LNS's deterministic work limits, and a wall-clock safety net."""

    # Measured on random 1,000- and 10,000-job portfolios (benchmarks/plan_portfolio.py): 6 jobs
    # per neighbourhood left half the improving moves of 10 unfound at 10,000 jobs; 100 nodes and
    # 8 options per job found no more than 20 nodes and 6 options, at twice the time.
    neighbourhoods: int = 30  # sub-MILPs solved at most
    max_jobs: int = 8  # jobs per neighbourhood (the seed and the jobs in its way)
    max_options: int = 6  # options per job in a sub-MILP (cheapest alone, plus those the plan uses)
    node_limit: int = 20  # branch-and-bound nodes per sub-MILP
    time_limit_s: float | None = None  # safety net only: stops starting neighbourhoods after it


@dataclass
class LnsStats:
    """What the LNS did: neighbourhoods solved and improved, the plan's cost before and after (USD)."""

    solver: str = "cbc"  # what solved the neighbourhoods
    tried: int = 0
    improved: int = 0
    start_usd: float = 0.0
    end_usd: float = 0.0
    wall_s: float = 0.0
    stopped_by_time: bool = False


def _cells(data: PlanData, od: OptionData) -> list[Cell]:
    return [(q, t) for t, _ in od.slots for q in od.quota if q in data.quotas]


class _State:
    """The current plan: values per job, cost per job, quota use per cell and who holds each cell."""

    def __init__(self, data: PlanData, values: Values) -> None:
        self.data = data
        self.keys: dict[int, dict[Any, float]] = {j: {} for j in range(len(data.num_requests))}
        for key, v in values.items():
            if v:
                self.keys[data.options[key[1]].job][key] = v
        self.cost = {j: self.job_cost(kv) for j, kv in self.keys.items()}
        self.use: dict[Cell, float] = {}
        self.holders: dict[Cell, set[int]] = {}
        for j in self.keys:
            self.occupy(j, 1)

    def job_cost(self, kv: dict[Any, float]) -> float:
        return values_cost_usd(self.data, kv)

    def job_use(self, j: int) -> dict[Cell, float]:
        out: dict[Cell, float] = {}
        for key, v in self.keys[j].items():
            if key[0] == "n" and v > 0:
                od = self.data.options[key[1]]
                for q, w in od.quota.items():
                    if q in self.data.quotas:
                        out[(q, key[2])] = out.get((q, key[2]), 0.0) + w * v
        return out

    def occupy(self, j: int, sign: int) -> None:
        for cell, u in self.job_use(j).items():
            self.use[cell] = self.use.get(cell, 0.0) + sign * u
            (self.holders.setdefault(cell, set()).add if sign > 0 else self.holders[cell].discard)(j)

    def values(self) -> Values:
        return {k: v for kv in self.keys.values() for k, v in kv.items()}


def lns(data: PlanData, values: Values, solver: SolverName, solve: SubSolve,
        budget: LnsBudget = LnsBudget()) -> tuple[Values, LnsStats]:
    """Returns ``values`` improved by MILP neighbourhood moves (module docstring), and what it did.

    Seeds: jobs dearer than their cheapest option alone (a quota kept them off it), most regret
    first; each seed's neighbourhood is the seed and the jobs that hold the quota cells its
    cheaper options need (``neighbourhood``). Passes over the seeds repeat while the budget lasts
    and a pass improved the plan.
    """
    t0 = time.perf_counter()
    st = _State(data, values)
    stats = LnsStats(solver=solver, start_usd=sum(st.cost.values()))
    g = Greedy(data)  # its usable options per job, cheapest alone first, and their cost alone (USD)
    by_job, alone = g.by_job, g.alone
    tried: set[frozenset[int]] = set()
    while stats.tried < budget.neighbourhoods:
        regret = {j: st.cost[j] - alone[by_job[j][0]] for j in st.keys}
        seeds = sorted((j for j, r in regret.items() if r > COST_TOL_REL * max(1.0, st.cost[j])),
                       key=lambda j: (-regret[j], j))
        improved_pass = False
        for j in seeds:
            if stats.tried >= budget.neighbourhoods:
                break
            if budget.time_limit_s is not None and time.perf_counter() - t0 > budget.time_limit_s:
                stats.stopped_by_time = True
                break
            group = neighbourhood(st, by_job, alone, j, budget.max_jobs)
            if group is None or frozenset(group) in tried:
                continue
            tried.add(frozenset(group))
            stats.tried += 1
            left = None if budget.time_limit_s is None else max(0.1, budget.time_limit_s - (time.perf_counter() - t0))
            if _move(st, by_job, alone, group, regret, solver, solve, budget, left):
                stats.improved += 1
                improved_pass = True
                tried = {g for g in tried if g.isdisjoint(group)}
        if not improved_pass or stats.stopped_by_time:
            break
    stats.end_usd = sum(st.cost.values())
    stats.wall_s = time.perf_counter() - t0
    return st.values(), stats


def neighbourhood(st: _State, by_job: dict[int, list[int]], alone: dict[int, float], j: int,
                  max_jobs: int) -> list[int] | None:
    """Returns job ``j`` and up to ``max_jobs - 1`` jobs holding the quota cells (quota, slot) of
    ``j``'s options cheaper alone than ``j`` pays now, most cells shared first; None if none."""
    share: dict[int, int] = {}
    for o in by_job[j]:
        if alone[o] >= st.cost[j]:
            break
        for cell in _cells(st.data, st.data.options[o]):
            for i in st.holders.get(cell, ()):
                if i != j:
                    share[i] = share.get(i, 0) + 1
    if not share:
        return None
    return [j] + sorted(share, key=lambda i: (-share[i], i))[: max_jobs - 1]


def sub_problem(st: _State, by_job: dict[int, list[int]], alone: dict[int, float], group: list[int],
                slack_usd: float, max_options: int) -> tuple[PlanData, list[int]]:
    """Returns the neighbourhood's MILP data and, per sub-option, its option in the full data.

    With N the neighbourhood's jobs and F = J \\ N the jobs kept as they are, the sub-MILP is the
    plan MILP of ``plan_model`` over N only, with per-slot quota room
        Q'_qt = Q_q - sum_{j in F} sum_{o in O_j^T} w_oq n*_ot          (n*: the current plan)
    and each job's options cut to O'_j: the ``max_options`` cheapest alone whose cost alone
    exceeds the job's current cost C*_j by less than ``slack_usd`` (the neighbourhood's total
    regret, the most any move can save), plus every option the current plan uses, so the current
    plan restricted to N is feasible (the warm start). Its objective is
        min sum_{j in N} sum_{o in O'_j} p_o (sigma_j K_o + tau_o m_o)
    and the full plan's cost changes by exactly (sub-MILP cost - sum_{j in N} C*_j). No budget row:
    a move is kept only if the cost falls, so a plan within the budget stays within it.
    """
    data = st.data
    opts: list[OptionData] = []
    index: list[int] = []
    for pos, j in enumerate(group):
        used = {k[1] for k in st.keys[j]}
        keep = [o for o in by_job[j] if alone[o] < st.cost[j] + slack_usd][:max_options]
        for o in sorted(set(keep) | used):
            opts.append(replace(data.options[o], job=pos))
            index.append(o)
    mine: dict[Cell, float] = {}
    for j in group:
        for cell, u in st.job_use(j).items():
            mine[cell] = mine.get(cell, 0.0) + u
    room: dict[Cell, int] = {}
    for od in opts:
        for cell in _cells(data, od):
            if cell not in room:
                fixed = st.use.get(cell, 0.0) - mine.get(cell, 0.0)
                room[cell] = max(0, int(round(data.quotas[cell[0]] - fixed)))
    sub = PlanData(num_requests=tuple(data.num_requests[j] for j in group), options=tuple(opts),
                   quotas=data.quotas, n_slots=data.n_slots, slot_h=data.slot_h, room=room)
    return sub, index


def _move(st: _State, by_job: dict[int, list[int]], alone: dict[int, float], group: list[int],
          regret: dict[int, float], solver: SolverName, solve: SubSolve, budget: LnsBudget,
          time_limit_s: float | None) -> bool:
    """Solves the neighbourhood ``group``'s sub-MILP; applies it if valid and cheaper. Returns True if applied."""
    slack = sum(max(0.0, regret[j]) for j in group)
    sub, index = sub_problem(st, by_job, alone, group, slack, budget.max_options)
    local = {o: s for s, o in enumerate(index)}
    start = {(k[0], local[k[1]], *k[2:]): v for j in group for k, v in st.keys[j].items()}
    model = build_plan_milp(sub, "cost")
    res = solve(model, solver, time_limit_s, 0.0, start, allow_none=True, node_limit=budget.node_limit)
    if not res.has_solution:
        return False
    new = clean_values(sub, res.values)
    if new is None:
        return False
    before = sum(st.cost[j] for j in group)
    per_job: dict[int, dict[Any, float]] = {j: {} for j in group}
    for k, v in new.items():
        per_job[group[sub.options[k[1]].job]][(k[0], index[k[1]], *k[2:])] = v
    after = sum(st.job_cost(kv) for kv in per_job.values())
    if after >= before * (1 - COST_TOL_REL):
        return False
    for j in group:
        st.occupy(j, -1)
        st.keys[j] = per_job[j]
        st.cost[j] = st.job_cost(per_job[j])
        st.occupy(j, 1)
    return True


def clean_values(sub: PlanData, values: Values) -> Values | None:
    """Returns a sub-MILP solution with integral counts and starts s_ot = max(0, n_ot - n_o,t-1)
    (no run started twice), or None if it breaks a row of the model: requests covered, capacity,
    quota room (the solver's tolerances never reach the plan)."""
    out: Values = {}
    covered = [0] * len(sub.num_requests)
    room_use: dict[Cell, int] = {}
    for o, od in enumerate(sub.options):
        m = int(round(values.get(("m", o), 0.0)))
        if m <= 0:
            continue
        out[("m", o)] = m
        covered[od.job] += m * od.requests_per_batch
        if not od.timed:
            k = int(round(values.get(("k", o), 0.0)))
            if m > min(od.max_batches, od.cap_batches) * k:
                return None
            out[("k", o)] = k
            continue
        cap, prev = 0.0, 0
        per_start = od.start_batches
        for t, length in od.slots:
            n = int(round(values.get(("n", o, t), 0.0)))
            s = max(0, n - prev)
            prev = n
            if n:
                out[("n", o, t)] = n
                for q, w in od.quota.items():
                    if q in sub.quotas:
                        room_use[(q, t)] = room_use.get((q, t), 0) + w * n
            if s:
                out[("s", o, t)] = s
            cap += n * length / od.batch_h - per_start * s
        if m > cap + CAP_TOL:
            return None
    if any(c < n for c, n in zip(covered, sub.num_requests, strict=True)):
        return None
    if any(u > sub.quota_room(q, t) for (q, t), u in room_use.items()):
        return None
    return out
