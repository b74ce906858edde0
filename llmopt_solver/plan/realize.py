"""Turns a MILP solution into runs of instances with batches and requests (``realize``).

Untimed options run k instances from the release; timed ones are stacked by level (an instance
runs while the slot's count is at least its level); batches are spread evenly over the runs within
each run's capacity, and requests are handed out run by run. Every run is billed from its start to
its last batch (start-up + batches x batch time), so the plan's cost equals the MILP's cost.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from llmopt_solver.errors import SolverError
from llmopt_solver.milp.plan_model import OptionData, PlanData
from llmopt_solver.plan.input import PlanFile
from llmopt_solver.plan.options import JobOptions, batches_in
from llmopt_solver.plan.result import Assignment


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
        for pos, (_t, c) in enumerate(prof + [(None, 0)]):
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
