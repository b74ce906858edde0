"""The optional HiGHS path agrees with CBC, and its C++ banner never reaches --json stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("highspy")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SOLVE = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
         "--safety-factor", "0.87", "--slo-tps", "100", "--json"]


def _run(args):
    r = subprocess.run([sys.executable, "-m", "llmopt_solver", *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # fails if anything but the JSON document reached stdout


def test_single_job_highs_equals_cbc(original_json):
    cbc, highs = original_json, _run(SOLVE + ["--solver", "highs"])  # SOLVE is the original example
    assert cbc["solver"]["name"] == "cbc"
    assert highs["solver"]["name"] == "highs" and highs["solver"]["status"] == "optimal"
    assert highs["best"]["instance"] == cbc["best"]["instance"]
    assert highs["best"]["cost_per_million_tokens_usd"] == cbc["best"]["cost_per_million_tokens_usd"]


def test_plan_highs_within_the_proven_bounds_of_cbc():
    path = str(EXAMPLES / "plan_quota.json")
    cbc, highs = _run(["plan", path, "--json"]), _run(["plan", path, "--json", "--solver", "highs"])
    # Each solver's plan is no cheaper than the other's proven lower bound.
    assert highs["total_cost_usd"] >= cbc["lower_bound_usd"] * (1 - 1e-9)
    assert cbc["total_cost_usd"] >= highs["lower_bound_usd"] * (1 - 1e-9)
    assert highs["lower_bound_usd"] <= highs["total_cost_usd"] * (1 + 1e-9)


def test_plan_highs_gets_the_warm_start_and_honours_the_time_limit():
    """With a 1 s limit HiGHS still returns a plan (the greedy warm start at worst), within the limit."""
    path = str(EXAMPLES / "plan_quota.json")  # one solve (a budget may take two, each with the limit)
    doc = _run(["plan", path, "--json", "--solver", "highs", "--time-limit", "1", "--gap", "0"])
    assert doc["status"] in ("optimal", "feasible-with-gap")
    assert doc["total_cost_usd"] <= doc["solver"]["start_usd"] + 1e-6  # never worse than the start it was given
    assert doc["solver"]["wall_s"] <= 1.0 + 1.5  # the limit counts the model hand-over; slack for a loaded machine


def test_plan_cbc_and_highs_agree_within_the_gap():
    path = str(EXAMPLES / "plan_quota.json")
    cbc, highs = _run(["plan", path, "--json"]), _run(["plan", path, "--json", "--solver", "highs"])
    assert abs(cbc["total_cost_usd"] / highs["total_cost_usd"] - 1) <= 0.005
