"""Tables of a plan built once and shared: the per-pool memo and released tables change nothing.

- a table built with a ``BuildMemo`` filled by other jobs' tables equals its own fresh build;
- ``build_job_options`` with its own cache (tables released after their last job, ``full``
  rebuilt on demand) gives the same pruned and full tables as with a cache that keeps them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from llmopt_solver.plan.input import parse_plan
from llmopt_solver.plan.options import TableCache, build_job_options, job_spec
from llmopt_solver.selection import select_instances
from llmopt_solver.table.build import BuildMemo, build_table
from llmopt_solver.table.options import OptionTable

JOBS = [{"name": "a", "model": "OPT-2.7B", "num_requests": 1000, "input_len": 512, "output_len": 64,
         "batch_size": "auto", "deadline_h": 4},
        {"name": "b", "model": "OPT-2.7B", "num_requests": 3000, "input_len": 512, "output_len": 64,
         "batch_size": 32, "deadline_h": 6},
        {"name": "c", "model": "OPT-1.3B", "num_requests": 500, "input_len": 256, "output_len": 128,
         "batch_size": "auto", "precision": "int8", "deadline_h": 3},
        {"name": "d", "model": "OPT-2.7B", "num_requests": 800, "input_len": 128, "output_len": 32,
         "batch_size": "auto", "deadline_h": 5, "gpus": ["T4", "L4"]},
        {"name": "e", "model": "OPT-1.3B", "num_requests": 900, "input_len": 64, "output_len": 64,
         "batch_size": "auto", "deadline_h": 5}]  # a's pool, precision and grid: its hardware rows


def same_table(a: OptionTable, b: OptionTable) -> None:
    assert len(a) == len(b)
    for f in dataclasses.fields(b):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        elif f.name in ("instance_list", "inst_reasons", "engine_kv", "engine_gpu_excluded", "job"):
            assert x == y, f.name
    for f in dataclasses.fields(b.pred):
        assert np.array_equal(getattr(a.pred, f.name), getattr(b.pred, f.name), equal_nan=True), f.name


def test_memoised_builds_equal_fresh_builds(catalog):
    plan = parse_plan({"jobs": JOBS, "offload_step": 0.5})
    memo = BuildMemo()
    for j in (2, 0, 1, 3, 4):  # the memo filled by the other jobs' pools and precisions first
        job = plan.jobs[j]
        card = catalog.model(job.model)
        spec = job_spec(catalog, card, job, plan, job.name)
        pool = select_instances(catalog, job.gpus, job.instances, plan.providers)
        same_table(build_table(catalog, spec, pool, memo), build_table(catalog, spec, pool))


@pytest.mark.parametrize("objective", ["cost", "makespan"])
def test_released_tables_change_nothing(catalog, objective):
    plan = parse_plan({"jobs": JOBS, "objective": objective, "quotas": {"instances": {"g4dn.xlarge": 2}}})
    own = build_job_options(catalog, plan)  # releases each table after its last job
    kept = build_job_options(catalog, plan, tables=TableCache(catalog))
    for a, b in zip(own, kept):
        same_table(a.table, b.table)
        assert a.quota == b.quota and a.dropped_no_fit == b.dropped_no_fit
        same_table(a.full, b.full)  # rebuilt on demand


def test_rule1_order_kept_per_table_prunes_the_same(catalog):
    from llmopt_solver.plan.options import quota_weights
    from llmopt_solver.plan.prune import prune

    plan = parse_plan({"jobs": JOBS[:1], "offload_step": 0.5})
    job = plan.jobs[0]
    spec = job_spec(catalog, catalog.model(job.model), job, plan, job.name)
    table = build_table(catalog, spec, select_instances(catalog, None, None, None))

    def w(inst):
        return quota_weights(inst, {"g4dn.xlarge": 2}, {"L4": 4})

    orders: dict = {}
    for n, window_h, startup_s in ((5000, 4.0, 300.0), (200000, 24.0, 300.0), (1500, 1.0, 200.0), (700, 2.0, 300.0),
                                   (5000, 0.5, 300.0)):
        kept, no_fit = prune(table, n, startup_s, window_h, w, orders=orders)
        again, no_fit2 = prune(table, n, startup_s, window_h, w)
        assert np.array_equal(kept, again) and no_fit == no_fit2
    assert len(orders) == 1
    del table  # the kept order leaves with its table
    import gc

    gc.collect()
    assert not orders
