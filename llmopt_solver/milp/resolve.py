"""The single-job MILP built once and re-solved for many throughput SLOs (``solve --sweep-slo``).

Only the right-hand side of the SLO row ``sum_o tps_o x_o >= S`` changes between solves; every
solve is warm-started from the previous pick. With CBC the pulp problem is kept and re-sent (CBC
is a separate program); with HiGHS the model stays in-process in one ``highspy.Highs`` object,
and a re-solve is ``changeRowBounds`` + ``setSolution`` + ``run``.

Reads only plain arrays (``JobCoefficients``); never computes physics.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from llmopt_solver.errors import InputError
from llmopt_solver.milp.single_job import JobCoefficients, build_single_job
from llmopt_solver.milp.solver import SolverName, Status, new_highs, silence_stdout_fd, solve_problem


class SloResolver:
    """One single-job MILP over ``candidates`` whose throughput SLO is changed and re-solved.

    ``solve(slo_tps)`` returns (status, chosen option index or None). The model is the one of
    ``build_single_job`` (one option; GPU memory; host memory; SLO; per-sequence SLO).
    """

    def __init__(self, c: JobCoefficients, candidates: np.ndarray, solver: SolverName = "cbc",
                 time_limit_s: float | None = None) -> None:
        self.solver, self.time_limit_s = solver, time_limit_s
        self.cand = np.asarray(candidates, dtype=np.int64)
        self._last: int | None = None
        if solver == "highs":
            self._h = _highs_model(c, self.cand, time_limit_s)
            self._slo_row = 3  # rows: one_option, gpu_memory, host_memory, slo_tps, slo_tps_per_seq
        else:
            # A positive placeholder makes the SLO row exist; its RHS is set per solve.
            self._prob, self._x = build_single_job(dataclasses.replace(c, slo_tps=1.0), self.cand)
            self._row = self._prob.get_constraint_by_name("slo_tps")

    def solve(self, slo_tps: float) -> tuple[Status, int | None]:
        """Re-solves with SLO ``slo_tps`` (tokens/s); returns the status and the chosen option."""
        if len(self.cand) == 0:
            return Status.INFEASIBLE, None
        status, chosen = self._solve_highs(slo_tps) if self.solver == "highs" else self._solve_cbc(slo_tps)
        if chosen is not None:
            self._last = chosen
        return status, chosen

    def _solve_cbc(self, slo_tps: float) -> tuple[Status, int | None]:
        self._row.changeRHS(float(slo_tps))
        for o, v in self._x.items():
            v.setInitialValue(1.0 if o == self._last else 0.0)
        res = solve_problem(self._prob, self._x, solver="cbc", time_limit_s=self.time_limit_s, gap_rel=0.0,
                            warm_start=self._last is not None)
        if not res.has_solution:
            return res.status, None
        return res.status, max(res.values, key=lambda o: res.values[o])

    def _solve_highs(self, slo_tps: float) -> tuple[Status, int | None]:
        import highspy

        h = self._h
        h.changeRowBounds(self._slo_row, float(slo_tps), highspy.kHighsInf)
        if self._last is not None:
            sol = highspy.HighsSolution()
            sol.col_value = (self.cand == self._last).astype(float).tolist()
            sol.value_valid = True
            h.setSolution(sol)
        with silence_stdout_fd(True):
            h.run()
        ms = h.getModelStatus()
        if ms == highspy.HighsModelStatus.kInfeasible:
            return Status.INFEASIBLE, None
        if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return Status.ERROR, None
        x = np.asarray(h.getSolution().col_value)
        status = Status.OPTIMAL if ms == highspy.HighsModelStatus.kOptimal else Status.FEASIBLE
        return status, int(self.cand[int(np.argmax(x))])


def _highs_model(c: JobCoefficients, cand: np.ndarray, time_limit_s: float | None) -> Any:
    """Returns a ``highspy.Highs`` holding the single-job MILP over ``cand`` (column-wise, dense:
    every option has a coefficient in each of the five rows), SLO row at 0."""
    try:
        import highspy
    except ImportError:
        raise InputError("--solver: 'highs' needs the optional extra: pip install 'llmopt[highs]'; allowed: cbc, highs.") from None
    n, inf = len(cand), highspy.kHighsInf
    rows = np.vstack([np.ones(n), (c.gpu_memory_needed_gb - c.gpu_capacity_gb)[cand],
                      (c.host_memory_needed_gb - c.host_memory_gb)[cand], c.tps[cand], c.tps_per_seq[cand]])
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, rows.shape[0]
    lp.col_cost_ = np.asarray(c.cost_per_million_tokens_usd[cand], dtype=float)
    lp.col_lower_, lp.col_upper_ = np.zeros(n), np.ones(n)
    lp.row_lower_ = np.array([1.0, -inf, -inf, 0.0, float(c.slo_tps_per_seq)])
    lp.row_upper_ = np.array([1.0, 0.0, 0.0, inf, inf])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, rows.shape[0]
    lp.a_matrix_.start_ = np.arange(0, rows.size + 1, rows.shape[0], dtype=np.int32)
    lp.a_matrix_.index_ = np.tile(np.arange(rows.shape[0], dtype=np.int32), n)
    lp.a_matrix_.value_ = np.asarray(rows.T.reshape(-1), dtype=float)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    with silence_stdout_fd(True):
        h = new_highs(0.0, time_limit_s)
        h.passModel(lp)
    return h
