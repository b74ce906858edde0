"""The solve wrapper: runs a pulp problem on CBC (or HiGHS) and returns llmopt's own result.

Raw pulp status codes never leave this module.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import pulp

from llmopt_solver.errors import InputError, SolverError

SolverName = Literal["cbc", "highs"]
SolverProgress = Callable[[float, "float | None", "float | None"], None]  # (elapsed s, incumbent, bound)
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
        increment = [] if any(o.startswith("increment ") for o in cbc_options) else ["increment 1e-9"]
        # threads=1: same input, same answer (parallel branch-and-bound is not deterministic).
        # increment 1e-9 unless the caller gives one: CBC's default cutoff increment (1e-4) discards a better solution within
        # 1e-4 of the incumbent, which is a whole option of a cents-sized job (USD objective).
        # timeMode cpu: the limit and CBC's time-driven heuristics count its own CPU seconds, not the
        # wall clock, so a busy machine does not change the answer (the limit is a safety net).
        solver = pulp.COIN_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1, path=path, timeMode="cpu",
                               warmStart=warm_start, options=[*increment, *cbc_options]) if path else None
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


def cbc_relaxation(prob: pulp.LpProblem, time_limit_s: float | None = None) -> float | None:
    """Returns the optimum of ``prob``'s LP relaxation on CBC (a lower bound), or None if unsolved.

    Overwrites the variables' values (set a warm start again afterwards).
    """
    with tempfile.TemporaryDirectory(prefix="llmopt-") as tmp:
        s = _make_solver("cbc", time_limit_s, 0.0, tmp)
        s.mip = False
        try:
            prob.solve(s)
        except pulp.PulpSolverError:
            return None
    obj = pulp.value(prob.objective)
    return float(obj) if prob.status == pulp.LpStatusOptimal and obj is not None else None


def _cbc_log_bound(path: str) -> tuple[float | None, float | None]:
    """Returns CBC's final (lower bound, gap) from its log's "Result" block, or Nones."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    tail = text[text.rfind("Result -"):] if "Result -" in text else ""
    m = re.search(r"^Lower bound:\s*(\S+)", tail, re.M)
    g = re.search(r"^Gap:\s*(\S+)", tail, re.M)
    try:
        return (float(m.group(1)) if m else None, float(g.group(1)) if g else None)
    except ValueError:
        return None, None

_CBC_NODE = re.compile(r"([-+0-9.eE]+) best solution, best possible ([-+0-9.eE]+)")
_CBC_SOLUTION = re.compile(r"Integer solution of ([-+0-9.eE]+)")


class _LogWatcher:
    """Polls CBC's log file while it runs and reports (elapsed s, incumbent, bound) every 0.5 s."""

    def __init__(self, path: str, report: SolverProgress, t0: float) -> None:
        self.path, self.report, self.t0 = path, report, t0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.incumbent: float | None = None
        self.bound: float | None = None

    def __enter__(self) -> _LogWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def _scan(self) -> None:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            return
        for m in _CBC_SOLUTION.finditer(text):
            self.incumbent = float(m.group(1))
        for m in _CBC_NODE.finditer(text):
            inc, bnd = float(m.group(1)), float(m.group(2))
            if inc < 1e49:
                self.incumbent = inc
            self.bound = bnd

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._scan()
            self.report(time.perf_counter() - self.t0, self.incumbent, self.bound)


