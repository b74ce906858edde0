"""A budget is decided from the plan without it: its bound, its best plan, and at most one more solve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmopt_solver.errors import InfeasibleError
from llmopt_solver.plan.run import plan_from_file

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _with_budget(tmp_path: Path, budget_usd: float) -> Path:
    doc = json.loads((EXAMPLES / "plan_quota.json").read_text())
    doc["budget_usd"] = budget_usd
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def cheapest_usd() -> float:
    res = plan_from_file(EXAMPLES / "plan_quota.json", gap_rel=0.0, time_limit_s=60)
    assert res.solve.status.value == "optimal"
    return res.total_cost_usd


def test_budget_just_below_the_optimum_quotes_the_exact_cheapest_plan(tmp_path, cheapest_usd):
    budget = cheapest_usd - 0.01
    with pytest.raises(InfeasibleError) as exc:
        plan_from_file(_with_budget(tmp_path, budget), time_limit_s=60)
    text = str(exc.value)
    assert f"budget ${budget:,.2f} too small by $" in text
    assert f"plan found costs ${cheapest_usd:,.2f}" in text or f"cheapest plan costs ${cheapest_usd:,.2f}" in text


def test_budget_below_the_bound_is_answered_from_the_bound(tmp_path, cheapest_usd):
    with pytest.raises(InfeasibleError, match=r"too small by \$") as exc:
        plan_from_file(_with_budget(tmp_path, cheapest_usd * 0.5), time_limit_s=60)
    assert f"${cheapest_usd:,.2f}" in str(exc.value) or "none costs less than" in str(exc.value)


def test_budget_just_above_the_optimum_is_met(tmp_path, cheapest_usd):
    res = plan_from_file(_with_budget(tmp_path, cheapest_usd + 0.01), time_limit_s=60)
    assert res.total_cost_usd <= cheapest_usd + 0.01 + 1e-9
