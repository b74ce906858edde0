"""Engines as an option dimension: each engine's options are executable by its profile, the pick
equals brute force per engine, and bad --engine input exits 2 with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.cli import cli as main
from llmopt_solver.errors import InputError
from llmopt_solver.optimize import optimize
from llmopt_solver.table.build import build_table
from llmopt_solver.table.engines import resolve_engines
from llmopt_solver.table.options import JobSpec
from tests.test_core_milp import _random_catalog, brute_force

MODELS = ["OPT-1.3B", "OPT-6.7B", "Llama-2-7B"]
ENGINES = ["vllm", "sglang", "tensorrt-llm", "flexgen", "hf-accelerate", "deepspeed-zero", "deepspeed-mii", "tgi", "ideal"]


def executable(catalog, prof, table, i) -> bool:
    """True when option ``i`` uses only mechanisms ``prof`` has, on a GPU it runs on."""
    m = prof.mechanisms
    kv = table.engine_kv.get(prof.name, table.job.kv.value)
    r, w = float(table.offload_ratio[i]), float(table.weight_offload[i])
    if r > 0 and table.mode_name(i) not in m.active_kv_offload:
        return False
    if kv in m.kv_offload_all_or_none and r not in (0.0, 1.0):
        return False
    if w > 0 and m.weight_offload == "none":
        return False
    if m.weight_offload_fractions == "all_or_none" and w not in (0.0, 1.0):
        return False
    if table.instances[i].gpu_count > 1 and not m.tensor_parallel:
        return False
    g = catalog.gpu(table.instances[i].gpu)
    if m.gpu_problem(g.name, g.compute_capability, table.job.precision.value, kv) is not None:
        return False
    return (m.supports_family(table.shape.model_type) and table.job.precision.value in m.weight_precisions
            and kv in m.kv_precisions)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=st.sampled_from(MODELS), engines=st.lists(st.sampled_from(ENGINES), min_size=1, max_size=3, unique=True),
       b=st.sampled_from([1, 16, 64, 256]), s=st.integers(16, 1024), n=st.integers(16, 512),
       sf=st.floats(0.3, 1.0), slo=st.floats(0, 3000), idx=st.lists(st.integers(0, 1000), min_size=1, max_size=6),
       scales=st.lists(st.floats(0.5, 2.0), min_size=6, max_size=6), precision=st.sampled_from(["fp16", "bf16", "int4"]))
def test_every_option_is_executable_and_pick_is_brute_force(catalog, model, engines, b, s, n, sf, slo, idx, scales, precision):
    card = catalog.model(model)
    runnable = [e for e in engines if resolve_or_none(catalog, e, card.shape().model_type, precision) is not None]
    if not runnable:
        return
    insts = _random_catalog(catalog, idx, scales)
    job = JobSpec(model=card, batch_sizes=(b,), input_len=s, output_len=n, safety_factor=sf, slo_tps=slo,
                  precision=Precision(precision), offload_ratios=(0.0, 0.25, 0.5, 0.75, 1.0), engines=tuple(runnable))
    out = optimize(catalog, job, insts)
    t = out.table
    assert set(t.engine.tolist()) <= set(runnable)
    for i in range(len(t)):
        assert executable(catalog, catalog.engine(str(t.engine[i])), t, i), (t.engine[i], t.record(i))
    assert out.best == brute_force(t)
    for e in runnable:  # per engine: the cheapest of its own sub-table is brute force too
        sub = t.take(np.nonzero(t.engine == e)[0])
        alone = optimize(catalog, JobSpec(**{**job.__dict__, "engines": (e,)}), insts)
        expect = brute_force(sub)
        assert (alone.best is None) == (expect is None)
        if expect is not None:
            assert np.isclose(alone.table.cost_per_million_tokens_usd[alone.best], sub.cost_per_million_tokens_usd[expect])


def resolve_or_none(catalog, engine, model_type, precision):
    """Returns the engine if it can run the model at ``precision`` (its default KV), else None."""
    try:
        return resolve_engines(catalog, engine, model_type, precision, None)
    except InputError:
        return None


def test_auto_excludes_ideal_and_unfit_engines(catalog):
    opt = resolve_engines(catalog, "auto", "opt", "fp16", "fp16")
    llama = resolve_engines(catalog, None, "llama", "fp16", "fp16")
    assert "ideal" not in opt and "flexgen" in opt and opt[0] == "vllm"
    assert "flexgen" not in llama and "vllm" in llama
    assert resolve_engines(catalog, "FlexLLMGen,vllm", "opt", "fp16", "fp16") == ("vllm", "flexgen")


def test_vllm_never_offloads_active_kv_but_flexgen_does(catalog):
    inst = [catalog.instance("g4dn.xlarge")]
    base = dict(model=catalog.model("OPT-6.7B"), batch_sizes=(64,), input_len=512, output_len=128,
                offload_ratios=(0.0, 0.5, 1.0))
    v = build_table(catalog, JobSpec(**base, engines=("vllm",)), inst)
    f = build_table(catalog, JobSpec(**base, engines=("flexgen",)), inst)
    assert set(v.offload_ratio.tolist()) == {0.0} and set(f.offload_ratio.tolist()) == {0.0, 0.5, 1.0}
    assert {f.mode_name(i) for i in range(len(f))} >= {"none"}


def test_flexgen_int4_dequant_is_slower_than_fused_and_only_by_memory_traffic(catalog):
    from llmopt_solver.catalog.precision import Precision
    inst = [catalog.instance("g5.xlarge")]
    job = dict(model=catalog.model("OPT-6.7B"), batch_sizes=(1,), input_len=128, output_len=128,
               precision=Precision.INT4, kv_precision=Precision.FP16, offload_ratios=(0.0,), weight_offload_step=0.0)
    fused = build_table(catalog, JobSpec(**job, engines=("ideal",)), inst)
    deq = build_table(catalog, JobSpec(**job, engines=("flexgen",)), inst)
    # batch 1 decode is weight-read bound: packed int4 (0.53 B) + FlexGen's decompress passes and
    # the fp16 re-read (dequant_traffic_bytes, counted from flexllmgen/compression.py: 15 B).
    traffic = catalog.engine("flexgen").mechanisms.dequant_traffic_bytes
    assert traffic == 15.0
    ratio = deq.pred.decode_s[0] / fused.pred.decode_s[0]
    bound = (0.53125 + traffic) / 0.53125
    assert 0.8 * bound < ratio < bound + 0.01


def test_user_engine_file_adds_an_engine(tmp_path, runner):
    f = tmp_path / "eng.json"
    f.write_text(json.dumps({"engines": [{"name": "mine", "source": "test", "as_of": "2026-12-02",
                                          "mechanisms": {"active_kv_offload": [], "weight_offload": "none",
                                                         "weight_precisions": {"fp16": "fused"}, "kv_precisions": ["fp16"]}}]}))
    res = runner.invoke(main, ["solve", "--model", "OPT-1.3B", "--engine", "mine", "--catalog", str(f), "--json",
                               "--gpus", "T4"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["best"]["engine"] == "mine" and {o["engine"] for o in doc["options"]} == {"mine"}
    assert {o["offload_ratio"] for o in doc["options"]} == {0.0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"engines": [{"name": "x", "source": "t", "as_of": "t", "mechanisms": {"batching": "magic"}}]}))
    res = runner.invoke(main, ["solve", "--model", "OPT-1.3B", "--catalog", str(bad)])
    assert res.exit_code == 2 and "engine 'x'" in res.output


ORIG = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
        "--safety-factor", "0.87", "--slo-tps", "100"]


def test_bad_engine_input_exits_2_with_one_line(runner):
    for args, needle in ((["--engine", "nope"], "--engine: unknown engine 'nope'; allowed: "),
                         (["--engine", "flexgen", "--precision", "fp8"], "--engine: flexgen has no fp8 weights")):
        res = runner.invoke(main, ORIG + args)
        assert res.exit_code == 2, res.output
        line = res.output.strip()
        assert "\n" not in line and needle in line and "allowed: " in line and "Traceback" not in line


def test_original_example_names_engine_in_text_and_json(runner, original_json):
    text = runner.invoke(main, ORIG).output
    lines = text.splitlines()
    k = lines.index("Optimal instance:")
    assert lines[k + 1].startswith("Engine: ") and lines[k + 1].split(": ")[1] in load_catalog().engines
    doc = original_json
    assert doc["best"]["engine"] == lines[k + 1].split(": ")[1] and doc["best"]["engine"] != "ideal"
    ideal = json.loads(runner.invoke(main, ORIG + ["--json", "--engine", "ideal"]).output)
    assert {o["engine"] for o in ideal["options"]} == {"ideal"}


def test_predict_refuses_kv_offload_on_vllm_and_takes_it_on_flexgen(runner):
    base = ["predict", "--model", "OPT-2.7B", "--instance", "g4dn.xlarge", "--offload-ratio", "0.5", "--json"]
    res = runner.invoke(main, base + ["--engine", "vllm"])
    assert res.exit_code == 2 and "vllm cannot offload active KV" in res.output and "allowed: " in res.output
    doc = json.loads(runner.invoke(main, base).output)
    assert doc["engine"] in ("flexgen", "hf-accelerate", "deepspeed-zero") and doc["offload_ratio"] == 0.5


def test_catalog_engines_lists_mechanisms_with_sources(runner):
    doc = json.loads(runner.invoke(main, ["catalog", "engines", "--json"]).output)
    by = {e["name"]: e for e in doc["engines"]}
    assert by["vllm"]["mechanisms"]["active_kv_offload"] == [] and by["ideal"]["auto"] is False
    assert by["flexgen"]["mechanisms"]["model_families"] == ["opt"]
    assert all(e["source"] and e["as_of"] for e in doc["engines"])
    assert all(e["mechanisms"]["sources"] for e in doc["engines"])


def test_tensorrt_llm_default_drops_the_per_sequence_term_only(catalog):
    """TensorRT-LLM's batch manager and sampler run in C++: its per-sequence host term is 0 by rule
    (efficiency.json), held fixed in its (engine, GPU) fit, on calibrated and uncalibrated GPUs
    alike; the other runtime parameters are its own fit (or its transfer rule), vLLM keeps the term."""
    for gpu in ("A100-40GB-SXM", "T4"):
        trt, shared = catalog.efficiency(gpu, "tensorrt-llm"), catalog.efficiency(gpu)
        assert trt.seq_overhead_s == 0.0 and shared.seq_overhead_s > 0
        assert catalog.efficiency(gpu, "vllm").seq_overhead_s > 0


def test_replay_applies_the_engine_rules_of_the_table(catalog):
    """Validation replays a FlexGen int4 row with the same dequantisation as the option table
    (one owner: table.engines.execution), so it is slower than the same row on fused kernels."""
    from llmopt_solver.catalog.precision import Precision
    from llmopt_solver.measure.placement import Placement
    from llmopt_solver.measure.schedule import predict_placed
    from llmopt_solver.table.build import hardware_arrays
    from llmopt_solver.table.engines import execution
    inst = [catalog.instance("g5.xlarge")]
    shape = catalog.model("OPT-6.7B").shape()
    hw = hardware_arrays(catalog, inst, Precision.INT4)
    b = np.array([8.0])
    ex = execution(catalog.engine("flexgen"), "int4", "int4")
    assert ex.weight_dequant_bytes == 2.0 and ex.kv_dequant_bytes == 2.0 and ex.dequant_traffic_bytes == 15.0
    deq = predict_placed(shape, 256, 32, Precision.INT4, Precision.INT4, Placement(), hw, b, ex)
    fused = predict_placed(shape, 256, 32, Precision.INT4, Precision.INT4, Placement(), hw, b)
    assert deq.decode_s[0] > 5.0 * fused.decode_s[0]
    # ZeRO-Inference offloads all weights or none; Accelerate copies them synchronously.
    zero = execution(catalog.engine("deepspeed-zero"), "fp16", "fp16")
    assert zero.weight_all_or_none and zero.weight_offload(0.3) == 1.0 and zero.weight_offload(0.0) == 0.0
    assert execution(catalog.engine("hf-accelerate"), "fp16", "fp16").weight_stream_sync


def test_tgi_gptq_dequantises_only_in_passes_of_8_tokens_or_more(catalog):
    """TGI 1.0.x GPTQ (ExLlama v1, matmul_recons_thd = 8): a decode step of 8+ sequences
    reconstructs the fp16 weights for cuBLAS (4 B per value written and read), fewer use the fused kernel."""
    from llmopt_solver.measure.placement import Placement
    from llmopt_solver.measure.schedule import predict_placed
    from llmopt_solver.table.build import hardware_arrays
    from llmopt_solver.table.engines import execution
    inst = [catalog.instance("g5.xlarge")]
    shape = catalog.model("Llama-2-7B").shape()
    hw = hardware_arrays(catalog, inst, Precision.INT4)
    ex = execution(catalog.engine("tgi"), "int4", "fp16")
    assert ex.dequant_min_tokens == 8 and ex.weight_dequant_bytes == 2.0 and ex.dequant_traffic_bytes == 4.0

    def step_s(b: float, rules=ex) -> float:
        p = predict_placed(shape, 16, 64, Precision.INT4, Precision.FP16, Placement(), hw.take(np.array([0, 0])),
                           np.array([b, b]), rules)
        return float(p.decode_s[0]) / 64

    fused = execution(catalog.engine("vllm"), "int4", "fp16")
    assert step_s(4) == pytest.approx(step_s(4, fused), rel=1e-9)  # below the threshold: fused
    # at 8 sequences the weight read grows from 0.53 B to 0.53 + 4 B per value (memory-bound step)
    assert 4.0 < step_s(8) / step_s(8, fused) < (0.53125 + 4.0) / 0.53125 + 0.01


def test_deepspeed_fastgen_kv_cache_takes_all_but_its_1gb_reserve(catalog):
    """DeepSpeed FastGen (MII) sizes its blocked KV cache to the free memory minus a 1e9-byte
    reserve, not 90% of the GPU: a static batch too big for one pass runs in fewer, larger waves."""
    from llmopt_solver.measure.placement import Placement
    from llmopt_solver.measure.schedule import FRAMEWORK_MEMORY_FRACTION, capacity_gb, engine_capacity_gb, static_in_waves
    from llmopt_solver.table.build import hardware_arrays
    from llmopt_solver.table.engines import execution
    gpu = next(g for g in catalog.gpus.values() if g.name == "A100-40GB-SXM")
    inst = [next(i for i in catalog.instances.values() if i.gpu == gpu.name and i.gpu_count == 1)]
    hw = hardware_arrays(catalog, inst, Precision.FP16)
    mii = execution(catalog.engine("deepspeed-mii"), "fp16", "fp16")
    vllm = execution(catalog.engine("vllm"), "fp16", "fp16")
    assert mii.memory_reserve_gb == 1.0 and vllm.memory_reserve_gb is None
    assert engine_capacity_gb(hw, mii)[0] == pytest.approx(capacity_gb(hw)[0] - 1.0)
    assert engine_capacity_gb(hw, vllm)[0] == pytest.approx(FRAMEWORK_MEMORY_FRACTION * capacity_gb(hw)[0])
    shape = catalog.model("Llama-2-7B").shape()
    b = np.array([256.0])
    w_mii = static_in_waves(shape, 1024, 1024, Precision.FP16, Precision.FP16, Placement(), hw, b, ex=mii)
    w_vllm = static_in_waves(shape, 1024, 1024, Precision.FP16, Precision.FP16, Placement(), hw, b, ex=vllm)
    assert w_vllm.b_fit is not None and w_mii.b_fit is not None
    assert w_vllm.waves[0] > 1 and w_mii.b_fit[0] > w_vllm.b_fit[0] and w_mii.e2e_s[0] < w_vllm.e2e_s[0]