def _solve_highs(prob: pulp.LpProblem, variables: dict[Any, pulp.LpVariable], time_limit_s: float | None,
                 gap_rel: float, warm_start: bool, t0: float) -> tuple[str, float | None, float | None, dict[Any, float]]:
    """Solves ``prob`` with highspy directly: one matrix pass (no pulp per-variable calls), the
    variables' initial values as a warm start, and the time limit counted from ``t0`` (so model
    building counts against it). Returns (status, objective, dual bound, values by key)."""
    import highspy
    import numpy as np

    cols = list(variables.values())
    pos = {id(v): k for k, v in enumerate(cols)}
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = len(cols)
    cost = np.zeros(len(cols))
    for v, c in prob.objective.items():
        cost[pos[id(v)]] = c
    lp.col_cost_ = cost
    lp.offset_ = float(prob.objective.constant)
    lp.col_lower_ = np.asarray([-inf if v.lowBound is None else v.lowBound for v in cols], dtype=float)
    lp.col_upper_ = np.asarray([inf if v.upBound is None else v.upBound for v in cols], dtype=float)
    starts, index, value, lo, up = [0], [], [], [], []
    for row in prob.constraints.values():
        for v, c in row.items():
            if c:
                index.append(pos[id(v)])
                value.append(c)
        starts.append(len(index))
        rhs = -float(row.constant)
        lo.append(rhs if row.sense in (pulp.LpConstraintGE, pulp.LpConstraintEQ) else -inf)
        up.append(rhs if row.sense in (pulp.LpConstraintLE, pulp.LpConstraintEQ) else inf)
    lp.num_row_ = len(lo)
    lp.row_lower_, lp.row_upper_ = np.asarray(lo, dtype=float), np.asarray(up, dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = len(cols), len(lo)
    lp.a_matrix_.start_ = np.asarray(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    lp.integrality_ = [highspy.HighsVarType.kInteger if v.cat == pulp.LpInteger else highspy.HighsVarType.kContinuous
                       for v in cols]
    h = new_highs(gap_rel, None if time_limit_s is None else max(0.1, float(time_limit_s) - (time.perf_counter() - t0)))
    h.passModel(lp)
    if warm_start:
        start = [v.varValue for v in cols]
        if all(x is not None for x in start):
            sol = highspy.HighsSolution()
            sol.col_value = [float(x) for x in start]
            sol.value_valid = True
            h.setSolution(sol)
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    has = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if ms == highspy.HighsModelStatus.kInfeasible:
        return "infeasible", None, None, {}
    if not has:
        return "error", None, None, {}
    x = h.getSolution().col_value
    values = {k: float(x[pos[id(v)]]) for k, v in variables.items()}
    bound = float(info.mip_dual_bound) if info.mip_dual_bound == info.mip_dual_bound else None
    status = "optimal" if ms == highspy.HighsModelStatus.kOptimal else "feasible"
    return status, float(info.objective_function_value), bound, values



def new_highs(gap_rel: float, time_limit_s: float | None = None) -> Any:
    """Returns a silent, single-threaded ``highspy.Highs`` with relative MIP gap ``gap_rel`` and
    time limit ``time_limit_s`` (seconds, None: none): the one setup every HiGHS path shares."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", float(gap_rel))
    if time_limit_s is not None:
        h.setOptionValue("time_limit", float(time_limit_s))
    return h


@contextlib.contextmanager
def silence_stdout_fd(active: bool) -> Iterator[None]:
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
    on_progress: SolverProgress | None = None,
) -> SolveResult:
    """Solves ``prob`` and returns a SolveResult with ``values`` keyed like ``variables``.

    ``read_bound``: with CBC, read its proven lower bound and gap from its log (a MIP stopped by
    ``gap_rel`` or the time limit is not proven optimal; its bound is what a user should see).
    ``warm_start``: pass the variables' initial values to CBC as a starting solution.
    ``cbc_options``: extra CBC arguments without the dash, e.g. ("passCuts 1",).
    ``on_progress``: called about every 0.5 s with (elapsed s, incumbent, bound) while CBC runs.
    HiGHS runs through highspy directly (``_solve_highs``): same warm start, honest time limit.
    """
    t0 = time.perf_counter()
    if solver == "highs":
        return _highs_result(prob, variables, time_limit_s, gap_rel, warm_start, t0)
    cbc_bound: tuple[float | None, float | None] = (None, None)  # the MIP's proven bound (CBC or HiGHS)
    with tempfile.TemporaryDirectory(prefix="llmopt-") as tmp, silence_stdout_fd(solver == "highs"):
        s = _make_solver(solver, time_limit_s, gap_rel, tmp, warm_start=warm_start and solver == "cbc",
                         cbc_options=cbc_options)
        log_path = os.path.join(tmp, "cbc.log")
        if (read_bound or on_progress is not None) and solver == "cbc":
            s.optionsDict["logPath"] = log_path
        try:
            if on_progress is not None and solver == "cbc":
                with _LogWatcher(log_path, on_progress, t0):
                    prob.solve(s)
            else:
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


def _highs_result(prob: pulp.LpProblem, variables: dict[Any, pulp.LpVariable], time_limit_s: float | None,
                  gap_rel: float, warm_start: bool, t0: float) -> SolveResult:
    """Returns the SolveResult of ``_solve_highs`` (InputError if highspy is not installed)."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        raise InputError("--solver: 'highs' needs the optional extra: pip install 'llmopt[highs]'; allowed: cbc, highs.") from None
    with silence_stdout_fd(True):
        state, obj, bound, values = _solve_highs(prob, variables, time_limit_s, gap_rel, warm_start, t0)
    wall = time.perf_counter() - t0
    if state == "infeasible":
        return SolveResult(Status.INFEASIBLE, "highs", wall)
    if state == "error" or obj is None:
        return SolveResult(Status.ERROR, "highs", wall)
    bound = obj if bound is None and state == "optimal" else bound
    if bound is not None:
        bound = min(bound, obj)
    gap = None if bound is None else ((obj - bound) / abs(obj) if obj else 0.0)
    status = Status.OPTIMAL if state == "optimal" and (gap is None or gap <= PROVEN_GAP) else Status.FEASIBLE
    return SolveResult(status, "highs", wall, objective=obj, best_bound=bound, gap=gap, values=values)
