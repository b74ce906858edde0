"""The batch-plan MILP: instance counts per (job, option, time slot) under deadlines, quotas, budget.

Reads plain per-option coefficients (``OptionData``); never computes physics or reads files.

Sets
    J jobs; O_j the pruned options of job j (instance type, offload level, batch size);
    O^T the *timed* options (those counting in a quota, or every option when minimising the
    makespan), O^U the others; T_o the slots t of length h intersecting job j's window
    [r_j, d_j], with l_t the hours of slot t inside that window; Q the quota keys (instance type,
    or GPU type counting GPUs), with limit Q_q and weight w_oq (1 per instance, or its GPUs).
Parameters (per option o of job j)
    p_o hourly price (USD/h); tau_o hours per batch; sigma_j start-up hours per instance
    (boot + model load); b_o = min(batch size, N_j) requests per batch; B_o = ceil(N_j / b_o)
    batches that cover the job; c_o = floor((d_j - r_j - sigma_j) / tau_o) batches one instance
    finishes in the whole window; u_o = min(B_o, c_o).
Variables
    m_o in Z+, m_o <= B_o               batches processed with option o
    k_o in Z+                           instances of an untimed option (they start at r_j)
    n_ot in Z+                          instances of a timed option running in slot t
    s_ot >= 0                           instances of a timed option started in slot t
                                        (integral at an optimum because n is)
Objective (``cost``)
    min  sum_o p_o (sigma_j K_o + tau_o m_o),  K_o = k_o (untimed) or sum_t s_ot (timed)
    i.e. per-second billing of every instance from its start to its last batch, start-up included.
Constraints
    sum_{o in O_j} b_o m_o >= N_j                                  (every request of job j)
    m_o <= u_o k_o                                                (untimed capacity, exact)
    m_o <= sum_t (l_t / tau_o) n_ot - (sigma_j / tau_o + 1) sum_t s_ot
                                                                  (timed capacity: every run of
                                                                   an instance loses its start-up
                                                                   and at most one partial batch)
    s_ot >= n_ot - n_o,t-1                                        (starts; n before the window = 0)
    u_o sum_t s_ot >= m_o                                         (valid: one run carries <= u_o)
    sum_{o in O^T} w_oq n_ot <= Q_qt           for all q, t        (quotas, per slot: Q_qt = Q_q,
                                                                   or the room ``PlanData.room``)
    sum_{o in O_j} K_o >= 1                                        (valid: one run per job at least)
    sum_o p_o (sigma_j K_o + tau_o m_o) <= budget                  (optional budget)
Makespan (``objective: makespan``): phase 1 adds y_t in {0, 1}, y_t >= y_t+1, n_ot <= U_o y_t
(U_o: ``option_limit``), fixes y_t = 1 up to the slot where the latest job's earliest first batch
ends, and minimises sum_t h y_t within the budget; phase 2 is the cost model restricted to the
slots with y_t = 1. The makespan is minimised to the slot; within the last slot, cost decides. ``elastic`` replaces the quotas by sum w n - e_qt <= Q_q, e >= 0, and minimises sum e
(diagnosing which quota is short, and by how much).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pulp

QuotaKey = tuple[str, str]
Mode = Literal["cost", "makespan", "elastic"]


@dataclass(frozen=True)
class OptionData:
    """Plain coefficients of one option of one job (see the module docstring for the symbols)."""

    job: int
    price_usd_h: float  # p_o
    batch_h: float  # tau_o
    startup_h: float  # sigma_j
    requests_per_batch: int  # b_o
    max_batches: int  # B_o
    cap_batches: int  # c_o
    quota: dict[QuotaKey, int] = field(default_factory=dict)  # w_oq
    slots: tuple[tuple[int, float], ...] = ()  # timed: (t, l_t); empty: untimed

    @property
    def timed(self) -> bool:
        return bool(self.slots)

    @property
    def start_batches(self) -> float:
        """Returns the batches of capacity one run start costs: its start-up, sigma_j / tau_o, and at
        most one partial batch (the capacity row's coefficient of s_ot)."""
        return self.startup_h / self.batch_h + 1.0

    def cost_usd(self, kind: str) -> float:
        """Returns the objective's coefficient of this option's variable of ``kind`` (USD per unit):
        p_o tau_o per batch (m), p_o sigma_j per run start (k, s), 0 for the others."""
        if kind == "m":
            return self.price_usd_h * self.batch_h
        return self.price_usd_h * self.startup_h if kind in ("k", "s") else 0.0

    def run_cost_usd(self, starts: float, batches: float) -> float:
        """Returns the cost (USD) of ``starts`` instance starts carrying ``batches`` batches:
        p_o (sigma_j k + tau_o m)."""
        return self.price_usd_h * (self.startup_h * starts + self.batch_h * batches)


@dataclass(frozen=True)
class PlanData:
    """Everything the builder reads: per-job request counts, options, quotas, slots, budget."""

    num_requests: tuple[int, ...]
    options: tuple[OptionData, ...]
    quotas: dict[QuotaKey, int]
    n_slots: int
    slot_h: float
    budget_usd: float | None = None
    # quota room per (quota, slot) where it is below Q_q: what the jobs fixed outside an LNS
    # neighbourhood leave free (``plan_lns``); None: Q_q in every slot
    room: dict[tuple[QuotaKey, int], int] | None = None

    def quota_room(self, q: QuotaKey, t: int) -> int:
        """Returns the instances (or GPUs) of quota ``q`` the plan may use in slot ``t``."""
        limit = self.quotas[q]
        return limit if self.room is None else min(limit, self.room.get((q, t), limit))


@dataclass
class PlanModel:
    """A built problem, its variables by key, and its size."""

    prob: pulp.LpProblem
    variables: dict[Any, pulp.LpVariable]
    cost: pulp.LpAffineExpression
    mode: Mode
    rows: list[pulp.LpConstraint] = field(default_factory=list)

    # Sizes from the builder's own dict: pulp's prob.variables() re-collects and sorts every
    # variable (0.36 s on a 100-job plan), just to count them.
    @property
    def n_variables(self) -> int:
        return len(self.variables)

    @property
    def n_constraints(self) -> int:
        return len(self.rows)

    @property
    def n_integer(self) -> int:
        return sum(1 for v in self.variables.values() if v.cat == pulp.LpInteger)


def option_limit(o: OptionData, quotas: dict[QuotaKey, int]) -> int:
    """Returns U_o: the most instances of ``o`` that can ever be useful or allowed at once."""
    u = o.max_batches
    for q, w in o.quota.items():
        if q in quotas:
            u = min(u, quotas[q] // w)
    return max(0, u)


def _first_batch_slot(od: OptionData) -> int:
    """Returns the slot in which one instance of ``od`` started first finishes its first batch."""
    need, acc = od.startup_h + od.batch_h, 0.0
    for t, length in od.slots:
        acc += length
        if acc >= need * (1 - 1e-9):
            return t
    return od.slots[-1][0] if od.slots else -1


def build_plan_milp(data: PlanData, mode: Mode = "cost", last_slot: int | None = None) -> PlanModel:
    """Returns the plan MILP of the module docstring.

    ``last_slot``: timed options may not run in slots >= last_slot (makespan phase 2).
    Variable keys: ("m", o), ("k", o), ("n", o, t), ("s", o, t), ("y", t), ("e", q, t).
    """
    prob = pulp.LpProblem("llmopt_plan", pulp.LpMinimize)
    var: dict[Any, pulp.LpVariable] = {}
    rows: list[pulp.LpConstraint] = []
    counter = [0]

    def add(row: pulp.LpConstraint) -> None:
        prob.addConstraint(row, f"c_{len(rows)}")
        rows.append(row)

    def new(key: Any, cat: str, low: float = 0, up: float | None = None) -> pulp.LpVariable:
        v = prob.add_variable(f"v_{counter[0]}", lowBound=low, upBound=up, cat=cat)
        counter[0] += 1
        var[key] = v
        return v

    cost_terms: list[tuple[pulp.LpVariable, float]] = []
    cover: dict[int, list[tuple[pulp.LpVariable, float]]] = {j: [] for j in range(len(data.num_requests))}
    runs: dict[int, list[tuple[pulp.LpVariable, float]]] = {j: [] for j in range(len(data.num_requests))}
    usage: dict[tuple[QuotaKey, int], list[tuple[pulp.LpVariable, float]]] = {}
    load: dict[tuple[QuotaKey, int], int] = {}  # sum of w * U per quota row, to skip rows that cannot bind
    y: dict[int, pulp.LpVariable] = {}
    if mode == "makespan":
        # valid: every job runs one batch at least, so no plan ends before the slot where its
        # earliest possible first batch ends; y_t = 1 up to the latest such slot over jobs
        must = max((min(_first_batch_slot(od) for od in data.options if od.job == j and od.timed)
                    for j in range(len(data.num_requests))), default=-1)
        for t in range(data.n_slots):
            y[t] = new(("y", t), pulp.LpInteger, 1 if t <= must else 0, 1)  # binary
        for t in range(data.n_slots - 1):
            # y_t >= y_t+1: the plan runs in a prefix of the slots
            add(pulp.LpAffineExpression([(y[t], 1.0), (y[t + 1], -1.0)]) >= 0)

    for o, od in enumerate(data.options):
        limit = option_limit(od, data.quotas)
        slots = [(t, length) for t, length in od.slots if last_slot is None or t < last_slot]
        if limit == 0 or od.cap_batches <= 0 or (od.timed and not slots):
            continue
        u = min(od.max_batches, od.cap_batches)
        m = new(("m", o), pulp.LpInteger, 0, od.max_batches)
        cover[od.job].append((m, float(od.requests_per_batch)))
        cost_terms.append((m, od.cost_usd("m")))
        start_cost = od.cost_usd("s")
        if not od.timed:
            k = new(("k", o), pulp.LpInteger, 0, limit)
            cost_terms.append((k, start_cost))
            runs[od.job].append((k, 1.0))
            # m_o <= u_o k_o
            add(pulp.LpAffineExpression([(m, 1.0), (k, -float(u))]) <= 0)
            continue
        cap: list[tuple[pulp.LpVariable, float]] = [(m, 1.0)]
        starts: list[tuple[pulp.LpVariable, float]] = [(m, -1.0)]
        prev = None
        per_start = od.start_batches
        for t, length in slots:
            n = new(("n", o, t), pulp.LpInteger, 0, limit)
            s = new(("s", o, t), pulp.LpContinuous, 0, limit)
            cost_terms.append((s, start_cost))
            runs[od.job].append((s, 1.0))
            cap += [(n, -length / od.batch_h), (s, per_start)]
            starts.append((s, float(u)))
            # s_ot >= n_ot - n_o,t-1
            terms = [(s, 1.0), (n, -1.0)] + ([(prev, 1.0)] if prev is not None else [])
            add(pulp.LpAffineExpression(terms) >= 0)
            prev = n
            if mode == "makespan":
                # n_ot <= U_o y_t
                add(pulp.LpAffineExpression([(n, 1.0), (y[t], -float(limit))]) <= 0)
            for q, w in od.quota.items():
                if q in data.quotas:
                    usage.setdefault((q, t), []).append((n, float(w)))
                    load[(q, t)] = load.get((q, t), 0) + w * limit
        # m_o <= sum_t (l_t / tau_o) n_ot - (sigma / tau_o + 1) sum_t s_ot
        add(pulp.LpAffineExpression(cap) <= 0)
        # u_o sum_t s_ot >= m_o
        add(pulp.LpAffineExpression(starts) >= 0)

    cost = pulp.LpAffineExpression(cost_terms)
    for j, terms in cover.items():
        if not terms:
            raise ValueError(f"job {j} has no usable option; diagnose before building")
        # sum_o b_o m_o >= N_j
        add(pulp.LpAffineExpression(terms) >= data.num_requests[j])
        # valid: every job starts at least one instance (sum_o K_o >= 1; the LP alone allows 1/u_o)
        add(pulp.LpAffineExpression(runs[j]) >= 1)
    elastic: list[tuple[pulp.LpVariable, float]] = []
    for (q, t), terms in sorted(usage.items()):
        limit_q = data.quota_room(q, t)
        if load[(q, t)] <= limit_q:
            continue  # cannot bind
        if mode == "elastic":
            e = new(("e", q, t), pulp.LpContinuous)
            terms = terms + [(e, -1.0)]
            elastic.append((e, 1.0))
        # sum w n <= Q_q in slot t
        add(pulp.LpAffineExpression(terms) <= limit_q)
    if data.budget_usd is not None and mode != "elastic":
        add(cost <= data.budget_usd)
    if mode == "cost":
        prob += cost
    elif mode == "makespan":
        prob += pulp.LpAffineExpression([(v, data.slot_h) for v in y.values()])
    else:
        prob += pulp.LpAffineExpression(elastic)
    return PlanModel(prob=prob, variables=var, cost=cost, mode=mode, rows=rows)
