"""One job end to end: build the option table, solve the MILP, re-check the pick, explain failure.

The instance pool and grids come from ``selection``; the physics from the predictor via the table;
the decision from the MILP (``milp.single_job``); the explanation from ``diagnose``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.diagnose import Diagnosis, diagnose, lost_gpu_reasons
from llmopt_solver.errors import SolverError
from llmopt_solver.milp.single_job import JobCoefficients, solve_single_job
from llmopt_solver.milp.solver import SolveResult, SolverName, Status
from llmopt_solver.predictor.memory import model_memory_gb
from llmopt_solver.table.build import BuildMemo, build_table
from llmopt_solver.table.options import JobSpec, OptionTable

COST_TIE_REL = 1e-9  # options within this relative cost are ties, broken by OptionTable.sort_key


def coefficients(table: OptionTable) -> JobCoefficients:
    """Returns the plain coefficient arrays the MILP reads."""
    p = table.pred
    return JobCoefficients(
        cost_per_million_tokens_usd=table.cost_per_million_tokens_usd, tps=table.planning_tps,
        tps_per_seq=table.planning_tps_per_seq, gpu_memory_needed_gb=table.planning_gpu_need_gb,
        gpu_capacity_gb=table.gpu_capacity_gb, host_memory_needed_gb=p.host_memory_needed_gb,
        host_memory_gb=table.host_memory_gb, slo_tps=table.job.slo_tps,
        slo_tps_per_seq=table.job.slo_tps_per_seq,
    )


def presolve(table: OptionTable) -> np.ndarray:
    """Returns the options the single-job MILP needs: per instance type, the cheapest option (over
    engines, batch sizes and offload levels) that meets every constraint on its own. Exact: no
    other option can be a cheaper pick.

    Every row of the single-job MILP is a one-option row under ``sum x = 1``, so an option is
    MILP-feasible exactly when it meets each row alone (``table.feasible``); among the feasible
    options of one instance type, any but the cheapest is matched or beaten by the cheapest. The
    MILP then decides among these champions (the original example: 1,664 options -> 81
    variables; ``--batch-size auto``: 18,304 -> 81); ties within COST_TIE_REL over all feasible
    options are broken after it by ``OptionTable.sort_key``.
    """
    c = table.cost_per_million_tokens_usd
    ok = table.usable & np.isfinite(c) & np.isfinite(table.pred.tps) & table.feasible
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        return idx
    keys = [(x.provider, x.name) for x in table.instance_list]  # one entry per (instance, engine) block
    code = {k: r for r, k in enumerate(dict.fromkeys(keys))}
    type_of = np.array([code[k] for k in keys], dtype=np.int64)
    group = type_of[table.inst_idx[idx]]
    order = np.lexsort((c[idx], group))  # by instance, then cost (stable: index order on ties)
    g = group[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return np.sort(idx[order[first]])


@dataclass
class Outcome:
    """Result of one job: table, solver result, chosen option, ranking of feasible options.

    ``milp_pick`` is the option the MILP chose; ``best`` is it, or the first by
    ``OptionTable.sort_key`` among options that cost the same within COST_TIE_REL.
    """

    table: OptionTable
    result: SolveResult
    best: int | None
    ranking: list[int]
    memory_gb: dict[str, float]
    diagnosis: Diagnosis | None = None
    lost_gpus: dict[str, str] = field(default_factory=dict)
    milp_pick: int | None = None


def memory_totals(table: OptionTable, batch_size: int | None = None, engine: str | None = None) -> dict[str, float]:
    """Returns model-level memory (GB, one copy, no parallelism) at ``batch_size`` (default: the
    job's batch size, or the largest of its grid), with ``engine``'s KV dtype when given (e.g. fp16
    under int4 AWQ weights on vLLM)."""
    job = table.job
    b = int(batch_size) if batch_size is not None else max(job.batch_sizes)
    kv = Precision(table.engine_kv.get(engine, job.kv.value)) if engine is not None else job.kv
    return model_memory_gb(table.shape, b, job.input_len, job.output_len, job.precision.bytes_per_value,
                           kv.bytes_per_value, job.precision.activation_bytes)


def recheck(catalog: Catalog, table: OptionTable, i: int, memo: BuildMemo | None = None) -> None:
    """Re-predicts option ``i`` alone and raises SolverError if it disagrees with the table.

    ``memo``: per-pool arrays shared across re-checks (never the table's own build's: independent).
    """
    job = table.job
    mode = table.mode_name(i)
    single = JobSpec(**{**job.__dict__, "batch_sizes": (int(table.batch_size[i]),),
                        "offload_ratios": (float(table.offload_ratio[i]),),
                        "weight_offload_fixed": float(table.weight_offload[i]),
                        "engines": (str(table.engine[i]),),
                        "offload_mode": "auto" if mode == "none" else mode})
    t1 = build_table(catalog, single, [table.instances[i]], memo)
    for name in ("total_s", "gpu_memory_needed_gb", "host_memory_needed_gb"):
        a, b = getattr(t1.pred, name)[0], getattr(table.pred, name)[i]
        if not np.isclose(a, b, rtol=1e-9, atol=0):
            raise SolverError(f"re-check failed: {name} {a} != {b} for {table.instances[i].name}")
    if not t1.feasible[0]:
        raise SolverError(f"re-check failed: chosen option on {table.instances[i].name} is infeasible: {t1.reasons(0)}")


def optimize(
    catalog: Catalog,
    job: JobSpec,
    instances: list[InstanceSpec],
    solver: SolverName = "cbc",
    time_limit_s: float | None = None,
) -> Outcome:
    """Returns the cheapest feasible option for ``job`` (by MILP), re-checked, with the ranking."""
    table = build_table(catalog, job, instances)
    result, pick = solve_single_job(coefficients(table), presolve(table), solver=solver, time_limit_s=time_limit_s)
    cost = table.cost_per_million_tokens_usd
    ranking = table.ranked(table.feasible & np.isfinite(cost))
    if result.status is Status.ERROR:
        raise SolverError(f"solver: {result.solver} failed or hit the time limit ({time_limit_s}s) without a solution.")
    best = pick
    if pick is not None:
        # The MILP decides; the ranking only re-checks it: a pick above the cheapest feasible
        # option is a solver error. Ties within COST_TIE_REL are broken by the stable key, so
        # output is byte-identical.
        z = cost[pick]
        low = cost[ranking[0]] if ranking else z
        if z > low * (1 + COST_TIE_REL):
            raise SolverError(f"re-check failed: the MILP picked ${z:.9g} per million tokens, above the cheapest "
                              f"feasible option's ${low:.9g}.")
        best = next((i for i in ranking if cost[i] <= z * (1 + COST_TIE_REL)), pick)  # first tie by sort_key
        recheck(catalog, table, best)
        ranking = [best] + [i for i in ranking if i != best]
    memory = memory_totals(table, None if best is None else int(table.batch_size[best]),
                           None if best is None else str(table.engine[best]))
    outcome = Outcome(table=table, result=result, best=best, ranking=ranking, memory_gb=memory, milp_pick=pick)
    if best is None:
        outcome.diagnosis = diagnose(table)
    outcome.lost_gpus = lost_gpu_reasons(table, best)
    return outcome


