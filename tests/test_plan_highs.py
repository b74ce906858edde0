"""The plan MILP on HiGHS through highspy's own API (in process: no pulp deprecation on the way)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmopt_solver.milp.plan_greedy import greedy_start
from llmopt_solver.milp.plan_model import build_plan_milp
from llmopt_solver.milp.solver import Status
from llmopt_solver.plan.data import canonical_quotas, plan_data
from llmopt_solver.plan.input import load_plan
from llmopt_solver.plan.options import build_job_options
from llmopt_solver.plan.solving import model_value, solve_model

pytest.importorskip("highspy")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def quota_model(catalog):
    plan = canonical_quotas(catalog, load_plan(EXAMPLES / "plan_quota.json"))
    data, _ = plan_data(plan, build_job_options(catalog, plan, EXAMPLES))
    return build_plan_milp(data, "cost"), greedy_start(data)


def test_highs_and_cbc_agree_at_gap_zero(quota_model):
    model, start = quota_model
    cbc = solve_model(model, "cbc", 60, 0.0, start)
    highs = solve_model(model, "highs", 60, 0.0, start)
    assert highs.status is Status.OPTIMAL and cbc.status is Status.OPTIMAL
    assert highs.objective == pytest.approx(cbc.objective, rel=1e-7)
    assert model_value(model, highs.values) == pytest.approx(highs.objective, rel=1e-9)


def test_lp_first_returns_the_start_within_the_gap(quota_model):
    model, start = quota_model
    start_usd = model_value(model, start)
    res = solve_model(model, "highs", 60, 0.5, start)  # a start within 50% of the LP bound: no branching
    assert res.objective == pytest.approx(start_usd, rel=1e-12)
    assert res.best_bound is not None and res.best_bound <= res.objective
    assert res.gap is not None and res.gap <= 0.5
    exact = solve_model(model, "highs", 60, 0.0, start)
    assert res.best_bound <= exact.objective * (1 + 1e-9)  # the LP bound bounds the optimum
