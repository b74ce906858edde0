"""The single-job MILP: pick one (instance, offload level, batch size) option.

Reads only plain arrays from the coefficient table; never computes physics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pulp

from llmopt_solver.milp.solver import SolveResult, SolverName, Status, solve_problem


@dataclass(frozen=True)
class JobCoefficients:
    """Plain per-option coefficients of one job (arrays of length N)."""

    cost_per_million_tokens_usd: np.ndarray
    tps: np.ndarray
    tps_per_seq: np.ndarray
    gpu_memory_needed_gb: np.ndarray
    gpu_capacity_gb: np.ndarray  # safety factor x memory, per GPU
    host_memory_needed_gb: np.ndarray
    host_memory_gb: np.ndarray
    slo_tps: float
    slo_tps_per_seq: float


OBJECTIVE_SCALE = 1e6  # objective units per unit of relative cost above the cheapest candidate


def scaled_cost(cost: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Returns OBJECTIVE_SCALE x (cost / cheapest candidate's cost - 1), the MILP's objective
    coefficients (0 for the cheapest candidate); cost unchanged if the cheapest is not positive."""
    low = float(np.min(cost[candidates])) if len(candidates) else 0.0
    if not low > 0:
        return cost
    return OBJECTIVE_SCALE * (cost / low - 1.0)


def build_single_job(c: JobCoefficients, candidates: np.ndarray) -> tuple[pulp.LpProblem, dict[int, pulp.LpVariable]]:
    """Returns the single-job MILP over option indices ``candidates`` and its variables by index.

    Sets:       O = candidate options (instance i, offload level k, batch size b).
    Parameters: c_o cost per million tokens (USD); tps_o, seq_o predicted tokens/s (batch, per
                sequence); g_o GPU memory needed per GPU and G_o = sf * capacity (GB);
                m_o host memory needed and M_o host memory (GB); S, S_seq the SLOs.
    Variables:  x_o in {0, 1}: option o is chosen.
    Objective:  min  sum_o K (c_o / c_min - 1) x_o   (c_min = min over O of c_o, K = OBJECTIVE_SCALE)
                which with sum x = 1 is K (sum_o c_o x_o / c_min - 1): the same argmin as the
                cost, measured in millionths of the cheapest option's cost above it, so CBC's
                absolute tolerances (1e-7 on reduced costs) cannot accept a pick more than
                ~1e-13 relative above the cheapest; ``solve_single_job`` reports it back in USD.
    Subject to: sum_o x_o = 1                         (exactly one option)
                sum_o (g_o - G_o) x_o <= 0            (GPU memory)
                sum_o (m_o - M_o) x_o <= 0            (host memory)
                sum_o tps_o x_o >= S                  (throughput SLO)
                sum_o seq_o x_o >= S_seq              (per-sequence SLO)
    """
    prob = pulp.LpProblem("llmopt_single_job", pulp.LpMinimize)
    x = {int(o): prob.add_variable(f"x_{int(o)}", cat=pulp.LpBinary) for o in candidates}

    def expr(coef: np.ndarray) -> pulp.LpAffineExpression:
        return pulp.LpAffineExpression([(x[o], float(coef[o])) for o in x])

    prob += expr(scaled_cost(c.cost_per_million_tokens_usd, candidates))
    # sum x = 1
    prob += pulp.lpSum(x.values()) == 1, "one_option"
    # GPU memory per GPU within the safety factor
    prob += expr(c.gpu_memory_needed_gb - c.gpu_capacity_gb) <= 0, "gpu_memory"
    # host memory
    prob += expr(c.host_memory_needed_gb - c.host_memory_gb) <= 0, "host_memory"
    # SLOs
    if c.slo_tps > 0:
        prob += expr(c.tps) >= c.slo_tps, "slo_tps"
    if c.slo_tps_per_seq > 0:
        prob += expr(c.tps_per_seq) >= c.slo_tps_per_seq, "slo_tps_per_seq"
    return prob, x


def solve_single_job(
    c: JobCoefficients,
    candidates: np.ndarray,
    solver: SolverName = "cbc",
    time_limit_s: float | None = None,
) -> tuple[SolveResult, int | None]:
    """Solves the single-job MILP; returns the result and the chosen option index (or None)."""
    if len(candidates) == 0:
        return SolveResult(Status.INFEASIBLE, solver, 0.0), None
    prob, x = build_single_job(c, candidates)
    res = solve_problem(prob, x, solver=solver, time_limit_s=time_limit_s, gap_rel=0.0)
    if not res.has_solution:
        return res, None
    chosen = [o for o, v in res.values.items() if v > 0.5]
    pick = chosen[0] if len(chosen) == 1 else None
    if pick is not None:  # objective and bound in USD per million tokens, not in scaled units
        cost = c.cost_per_million_tokens_usd
        low = float(np.min(cost[candidates]))
        bound = None if res.best_bound is None else (low * (1.0 + res.best_bound / OBJECTIVE_SCALE) if low > 0 else res.best_bound)
        res = dataclasses.replace(res, objective=float(cost[pick]), best_bound=bound)
    return res, pick
