"""Hostile and unusual inputs across every command: exit code, one line naming the field, no
traceback, no file changed, seconds each (in-process via CliRunner)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmopt_solver.cli import cli
from llmopt_solver.plan.input import MAX_JOBS

REPO = Path(__file__).resolve().parents[1]
CSV_HEADER = "source,model,gpu,num_gpus,precision,framework,batch_size,input_len,output_len,metric,value,notes\n"
GOOD_ROW = "t,facebook/opt-1.3b,A100-40GB,1,fp16,vLLM,8,128,128,e2e_latency_s,1.5,\n"
JOB = {"name": "a", "model": "OPT-1.3B", "num_requests": 100, "input_len": 128, "output_len": 32,
       "batch_size": 8, "deadline_h": 10, "instances": ["g6.xlarge"]}
LLAMA = {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
         "intermediate_size": 512, "vocab_size": 1000, "max_position_embeddings": 2048}


def _plan(**top: object) -> str:
    return json.dumps({"jobs": [JOB], **top})


def _job(**kw: object) -> str:
    return json.dumps({"jobs": [dict(JOB, **kw)]})


# Files laid out in the temporary folder for each case: name -> text.
FILES: dict[str, str] = {
    "p.json": _plan(),
    "bad.json": '{"jobs": [',
    "list.json": "[1, 2]",
    "runs.csv": CSV_HEADER + GOOD_ROW * 3,
    "nocols.csv": "a,b\n1,2\n",
    "badval.csv": CSV_HEADER + GOOD_ROW.replace(",8,128,", ",abc,128,"),
    "nanval.csv": CSV_HEADER + GOOD_ROW.replace(",1.5,", ",nan,"),
    "unmapped.csv": CSV_HEADER + GOOD_ROW.replace("facebook/opt-1.3b", "no/such-model") * 2,
    "cfg_zero.json": json.dumps(dict(LLAMA, num_hidden_layers=0)),
    "cfg_str.json": json.dumps(dict(LLAMA, hidden_size="big")),
    "cfg_bool.json": json.dumps(dict(LLAMA, vocab_size=True)),
    "cfg_list.json": "[1, 2]",
    "cfg_heads.json": json.dumps(dict(LLAMA, num_key_value_heads=3)),
    "cfg_tie.json": json.dumps(dict(LLAMA, tie_word_embeddings="yes")),
    "cfg_nan.json": '{"model_type": "llama", "num_hidden_layers": NaN, "hidden_size": 256, "num_attention_heads": 4, "vocab_size": 10}',
    "cfg_huge.json": json.dumps(dict(LLAMA, num_hidden_layers=10**12)),
    "cat.txt": "hello",
    "cat_bad.json": "{",
    "cat_key.json": json.dumps({"gpus": [], "bogus": 1}),
    "cat_gpu_nan.json": '{"gpus": [{"name": "X1", "memory_gb": NaN}]}',
    "cat_model_bad.json": json.dumps({"models": [dict(LLAMA, name="m", hidden_size=-1)]}),
    "cat_cols.csv": "x,y\n1,2\n",
    "prof.json": json.dumps({"efficiency": {"gpus": {}}}),
}
# Plan-file cases: (file text, field the message must name).
PLAN_CASES = [
    (_job(deadline_h="Infinity").replace('"Infinity"', "Infinity"), "deadline_h"),
    (_job(deadline_h=1e9), "deadline_h"),
    (_job(num_requests=1e15), "num_requests"),
    (_job(num_requests=True), "num_requests"),
    (_job(num_requests=10**15), "num_requests"),
    (_job(num_requests=0), "num_requests"),
    (_job(num_requests="100"), "num_requests"),
    (_job(batch_size=True), "batch_size"),
    (_job(batch_size=0), "batch_size"),
    (_job(input_len=1.5), "input_len"),
    (_job(safety_factor="NaN").replace('"NaN"', "NaN"), "safety_factor"),
    (_job(safety_factor=2), "safety_factor"),
    (_job(release_h=-1), "release_h"),
    (_job(release_h=20), "deadline_h"),
    (_job(slo_tps="-Infinity").replace('"-Infinity"', "-Infinity"), "slo_tps"),
    (_job(precision=True), "precision"),
    (_job(precision="fp3"), "precision"),
    (_job(bogus=1), "bogus"),
    (_plan(slot_h=0), "slot_h"),
    (_plan(slot_h=0.0001), "deadline_h"),
    (_plan(offload_step=0.000001), "offload_step"),
    (_plan(quotas={"gpus": {"L4": -1}}), "quotas.gpus"),
    (_plan(quotas={"gpus": {"L4": 1.5}}), "quotas.gpus"),
    (_plan(budget_usd="Infinity").replace('"Infinity"', "Infinity"), "budget_usd"),
    (_plan(spot="yes"), "spot"),
    (_plan(objective="fastest"), "objective"),
    (json.dumps({"jobs": []}), "jobs"),
    (json.dumps({"jobs": [dict(JOB, name=f"j{i}") for i in range(MAX_JOBS + 1)]}), "jobs"),
    (json.dumps({"jobs": [JOB, JOB]}), "duplicate"),
    ("\ufeff" + _job(deadline_h=1e9), "deadline_h"),  # BOM is fine; the deadline is not
]
S = ["solve", "--model", "OPT-1.3B"]
P = ["predict", "--model", "OPT-1.3B", "--instance", "g6.xlarge"]
# CLI cases: (argv, exit code, substrings of the error line). {d} is the temporary folder.
CASES: list[tuple[list[str], int, list[str]]] = [
    (S + ["--safety-factor", "nan"], 2, ["--safety-factor", "finite"]),
    (S + ["--safety-factor", "inf"], 2, ["--safety-factor"]),
    (S + ["--safety-factor", "0"], 2, ["--safety-factor"]),
    (S + ["--safety-factor", "1.5"], 2, ["--safety-factor"]),
    (S + ["--slo-tps", "nan"], 2, ["--slo-tps", "finite"]),
    (S + ["--slo-tps", "inf"], 2, ["--slo-tps"]),
    (S + ["--slo-tps", "-1"], 2, ["--slo-tps"]),
    (S + ["--slo-tps-per-seq", "nan"], 2, ["--slo-tps-per-seq"]),
    (S + ["--offload-step", "0.000001"], 2, ["--offload-step", "0.01"]),
    (S + ["--offload-step", "0.3"], 2, ["--offload-step"]),
    (S + ["--offload-step", "nan"], 2, ["--offload-step"]),
    (S + ["--offload-step", "-0.1"], 2, ["--offload-step"]),
    (S + ["--offload-step", "0.01", "--batch-size", "auto"], 2, ["--offload-step", "rows"]),
    (S + ["--weight-offload-step", "0.001"], 2, ["--weight-offload-step"]),
    (S + ["--gpus", ""], 2, ["--gpus"]),
    (S + ["--gpus", " , "], 2, ["--gpus"]),
    (S + ["--instances", ""], 2, ["--instances"]),
    (S + ["--provider", ""], 2, ["--provider"]),
    (S + ["--provider", "mars"], 2, ["--provider", "mars"]),
    (S + ["--gpus", "NoSuchGPU"], 2, ["NoSuchGPU"]),
    (S + ["--batch-size", "0"], 2, ["--batch-size"]),
    (S + ["--batch-size", "-3"], 2, ["--batch-size"]),
    (S + ["--batch-size", "1.5"], 2, ["--batch-size"]),
    (S + ["--input-len", "0"], 2, ["--input-len"]),
    (S + ["--output-len", "-1"], 2, ["--output-len"]),
    (S + ["--input-len", "100000000"], 2, ["--input-len"]),
    (S + ["--precision", "3"], 2, ["--precision"]),
    (S + ["--kv-precision", "bogus"], 2, ["--kv-precision"]),
    (S + ["--confidence", "1.0"], 2, ["--confidence"]),
    (S + ["--confidence", "nan"], 2, ["--confidence"]),
    (S + ["--time-limit", "0"], 2, ["--time-limit"]),
    (S + ["--time-limit", "nan"], 2, ["--time-limit"]),
    (S + ["--offload-mode", "bogus"], 2, ["--offload-mode"]),
    (S + ["--solver", "gurobi"], 2, ["--solver"]),
    (S + ["--top", "-1"], 2, ["--top"]),
    (["solve", "--model", "NoSuchModel"], 2, ["--model", "NoSuchModel"]),
    (["solve", "--model", "{d}/missing.json"], 2, ["--model"]),
    (["solve", "--model", "{d}/bad.json"], 2, ["--model", "JSON"]),
    (["solve", "--model", "{d}/cfg_zero.json"], 2, ["num_hidden_layers"]),
    (["solve", "--model", "{d}/cfg_str.json"], 2, ["hidden_size"]),
    (["solve", "--model", "{d}/cfg_bool.json"], 2, ["vocab_size"]),
    (["solve", "--model", "{d}/cfg_list.json"], 2, ["--model"]),
    (["solve", "--model", "{d}/cfg_heads.json"], 2, ["num_key_value_heads"]),
    (["solve", "--model", "{d}/cfg_tie.json"], 2, ["tie_word_embeddings"]),
    (["solve", "--model", "{d}/cfg_nan.json"], 2, ["num_hidden_layers"]),
    (["solve", "--model", "{d}/cfg_huge.json"], 2, ["num_hidden_layers"]),
    (S + ["--catalog", "{d}/missing.csv"], 2, ["--catalog"]),
    (S + ["--catalog", "{d}/cat.txt"], 2, ["--catalog", ".txt"]),
    (S + ["--catalog", "{d}/cat_bad.json"], 2, ["--catalog", "JSON"]),
    (S + ["--catalog", "{d}/cat_key.json"], 2, ["--catalog", "bogus"]),
    (S + ["--catalog", "{d}/cat_gpu_nan.json"], 2, ["--catalog"]),
    (S + ["--catalog", "{d}/cat_model_bad.json"], 2, ["--catalog", "models[0]", "hidden_size"]),
    (S + ["--catalog", "{d}/cat_cols.csv"], 2, ["--catalog", "columns"]),
    (S + ["--calibration", "{d}/missing.json"], 2, ["--calibration"]),
    (["predict", "--model", "OPT-1.3B"], 2, ["--instance"]),
    (P + ["--gpu", "L4"], 2, ["--instance", "--gpu"]),
    (["predict", "--model", "OPT-1.3B", "--instance", "nope.xlarge"], 2, ["nope.xlarge"]),
    (["predict", "--model", "OPT-1.3B", "--gpu", "NoGPU"], 2, ["NoGPU"]),
    (P + ["--offload-ratio", "nan"], 2, ["--offload-ratio", "finite"]),
    (P + ["--offload-ratio", "1.5"], 2, ["--offload-ratio"]),
    (P + ["--weight-offload-ratio", "inf"], 2, ["--weight-offload-ratio"]),
    (P + ["--gpu-count", "0"], 2, ["--gpu-count"]),
    (P + ["--batch-size", "auto"], 2, ["--batch-size"]),
    (P + ["--slo-tps", "nan"], 2, ["--slo-tps"]),
    (["predict", "--model", "OPT-30B", "--instance", "g6.xlarge"], 1, ["g6.xlarge", "GPU memory"]),
    (["predict", "--model", "OPT-1.3B", "--gpu", "L4", "--gpu-count", "3"], 1, ["synthetic", "tensor parallel"]),
    (["plan", "{d}/missing.json"], 2, ["missing.json"]),
    (["plan", "{d}/bad.json"], 2, ["invalid JSON", "line 1"]),
    (["plan", "{d}/list.json"], 2, ["jobs"]),
    (["plan", "{d}/p.json", "--out", "{d}/p.json"], 2, ["--out", "input"]),
    (["plan", "{d}/p.json", "--out", "{d}/./sub/../p.json"], 2, ["--out", "input"]),
    (["plan", "{d}/p.json", "--out", "{d}/runs.csv", "--catalog", "{d}/runs.csv"], 2, ["--out"]),
    (["plan", "{d}/p.json", "--time-limit", "nan"], 2, ["--time-limit"]),
    (["plan", "{d}/p.json", "--calibration", "{d}/missing.json"], 2, ["--calibration"]),
    (["plan", "{d}/p.json", "--calibration", "{d}/cat_gpu_nan.json"], 2, ["--calibration", "finite"]),
    (["plan", "{d}/p.json", "--gap", "nan"], 2, ["--gap"]),
    (["plan", "{d}/p.json", "--confidence", "inf"], 2, ["--confidence"]),
    (["catalog", "bogus"], 2, ["bogus"]),
    (["catalog", "--catalog", "{d}/missing.csv"], 2, ["--catalog"]),
    (["catalog", "--calibration", "{d}/missing.json"], 2, ["--calibration"]),
    (["catalog", "models", "--catalog", "{d}/cat_model_bad.json"], 2, ["hidden_size"]),
    (["validate", "{d}/missing.csv"], 2, ["missing.csv"]),
    (["validate", "{d}/nocols.csv"], 2, ["missing column"]),
    (["validate", "{d}/badval.csv"], 2, ["batch_size", "abc"]),
    (["validate", "{d}/nanval.csv"], 2, ["value"]),
    (["validate", "{d}/unmapped.csv"], 1, ["no row could be predicted", "no/such-model"]),
    (["validate", "{d}/runs.csv", "--framework", ""], 2, ["--framework"]),
    (["validate", "{d}/runs.csv", "--metric", ","], 2, ["--metric"]),
    (["validate", "{d}/runs.csv", "--gpu-map", "A100"], 2, ["--gpu-map"]),
    (["calibrate", "{d}/runs.csv", "--out", "{d}/runs.csv"], 2, ["--out", "input"]),
    (["calibrate", "{d}/runs.csv", "--out", "{d}/prof.json", "--calibration", "{d}/prof.json"], 2, ["--out"]),
    (["calibrate", "{d}/runs.csv", "--out", "{d}/o.json", "--params", "bogus"], 2, ["--params", "bogus"]),
    (["calibrate", "{d}/runs.csv", "--out", "{d}/o.json", "--params", ""], 2, ["--params"]),
    (["calibrate", "{d}/runs.csv", "--out", "{d}/o.json", "--folds", "-1"], 2, ["--folds"]),
    (["calibrate", "{d}/missing.csv", "--out", "{d}/o.json"], 2, ["missing.csv"]),
    (["calibrate", "{d}/runs.csv"], 2, ["--out"]),
]
for i, (text, field) in enumerate(PLAN_CASES):
    FILES[f"plan{i}.json"] = text
    CASES.append((["plan", f"{{d}}/plan{i}.json"], 2, [field]))


def _snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(d)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    for name, text in FILES.items():
        (d / name).write_text(text, encoding="utf-8")
    (d / "sub").mkdir()
    return d


def test_enough_cases() -> None:
    assert len(CASES) >= 60
    assert {c[0][0] for c in CASES} == {"solve", "predict", "plan", "catalog", "validate", "calibrate"}


@pytest.mark.parametrize("argv,code,needles", CASES, ids=[" ".join(c[0])[:70] for c in CASES])
def test_hostile_input(folder: Path, argv: list[str], code: int, needles: list[str]) -> None:
    args = [a.replace("{d}", str(folder)) for a in argv]
    before = _snapshot(folder)
    t0 = time.perf_counter()
    res = CliRunner().invoke(cli, args)
    elapsed = time.perf_counter() - t0
    assert res.exit_code == code, (res.exit_code, res.stderr, res.stdout[-500:])
    err_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("llmopt: ") and "warning" not in ln]
    assert len(err_lines) == 1, res.stderr
    line = err_lines[0]
    assert "Traceback" not in res.stderr + res.stdout and "internal error" not in line, line
    for needle in needles:
        assert needle.lower() in line.lower(), (needle, line)
    assert _snapshot(folder) == before, "a file changed"
    assert elapsed < 10, elapsed


def test_memory_stayed_bounded() -> None:
    """All of the above ran in this process; its peak resident memory stays far from a runaway."""
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    assert peak_mb < 1500, peak_mb


def test_predict_infeasible_still_prints_numbers(folder: Path) -> None:
    res = CliRunner().invoke(cli, ["predict", "--model", "OPT-30B", "--instance", "g6.xlarge", "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["feasible"] is False and doc["memory"]


def test_bom_files_are_read(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text("\ufeff" + json.dumps(dict(LLAMA, _name_or_path="tiny/llama")), encoding="utf-8")
    cat = tmp_path / "cat.json"
    cat.write_text("\ufeff" + json.dumps({"models": [dict(LLAMA, name="bom-model")]}), encoding="utf-8")
    res = CliRunner().invoke(cli, ["catalog", "models", "--catalog", str(cat), "--json"])
    assert res.exit_code == 0, res.stderr
    assert "bom-model" in {m["name"] for m in json.loads(res.stdout)["models"]}
    res = CliRunner().invoke(cli, ["predict", "--model", str(cfg), "--instance", "g6.xlarge", "--input-len", "8",
                                   "--output-len", "8", "--batch-size", "1"])
    assert res.exit_code == 0, res.stderr
    assert "Model: tiny/llama" in res.stdout  # named by _name_or_path, not by its folder


def test_plan_out_replaces_only_on_success(tmp_path: Path) -> None:
    plan = tmp_path / "p.json"
    plan.write_text(_plan(), encoding="utf-8")
    out = tmp_path / "keep.json"
    out.write_text("{}", encoding="utf-8")
    res = CliRunner().invoke(cli, ["plan", str(plan), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.stderr
    assert f"replaced existing {out}" in res.stderr
    good = out.read_text(encoding="utf-8")
    assert json.loads(good)["status"] != "infeasible"
    bad = tmp_path / "bad.json"  # 100 requests on g6.xlarge in 1 second: infeasible
    bad.write_text(_job(deadline_h=0.0003), encoding="utf-8")
    res = CliRunner().invoke(cli, ["plan", str(bad), "--out", str(out), "--no-progress"])
    assert res.exit_code == 1, res.stderr
    assert out.read_text(encoding="utf-8") == good  # the earlier plan survives
    assert "kept existing" in res.stderr
    new = tmp_path / "new.json"
    res = CliRunner().invoke(cli, ["plan", str(bad), "--out", str(new), "--no-progress"])
    assert res.exit_code == 1 and json.loads(new.read_text(encoding="utf-8"))["status"] == "infeasible"
