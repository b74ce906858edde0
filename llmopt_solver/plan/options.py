"""Per-job options of a plan: the option table of each job, start-up time, and dominance pruning.

For each job the predictor runs once over instances x offload levels x batch sizes (``build_table``,
batch sizes above the smallest power of two >= num_requests only take longer and are dropped);
then options are pruned:

1. per instance type and requests per batch (min(batch size, num_requests)), the fastest option
   among those where start-up plus one batch fits the job's window (exact: same price, quotas and
   requests per batch, shortest batch time);
2. across options (exact, same type or not): an option is dropped when another one is no more expensive per hour,
   carries at least as many requests per batch, is no slower per batch, and counts in no quota the
   dropped one does not count in (with no more instances or GPUs). It can replace the dropped one
   instance for instance in any plan at no higher cost, so the optimum is unchanged;
3. run-for-run cost dominance (exact, ``_run_dominance``): an option is dropped when every run
   of one of its instances can be replaced by one run of an option counting in no quota, at no
   higher cost, within the window;
4. only with ``prune: "heuristic"`` (opt-in; the default is ``"exact"``): also an option that is no better in cost per
   request, requests per hour per instance and cost of the whole job alone than one counting in
   the same quotas (or in none). Not exact: a plan might have used a few of its batches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.model_cards import ModelCard
from llmopt_solver.catalog.precision import parse_precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import InputError
from llmopt_solver.plan.input import PlanFile, PlanJob
from llmopt_solver.predictor.memory import GB, weight_bytes
from llmopt_solver.selection import AUTO_BATCH_SIZES, offload_levels, select_instances
from llmopt_solver.table.build import build_table
from llmopt_solver.table.engines import resolve_engines
from llmopt_solver.table.options import JobSpec, OptionTable

# Default start-up per instance: boot (VM start, driver and container/runtime start; 1-3 min on
# AWS/GCP GPU instances) plus loading the weights at LOAD_GB_S (object storage or network disk to
# GPU memory through the host; safetensors loads reach 0.5-2 GB/s). Both are deliberately round,
# documented assumptions: override with the plan's `startup_s`.
BOOT_S = 120.0
LOAD_GB_S = 1.0
FIT_EPS = 1e-9  # relative tolerance when comparing times (hours or seconds)

QuotaKey = tuple[str, str]  # ("instance", name) or ("gpu", name)


def default_startup_s(weights_gb: float) -> float:
    """Returns the default start-up time of one instance, seconds: BOOT_S + weights_gb / LOAD_GB_S."""
    return BOOT_S + weights_gb / LOAD_GB_S


def batches_in(window_s: float, startup_s: float, batch_s: float) -> int:
    """Returns how many whole batches one instance finishes in ``window_s`` after its start-up."""
    if window_s < startup_s or batch_s <= 0:
        return 0
    return max(0, int(math.floor((window_s - startup_s) / batch_s * (1 + FIT_EPS) + FIT_EPS)))


@dataclass
class JobOptions:
    """One job's pruned options (rows of ``table``) and what the MILP needs about them."""

    index: int
    job: PlanJob
    card: ModelCard
    startup_s: float
    full: OptionTable  # every option evaluated (for diagnostics)
    table: OptionTable  # the pruned options
    quota: list[dict[QuotaKey, int]] = field(default_factory=list)  # per pruned option: key -> weight
    dropped_no_fit: int = 0  # feasible options whose start-up + one batch exceed the window

    @property
    def window_h(self) -> float:
        return self.job.deadline_h - self.job.release_h

    @property
    def label(self) -> str:
        return f"job {self.job.name!r}"

    def __len__(self) -> int:
        return len(self.table)

    @property
    def price_usd_h(self) -> np.ndarray:
        return self.table.hourly_cost_usd

    @property
    def batch_s(self) -> np.ndarray:
        """Seconds per batch used for scheduling (pessimistic under ``confidence``)."""
        return self.table.planning_total_s

    @property
    def requests_per_batch(self) -> np.ndarray:
        """Sequences one batch carries for this job: min(batch size, num_requests)."""
        return np.minimum(self.table.batch_size, self.job.num_requests).astype(np.int64)

    @property
    def max_batches(self) -> np.ndarray:
        """Batches that cover the whole job on one option: ceil(num_requests / requests per batch)."""
        rpb = self.requests_per_batch
        return -(-self.job.num_requests // rpb)

    def batches_per_instance(self, window_h: float | None = None) -> np.ndarray:
        """Returns per option the batches one instance finishes in ``window_h`` (default: the job's)."""
        w = (self.window_h if window_h is None else window_h) * 3600.0
        return np.asarray([batches_in(w, self.startup_s, float(t)) for t in self.batch_s], dtype=np.int64)


def _resolve_model(catalog: Catalog, job: PlanJob, where: str, base: Path | None) -> ModelCard:
    name = job.model
    if base is not None and (name.endswith(".json") or "/" in name):
        local = base / name
        if local.is_file():
            name = str(local)
    try:
        return catalog.model(name)
    except InputError as exc:
        raise (exc.at(f"{where}.model") if exc.field == "--model" else type(exc)(f"{where}.model: {exc}")) from None


def _pool(catalog: Catalog, job: PlanJob, plan: PlanFile, where: str) -> list[InstanceSpec]:
    try:
        return select_instances(catalog, job.gpus, job.instances, plan.providers)
    except InputError as exc:
        # The same error, located where the plan file holds the field.
        field = {"--gpus": f"{where}.gpus", "--instances": f"{where}.instances", "--provider": "providers"}
        if exc.field in field:
            raise exc.at(field[exc.field]) from None
        raise InputError(f"{where}: {exc}") from None


def job_spec(catalog: Catalog, card: ModelCard, job: PlanJob, plan: PlanFile, where: str) -> JobSpec:
    """Returns the JobSpec of one plan job (auto batch: every power of two up to 1024)."""
    card.check_context(job.input_len, job.output_len, f"{where}: input_len + output_len")
    precision = parse_precision(job.precision, f"{where}.precision")
    kv = parse_precision(job.kv_precision, f"{where}.kv_precision") if job.kv_precision is not None else None
    batches = AUTO_BATCH_SIZES if job.batch_size == "auto" else (int(job.batch_size),)
    engines = resolve_engines(catalog, job.engine, card.shape().model_type, precision.value,
                              kv.value if kv else None, field=f"{where}.engine")
    return JobSpec(engines=engines, model=card, batch_sizes=batches, input_len=job.input_len, output_len=job.output_len,
                   precision=precision, kv_precision=kv, safety_factor=job.safety_factor,
                   offload_ratios=offload_levels(plan.offload_step), spot=plan.spot, slo_tps=job.slo_tps,
                   confidence=plan.confidence)


def quota_weights(inst: InstanceSpec, quotas_inst: dict[str, int], quotas_gpu: dict[str, int]) -> dict[QuotaKey, int]:
    """Returns the quotas an instance of ``inst`` counts in, with its weight (1 instance, n GPUs)."""
    out: dict[QuotaKey, int] = {}
    if inst.name in quotas_inst:
        out[("instance", inst.name)] = 1
    if inst.gpu in quotas_gpu:
        out[("gpu", inst.gpu)] = inst.gpu_count
    return out


def prune(table: OptionTable, num_requests: int, startup_s: float, window_h: float,
          weights: Callable[[InstanceSpec], dict[QuotaKey, int]], heuristic: bool = True) -> tuple[np.ndarray, int]:
    """Returns (indices of the options kept, feasible options dropped because one batch does not fit)."""
    price, ts = table.hourly_cost_usd, table.planning_total_s
    b = table.batch_size
    bmax = 1 << max(0, math.ceil(math.log2(num_requests)))  # larger batches only take longer
    ok = table.feasible & np.isfinite(price) & np.isfinite(ts) & (ts > 0) & (b <= max(bmax, int(b.min()) if len(b) else 1))
    fits = startup_s + ts <= window_h * 3600.0 * (1 + FIT_EPS)
    cand = np.nonzero(ok & fits)[0]
    no_fit = int(np.count_nonzero(ok & ~fits))
    if len(cand) == 0:
        return cand, no_fit
    beff = np.minimum(b, num_requests).astype(float)
    # Step 1: per (instance type, requests per batch) the fastest option; ties: less offloaded,
    # larger batch. Same price, quotas and requests per batch, never slower: exact. (Keeping only
    # the highest-rate batch size per type was not: it ignores the seats wasted in a job's last
    # batch and the start-ups, e.g. 2,100 requests as 9 batches of 256 cost more than 17 of 128.)
    inst = table.inst_idx[cand]
    order = cand[np.lexsort((-b[cand], table.weight_offload[cand], table.offload_ratio[cand], ts[cand],
                             -beff[cand], inst))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (table.inst_idx[order][1:] != table.inst_idx[order][:-1]) | (beff[order][1:] != beff[order][:-1])
    best = order[first]
    names = np.asarray([table.instance_list[k].name for k in table.inst_idx[best]])
    kept = best[np.lexsort((-beff[best], names, ts[best], price[best]))]
    # Step 2: exact cross-type dominance (see the module docstring), vectorised over pairs.
    keys = sorted({k for i in kept for k in weights(table.instances[i])})
    w = np.zeros((len(kept), len(keys)))
    for r, i in enumerate(kept):
        for k, v in weights(table.instances[i]).items():
            w[r, keys.index(k)] = v
    p, be, t = price[kept], beff[kept], ts[kept]
    tol = 1 + FIT_EPS
    no_worse = ((p[:, None] <= p[None, :] * tol) & (be[:, None] >= be[None, :]) & (t[:, None] <= t[None, :] * tol)
                & np.all(w[:, None, :] <= w[None, :, :], axis=2))
    idx = np.arange(len(kept))
    # o' (row) dominates o (column) if no worse and (strictly better somewhere or earlier in the order)
    strictly = ((p[:, None] * tol < p[None, :]) | (be[:, None] > be[None, :]) | (t[:, None] * tol < t[None, :])
                | np.any(w[:, None, :] < w[None, :, :], axis=2))
    dom = no_worse & (strictly | (idx[:, None] < idx[None, :])) & (idx[:, None] != idx[None, :])
    # Step 3: run-for-run cost dominance by options in no quota (exact, see _run_dominance).
    free = ~np.any(w > 0, axis=1)
    cap = np.asarray([batches_in(window_h * 3600.0, startup_s, float(x)) for x in t], dtype=np.int64)
    cd = _run_dominance(p, be.astype(np.int64), t, cap, free, num_requests, startup_s)
    dom |= cd & ~(cd.T & (idx[:, None] > idx[None, :])) & (idx[:, None] != idx[None, :])
    if heuristic:
        dom |= _heuristic_dominance(p, be, t, w, num_requests, startup_s, window_h)
    return kept[~dom.any(axis=0)], no_fit


def _run_dominance(p: np.ndarray, b: np.ndarray, t: np.ndarray, cap: np.ndarray, free: np.ndarray,
                   num_requests: int, startup_s: float) -> np.ndarray:
    """Returns D[o', o]: every run of an instance of o can be replaced by one run of o' at no more cost.

    o' must count in no quota (it may then run from the job's release, like the MILP's untimed
    options). A run of o with k batches (1 <= k <= u_o = min(batches covering the job, batches in
    the window)) carries k b_o requests for p_o (sigma + k tau_o); one instance of o' carries them
    in ceil(k b_o / b_o') <= (k b_o + b_o' - g) / b_o' batches (g = gcd(b_o, b_o')), which must fit
    its window and cost p_o' (sigma + batches tau_o') no more. Both sides are linear in k, so the
    two ends k = 1 and k = u_o decide. Exact: any plan keeps its cost or gets cheaper, and quota
    use only falls. (Stronger than comparing attributes: a dearer but faster type can dominate.)
    """
    n = len(p)
    if n == 0 or not free.any():
        return np.zeros((n, n), dtype=bool)
    u = np.minimum(-(-num_requests // np.maximum(b, 1)), cap).astype(float)
    g = np.gcd(b[:, None], b[None, :]).astype(float)  # [o', o]
    bp, bo = b[:, None].astype(float), b[None, :].astype(float)
    tol = 1 + FIT_EPS
    ok = free[:, None] & (u[None, :] >= 1)
    for k in (np.ones(n), u):
        k = k[None, :]
        need = np.ceil(np.round(k * bo / bp, 9))  # batches of o' for k batches of o (exact at the ends)
        lin = (k * bo + bp - g) / bp  # linear upper bound on the batches of o' in between
        batches = np.maximum(need, lin)
        ok &= need <= cap[:, None]
        ok &= p[:, None] * (startup_s + batches * t[:, None]) <= p[None, :] * (startup_s + k * t[None, :]) * tol
    return ok


def _heuristic_dominance(p: np.ndarray, be: np.ndarray, t: np.ndarray, w: np.ndarray, num_requests: int,
                         startup_s: float, window_h: float) -> np.ndarray:
    """Returns D[o', o]: o' is no worse in cost per request, requests per hour per instance and
    cost of the whole job alone, and counts in exactly the quotas o counts in (or in none).

    Not exact (a plan may need a few batches of o for rounding), hence optional (``prune``).
    """
    per_req = p * t / be  # USD-seconds per request: the ordering is what matters
    rate = be / t
    batches = np.ceil(num_requests / be)
    cap = np.maximum(np.floor((window_h * 3600.0 - startup_s) / t * (1 + FIT_EPS)), 1)
    alone = np.ceil(batches / np.minimum(cap, batches)) * p * startup_s + batches * p * t
    tol = 1 + FIT_EPS
    idx = np.arange(len(p))
    same_keys = np.all((w[:, None, :] > 0) == (w[None, :, :] > 0), axis=2) & np.all(w[:, None, :] <= w[None, :, :], axis=2)
    free = ~np.any(w > 0, axis=1)
    better = ((per_req[:, None] <= per_req[None, :] * tol) & (rate[:, None] >= rate[None, :] / tol)
              & (alone[:, None] <= alone[None, :] * tol))
    strictly = ((per_req[:, None] * tol < per_req[None, :]) | (rate[:, None] > rate[None, :] * tol)
                | (alone[:, None] * tol < alone[None, :]))
    return better & (strictly | (idx[:, None] < idx[None, :])) & (free[:, None] | same_keys) & (idx[:, None] != idx[None, :])


class TableCache:
    """Option tables of one catalog, keyed on the whole JobSpec and the instance names.

    Owned by a plan flow (one per ``run_plan`` call unless the caller passes one to reuse, e.g.
    across the two solves of a sweep): jobs of a portfolio that differ only in requests, release
    or deadline share one table. Nothing is global, so a changed catalog never sees stale tables.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._tables: dict[Any, OptionTable] = {}
        self.hits = 0

    @staticmethod
    def key(spec: JobSpec, pool: list[InstanceSpec]) -> tuple[Any, ...]:
        """Returns the cache key: every JobSpec field (the model card by content) and the instances."""
        card = spec.model
        model = (card.name, card.aliases, card.source, card.as_of, json.dumps(card.config, sort_keys=True, default=str))
        return (replace(spec, model=None), model, tuple(i.name for i in pool))  # type: ignore[arg-type]

    def get(self, spec: JobSpec, pool: list[InstanceSpec]) -> OptionTable:
        """Returns the option table of ``spec`` over ``pool``, built once per key."""
        key = self.key(spec, pool)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = build_table(self.catalog, spec, pool)
        else:
            self.hits += 1
        return table

    def __len__(self) -> int:
        return len(self._tables)


def build_job_options(catalog: Catalog, plan: PlanFile, base: Path | None = None,
                      on_job: Callable[[int], None] | None = None,
                      tables: TableCache | None = None) -> list[JobOptions]:
    """Returns the pruned options of every job of ``plan`` (raises InputError for bad names).

    ``tables``: the cache to build option tables through (a fresh one by default); it must belong
    to ``catalog``.
    """
    if tables is None:
        tables = TableCache(catalog)
    elif tables.catalog is not catalog:
        raise ValueError("build_job_options: the table cache belongs to another catalog")
    out = []
    for j, job in enumerate(plan.jobs):
        where = f"jobs[{j}] ({job.name!r})"
        card = _resolve_model(catalog, job, where, base)
        spec = job_spec(catalog, card, job, plan, where)
        pool = _pool(catalog, job, plan, where)
        table = tables.get(spec, pool)
        weights_gb = float(weight_bytes(card.shape(), spec.precision.bytes_per_value)) / GB
        startup = plan.startup_s if plan.startup_s is not None else default_startup_s(weights_gb)
        window = job.deadline_h - job.release_h

        def w(inst: InstanceSpec) -> dict[QuotaKey, int]:
            return quota_weights(inst, plan.quotas.instances, plan.quotas.gpus)

        keep, no_fit = prune(table, job.num_requests, startup, window, w, heuristic=plan.prune == "heuristic")
        sub = table.take(keep)
        opts = JobOptions(index=j, job=job, card=card, startup_s=startup, full=table, table=sub,
                          quota=[w(x) for x in sub.instances], dropped_no_fit=no_fit)
        out.append(opts)
        if on_job is not None:
            on_job(j)
    return out
