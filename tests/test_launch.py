"""Launch recipes: flags are the engines' documented ones, values follow the option, SkyPilot YAML
loads with pyyaml and passes the schema kept as data (and SkyPilot's own loader when installed)."""

from __future__ import annotations

import json

import pytest

from llmopt_solver.catalog.precision import Precision
from llmopt_solver.cli import cli
from llmopt_solver.launch.flags import RECIPE_ENGINES, flag_doc, unknown_flags
from llmopt_solver.launch.recipes import recipe
from llmopt_solver.launch.skypilot import check_task, task_yaml
from llmopt_solver.table.build import build_table
from llmopt_solver.table.options import JobSpec

yaml = pytest.importorskip("yaml")

ORIG = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
        "--safety-factor", "0.87", "--slo-tps", "100"]


def test_flag_lists_carry_sources():
    for e in RECIPE_ENGINES:
        d = flag_doc(e)
        assert d["source"].startswith("https://") and d["as_of"] and all(f.startswith("--") for f in d["flags"])


@pytest.mark.parametrize("engine", RECIPE_ENGINES)
@pytest.mark.parametrize("precision", ["fp16", "int4"])
def test_every_emitted_flag_is_documented(catalog, engine, precision):
    prof = catalog.engine(engine)
    if precision not in prof.mechanisms.weight_precisions:
        pytest.skip(f"{engine} has no {precision}")
    kv = Precision.FP16
    model = "OPT-6.7B" if engine == "flexgen" else "Llama-2-7B"
    job = JobSpec(model=catalog.model(model), batch_sizes=(64,), input_len=512, output_len=128,
                  precision=Precision(precision), kv_precision=kv, safety_factor=0.9,
                  offload_ratios=(0.0, 0.5, 1.0), engines=(engine,))
    t = build_table(catalog, job, [catalog.instance(n) for n in ("g4dn.xlarge", "g5.12xlarge", "n1-standard-4+1xT4")])
    assert len(t)
    for i in range(len(t)):
        rec = recipe(t, i)
        assert unknown_flags(engine, rec.argv) == []
        y = yaml.safe_load(task_yaml(t, i, rec, num_nodes=2))
        assert check_task(y) == [] and y["num_nodes"] == 2 and rec.command in y["run"]


def test_flexgen_percent_and_cpu_attention_follow_the_option(catalog):
    job = JobSpec(model=catalog.model("OPT-6.7B"), batch_sizes=(64,), input_len=512, output_len=128,
                  offload_ratios=(0.0, 0.5), offload_mode="cpu", engines=("flexgen",), weight_offload_fixed=0.3)
    t = build_table(catalog, job, [catalog.instance("g4dn.xlarge")])
    i = [k for k in range(len(t)) if t.offload_ratio[k] == 0.5][0]
    argv = recipe(t, i).argv
    k = argv.index("--percent")
    assert argv[k + 1:k + 7] == ["70", "30", "50", "50", "100", "0"] and "--cpu-cache-compute" in argv
    assert argv[argv.index("--gpu-batch-size") + 1] == "64"


def test_vllm_cpu_offload_gb_is_gib_per_gpu(catalog):
    job = JobSpec(model=catalog.model("OPT-13B"), batch_sizes=(8,), input_len=128, output_len=128,
                  offload_ratios=(0.0,), engines=("vllm",), weight_offload_fixed=0.5)
    t = build_table(catalog, job, [catalog.instance("g4dn.xlarge")])
    argv = recipe(t, 0).argv
    gib = float(argv[argv.index("--cpu-offload-gb") + 1])
    expect = 0.5 * t.shape.total_params * 2 / 2**30
    assert expect <= gib <= expect + 0.1


def test_solve_emit_text_and_json(runner):
    res = runner.invoke(cli, ORIG + ["--engine", "vllm", "--emit", "vllm"])
    assert res.exit_code == 0 and "\nLaunch (vllm):\n  vllm serve facebook/opt-2.7b " in res.output
    assert "--gpu-memory-utilization 0.87" in res.output and "--max-num-seqs 32" in res.output
    doc = json.loads(runner.invoke(cli, ORIG + ["--emit", "skypilot", "--json"]).output)
    task = yaml.safe_load(doc["launch"]["skypilot_yaml"])
    assert check_task(task) == [] and task["resources"]["instance_type"] == doc["best"]["instance"]
    assert doc["launch"]["engine"] == doc["best"]["engine"]


def test_emit_other_engine_is_exit_2_one_line(runner):
    res = runner.invoke(cli, ORIG + ["--engine", "vllm", "--emit", "flexgen"])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "--emit: 'flexgen' is not the engine of the prediction (vllm); allowed: vllm, skypilot" in res.output
    res = runner.invoke(cli, ORIG + ["--emit", "nope"])
    assert res.exit_code == 2 and "'vllm', 'sglang', 'tensorrt-llm', 'flexgen', 'skypilot'" in res.output


