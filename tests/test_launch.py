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
    job = JobSpec(model=catalog.model("OPT-6.7B"), batch_sizes=(64,), input_len=512, output_len=128,
                  precision=Precision(precision), kv_precision=kv, safety_factor=0.9,
                  offload_ratios=(0.0, 0.5, 1.0), engines=(engine,))
    t = build_table(catalog, job, [catalog.instance("g4dn.xlarge"), catalog.instance("g5.12xlarge")])
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


def test_skypilot_loader_accepts_the_yaml(runner, tmp_path):
    sky = pytest.importorskip("sky", reason="optional 'skypilot' extra not installed")
    doc = json.loads(runner.invoke(cli, ORIG + ["--emit", "skypilot", "--json"]).output)
    f = tmp_path / "task.yaml"
    f.write_text(doc["launch"]["skypilot_yaml"])
    task = sky.Task.from_yaml(str(f))
    assert task.num_nodes == 1 and task.run and "serve" in task.run


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
