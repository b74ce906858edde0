"""The solve wrapper: runs a pulp problem on CBC (or HiGHS) and returns llmopt's own result.

Raw pulp status codes never leave this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Iterator, Literal

import pulp

from llmopt_solver.errors import InputError, SolverError

SolverName = Literal["cbc", "highs"]
PROVEN_GAP = 1e-6  # relative gap below which a solution counts as proven optimal


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
    message: str = ""  # the solver's own words when it failed (status ERROR)

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


def _make_solver(name: SolverName, time_limit_s: float | None, gap_rel: float, tmp: str,
                 warm_start: bool = False, cbc_options: tuple[str, ...] = ()) -> Any:
    if name == "cbc":
        path = _cbc_path()
        # threads=1: same input, same answer (parallel branch-and-bound is not deterministic).
        solver = pulp.COIN_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1,
                               path=path, warmStart=warm_start, options=list(cbc_options)) if path else None
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


def _cbc_log_bound(path: str) -> tuple[float | None, float | None]:
    """Returns CBC's final (lower bound, gap) from its log's "Result" block, or Nones."""
    import re

    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    tail = text[text.rfind("Result -"):] if "Result -" in text else ""
    m = re.search(r"^Lower bound:\s*(\S+)", tail, re.M)
    g = re.search(r"^Gap:\s*(\S+)", tail, re.M)
    try:
        return (float(m.group(1)) if m else None, float(g.group(1)) if g else None)
    except ValueError:
        return None, None


@contextlib.contextmanager
def _silence_stdout_fd(active: bool) -> Iterator[None]:
    """Points file descriptor 1 at /dev/null while active: HiGHS prints its banner from C++
    straight to fd 1 (even with msg=False), which would corrupt ``--json`` output on stdout."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def solve_problem(
    prob: pulp.LpProblem,
    variables: dict[Any, pulp.LpVariable],
    solver: SolverName = "cbc",
    time_limit_s: float | None = None,
    gap_rel: float = 0.0,
    read_bound: bool = False,
    warm_start: bool = False,
    cbc_options: tuple[str, ...] = (),
) -> SolveResult:
    """Solves ``prob`` and returns a SolveResult with ``values`` keyed like ``variables``.

    ``read_bound``: with CBC, read its proven lower bound and gap from its log (a MIP stopped by
    ``gap_rel`` or the time limit is not proven optimal; its bound is what a user should see).
    ``warm_start``: pass the variables' initial values to CBC as a starting solution.
    ``cbc_options``: extra CBC arguments without the dash, e.g. ("passCuts 1",).
    """
    t0 = time.perf_counter()
    cbc_bound: tuple[float | None, float | None] = (None, None)  # the MIP's proven bound (CBC or HiGHS)
    with tempfile.TemporaryDirectory(prefix="llmopt-") as tmp, _silence_stdout_fd(solver == "highs"):
        s = _make_solver(solver, time_limit_s, gap_rel, tmp, warm_start=warm_start and solver == "cbc",
                         cbc_options=cbc_options)
        log_path = os.path.join(tmp, "cbc.log")
        if read_bound and solver == "cbc":
            s.optionsDict["logPath"] = log_path
        try:
            prob.solve(s)
        except pulp.PulpSolverError as exc:
            return SolveResult(Status.ERROR, solver, time.perf_counter() - t0, message=str(exc))
        if read_bound and solver == "cbc" and os.path.exists(log_path):
            cbc_bound = _cbc_log_bound(log_path)
        elif read_bound and solver == "highs" and getattr(prob, "solverModel", None) is not None:
            info = prob.solverModel.getInfo()
            if prob.solverModel.getNumCol() and info.mip_dual_bound == info.mip_dual_bound:  # not NaN
                cbc_bound = (float(info.mip_dual_bound), None)
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
    if cbc_bound[0] is not None:
        bound = min(cbc_bound[0], objective)
        gap = (objective - bound) / abs(objective) if objective else 0.0
        # CBC says "Optimal" when it stops at gapRel; only a closed gap is proven optimal.
        if status is Status.OPTIMAL and gap > PROVEN_GAP:
            status = Status.FEASIBLE
    return SolveResult(status, solver, wall, objective=objective, best_bound=bound, gap=gap, values=values)
