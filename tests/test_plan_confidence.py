"""Plans at a confidence level: scheduled on pessimistic batch times, never cheaper than the median plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmopt_solver.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _plan(runner, *extra):
    r = runner.invoke(cli, ["plan", str(EXAMPLES / "plan_small.json"), "--json", "--no-progress", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_confidence_schedules_on_pessimistic_batch_times(runner):
    base = _plan(runner)
    costs = [base["total_cost_usd"]]
    for p in (0.7, 0.9, 0.99):
        doc = _plan(runner, "--confidence", str(p))
        for job in doc["jobs"]:
            for a in job["assignments"]:
                # batch_time_s stays what `llmopt predict` says; the schedule uses the P-quantile.
                assert a["planned_batch_time_s"] > a["batch_time_s"]
                run_h = a["startup_s"] / 3600 + a["batches_per_instance"] * a["planned_batch_time_s"] / 3600
                assert a["end_h"] - a["start_h"] == pytest.approx(run_h, abs=2e-6)  # JSON hours have 6 decimals
        costs.append(doc["total_cost_usd"])
    assert all(b >= a * (1 - 1e-9) for a, b in zip(costs, costs[1:])), costs


def test_confidence_in_the_plan_file(runner, tmp_path):
    doc = json.loads((EXAMPLES / "plan_small.json").read_text())
    doc["confidence"] = 0.9
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    r = runner.invoke(cli, ["plan", str(path), "--json"])
    assert r.exit_code == 0
    a = json.loads(r.stdout)["jobs"][0]["assignments"][0]
    assert a["planned_batch_time_s"] > a["batch_time_s"]
    doc["confidence"] = 1.5
    path.write_text(json.dumps(doc))
    bad = runner.invoke(cli, ["plan", str(path)])
    assert bad.exit_code == 2 and "confidence" in bad.stderr
