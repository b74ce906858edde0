"""CLI contracts of solve / predict / catalog: labels, JSON keys, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from llmopt_solver.cli import cli

ORIGINAL = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
            "--safety-factor", "0.87", "--slo-tps", "100"]
OPTION_KEYS = {"instance", "provider", "gpu", "gpu_count", "gpu_memory_gb", "host_memory_gb", "hourly_cost_usd",
               "offload_ratio", "offload_mode", "batch_size", "gpu_memory_needed_gb", "host_memory_needed_gb",
               "prefill_s", "decode_s", "total_s", "tps", "tps_per_seq", "cost_per_million_tokens_usd",
               "tps_per_usd_hour", "feasible", "infeasible_reasons"}
LABELS = ["Model:", "Layers:", "Hidden size:", "Batch size:", "Input length:", "Output length:", "Safety factor:",
          "SLO requirement:", "Total KV Cache size:", "Optimal instance:", "GPU:", "KV Cache offloading ratio:",
          "TPS:", "Hourly cost:", "Cost efficiency:", "Performance details:", "Prefill time:", "Decode time:",
          "Total processing time:"]


def run(runner, args):
    return runner.invoke(cli, args)


def test_original_example_has_every_label(runner):
    r = run(runner, ORIGINAL)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    for label in LABELS:
        assert any(line.startswith(label) for line in lines), label
    assert "Total KV Cache size: 6.71 GB" in r.stdout
    assert "Runners-up" in r.stdout and "why they lost" in r.stdout


@pytest.mark.parametrize("extra", [["--adjust"], ["--precision", "4"], ["--precision", "bf16"], ["--spot"],
                                   ["--batch-size", "auto"], ["--offload-mode", "cpu"], ["--provider", "gcp"]])
def test_original_flags_accepted(runner, extra):
    r = run(runner, ORIGINAL + extra)
    assert r.exit_code in (0, 1), r.output
    assert "Traceback" not in r.output


def test_no_option_at_all_names_no_price_date(runner):
    """FlexGen runs on one GPU only: on an 8-GPU instance there is no option, hence no price date."""
    r = run(runner, ORIGINAL + ["--engine", "flexgen", "--instances", "p4d.24xlarge"])
    assert r.exit_code == 1, r.output
    assert "0 options evaluated, 0 feasible.\n" in r.stdout and "Prices as of" not in r.stdout
    assert "flexgen has no tensor parallelism (8 GPUs)" in r.stderr  # the engine's rule, as the reason


def test_solve_json_contract(original_json):
    doc = original_json
    assert {"model", "workload", "memory", "best", "options", "solver"} <= set(doc)
    assert set(doc["memory"]) == {"weights_gb", "kv_cache_gb", "activations_gb"}
    assert doc["memory"]["kv_cache_gb"] == pytest.approx(6.71, abs=0.005)
    assert doc["memory"]["weights_gb"] == pytest.approx(5.30, abs=0.005)
    assert OPTION_KEYS <= set(doc["best"])
    assert all(OPTION_KEYS <= set(o) for o in doc["options"])
    assert doc["solver"]["status"] == "optimal" and doc["solver"]["name"] == "cbc"
    feas = [o for o in doc["options"] if o["feasible"]]
    assert doc["best"]["cost_per_million_tokens_usd"] == min(o["cost_per_million_tokens_usd"] for o in feas)
    assert any(not o["feasible"] and o["infeasible_reasons"] for o in doc["options"])


def test_json_is_byte_identical_across_runs(runner, original_json_text):
    a = original_json_text  # an earlier run in this process
    b = run(runner, ORIGINAL + ["--json"]).stdout

    def strip(s):
        d = json.loads(s)
        d["solver"].pop("wall_s")
        return json.dumps(d, sort_keys=True)

    assert strip(a) == strip(b)


@pytest.mark.parametrize("model", ["OPT-1.3B", "OPT-2.7B", "OPT-6.7B", "OPT-13B", "OPT-30B", "OPT-66B"])
def test_all_opt_models_solve(runner, model):
    args = ORIGINAL[:]
    args[2] = model
    r = run(runner, args + ["--json"])
    assert r.exit_code in (0, 1)
    doc = json.loads(r.stdout)
    if r.exit_code == 0:
        assert doc["best"]["feasible"]
    else:
        assert doc["infeasible"]["binding"]
    if model == "OPT-66B":
        assert r.exit_code == 0 and doc["best"]["gpu_count"] > 1


def test_infeasible_slo_exit_1_says_why(runner):
    r = run(runner, ORIGINAL[:-1] + ["1000000"])
    assert r.exit_code == 1
    assert "SLO" in r.stderr and "best achievable" in r.stderr


def test_infeasible_gpu_memory(runner):
    r = run(runner, ["solve", "--model", "OPT-66B", "--gpus", "T4", "--instances", "g4dn.xlarge", "--batch-size", "32"])
    assert r.exit_code == 1
    assert "GPU memory" in r.stderr


@pytest.mark.parametrize("args, needle", [
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-3"], "--batch-size"),
    (["--input-len", "0"], "--input-len"),
    (["--output-len", "-1"], "--output-len"),
    (["--input-len", "abc"], "--input-len"),
    (["--safety-factor", "0"], "--safety-factor"),
    (["--safety-factor", "1.5"], "--safety-factor"),
    (["--precision", "3"], "--precision"),
    (["--model", "OPT-2.8B"], "Did you mean"),
    (["--model", "/nonexistent/config.json"], "--model"),
    (["--gpus", "T5"], "--gpus"),
    (["--instances", "g9.huge"], "--instances"),
    (["--provider", "oracle"], "--provider"),
    (["--catalog", "/nonexistent.json"], "--catalog"),
    (["--offload-step", "0.3"], "--offload-step"),
])
def test_bad_input_exit_2_one_line(runner, args, needle):
    r = run(runner, ORIGINAL + args)
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert needle in err
    assert "Traceback" not in r.output


def test_bad_catalog_files(runner, tmp_path):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    neg = tmp_path / "neg.json"
    neg.write_text(json.dumps({"gpus": [{"name": "X1", "memory_gb": -1, "memory_bandwidth_gb_s": 100,
                                         "host_link_gb_s": 16, "source": "me", "as_of": "2026"}]}))
    missing = tmp_path / "missing.csv"
    missing.write_text("name,provider,gpu,gpu_count\nfoo,aws,T4,1\n")
    txt = tmp_path / "cat.txt"
    txt.write_text("hello")
    for f, needle in ((bad_json, "line 1"), (neg, "memory_gb"), (missing, "vcpus"), (txt, ".txt")):
        r = run(runner, ORIGINAL + ["--catalog", str(f)])
        assert r.exit_code == 2, (f, r.output)
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_user_catalog_overrides_builtin(runner, tmp_path):
    cheap = tmp_path / "cheap.json"
    cheap.write_text(json.dumps({"instances": [{"name": "g6.xlarge", "provider": "aws", "gpu": "L4", "gpu_count": 1,
                                                "vcpus": 4, "host_memory_gb": 17.18, "hourly_usd": 0.05,
                                                "source": "test", "as_of": "2026-11-24"}]}))
    r = run(runner, ORIGINAL + ["--catalog", str(cheap), "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["best"]["instance"] == "g6.xlarge"


def test_model_from_local_config(runner, tmp_path, catalog):
    cfg = dict(catalog.model("OPT-1.3B").config)
    for k in ("name", "aliases", "source", "as_of"):
        cfg.pop(k, None)
    p = tmp_path / "my-model" / "config.json"
    p.parent.mkdir()
    p.write_text(json.dumps(cfg))
    r = run(runner, ["solve", "--model", str(p), "--batch-size", "8", "--json"])
    assert r.exit_code == 0, r.output
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    r = run(runner, ["solve", "--model", str(bad)])
    assert r.exit_code == 2 and "num_hidden_layers" in r.stderr


def test_predict_json_and_text(runner):
    base = ["predict", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
            "--safety-factor", "0.87", "--instance", "g6.xlarge", "--offload-ratio", "0.4"]
    r = run(runner, base + ["--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert OPTION_KEYS <= set(doc) and "memory" in doc
    assert doc["offload_ratio"] == 0.4
    r2 = run(runner, base)
    assert r2.exit_code == 0 and "Prefill time:" in r2.stdout
    r3 = run(runner, ["predict", "--model", "OPT-2.7B", "--gpu", "H100-SXM", "--gpu-count", "8", "--json"])
    assert r3.exit_code == 0 and json.loads(r3.stdout)["gpu_count"] == 8


def test_solve_best_equals_predict(runner, original_json):
    best = original_json["best"]
    r = run(runner, ["predict", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
                     "--safety-factor", "0.87", "--instance", best["instance"], "--offload-ratio", str(best["offload_ratio"]), "--json"])
    assert json.loads(r.stdout)["total_s"] == best["total_s"]


def test_catalog_listing(runner):
    for what in ("models", "gpus", "instances"):
        r = run(runner, ["catalog", what, "--json"])
        assert r.exit_code == 0
        rows = json.loads(r.stdout)[what]
        assert rows and all(("source" in x and "as_of" in x) for x in rows)
    assert "g4dn.xlarge" in run(runner, ["catalog", "instances"]).stdout


def test_python_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "llmopt_solver", "solve", "--model", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["on_prem_l4.json", "instances.csv"])
def test_example_catalogs_run(runner, name):
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "catalogs" / name
    r = run(runner, ORIGINAL + ["--catalog", str(path), "--json"])
    assert r.exit_code == 0, r.output
    names = {o["instance"] for o in json.loads(r.stdout)["options"]}
    assert names & {"onprem-2xL4", "lab-a100"}
