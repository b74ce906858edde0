"""Engine rules kept as profile data: minimum compute capability per engine and precision, model
families an engine cannot run, all-or-none offload, synchronous weight copies; and the report's
reason, per runner-up GPU type, why it lost for the chosen engine."""

from __future__ import annotations

import json

import numpy as np

from llmopt_solver.catalog.precision import Precision
from llmopt_solver.cli import cli
from llmopt_solver.predictor.physics import Hardware, OffloadMode, predict
from llmopt_solver.table.build import build_table, hardware_arrays
from llmopt_solver.table.options import JobSpec

ORIG = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
        "--safety-factor", "0.87", "--slo-tps", "100"]
LLAMA = ["solve", "--model", "Llama-2-7B", "--batch-size", "8", "--input-len", "128", "--output-len", "512"]


def test_every_gpu_has_a_sourced_compute_capability(catalog):
    for g in catalog.gpus.values():
        assert g.compute_capability is not None and 7.0 <= g.compute_capability < 13, g.name
        assert "developer.nvidia.com/cuda-gpus" in g.compute_capability_source, g.name
    assert catalog.gpu("T4").compute_capability == 7.5 and catalog.gpu("L4").compute_capability == 8.9


def test_minimum_gpu_rules_are_profile_data(catalog):
    rules = {e: (p.mechanisms.min_compute_capability, p.mechanisms.precision_min_compute_capability)
             for e, p in catalog.engines.items()}
    assert rules["tensorrt-llm"][0] == 8.0 and rules["sglang"][0] == 8.0 and rules["deepspeed-mii"][0] == 8.0
    assert rules["vllm"][0] == 7.0 and rules["vllm"][1]["bf16"] == 8.0
    assert all(r[1].get("fp8") == 8.9 for r in rules.values())
    trt = catalog.engine("tensorrt-llm")
    assert trt.cannot_run("opt", "fp16", "fp16") and trt.cannot_run("gptj", "fp16", "fp16")
    assert trt.cannot_run("llama", "fp16", "fp16") is None
    for e in ("tensorrt-llm", "sglang", "deepspeed-mii", "vllm", "deepspeed-zero", "hf-accelerate", "flexgen"):
        srcs = catalog.engine(e).mechanisms.sources
        assert any(k in srcs for k in ("min_compute_capability", "precision_min_compute_capability")), e


def test_engines_leave_out_gpus_below_their_minimum(catalog):
    insts = [catalog.instance(n) for n in ("g4dn.xlarge", "p3.2xlarge", "g5.xlarge", "g6.xlarge")]
    for engine, precision, kept in (("tensorrt-llm", "fp16", {"A10G", "L4"}), ("vllm", "fp16", {"T4", "V100-16GB-SXM2", "A10G", "L4"}),
                                    ("vllm", "bf16", {"A10G", "L4"}), ("vllm", "fp8", {"L4"}), ("sglang", "fp16", {"A10G", "L4"})):
        job = JobSpec(model=catalog.model("Llama-2-7B"), batch_sizes=(8,), input_len=128, output_len=128,
                      precision=Precision(precision), offload_ratios=(0.0,), engines=(engine,))
        t = build_table(catalog, job, insts)
        assert {x.gpu for x in t.instances} == kept, (engine, precision)
        why = t.engine_gpu_excluded[engine]
        assert set(why) == {"T4", "V100-16GB-SXM2", "A10G", "L4"} - kept
        assert all("compute capability >=" in w for w in why.values())


def test_tensorrt_llm_with_opt_is_exit_2_naming_allowed_engines(runner):
    res = runner.invoke(cli, ORIG + ["--engine", "tensorrt-llm"])
    line = res.output.strip()
    assert res.exit_code == 2 and "\n" not in line
    assert "--engine: tensorrt-llm cannot run 'opt' models" in line and "allowed: auto, " in line and "vllm" in line


def test_vllm_bf16_on_a_t4_only_job_is_infeasible_with_the_reason(runner):
    res = runner.invoke(cli, LLAMA + ["--precision", "bf16", "--engine", "vllm", "--gpus", "T4"])
    assert res.exit_code == 1 and "vllm needs compute capability >= 8.0 for bf16 (T4 has 7.5)" in res.output


def test_predict_refuses_an_engine_below_its_minimum_gpu(runner):
    res = runner.invoke(cli, ["predict", "--model", "Llama-2-7B", "--instance", "g4dn.xlarge", "--engine", "tensorrt-llm"])
    line = res.output.strip()
    assert res.exit_code == 2 and "\n" not in line
    assert "tensorrt-llm needs compute capability >= 8.0 (T4 has 7.5)" in line and "allowed: " in line


def test_runner_up_reason_names_the_engine_rule_and_the_alternative(runner):
    doc = json.loads(runner.invoke(cli, LLAMA + ["--gpus", "T4,L4,A10G", "--engine", "tensorrt-llm,vllm", "--json"]).output)
    text = runner.invoke(cli, LLAMA + ["--gpus", "T4,L4,A10G", "--engine", "tensorrt-llm,vllm"]).output
    assert doc["best"]["engine"] == "tensorrt-llm"
    lost = text.replace("\n    ", " ").splitlines()  # a reason's continuation lines are indented 4 spaces
    t4 = [ln for ln in lost if ln.strip().startswith("T4:")]
    assert t4 and "tensorrt-llm needs compute capability >= 8.0 (T4 has 7.5)" in t4[0] and "with vllm it would cost $" in t4[0]


