"""The solve wrapper: runs a pulp problem on CBC (or HiGHS) and returns llmopt's own result.

Raw pulp status codes never leave this module.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pulp

from .errors import InputError, SolverError

SolverName = Literal["cbc", "highs"]


class Status(StrEnum):
    OPTIMAL = "optimal"
    FEASIBLE = "feasible-with-gap"  # stopped (time limit) with an integer solution, not proven
    INFEASIBLE = "infeasible"
    ERROR = "error"  # solver failure, or time limit with no solution


@dataclass
class SolveResult:
    """What a solve returned: status, objective, proven gap, wall time, and variable values."""

    status: Status
    solver: str
    wall_s: float
    objective: float | None = None
    best_bound: float | None = None
    gap: float | None = None  # relative, (objective - bound) / objective
    values: dict[Any, float] = field(default_factory=dict)  # key -> value, as the builder named them

    @property
    def has_solution(self) -> bool:
        return self.status in (Status.OPTIMAL, Status.FEASIBLE)


def _cbc_path() -> str | None:
    try:
        import cbcbox  # shipped by pulp[cbc]

        path = cbcbox.cbc_bin_path()
        return path if os.path.exists(path) else None
    except ImportError:  # pragma: no cover - pulp[cbc] always brings it
        return None


def _make_solver(name: SolverName, time_limit_s: float | None, gap_rel: float, tmp: str) -> Any:
    if name == "cbc":
        path = _cbc_path()
        # threads=1: same input, same answer (parallel branch-and-bound is not deterministic).
        solver = pulp.COIN_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1,
                               path=path) if path else None
        if solver is None or not solver.available():
            raise SolverError("solver: CBC not found; reinstall with `pip install 'pulp[cbc]>=3.3.1,<4'`.")
        solver.tmpDir = tmp
        return solver
    if name == "highs":
        try:
            import highspy  # noqa: F401
        except ImportError:
            raise InputError("--solver: 'highs' needs the optional extra: pip install 'llmopt[highs]'; allowed: cbc, highs.") from None
        return pulp.HiGHS(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1)
    raise InputError(f"--solver: {name!r} is not a solver; allowed: cbc, highs.")


def solve_problem(
    prob: pulp.LpProblem,
    variables: dict[Any, pulp.LpVariable],
    solver: SolverName = "cbc",
    time_limit_s: float | None = None,
    gap_rel: float = 0.0,
) -> SolveResult:
    """Solves ``prob`` and returns a SolveResult with ``values`` keyed like ``variables``."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="llmopt-") as tmp:
        s = _make_solver(solver, time_limit_s, gap_rel, tmp)
        try:
            if solver == "highs":
                import contextlib
                import io

                with contextlib.redirect_stdout(io.StringIO()):  # highspy prints a banner
                    prob.solve(s)
            else:
                prob.solve(s)
        except pulp.PulpSolverError as exc:
            return SolveResult(Status.ERROR, solver, time.perf_counter() - t0, values={"error": str(exc)})
    wall = time.perf_counter() - t0
    # prob.status: 1 optimal, -1 infeasible; sol_status: 1 optimal, 2 integer feasible (limit hit).
    if prob.status == pulp.LpStatusInfeasible or prob.sol_status == pulp.LpSolutionInfeasible:
        return SolveResult(Status.INFEASIBLE, solver, wall)
    if prob.sol_status == pulp.LpSolutionOptimal and prob.status == pulp.LpStatusOptimal:
        status = Status.OPTIMAL
    elif prob.sol_status == pulp.LpSolutionIntegerFeasible:
        status = Status.FEASIBLE
    else:
        return SolveResult(Status.ERROR, solver, wall)
    values = {k: (v.value() or 0.0) for k, v in variables.items()}
    obj = pulp.value(prob.objective)
    objective = float(obj) if obj is not None else 0.0
    bound = None
    gap = 0.0 if status is Status.OPTIMAL else None
    if status is Status.OPTIMAL:
        bound = objective
    return SolveResult(status, solver, wall, objective=objective, best_bound=bound, gap=gap, values=values)
