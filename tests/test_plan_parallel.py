"""Options built in worker processes equal the serial build, job by job (plan/parallel.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from llmopt_solver.plan import parallel
from llmopt_solver.plan.input import parse_plan
from llmopt_solver.plan.options import build_job_options


def test_split_keeps_a_key_in_one_list_and_balances():
    keys = ["a", "b", "a", "c", "a", "b", "d"]
    out = parallel.split(keys, 2)
    assert sorted(j for b in out for j in b) == list(range(len(keys)))
    for b in out:
        assert b == sorted(b)
    owner = {keys[j]: k for k, b in enumerate(out) for j in b}
    assert all(owner[keys[j]] == k for k, b in enumerate(out) for j in b)  # a key never spans two lists
    assert sorted(len(b) for b in out) == [3, 4]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_worker_build_equals_serial_build(catalog, monkeypatch):
    monkeypatch.setattr(parallel, "PARALLEL_MIN_JOBS", 2)
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    calls: list[list[list[int]]] = []
    real = parallel.build_in_workers
    monkeypatch.setattr(parallel, "build_in_workers", lambda *a: calls.append(a[4]) or real(*a))
    jobs = [{"name": f"j{k}", "model": m, "num_requests": 1000 * (k + 1), "input_len": 128, "output_len": 32,
             "batch_size": b, "deadline_h": 2 + k % 3, "instances": ["g4dn.xlarge", "g6.xlarge", "g5.xlarge"]}
            for k, (m, b) in enumerate([("OPT-1.3B", "auto"), ("OPT-2.7B", 16), ("OPT-1.3B", 64), ("OPT-2.7B", "auto"),
                                        ("OPT-1.3B", "auto")])]
    plan = parse_plan({"jobs": jobs, "quotas": {"instances": {"g6.xlarge": 2}}, "offload_step": 0.5})
    seen: list[int] = []
    par = build_job_options(catalog, plan, on_job=seen.append)
    ser = build_job_options(catalog, plan, parallel=False)
    assert len(calls) == 1 and len(calls[0]) == 2  # two workers ran
    assert sorted(seen) == list(range(len(jobs)))
    assert [jo.index for jo in par] == list(range(len(jobs)))
    for a, b in zip(par, ser, strict=True):
        assert a.job == b.job and a.startup_s == b.startup_s and a.quota == b.quota
        assert a.dropped_no_fit == b.dropped_no_fit
        assert [x.name for x in a.table.instances] == [x.name for x in b.table.instances]
        for col in ("batch_size", "offload_ratio", "weight_offload"):
            np.testing.assert_array_equal(getattr(a.table, col), getattr(b.table, col))
        np.testing.assert_array_equal(a.table.pred.total_s, b.table.pred.total_s)
        assert len(a.full) == len(b.full)  # every evaluated option, rebuilt in this process