SKY_LOAD = """
import sys, sky
for f in sys.argv[1:]:
    t = sky.Task.from_yaml(f)
    r = next(iter(t.resources))
    print(f, t.num_nodes, r.instance_type, r.accelerators, bool(t.run))
"""


def _sky_python() -> str | None:
    """Returns an interpreter that has SkyPilot: this one (the 'skypilot' extra), or the one in
    LLMOPT_SKYPILOT_PYTHON (SkyPilot pins click<8.2 and these tests need click>=8.2, so it usually
    lives in its own environment; see README "Engines and launch recipes"). None: skip."""
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec("sky") is not None:
        return sys.executable
    return os.environ.get("LLMOPT_SKYPILOT_PYTHON") or None


def test_skypilot_loader_accepts_the_yaml(runner, tmp_path):
    import subprocess

    py = _sky_python()
    if py is None:
        pytest.skip("SkyPilot not installed (the 'skypilot' extra, or LLMOPT_SKYPILOT_PYTHON=<python with skypilot>)")
    files = []
    for extra in ([], ["--gpus", "T4", "--provider", "gcp"], ["--model", "Llama-2-7B", "--gpus", "L4,A10G", "--engine", "tensorrt-llm"]):
        doc = json.loads(runner.invoke(cli, ORIG + extra + ["--emit", "skypilot", "--json"]).output)
        f = tmp_path / f"task{len(files)}.yaml"
        f.write_text(doc["launch"]["skypilot_yaml"])
        files.append(f)
    out = subprocess.run([py, "-c", SKY_LOAD, *map(str, files)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [ln.split(" ", 2) for ln in out.stdout.splitlines()]
    assert len(rows) == 3 and all(r[1] == "1" and r[2].endswith("True") for r in rows)
    assert "n1-standard-4" in rows[1][2] and "T4" in rows[1][2]


def test_gcp_n1_t4_yaml_takes_the_n1_machine_type_and_attached_gpus(runner):
    doc = json.loads(runner.invoke(cli, ORIG + ["--gpus", "T4", "--provider", "gcp", "--emit", "skypilot", "--json"]).output)
    task = yaml.safe_load(doc["launch"]["skypilot_yaml"])
    res = task["resources"]
    assert doc["best"]["instance"].startswith("n1-standard-") and "+" in doc["best"]["instance"]
    assert res["cloud"] == "gcp" and res["instance_type"] == doc["best"]["instance"].split("+")[0]
    assert res["accelerators"] == f"T4:{doc['best']['gpu_count']}" and check_task(task) == []


def test_flag_lists_name_the_source_file_and_commit():
    for e in RECIPE_ENGINES:
        d = flag_doc(e)
        assert "github.com/" in d["source"] and ".py" in d["source"], e
        assert len(d["source_commit"]) == 40 and int(d["source_commit"], 16) >= 0 and d["as_of"] >= "2026-12-03"


def test_sglang_cpu_offload_gb_is_an_integer(catalog):
    job = JobSpec(model=catalog.model("Llama-2-13B"), batch_sizes=(8,), input_len=128, output_len=128,
                  offload_ratios=(0.0,), engines=("sglang",), weight_offload_fixed=0.37)
    t = build_table(catalog, job, [catalog.instance("g5.xlarge")])
    argv = recipe(t, 0).argv
    value = argv[argv.index("--cpu-offload-gb") + 1]
    assert value.isdigit() and int(value) >= 0.37 * t.shape.total_params * 2 / 2**30
    assert "--mem-fraction-static" in argv


def test_predict_emit_names_its_engine(runner):
    res = runner.invoke(cli, ["predict", "--model", "OPT-2.7B", "--instance", "g5.xlarge", "--engine", "sglang",
                              "--emit", "sglang"])
    assert res.exit_code == 0 and "Engine: sglang" in res.output
    assert "python -m sglang.launch_server --model-path facebook/opt-2.7b --tp-size 1" in res.output
    doc = json.loads(runner.invoke(cli, ["predict", "--model", "OPT-2.7B", "--instance", "g5.xlarge",
                                         "--emit", "skypilot", "--json"]).output)
    assert doc["launch"]["engine"] == doc["engine"] and yaml.safe_load(doc["launch"]["skypilot_yaml"])["num_nodes"] == 1


def test_int4_weights_run_with_the_engines_default_fp16_kv(runner):
    doc = json.loads(runner.invoke(cli, ["solve", "--model", "Llama-2-7B", "--precision", "int4", "--gpus", "T4",
                                         "--engine", "vllm", "--emit", "vllm", "--json"]).output)
    assert doc["best"]["kv_precision"] == "fp16"
    argv = doc["launch"]["argv"]
    assert argv[argv.index("--quantization") + 1] == "awq" and argv[argv.index("--kv-cache-dtype") + 1] == "auto"
    res = runner.invoke(cli, ["solve", "--model", "Llama-2-7B", "--precision", "int4", "--kv-precision", "int4",
                              "--engine", "vllm"])
    assert res.exit_code == 2 and "--engine: vllm has no int4 KV cache" in res.output
