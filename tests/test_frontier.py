"""Frontier laws (hypothesis): no point dominated, the MILP pick on its frontier, sweep cost monotone."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmopt_solver.catalog.precision import parse_precision
from llmopt_solver.cli import cli
from llmopt_solver.cli.common import make_job, open_catalog
from llmopt_solver.errors import InputError
from llmopt_solver.frontier import frontier, pareto, parse_sweep, sweep_options, sweep_slo
from llmopt_solver.optimize import optimize
from llmopt_solver.selection import offload_levels, select_instances

CAT = open_catalog((), None)
POOL = select_instances(CAT, providers=["aws"])


def _outcome(model: str, batch: int | str, inp: int, out: int, slo: float):
    job = make_job(CAT, model, batch, inp, out, 0.87, parse_precision("2"), None, offload_levels(0.25),
                   "auto", False, False, slo)
    return optimize(CAT, job, POOL)


def _dominated(cost, speed, p, pool) -> bool:
    return any(cost[q] <= cost[p] and speed[q] >= speed[p] and (cost[q] < cost[p] or speed[q] > speed[p])
               for q in pool)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=0, max_size=40))
def test_pareto_is_exactly_the_undominated_set(pts):
    """On small integer grids (many exact ties) the result is exactly the set no point dominates."""
    cost = np.array([p[0] for p in pts], dtype=float)
    speed = np.array([p[1] for p in pts], dtype=float)
    idx = np.arange(len(pts))
    got = pareto(cost, speed, idx)
    want = [i for i in idx if not _dominated(cost, speed, i, idx)]
    assert sorted(got) == sorted(int(i) for i in want)
    assert [cost[i] for i in got] == sorted(cost[i] for i in got)  # cheapest first


MODELS = st.sampled_from(["OPT-1.3B", "OPT-2.7B", "OPT-6.7B", "Llama-2-13B"])


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODELS, st.sampled_from([1, 8, 32, "auto"]), st.sampled_from([128, 512]), st.sampled_from([32, 256]),
       st.floats(0, 4000), st.integers(1, 10**6))
def test_real_frontier_undominated_and_contains_the_pick(model, batch, inp, out, slo, n):
    o = _outcome(model, batch, inp, out, slo)
    if o.best is None:
        return
    f = frontier(o.table, o.best, n)
    t = o.table
    feas = np.nonzero(t.feasible & np.isfinite(t.cost_per_million_tokens_usd))[0]
    cost, tps = t.cost_per_million_tokens_usd, t.pred.tps
    for p in f.points:
        assert not _dominated(cost, tps, p, feas)
    assert o.best in f.points  # the MILP pick is on the frontier for its SLO
    assert f.to_json()["pick_on_frontier"]
    # Job frontier: cost rises, time falls along it, and none dominated.
    jc = np.array([f.record(i, True)["job_cost_usd"] for i in f.job_points])
    jt = np.array([f.record(i, True)["job_time_h"] for i in f.job_points])
    assert np.all(np.diff(jc) >= 0) and np.all(np.diff(jt) <= 1e-9)


try:
    import highspy  # noqa: F401

    SOLVERS = ["cbc", "highs"]
except ImportError:  # pragma: no cover - the test extra installs it
    SOLVERS = ["cbc"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODELS, st.sampled_from([8, 32, "auto"]), st.lists(st.floats(0, 6000), min_size=2, max_size=6),
       st.sampled_from([0.0, 500.0, 3000.0]), st.sampled_from(SOLVERS))
def test_sweep_cost_never_decreases_and_matches_fresh_solves(model, batch, slos, solve_slo, solver):
    """The sweep's answers do not depend on the solve's own --slo-tps (SLOs below it included)."""
    slos = sorted(slos)
    o = _outcome(model, batch, 128, 128, solve_slo)
    rows = sweep_slo(o.table, slos, solver=solver)
    costs = [o.table.cost_per_million_tokens_usd[r.option] if r.option is not None else np.inf for r in rows]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(costs, costs[1:]))
    for r in rows:  # every sweep answer is what a fresh single solve at that SLO picks
        fresh = _outcome(model, batch, 128, 128, r.slo_tps)
        assert r.option == fresh.best, (r, fresh.best)
        assert r.status == ("infeasible" if fresh.best is None else "optimal")
        if r.option is not None:
            assert o.table.planning_tps[r.option] >= r.slo_tps * (1 - 1e-12)
    seen_inf = False
    for c in costs:  # once infeasible, infeasible for every higher SLO
        seen_inf = seen_inf or not np.isfinite(c)
        assert np.isfinite(c) or seen_inf


def test_sweep_model_is_the_undominated_options():
    """The re-used model holds only options no other beats on (cost, planning TPS), and fewer
    than the options eligible at SLO 0."""
    t = _outcome("OPT-2.7B", "auto", 128, 128, 0.0).table
    opts = sweep_options(t)
    eligible = np.nonzero(t.usable & t.fits_gpu & t.fits_host & np.isfinite(t.cost_per_million_tokens_usd))[0]
    cost, tps = t.cost_per_million_tokens_usd, t.planning_tps
    assert 0 < len(opts) < len(eligible)
    assert set(opts) == {int(p) for p in eligible if not _dominated(cost, tps, p, eligible)}


@pytest.mark.parametrize("text", ["1:2", "a:b:3", "5:1:3", "0:10:0", "0:10:500", "-1:2:3", "0:nan:3", "1:2:1"])
def test_bad_sweep_is_one_line_input_error(text):
    with pytest.raises(InputError, match="--sweep-slo"):
        parse_sweep(text)


ORIG = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
        "--safety-factor", "0.87", "--slo-tps", "100", "--provider", "aws"]


def test_cli_frontier_json_and_text():
    r = CliRunner().invoke(cli, ORIG + ["--frontier", "--num-requests", "1000", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    fr = doc["frontier"]
    assert [p["pick"] for p in fr["points"]].count(True) == 1
    pick = next(p for p in fr["points"] if p["pick"])
    assert pick["instance"] == doc["best"]["instance"]
    for p in fr["points"]:
        assert p["tps_low"] <= p["tps"] <= p["tps_high"] and p["batch_size"] == 32
    assert fr["job"]["num_requests"] == 1000 and "ceil" in fr["job"]["assumption"]
    p0 = fr["job"]["points"][0]
    assert p0["batches"] == 32  # ceil(1000 / 32)
    assert p0["job_time_h"] == pytest.approx(32 * p0["total_s"] / 3600, abs=1e-6)
    assert p0["job_cost_usd"] == pytest.approx(p0["job_time_h"] * p0["hourly_cost_usd"], abs=1e-5)
    text = CliRunner().invoke(cli, ORIG + ["--frontier", "--sweep-slo", "0:3000:4"])
    assert text.exit_code == 0
    assert "Frontier:" in text.output and "SLO sweep" in text.output
    # the pick's row: "*", then its engine when the rows mix engines, then its instance
    assert re.search(r"^\s*\*\s+(" + re.escape(doc["best"]["engine"]) + r"\s+)?" + re.escape(doc["best"]["instance"]) + " ", text.output, re.M)


def test_cli_infeasible_frontier_exit_1_no_file(tmp_path):
    out = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ORIG[:-4] + ["--slo-tps", "1e7", "--frontier", "--report", str(out)])
    assert r.exit_code == 1
    assert "SLO binds" in r.output
    assert list(tmp_path.iterdir()) == []
