"""plan: the 'engine' job key and --engine, and --emit skypilot --emit-dir (one YAML per assignment)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmopt_solver.cli import cli
from llmopt_solver.launch.skypilot import check_task

yaml = pytest.importorskip("yaml")
PLAN = str(Path(__file__).resolve().parents[1] / "examples" / "plan_small.json")


def test_plan_engine_key_restricts_each_job(runner, tmp_path):
    doc = json.loads(Path(PLAN).read_text())
    for j in doc["jobs"]:
        j["engine"] = "vllm"
    f = tmp_path / "p.json"
    f.write_text(json.dumps(doc))
    out = json.loads(runner.invoke(cli, ["plan", str(f), "--json", "--no-progress"]).output)
    engines = {a["engine"] for j in out["jobs"] for a in j["assignments"]}
    assert engines == {"vllm"} and all(a["offload_ratio"] == 0 for j in out["jobs"] for a in j["assignments"])
    doc["jobs"][0]["engine"] = "warp-drive"
    f.write_text(json.dumps(doc))
    res = runner.invoke(cli, ["plan", str(f), "--no-progress"])
    assert res.exit_code == 2 and "jobs[0]" in res.output and ".engine: unknown engine 'warp-drive'" in res.output


def test_plan_cli_engine_is_default_for_jobs(runner):
    # vllm: plan_small's translate-faq job is restricted to T4 (compute capability 7.5), below sglang's 8.0
    out = json.loads(runner.invoke(cli, ["plan", PLAN, "--json", "--no-progress", "--engine", "vllm"]).output)
    assert {a["engine"] for j in out["jobs"] for a in j["assignments"]} == {"vllm"}


def test_plan_emit_writes_one_loadable_yaml_per_assignment_and_never_overwrites(runner, tmp_path):
    d = tmp_path / "tasks"
    res = runner.invoke(cli, ["plan", PLAN, "--json", "--no-progress", "--emit", "skypilot", "--emit-dir", str(d)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    files = out["launch"]["skypilot_files"]
    assigns = [a for j in out["jobs"] for a in j["assignments"]]
    assert len(files) == len(assigns) and sorted(p.name for p in d.iterdir()) == sorted(Path(f).name for f in files)
    for f in files:
        assert check_task(yaml.safe_load(Path(f).read_text())) == []
    counts = sorted(a["count"] for a in assigns)
    assert sorted(yaml.safe_load(Path(f).read_text())["num_nodes"] for f in files) == counts
    before = {p.name: p.read_text() for p in d.iterdir()}
    res = runner.invoke(cli, ["plan", PLAN, "--no-progress", "--emit", "skypilot", "--emit-dir", str(d)])
    assert res.exit_code == 2 and "already exists (not overwritten)" in res.output
    assert {p.name: p.read_text() for p in d.iterdir()} == before
    res = runner.invoke(cli, ["plan", PLAN, "--no-progress", "--emit", "skypilot"])
    assert res.exit_code == 2 and "--emit-dir: missing" in res.output


def test_plan_emit_keeps_only_engines_with_a_recipe(runner, tmp_path):
    # --emit skypilot under auto: engines without a launch recipe (deepspeed-mii, tgi, ...) never compete;
    # a job restricted to such an engine is bad input naming the job's engine field.
    d = tmp_path / "tasks"
    res = runner.invoke(cli, ["plan", PLAN, "--json", "--no-progress", "--emit", "skypilot", "--emit-dir", str(d)])
    assert res.exit_code == 0, res.output
    assert {a["engine"] for j in json.loads(res.output)["jobs"] for a in j["assignments"]} <= {"vllm", "sglang", "tensorrt-llm", "flexgen"}
    res = runner.invoke(cli, ["plan", PLAN, "--no-progress", "--engine", "deepspeed-mii", "--emit", "skypilot", "--emit-dir", str(tmp_path / "x")])
    assert res.exit_code == 2 and "jobs[0]" in res.output and ".engine: none of its engines (deepspeed-mii) has a launch recipe" in res.output, res.output
    assert not (tmp_path / "x").exists()
