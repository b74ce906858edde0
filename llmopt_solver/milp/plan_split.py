"""Two runs for one job instead of one, on the greedy plan (``plan_greedy``): the last moves of
``plan_greedy.improve``. Each is kept only if the job's cost falls, so the plan never gets dearer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from llmopt_solver.milp.plan_model import OptionData, PlanData, QuotaKey, option_limit

Usage = dict[tuple[QuotaKey, int], float]
COST_TOL_REL = 1e-9  # a change must lower the total cost by more than this fraction to be kept


@dataclass(frozen=True)
class Placement:
    """One job's run: option ``o``, ``k`` instances; timed: slots ``first`` .. ``first + count - 1`` (positions)."""

    o: int
    k: int
    cost_usd: float  # of this run and of ``rest``
    first: int = -1
    count: int = 0
    batches: int = -1  # batches of ``o``; -1: the whole job's, B_o
    rest: Placement | None = None  # a second run, on another option, carrying what this one leaves (``split``)


class Greedy(Protocol):
    """What the moves read of ``plan_greedy.Greedy``: options per job (cheapest alone first), their
    cost alone, the quota usage of placed runs, and how to add or remove a run's usage."""

    data: PlanData
    by_job: dict[int, list[int]]
    alone: dict[int, float]
    used: Usage

    def occupy(self, p: Placement, sign: int = 1) -> None: ...


def split_pass(g: Greedy, plan: dict[int, Placement]) -> dict[int, Placement]:
    """Returns ``plan`` after trying two runs instead of one for every job (most regret first):
    ``split`` on the quota left by the others, and ``split_free``; never dearer than ``plan``."""
    plan = dict(plan)
    regret = {j: p.cost_usd - g.alone[g.by_job[j][0]] for j, p in plan.items()}
    for j in sorted(plan, key=lambda j: (-regret[j], j)):
        cur = plan[j]
        g.occupy(cur, -1)
        below = cur.cost_usd * (1 - COST_TOL_REL)
        new = split(g, j, below) if regret[j] > COST_TOL_REL * max(1.0, cur.cost_usd) else None
        free = split_free(g, j, new.cost_usd if new is not None else below)
        plan[j] = free or new or cur
        g.occupy(plan[j])
    return plan


def split_free(g: Greedy, j: int, below_usd: float, heads: int = 4) -> Placement | None:
    """Returns job ``j``'s cheapest pair of quota-free runs costing less than ``below_usd``, or None.

    One of the ``heads`` quota-free options cheapest alone keeps only its full instances (one
    fewer than it needs alone); the requests left go to another quota-free option, on the fewest
    instances (e.g. the last, nearly empty instance of a large type replaced by a small one).
    """
    free = [o for o in g.by_job.get(j, []) if not g.data.options[o].timed]
    n = g.data.num_requests[j]
    best: Placement | None = None
    for o in free[:heads]:
        od = g.data.options[o]
        u = min(od.max_batches, od.cap_batches)
        k = -(-od.max_batches // u) - 1
        if k < 1:
            continue
        m = k * u
        left = n - m * od.requests_per_batch
        if left <= 0:
            continue
        head = od.run_cost_usd(k, m)
        if head >= below_usd:
            continue
        for o2 in free:
            if o2 == o:
                continue
            od2 = g.data.options[o2]
            m2 = -(-left // od2.requests_per_batch)
            k2 = -(-m2 // min(od2.max_batches, od2.cap_batches))
            cost = head + od2.run_cost_usd(k2, m2)
            if cost < below_usd and (best is None or cost < best.cost_usd):
                best = Placement(o, k, cost, batches=m, rest=Placement(o2, k2, cost - head, batches=m2))
    return best


def split(g: Greedy, j: int, below_usd: float) -> Placement | None:
    """Returns job ``j``'s cheapest pair of runs costing less than ``below_usd``, or None: as many
    batches as the quotas left allow on a quota-limited option cheaper alone, the requests left
    on the best quota-free option. (A job the greedy gave one dearer option because a quota was
    full keeps the part of the cheap option that is still free.)"""
    free = [o for o in g.by_job.get(j, []) if not g.data.options[o].timed]
    if not free:
        return None
    n = g.data.num_requests[j]
    best: Placement | None = None
    for o in g.by_job[j]:
        od = g.data.options[o]
        if g.alone[o] >= below_usd:
            break
        if not od.timed:
            continue
        part = _partial_timed(od, g.data.quotas, g.used, option_limit(od, g.data.quotas))
        if part is None:
            continue
        k, first, count, m = part
        left = n - m * od.requests_per_batch
        if left <= 0:
            continue  # the whole job fits: ``place`` would have found it
        head = od.run_cost_usd(k, m)
        for o2 in free:
            od2 = g.data.options[o2]
            m2 = -(-left // od2.requests_per_batch)
            k2 = -(-m2 // min(od2.max_batches, od2.cap_batches))
            cost = head + od2.run_cost_usd(k2, m2)
            if cost < below_usd and (best is None or cost < best.cost_usd):
                best = Placement(o, k, cost, first, count, m, Placement(o2, k2, cost - head, batches=m2))
    return best


def _partial_timed(od: OptionData, quotas: dict[QuotaKey, int], used: Usage,
                   limit: int) -> tuple[int, int, int, int] | None:
    """Returns (instances k, first slot position, slots, batches m) of the run of ``od`` that
    carries the most batches (fewer than the job's) with the quota left, over its fewest slots."""
    per_start = od.start_batches
    lengths = [length for _, length in od.slots]
    u = min(od.max_batches, od.cap_batches)
    best: tuple[int, int, int, int] | None = None
    for first in range(len(lengths)):
        acc = sum(lengths[first:]) / od.batch_h - per_start
        if acc < 1:
            break
        room = limit
        for q, w in od.quota.items():
            if q in quotas:
                for pos in range(first, len(lengths)):
                    room = min(room, int((quotas[q] - used.get((q, od.slots[pos][0]), 0)) // w))
        if room < 1:
            continue
        m = min(int(room * acc + 1e-9), room * u, od.max_batches - 1)
        if m < 1 or (best is not None and m <= best[3]):
            continue
        k = max(math.ceil(m / acc - 1e-9), -(-m // u))  # the fewest instances that carry m batches
        count = len(lengths) - first  # and the fewest slots from ``first``
        while count > 1 and k * (acc - lengths[first + count - 1] / od.batch_h) >= m:
            acc -= lengths[first + count - 1] / od.batch_h
            count -= 1
        best = (k, first, count, m)
    return best
