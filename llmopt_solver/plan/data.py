"""The plan's MILP data: slots, canonical quota names, quota limits, per-option coefficients."""

from __future__ import annotations

import math

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.milp.plan_model import OptionData, PlanData, QuotaKey
from llmopt_solver.plan.input import PlanFile
from llmopt_solver.plan.options import FIT_EPS, JobOptions
from llmopt_solver.selection import resolve_names

TIME_EPS_H = 1e-6  # tolerance on times (hours): 3.6 ms


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
    """Returns every quota's limit by key (instances, or GPUs of a GPU type)."""
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
