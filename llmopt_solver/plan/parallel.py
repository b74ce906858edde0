"""Option building of a large plan on several cores: jobs split into groups that share no table.

A job's options depend on its own table and its own window only (``options.build_job_options``),
so the jobs can be built in worker processes and the results are the same objects, in job order,
as a serial build. Jobs that read the same table (same spec and instances, or a fixed batch cut
from the same 'auto' table) go to the same worker, so no table is built twice. Workers are forked
(Linux): they inherit the catalog and the plan, and send back the pruned options only; each
option's ``full_of`` (every evaluated option, for diagnostics) is rebuilt in this process on demand.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.plan.input import PlanFile

PARALLEL_MIN_JOBS = 200  # below it, a serial build is as fast as forking workers
_STATE: dict[str, Any] = {}  # set before the fork, read by the workers


def workers() -> int:
    """Returns how many worker processes to build options with: the usable cores, at most 2 (the
    target machine), 1 where fork is unavailable or ``LLMOPT_WORKERS=1``."""
    if not sys.platform.startswith("linux") or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cores = len(os.sched_getaffinity(0))
    asked = os.environ.get("LLMOPT_WORKERS", "")
    return max(1, min(int(asked) if asked.isdigit() else 2, cores))


def split(keys: Sequence[Any], n: int) -> list[list[int]]:
    """Returns ``n`` lists of job indices: jobs with the same key together, groups balanced by job
    count (largest group first onto the lightest list), each list in job order."""
    groups: dict[Any, list[int]] = {}
    for j, k in enumerate(keys):
        groups.setdefault(k, []).append(j)
    bins: list[list[int]] = [[] for _ in range(n)]
    for g in sorted(groups.values(), key=len, reverse=True):
        min(bins, key=len).extend(g)
    return [sorted(b) for b in bins if b]


def _work(idx: list[int]) -> list[tuple[int, Any]]:
    from llmopt_solver.plan.options import build_job_options

    catalog, plan, base, only = _STATE["catalog"], _STATE["plan"], _STATE["base"], _STATE["only"]
    sub = plan.model_copy(update={"jobs": [plan.jobs[i] for i in idx]})
    out = build_job_options(catalog, sub, base, only_engines=only, parallel=False)
    for jo in out:
        jo.full_of = None  # type: ignore[assignment]  # a closure: not sent back (rebuilt by the caller)
    return [(idx[k], jo) for k, jo in enumerate(out)]


def build_in_workers(catalog: Catalog, plan: PlanFile, base: Path | None, only_engines: tuple[str, ...] | None,
                     groups: list[list[int]], on_done: Callable[[int, Any], None]) -> None:
    """Builds the options of each group of jobs in a forked worker; calls ``on_done(j, options)``
    for every job as its group comes back."""
    _STATE.update(catalog=catalog, plan=plan, base=base, only=only_engines)
    try:
        with multiprocessing.get_context("fork").Pool(len(groups)) as pool:
            for result in pool.imap_unordered(_work, groups):
                for j, jo in result:
                    on_done(j, jo)
    finally:
        _STATE.clear()