def test_deepspeed_zero_offloads_weights_all_or_none(catalog):
    job = JobSpec(model=catalog.model("Llama-2-13B"), batch_sizes=(1, 8), input_len=128, output_len=64,
                  offload_ratios=(0.0, 0.5), engines=("deepspeed-zero",), weight_offload_step=0.1)
    t = build_table(catalog, job, [catalog.instance(n) for n in ("g4dn.xlarge", "g5.xlarge", "g6e.xlarge")])
    assert set(np.unique(t.weight_offload).tolist()) <= {0.0, 1.0} and (t.weight_offload == 1.0).any()
    vllm = build_table(catalog, JobSpec(**{**job.__dict__, "engines": ("vllm",)}), [catalog.instance("g4dn.xlarge")])
    assert ((vllm.weight_offload > 0) & (vllm.weight_offload < 1)).any()  # vLLM --cpu-offload-gb: any fraction


def test_flexgen_int4_kv_offload_is_zero_or_one(catalog):
    job = JobSpec(model=catalog.model("OPT-6.7B"), batch_sizes=(64,), input_len=512, output_len=128,
                  kv_precision=Precision.INT4, offload_ratios=(0.0, 0.25, 0.5, 1.0), engines=("flexgen",))
    t = build_table(catalog, job, [catalog.instance("g4dn.xlarge")])
    assert set(np.unique(t.offload_ratio).tolist()) == {0.0, 1.0}
    fp16 = build_table(catalog, JobSpec(**{**job.__dict__, "kv_precision": Precision.FP16}), [catalog.instance("g4dn.xlarge")])
    assert 0.5 in set(fp16.offload_ratio.tolist())


def test_accelerate_weight_copies_are_serial_even_when_overlapped(catalog):
    shape = catalog.model("Llama-2-7B").shape()
    hw: Hardware = hardware_arrays(catalog, [catalog.instance("g5.xlarge")], Precision.FP16, "hf-accelerate")
    one = np.ones(1)

    def run(overlap: bool, sync: bool) -> float:
        p = predict(shape, 128, 64, 2.0, 2.0, 2.0, hw, 8 * one, 0 * one, np.full(1, int(OffloadMode.STREAM)), overlap,
                    0.5 * one, weight_stream_sync=sync)
        return float(p.total_s[0])

    assert run(True, True) > run(True, False) * 1.05  # the copy no longer hides behind GPU work
    assert np.isclose(run(False, True), run(False, False))  # serial model: same either way
    assert catalog.engine("hf-accelerate").mechanisms.weight_stream_sync
    assert not catalog.engine("flexgen").mechanisms.weight_stream_sync


def _decode_s(catalog, model: str, instance: str, batch: int, **rules) -> float:
    shape = catalog.model(model).shape()
    hw: Hardware = hardware_arrays(catalog, [catalog.instance(instance)], Precision.FP16, "deepspeed-mii")
    one = np.ones(1)
    p = predict(shape, 2048, 256, 2.0, 2.0, 2.0, hw, batch * one, 0 * one, np.full(1, int(OffloadMode.STREAM)), True,
                **rules)
    return float(p.decode_s[0])


def test_mii_reads_kv_once_per_query_head(catalog):
    """FastGen's blocked flash attention runs each atom per query head: GQA saves memory, not traffic."""
    assert catalog.engine("deepspeed-mii").mechanisms.kv_read_per_query_head
    assert "attention_atom.h" in catalog.engine("deepspeed-mii").mechanisms.sources["kv_read_per_query_head"]
    assert not catalog.engine("vllm").mechanisms.kv_read_per_query_head
    gqa = ("mistralai/Mistral-7B-v0.1", "p4d.24xlarge", 64)  # 32 query heads share 8 KV heads
    assert _decode_s(catalog, *gqa, kv_read_per_query_head=True) > 1.15 * _decode_s(catalog, *gqa)
    mha = ("Llama-2-7B", "p4d.24xlarge", 64)  # one KV head per query head: nothing changes
    assert np.isclose(_decode_s(catalog, *mha, kv_read_per_query_head=True), _decode_s(catalog, *mha))


def test_identical_prompts_route_moe_as_one_sequence_only_where_the_engine_decodes_alike(catalog):
    from llmopt_solver.table.engines import execution

    mixtral = ("mistralai/Mixtral-8x7B-v0.1", "p4d.24xlarge", 32)
    assert _decode_s(catalog, *mixtral, routing_sequences=1.0) < 0.85 * _decode_s(catalog, *mixtral)
    dense = ("Llama-2-7B", "p4d.24xlarge", 32)
    assert np.isclose(_decode_s(catalog, *dense, routing_sequences=1.0), _decode_s(catalog, *dense))
    mii, vllm = catalog.engine("deepspeed-mii"), catalog.engine("vllm")
    assert execution(mii, "fp16", "fp16", identical_prompts=True).routing_sequences == 1.0
    assert execution(mii, "fp16", "fp16").routing_sequences is None  # distinct prompts (solve): every sequence
    assert execution(vllm, "fp16", "fp16", identical_prompts=True).routing_sequences is None
