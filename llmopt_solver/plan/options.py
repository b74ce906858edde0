"""Per-job options of a plan: the option table of each job, start-up time, and dominance pruning.

For each job the predictor runs once over instances x offload levels x batch sizes (``build_table``);
then options are pruned (``plan.prune``: exact dominance, cycle-safe; ``prune: "heuristic"`` in
the plan file adds a rule that is faster but may lose the optimum).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.model_cards import ModelCard
from llmopt_solver.catalog.precision import parse_precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import InputError
from llmopt_solver.plan.input import PlanFile, PlanJob
from llmopt_solver.plan.prune import FIT_EPS, Orders, QuotaGroups, QuotaKey, batches_in, batches_in_array, prune, quota_groups
from llmopt_solver.predictor.memory import GB, weight_bytes
from llmopt_solver.selection import AUTO_BATCH_SIZES, offload_levels, select_instances
from llmopt_solver.table.build import BuildMemo, build_table
from llmopt_solver.table.engines import resolve_engines
from llmopt_solver.table.options import JobSpec, OptionTable

__all__ = ["FIT_EPS", "JobOptions", "QuotaKey", "TableCache", "batches_in", "build_job_options", "default_startup_s",
           "job_spec", "prune", "quota_weights"]

# Default start-up per instance: boot (VM start, driver and container/runtime start; 1-3 min on
# AWS/GCP GPU instances) plus loading the weights at LOAD_GB_S (object storage or network disk to
# GPU memory through the host; safetensors loads reach 0.5-2 GB/s). Both are deliberately round,
# documented assumptions: override with the plan's `startup_s`.
BOOT_S = 120.0
LOAD_GB_S = 1.0


def default_startup_s(weights_gb: float) -> float:
    """Returns the default start-up time of one instance, seconds: BOOT_S + weights_gb / LOAD_GB_S."""
    return BOOT_S + weights_gb / LOAD_GB_S


@dataclass
class JobOptions:
    """One job's pruned options (rows of ``table``) and what the MILP needs about them."""

    index: int
    job: PlanJob
    card: ModelCard
    startup_s: float
    full_of: Callable[[], OptionTable]  # every option evaluated (for diagnostics), fetched or rebuilt on demand
    table: OptionTable  # the pruned options
    quota: list[dict[QuotaKey, int]] = field(default_factory=list)  # per pruned option: key -> weight
    dropped_no_fit: int = 0  # feasible options whose start-up + one batch exceed the window

    @property
    def full(self) -> OptionTable:
        """Every option evaluated for the job (rebuilt when the plan released it to save memory)."""
        return self.full_of()

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

    @cached_property
    def batch_s(self) -> np.ndarray:
        """Seconds per batch used for scheduling (pessimistic under ``confidence``); this and the
        two below are computed once (``table`` is never replaced)."""
        return self.table.planning_total_s

    @cached_property
    def requests_per_batch(self) -> np.ndarray:
        """Sequences one batch carries for this job: min(batch size, num_requests)."""
        return np.minimum(self.table.batch_size, self.job.num_requests).astype(np.int64)

    @cached_property
    def max_batches(self) -> np.ndarray:
        """Batches that cover the whole job on one option: ceil(num_requests / requests per batch)."""
        rpb = self.requests_per_batch
        return -(-self.job.num_requests // rpb)

    def batches_per_instance(self, window_h: float | None = None) -> np.ndarray:
        """Returns per option the batches one instance finishes in ``window_h`` (default: the job's)."""
        w = (self.window_h if window_h is None else window_h) * 3600.0
        return batches_in_array(w, self.startup_s, self.batch_s)


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


def job_spec(catalog: Catalog, card: ModelCard, job: PlanJob, plan: PlanFile, where: str,
             only_engines: tuple[str, ...] | None = None) -> JobSpec:
    """Returns the JobSpec of one plan job (auto batch: every power of two up to 1024).

    ``only_engines``: when given, the job's engines are cut to these (e.g. those with a launch
    recipe, for ``--emit``); InputError naming ``jobs[i].engine`` when none is left.
    """
    card.check_context(job.input_len, job.output_len, f"{where}: input_len + output_len")
    precision = parse_precision(job.precision, f"{where}.precision")
    kv = parse_precision(job.kv_precision, f"{where}.kv_precision") if job.kv_precision is not None else None
    batches = AUTO_BATCH_SIZES if job.batch_size == "auto" else (int(job.batch_size),)
    engines = resolve_engines(catalog, job.engine, card.shape().model_type, precision.value,
                              kv.value if kv else None, field=f"{where}.engine")
    if only_engines is not None:
        kept = tuple(e for e in engines if e in only_engines)
        if not kept:
            raise InputError(field=f"{where}.engine", problem=f"none of its engines ({', '.join(engines)}) has a launch recipe",
                             allowed=", ".join(only_engines))
        engines = kept
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


class TableCache:
    """Option tables of one catalog, keyed on the whole JobSpec and the instance names.

    Owned by a plan flow (one per ``run_plan`` call unless the caller passes one to reuse, e.g.
    across the two solves of a sweep): jobs of a portfolio that differ only in requests, release
    or deadline share one table. Nothing is global, so a changed catalog never sees stale tables.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._tables: dict[Any, OptionTable] = {}
        self._wanted: set[Any] = set()
        self._cards: dict[int, tuple[ModelCard, tuple[Any, ...]]] = {}  # card content key per card object
        self.memo = BuildMemo()  # hardware arrays etc. per (engine, pool): shared by every table
        self.hits = 0

    def key(self, spec: JobSpec, pool: list[InstanceSpec]) -> tuple[Any, ...]:
        """Returns the cache key: every JobSpec field (the model card by content) and the instances."""
        card = spec.model
        held = self._cards.get(id(card))
        if held is None or held[0] is not card:  # the card is held, so its id is not reused
            held = self._cards[id(card)] = (card, (card.name, card.aliases, card.source, card.as_of,
                                                   json.dumps(card.config, sort_keys=True, default=str)))
        return (replace(spec, model=None), held[1], tuple(i.name for i in pool))  # type: ignore[arg-type]

    def sources(self, spec: JobSpec, pool: list[InstanceSpec]) -> list[tuple[Any, ...]]:
        """Returns the keys ``get(spec, pool)`` reads: its own, and the 'auto' table's when cut from it."""
        key = self.key(spec, pool)
        auto = replace(spec, batch_sizes=AUTO_BATCH_SIZES)
        if len(spec.batch_sizes) == 1 and spec.batch_sizes[0] in AUTO_BATCH_SIZES and spec != auto:
            auto_key = self.key(auto, pool)
            if auto_key in self._tables or auto_key in self._wanted:
                return [key, auto_key]
        return [key]

    def release(self, key: tuple[Any, ...]) -> None:
        """Forgets the table of ``key`` (a later ``get`` builds it again, identically)."""
        self._tables.pop(key, None)

    def want(self, spec: JobSpec, pool: list[InstanceSpec]) -> None:
        """Announces that ``spec``'s table will be asked for (fixed batch sizes are then cut from it)."""
        self._wanted.add(self.key(spec, pool))

    def get(self, spec: JobSpec, pool: list[InstanceSpec]) -> OptionTable:
        """Returns the option table of ``spec`` over ``pool``, built once per key.

        A table of one batch size in AUTO_BATCH_SIZES is cut from the 'auto' table of the same
        job when that one is built or announced (``want``): rows are predicted one by one, so the
        rows of that batch size, in the same order, are the table a build would return.
        """
        key = self.key(spec, pool)
        table = self._tables.get(key)
        if table is not None:
            self.hits += 1
            return table
        auto = replace(spec, batch_sizes=AUTO_BATCH_SIZES)
        if len(spec.batch_sizes) == 1 and spec.batch_sizes[0] in AUTO_BATCH_SIZES and spec != auto:
            auto_key = self.key(auto, pool)
            if auto_key in self._tables or auto_key in self._wanted:
                whole = self.get(auto, pool)
                cut = whole.take(np.nonzero(whole.batch_size == spec.batch_sizes[0])[0])
                table = self._tables[key] = replace(cut, job=spec)
                return table
        table = self._tables[key] = build_table(self.catalog, spec, pool, self.memo)
        return table

    def __len__(self) -> int:
        return len(self._tables)


def build_job_options(catalog: Catalog, plan: PlanFile, base: Path | None = None,
                      on_job: Callable[[int], None] | None = None,
                      tables: TableCache | None = None, only_engines: tuple[str, ...] | None = None,
                      parallel: bool = True) -> list[JobOptions]:
    """Returns the pruned options of every job of ``plan`` (raises InputError for bad names).

    ``only_engines``: restricts every job's engines (see ``job_spec``). ``parallel``: a plan of
    ``PARALLEL_MIN_JOBS`` or more with a cache of its own is built in worker processes
    (``plan.parallel``), with the same result.

    ``tables``: the cache to build option tables through (a fresh one by default); it must belong
    to ``catalog``.
    """
    own = tables is None  # a cache of our own: each table is released after its last job (memory)
    if tables is None:
        tables = TableCache(catalog)
    elif tables.catalog is not catalog:
        raise ValueError("build_job_options: the table cache belongs to another catalog")
    out = []
    specs = []
    groups: dict[tuple[str, ...], QuotaGroups] = {}  # per instance list (by names): quota groups
    orders: Orders = {}  # per table: rule 1's order (``prune``)
    for j, job in enumerate(plan.jobs):
        where = f"jobs[{j}] ({job.name!r})"
        card = _resolve_model(catalog, job, where, base)
        specs.append((card, job_spec(catalog, card, job, plan, where, only_engines), _pool(catalog, job, plan, where)))
        if job.batch_size == "auto":
            tables.want(specs[-1][1], specs[-1][2])
    if own and parallel and (built := _in_workers(catalog, plan, base, only_engines, tables, specs, on_job)) is not None:
        return built
    last_use: dict[Any, int] = {}
    for j, (_, spec, pool) in enumerate(specs):
        last_use.update({k: j for k in tables.sources(spec, pool)})
    for j, job in enumerate(plan.jobs):
        card, spec, pool = specs[j]
        table = tables.get(spec, pool)
        weights_gb = float(weight_bytes(card.shape(), spec.precision.bytes_per_value)) / GB
        startup = plan.startup_s if plan.startup_s is not None else default_startup_s(weights_gb)
        window = job.deadline_h - job.release_h

        def w(inst: InstanceSpec) -> dict[QuotaKey, int]:
            return quota_weights(inst, plan.quotas.instances, plan.quotas.gpus)

        names = tuple(x.name for x in table.instance_list)
        if names not in groups:
            groups[names] = quota_groups(table.instance_list, w)
        keep, no_fit = prune(table, job.num_requests, startup, window, w, heuristic=plan.prune == "heuristic",
                             runs=plan.objective == "cost", groups=groups[names], orders=orders)
        sub = table.take(keep)
        if own:
            for k in tables.sources(spec, pool):
                if last_use[k] == j:
                    tables.release(k)
        full_of = _refetch(tables, spec, pool) if own else _kept(table)
        opts = JobOptions(index=j, job=job, card=card, startup_s=startup, full_of=full_of, table=sub,
                          quota=[w(x) for x in sub.instances], dropped_no_fit=no_fit)
        out.append(opts)
        if on_job is not None:
            on_job(j)
    return out



def _in_workers(catalog: Catalog, plan: PlanFile, base: Path | None, only_engines: tuple[str, ...] | None,
                tables: TableCache, specs: list[tuple[ModelCard, JobSpec, list[InstanceSpec]]],
                on_job: Callable[[int], None] | None) -> list[JobOptions] | None:
    """Returns every job's options built in worker processes (``plan.parallel``), each able to
    rebuild its whole table through ``tables``; None when the plan is too small or one core is all."""
    from llmopt_solver.plan import parallel as par

    n = par.workers()
    if n < 2 or len(specs) < par.PARALLEL_MIN_JOBS:
        return None
    built: list[JobOptions | None] = [None] * len(specs)

    def done(j: int, jo: JobOptions) -> None:
        jo.index, jo.full_of = j, _refetch(tables, specs[j][1], specs[j][2])
        built[j] = jo
        if on_job is not None:
            on_job(j)

    keys = [tables.sources(spec, pool)[-1] for _, spec, pool in specs]
    par.build_in_workers(catalog, plan, base, only_engines, par.split(keys, n), done)
    return [jo for jo in built if jo is not None]

def _refetch(tables: TableCache, spec: JobSpec, pool: list[InstanceSpec]) -> Callable[[], OptionTable]:
    """Returns a function that returns the option table of ``spec`` over ``pool`` (rebuilt if released)."""
    return lambda: tables.get(spec, pool)


def _kept(table: OptionTable) -> Callable[[], OptionTable]:
    """Returns a function that returns ``table`` (the caller's cache keeps it anyway)."""
    return lambda: table
