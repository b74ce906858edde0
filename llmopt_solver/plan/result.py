"""A solved plan: its assignments (runs of identical instances), cost, bound and per-slot usage."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.milp.plan_lns import LnsStats
from llmopt_solver.milp.solver import SolveResult, Status
from llmopt_solver.plan.data import TIME_EPS_H, n_slots
from llmopt_solver.plan.input import PlanFile
from llmopt_solver.plan.options import JobOptions


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
    start_usd: float | None = None  # cost of the warm start handed to the solver (greedy + search, or phase 1)
    greedy_usd: float | None = None  # cost of the plain greedy plan (cost objective), before the search
    lns: LnsStats | None = None  # the MILP neighbourhood search's figures, when it solved a neighbourhood
    # What lower_bound_usd bounds: "problem" (no option is timed: the MILP is exact for the
    # problem the README describes) or "slotted model" (timed runs start at slot boundaries and
    # count in a quota for every slot they touch, so the true optimum may be lower).
    bound_of: str = "problem"

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
