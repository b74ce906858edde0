"""Feasible plans without a solver: a greedy plan built job by job, then a ruin-and-recreate search.

Reads the builder's data (``PlanData``); returns values keyed like ``build_plan_milp``'s variables,
so the plan is a warm start for CBC or HiGHS. Each job gets one option and one run: untimed options
need ceil(B_o / u_o) instances; a timed option gets k instances started together in some slot and
kept for the fewest slots whose capacity (as in the MILP) covers the job, where every quota has
room. A job's cost is then p_o (sigma_j k + tau_o B_o), whatever the slot.

The search (``improve``): a job that pays more than its cheapest option alone was blocked by a
quota. It is removed with every job that holds one of the quotas its cheaper options need during
its window; it is placed first, then the others; the change is kept only if the total cost falls
strictly. Deterministic (a fixed number of passes, no clock), so plans are reproducible.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from llmopt_solver.milp.plan_model import OptionData, PlanData, QuotaKey, option_limit
from llmopt_solver.milp.plan_split import COST_TOL_REL, Placement, Usage, split_pass


def _alone_usd(od: OptionData) -> float:
    """Returns the cost (USD) of option ``od`` running the whole job with the fewest instances."""
    u = min(od.max_batches, od.cap_batches)
    return od.run_cost_usd(-(-od.max_batches // u), od.max_batches)


class Greedy:
    """The plan's options per job, the quota usage of placed runs, and placement of one job."""

    def __init__(self, data: PlanData, max_extra_instances: int = 24) -> None:
        self.data = data
        self.max_extra = max_extra_instances
        self.by_job: dict[int, list[int]] = {}
        for o, od in enumerate(data.options):
            if option_limit(od, data.quotas) > 0 and od.cap_batches > 0:
                self.by_job.setdefault(od.job, []).append(o)
        self.alone = {o: _alone_usd(data.options[o]) for opts in self.by_job.values() for o in opts}
        for opts in self.by_job.values():
            opts.sort(key=lambda o: (self.alone[o], o))
        self.used: Usage = {}

    def gain(self, j: int) -> float:
        """Returns how much job ``j`` saves (USD) on its best quota-limited option over the best free one."""
        opts = self.by_job.get(j, [])
        free = [self.alone[o] for o in opts if not self.data.options[o].timed]
        timed = [self.alone[o] for o in opts if self.data.options[o].timed]
        if not timed:
            return -1.0
        return (min(free) if free else float("inf")) - min(timed)

    def place(self, j: int) -> Placement | None:
        """Returns the cheapest run of job ``j`` that fits the quotas left, or None."""
        best: Placement | None = None
        for o in self.by_job.get(j, []):
            od = self.data.options[o]
            if best is not None and self.alone[o] >= best.cost_usd:
                break  # sorted by the cost alone, which no choice below improves on
            if not od.timed:
                return Placement(o, -(-od.max_batches // min(od.max_batches, od.cap_batches)), self.alone[o])
            pick = _place_timed(od, self.data.quotas, self.used, option_limit(od, self.data.quotas), self.max_extra)
            if pick is not None:
                k, first, count = pick
                cost = od.run_cost_usd(k, od.max_batches)
                if best is None or cost < best.cost_usd:
                    best = Placement(o, k, cost, first, count)
        return best

    def keys(self, p: Placement) -> list[tuple[QuotaKey, int]]:
        """Returns the (quota, slot) cells a placed run (and its ``rest``) occupies."""
        od = self.data.options[p.o]
        own = [(q, od.slots[pos][0]) for pos in range(p.first, p.first + p.count)
               for q in od.quota if q in self.data.quotas] if od.timed else []
        return own + (self.keys(p.rest) if p.rest is not None else [])

    def occupy(self, p: Placement, sign: int = 1) -> None:
        """Adds (``sign`` 1) or removes (-1) the quota usage of a placed run (and its ``rest``)."""
        for run in (p, p.rest):
            if run is None:
                continue
            od = self.data.options[run.o]
            for cell in self.keys(replace(run, rest=None)):
                self.used[cell] = self.used.get(cell, 0) + sign * od.quota[cell[0]] * run.k


def greedy_placements(g: Greedy) -> dict[int, Placement] | None:
    """Returns one run per job, jobs that gain most from a quota-limited option first; None if stuck."""
    out: dict[int, Placement] = {}
    for j in sorted(range(len(g.data.num_requests)), key=lambda j: (-g.gain(j), j)):
        p = g.place(j)
        if p is None:
            return None
        g.occupy(p)
        out[j] = p
    return out


def improve(g: Greedy, plan: dict[int, Placement], passes: int = 2, max_ruin: int = 64) -> dict[int, Placement]:
    """Returns ``plan`` after ruin-and-recreate moves (module docstring); never dearer than ``plan``."""
    plan = dict(plan)
    holders: dict[tuple[QuotaKey, int], set[int]] = {}
    for j, p in plan.items():
        for cell in g.keys(p):
            holders.setdefault(cell, set()).add(j)
    for _ in range(passes):
        changed = False
        regret = {j: p.cost_usd - g.alone[g.by_job[j][0]] for j, p in plan.items()}
        for j in sorted((j for j, r in regret.items() if r > COST_TOL_REL * max(1.0, plan[j].cost_usd)),
                        key=lambda j: (-regret[j], j)):
            cur = plan[j]
            blockers: set[int] = set()
            for o in g.by_job[j]:
                od = g.data.options[o]
                if g.alone[o] >= cur.cost_usd:
                    break
                for t, _ in od.slots:
                    for q in od.quota:
                        blockers |= holders.get((q, t), set())
            blockers.discard(j)
            if not blockers or len(blockers) > max_ruin:
                continue
            group = [j] + sorted(blockers, key=lambda i: (-g.gain(i), i))
            before = sum(plan[i].cost_usd for i in group)
            for i in group:
                g.occupy(plan[i], -1)
            new: dict[int, Placement] = {}
            for i in group:
                placed = g.place(i)
                if placed is None:
                    break
                g.occupy(placed)
                new[i] = placed
            if len(new) == len(group) and sum(p.cost_usd for p in new.values()) < before * (1 - COST_TOL_REL):
                for i in group:
                    for cell in g.keys(plan[i]):
                        holders[cell].discard(i)
                    for cell in g.keys(new[i]):
                        holders.setdefault(cell, set()).add(i)
                plan.update(new)
                changed = True
                continue
            for placed in new.values():
                g.occupy(placed, -1)
            for i in group:
                g.occupy(plan[i])
        if not changed:
            break
    return split_pass(g, plan)


def plan_values(data: PlanData, plan: dict[int, Placement]) -> dict[Any, float]:
    """Returns the model's variable values (keys of ``build_plan_milp``) of one run (or two) per job."""
    values: dict[Any, float] = {}
    runs = [p for top in plan.values() for p in (top, top.rest) if p is not None]
    for p in runs:
        od = data.options[p.o]
        values[("m", p.o)] = od.max_batches if p.batches < 0 else p.batches
        if not od.timed:
            values[("k", p.o)] = p.k
            continue
        for pos, (t, _) in enumerate(od.slots):
            values[("n", p.o, t)] = p.k if p.first <= pos < p.first + p.count else 0
            values[("s", p.o, t)] = p.k if pos == p.first else 0
    return values


def greedy_start(data: PlanData, max_extra_instances: int = 24, search: bool = False) -> dict[Any, float] | None:
    """Returns a feasible solution (values by variable key), or None if the greedy gets stuck.

    ``search``: improve the greedy plan by ruin-and-recreate (``improve``) before returning it.
    """
    g = Greedy(data, max_extra_instances)
    plan = greedy_placements(g)
    if plan is None:
        return None
    if search:
        plan = improve(g, plan)
    return plan_values(data, plan)


def values_cost_usd(data: PlanData, values: dict[Any, float]) -> float:
    """Returns the cost (USD) of the model's objective at ``values`` (keys of ``build_plan_milp``)."""
    return sum(data.options[key[1]].cost_usd(key[0]) * v for key, v in values.items())


def greedy_and_search(data: PlanData) -> tuple[dict[Any, float], dict[Any, float]] | None:
    """Returns (the greedy plan, the greedy plan after ``improve``) as values, or None if stuck."""
    g = Greedy(data)
    plan = greedy_placements(g)
    if plan is None:
        return None
    return plan_values(data, plan), plan_values(data, improve(g, plan))


def _place_timed(od: OptionData, quotas: dict[QuotaKey, int], used: Usage,
                 limit: int, max_extra: int) -> tuple[int, int, int] | None:
    """Returns (instances k, first slot position, slots) for one run of ``od`` covering the job."""
    need = od.max_batches
    per_start = od.start_batches
    lengths = [length for _, length in od.slots]
    for_k: list[tuple[int, int, int]] = []
    for first in range(len(lengths)):
        total = sum(lengths[first:]) / od.batch_h - per_start
        if total <= 0:
            break
        k_min = max(1, -(-need // int(total)) if total >= 1 else need)
        for k in range(k_min, min(limit, k_min + max_extra) + 1):
            acc, count = -per_start, 0
            while first + count < len(lengths) and k * acc < need:
                acc += lengths[first + count] / od.batch_h
                count += 1
            if k * acc < need:
                continue
            if all(used.get((q, od.slots[p][0]), 0) + w * k <= quotas[q]
                   for q, w in od.quota.items() if q in quotas for p in range(first, first + count)):
                for_k.append((k, first, count))
                break
        if for_k and for_k[-1][0] == k_min:
            break  # fewest instances possible; earliest such start
    return min(for_k) if for_k else None
