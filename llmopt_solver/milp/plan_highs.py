"""The plan MILP on HiGHS through highspy's own API: numpy CSR arrays, the warm start, the limit.

Reads the builder's own rows (``PlanModel.rows``), never pulp's ``prob.constraints`` (deprecated
in pulp 3, an error under the tests). The time limit counts from the caller's ``t0``, so the
matrix hand-over counts against it. Before branching, the LP relaxation: when the warm start is
already within ``gap_rel`` of the LP bound the start is returned as proven within the gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pulp

from llmopt_solver.errors import InputError
from llmopt_solver.milp.plan_model import PlanModel
from llmopt_solver.milp.solver import PROVEN_GAP, SolveResult, Status, new_highs, silence_stdout_fd


@dataclass
class PlanArrays:
    """The model as arrays: costs, column bounds, integrality, row bounds and a CSR matrix."""

    keys: list[Any]
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integer: np.ndarray  # bool per column
    row_lower: np.ndarray
    row_upper: np.ndarray
    start: np.ndarray  # CSR row starts (num_rows + 1)
    index: np.ndarray
    value: np.ndarray
    offset: float = 0.0


def plan_arrays(model: PlanModel) -> PlanArrays:
    """Returns ``model`` as arrays (columns in the builder's order of ``model.variables``)."""
    keys = list(model.variables)
    cols = list(model.variables.values())
    pos = {v.name: k for k, v in enumerate(cols)}
    n = len(cols)
    cost = np.zeros(n)
    obj = model.prob.objective
    if obj is not None:
        for v, c in obj.items():
            cost[pos[v.name]] = c
    inf = np.inf
    lower = np.fromiter((-inf if v.lowBound is None else v.lowBound for v in cols), dtype=float, count=n)
    upper = np.fromiter((inf if v.upBound is None else v.upBound for v in cols), dtype=float, count=n)
    integer = np.fromiter((v.cat == pulp.LpInteger for v in cols), dtype=bool, count=n)
    lengths = np.fromiter((len(r) for r in model.rows), dtype=np.int64, count=len(model.rows))
    index = np.fromiter((pos[v.name] for r in model.rows for v in r), dtype=np.int32, count=int(lengths.sum()))
    value = np.fromiter((c for r in model.rows for c in r.values()), dtype=float, count=int(lengths.sum()))
    rhs = np.fromiter((-float(r.constant) for r in model.rows), dtype=float, count=len(model.rows))
    sense = np.fromiter((r.sense for r in model.rows), dtype=np.int8, count=len(model.rows))
    row_lower = np.where(sense >= 0, rhs, -inf)  # pulp: GE 1, EQ 0, LE -1
    row_upper = np.where(sense <= 0, rhs, inf)
    start = np.zeros(len(model.rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=start[1:])
    return PlanArrays(keys, cost, lower, upper, integer, row_lower, row_upper, start, index, value,
                      float(obj.constant) if obj is not None else 0.0)


def _highs(arrays: PlanArrays, gap_rel: float) -> Any:
    """Returns a quiet one-thread Highs holding ``arrays`` as a MIP."""
    import highspy

    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    n, m = len(arrays.cost), len(arrays.row_lower)
    lp.num_col_, lp.num_row_ = n, m
    lp.col_cost_ = arrays.cost
    lp.offset_ = arrays.offset
    lp.col_lower_ = np.nan_to_num(arrays.col_lower, neginf=-inf, posinf=inf)
    lp.col_upper_ = np.nan_to_num(arrays.col_upper, neginf=-inf, posinf=inf)
    lp.row_lower_ = np.nan_to_num(arrays.row_lower, neginf=-inf, posinf=inf)
    lp.row_upper_ = np.nan_to_num(arrays.row_upper, neginf=-inf, posinf=inf)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
    lp.a_matrix_.start_ = arrays.start
    lp.a_matrix_.index_ = arrays.index
    lp.a_matrix_.value_ = arrays.value
    lp.integrality_ = [highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in arrays.integer]
    h = new_highs(gap_rel)
    h.passModel(lp)
    return h


def _remaining(time_limit_s: float | None, t0: float) -> float | None:
    return None if time_limit_s is None else max(0.1, float(time_limit_s) - (time.perf_counter() - t0))


def lp_bound_usd(h: Any, arrays: PlanArrays, time_limit_s: float | None, t0: float) -> float | None:
    """Returns the LP relaxation's optimum (a lower bound on the MILP), or None if not solved."""
    import highspy

    h.setOptionValue("solve_relaxation", True)
    left = _remaining(time_limit_s, t0)
    if left is not None:
        h.setOptionValue("time_limit", left)
    h.run()
    h.setOptionValue("solve_relaxation", False)
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return float(h.getInfo().objective_function_value)


def solve_plan_highs(model: PlanModel, time_limit_s: float | None, gap_rel: float,
                     start: dict[Any, float] | None, t0: float | None = None,
                     node_limit: int | None = None) -> SolveResult:
    """Solves ``model`` with HiGHS, warm-started from ``start``; the LP relaxation first.
    ``node_limit``: branch-and-bound nodes at most (HiGHS's ``mip_max_nodes``).

    InputError if highspy is not installed.
    """
    t0 = time.perf_counter() if t0 is None else t0
    try:
        import highspy
    except ImportError:
        raise InputError("--solver: 'highs' needs the optional extra: pip install 'llmopt[highs]'; allowed: cbc, highs.") from None
    with silence_stdout_fd(True):
        arrays = plan_arrays(model)
        h = _highs(arrays, gap_rel)
        if node_limit is not None:
            h.setOptionValue("mip_max_nodes", int(node_limit))
        x0 = None if start is None else np.fromiter((start.get(k, 0.0) for k in arrays.keys), dtype=float,
                                                    count=len(arrays.keys))
        if x0 is not None and gap_rel > 0:
            # the LP relaxation first: a start within the gap of its bound needs no branching
            start_obj = float(arrays.cost @ x0) + arrays.offset
            lp = lp_bound_usd(h, arrays, time_limit_s, t0)
            if lp is not None and start_obj - lp <= gap_rel * abs(start_obj):
                lp = min(lp, start_obj)
                lp_gap = (start_obj - lp) / abs(start_obj) if start_obj else 0.0
                return SolveResult(Status.OPTIMAL if lp_gap <= PROVEN_GAP else Status.FEASIBLE, "highs",
                                   time.perf_counter() - t0, objective=start_obj, best_bound=lp, gap=lp_gap,
                                   values=dict(zip(arrays.keys, x0.tolist(), strict=True)))
        if x0 is not None:
            sol = highspy.HighsSolution()
            sol.col_value = x0.tolist()
            sol.value_valid = True
            h.setSolution(sol)
        left = _remaining(time_limit_s, t0)
        if left is not None:
            h.setOptionValue("time_limit", left)
        h.run()
        ms, info = h.getModelStatus(), h.getInfo()
    wall = time.perf_counter() - t0
    if ms == highspy.HighsModelStatus.kInfeasible:
        return SolveResult(Status.INFEASIBLE, "highs", wall)
    if info.primal_solution_status != 2:  # kSolutionStatusFeasible
        return SolveResult(Status.ERROR, "highs", wall)
    x = np.asarray(h.getSolution().col_value, dtype=float)
    obj = float(info.objective_function_value)
    raw = float(info.mip_dual_bound)
    bound: float | None = raw if np.isfinite(raw) else (obj if ms == highspy.HighsModelStatus.kOptimal else None)
    if bound is not None:
        bound = min(bound, obj)
    gap = None if bound is None else ((obj - bound) / abs(obj) if obj else 0.0)
    optimal = ms == highspy.HighsModelStatus.kOptimal and (gap is None or gap <= PROVEN_GAP)
    return SolveResult(Status.OPTIMAL if optimal else Status.FEASIBLE, "highs", wall, objective=obj, best_bound=bound,
                       gap=gap, values=dict(zip(arrays.keys, x.tolist(), strict=True)))
