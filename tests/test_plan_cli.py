"""`llmopt plan`: bad input (exit 2, one line naming the field), examples, --json, --out, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmopt_solver.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
JOB = {"name": "a", "model": "OPT-1.3B", "num_requests": 320, "input_len": 128, "output_len": 64,
       "batch_size": 32, "deadline_h": 4, "instances": ["g4dn.xlarge"]}
ASSIGNMENT_KEYS = {"instance", "offload_ratio", "batch_size", "count", "start_h", "end_h", "requests",
                   "batch_time_s", "cost_usd"}


def write(tmp_path: Path, doc, name: str = "plan.json") -> str:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(p)


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


@pytest.mark.parametrize("doc, needles", [
    ('{"jobs": [\n  {"name": "a",, }]}', ["invalid JSON at line 2, column 16"]),
    ({"jobs": []}, ["jobs", "at least 1 item"]),
    ({}, ["jobs: required key is missing"]),
    ({"jobs": [{**JOB, "colour": "red"}]}, ["jobs[0] ('a').colour: unknown key; allowed: name, model"]),
    ({"jobs": [{k: v for k, v in JOB.items() if k != "deadline_h"}]}, ["jobs[0] ('a').deadline_h: required key is missing"]),
    ({"jobs": [JOB, JOB]}, ["jobs[1].name: duplicate job name 'a'"]),
    ({"jobs": [{**JOB, "num_requests": 0}]}, ["jobs[0] ('a').num_requests", "greater than 0"]),
    ({"jobs": [{**JOB, "num_requests": -5}]}, ["num_requests"]),
    ({"jobs": [{**JOB, "batch_size": 0}]}, ["batch_size"]),
    ({"jobs": [{**JOB, "release_h": 5, "deadline_h": 4}]}, ["jobs[0] ('a')", "deadline_h 4 must be after release_h 5"]),
    ({"jobs": [{**JOB, "precision": "fp7"}]}, ["precision", "allowed: 1, 2, 4"]),
    ({"jobs": [{**JOB, "model": "OPT-1.4B"}]}, ["jobs[0] ('a').model: unknown model 'OPT-1.4B'", "Did you mean"]),
    ({"jobs": [{**JOB, "instances": ["g4dn.xlarg"]}]}, ["jobs[0] ('a').instances: unknown instance", "Did you mean: g4dn.xlarge"]),
    ({"jobs": [JOB], "quotas": {"instances": {"p9.huge": 1}}}, ["quotas.instances: unknown instance 'p9.huge'"]),
    ({"jobs": [JOB], "quotas": {"gpus": {"L4": -1}}}, ["quotas.gpus"]),
    ({"jobs": [JOB], "quotas": {"g4dn.xlarge": 1}}, ["quotas.g4dn.xlarge: unknown key; allowed: instances, gpus"]),
    ({"jobs": [JOB], "objective": "speed"}, ["objective"]),
    ({"jobs": [JOB], "slot_h": 0}, ["slot_h"]),
])
def test_bad_input_is_one_line_exit_2(runner, tmp_path, doc, needles):
    one_line_error(runner.invoke(cli, ["plan", write(tmp_path, doc)]), *needles)


def test_missing_file_exit_2(runner, tmp_path):
    one_line_error(runner.invoke(cli, ["plan", str(tmp_path / "nope.json")]), "no such plan file")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("plan_*.json")), ids=lambda p: p.name)
def test_every_example_runs_text_and_json(runner, path, tmp_path):
    out = tmp_path / "plan.json"  # --out writes the --json document of the same run
    # A short time limit: the makespan example's second solve would use the whole 60 s default;
    # what is checked here is the output's shape and arithmetic, not optimality.
    r = runner.invoke(cli, ["plan", str(path), "--out", str(out), "--time-limit", "10"])
    assert r.exit_code == 0, r.output
    for label in ("Status:", "Total cost:", "Lower bound:", "Makespan:", "Solver:", "Jobs", "Usage per slot"):
        assert label in r.stdout
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {"status", "total_cost_usd", "lower_bound_usd", "makespan_h", "jobs", "usage", "solver"} <= set(doc)
    assert doc["lower_bound_usd"] <= doc["total_cost_usd"] + 1e-6
    for j in doc["jobs"]:
        assert {"name", "cost_usd", "finish_h", "assignments"} <= set(j)
        assert sum(a["requests"] for a in j["assignments"]) > 0
        for a in j["assignments"]:
            assert ASSIGNMENT_KEYS <= set(a)
            assert a["cost_usd"] == pytest.approx(a["count"] * (a["end_h"] - a["start_h"]) * a["hourly_cost_usd"], abs=1e-5)
        assert j["cost_usd"] == pytest.approx(sum(a["cost_usd"] for a in j["assignments"]), abs=1e-5)
    assert doc["total_cost_usd"] == pytest.approx(sum(j["cost_usd"] for j in doc["jobs"]), abs=1e-4)


def test_out_writes_the_json_atomically(runner, tmp_path):
    out = tmp_path / "sub" / "plan-out.json"
    r = runner.invoke(cli, ["plan", str(EXAMPLES / "plan_small.json"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["status"] == "optimal" and len(doc["jobs"]) == 3
    assert [p.name for p in out.parent.iterdir()] == ["plan-out.json"]  # no temporary file left


def test_batch_time_equals_predict(runner):
    doc = json.loads(runner.invoke(cli, ["plan", str(EXAMPLES / "plan_small.json"), "--json"]).stdout)
    plan = json.loads((EXAMPLES / "plan_small.json").read_text())
    for spec, j in zip(plan["jobs"], doc["jobs"]):
        a = j["assignments"][0]
        args = ["predict", "--model", spec["model"], "--batch-size", str(a["batch_size"]), "--input-len",
                str(spec["input_len"]), "--output-len", str(spec["output_len"]), "--safety-factor", "0.87",
                "--instance", a["instance"], "--offload-ratio", str(a["offload_ratio"]),
                "--weight-offload-ratio", str(a["weight_offload_ratio"]), "--json"]
        if a["offload_mode"] != "none":
            args += ["--offload-mode", a["offload_mode"]]
        r = runner.invoke(cli, args)
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["total_s"] == pytest.approx(a["batch_time_s"], rel=1e-8)


def test_infeasible_exit_1_with_json(runner, tmp_path):
    path = write(tmp_path, {"jobs": [JOB], "budget_usd": 0.001, "startup_s": 300})
    r = runner.invoke(cli, ["plan", path, "--json"])
    assert r.exit_code == 1
    assert json.loads(r.stdout)["status"] == "infeasible"
    assert "budget $0.00 too small by $" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_exit_codes_through_the_console_script(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "llmopt_solver", "plan", str(EXAMPLES / "plan_small.json"), "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "optimal"
    assert ok.stderr == ""  # under a second: no progress indication
    bad = subprocess.run([sys.executable, "-m", "llmopt_solver", "plan", write(tmp_path, {"jobs": []})],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == "" and len(bad.stderr.strip().splitlines()) == 1
