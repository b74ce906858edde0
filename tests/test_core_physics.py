"""Predictor physics against hand-computed and published numbers (tolerances named per test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmopt_solver.catalog.precision import Precision, parse_precision
from llmopt_solver.errors import ReasonKind
from llmopt_solver.predictor.physics import sum_max_lines
from llmopt_solver.table.build import build_table, hardware_arrays
from llmopt_solver.table.options import JobSpec

REL = 1e-9  # for quantities llmopt derives exactly


def test_opt_2_7b_memory_matches_issue(catalog):
    # Issue 2: OPT-2.7B, b=32, s=128, n=512, fp16 -> KV 6.71 GB, weights ~5.30 GB (decimal GB).
    shape = catalog.model("OPT-2.7B").shape()
    kv_gb = 32 * (128 + 512) * shape.kv_values_per_token * 2 / 1e9
    assert round(kv_gb, 2) == 6.71
    assert shape.total_params * 2 / 1e9 == pytest.approx(5.30, abs=0.005)


@pytest.mark.parametrize("name, published_b, tol", [
    # Parameter counts as published by the model authors / HF model cards.
    ("Llama-2-7B", 6.74, 0.01),  # HF: 6,738,415,616
    ("Llama-2-70B", 68.98, 0.01),  # HF: 68,976,648,192
    ("Mistral-7B-v0.1", 7.24, 0.01),  # Mistral AI: 7.24B
    ("Mixtral-8x7B", 46.7, 0.01),  # Mistral AI: 46.7B total
    ("Llama-3.1-8B", 8.03, 0.01),  # HF: 8,030,261,248
    ("OPT-66B", 65.7, 0.01),
    ("GPT-J-6B", 6.05, 0.01),  # EleutherAI: 6,053,381,344
])
def test_parameter_counts_match_published(catalog, name, published_b, tol):
    assert catalog.model(name).shape().total_params / 1e9 == pytest.approx(published_b, rel=tol)


def test_gqa_kv_per_token(catalog):
    # Llama-2-70B: 2 (K,V) x 80 layers x 8 KV heads x 128 head_dim values per token.
    assert catalog.model("Llama-2-70B").shape().kv_values_per_token == 2 * 80 * 8 * 128
    # Mixtral active parameters per token: top-2 of 8 experts (about 12.9B incl. embeddings).
    s = catalog.model("Mixtral-8x7B").shape()
    active = s.num_layers * s.layer_active_params + s.embedding_params + s.lm_head_params
    assert active / 1e9 == pytest.approx(12.9, rel=0.02)


def test_precision_parsing():
    assert parse_precision("2") is Precision.FP16
    assert parse_precision(4) is Precision.FP32
    assert parse_precision("1") is Precision.INT8
    assert parse_precision("BF16") is Precision.BF16
    assert Precision.INT4.bytes_per_value == pytest.approx(0.5 + 2 / 64)


def _one(catalog, model="OPT-1.3B", inst="a2-highgpu-1g", b=1, s=128, n=64, r=0.0, mode="stream", adjust=False, prec="fp16"):
    job = JobSpec(model=catalog.model(model), batch_sizes=(b,), input_len=s, output_len=n,
                  precision=parse_precision(prec), offload_ratios=(r,), offload_mode=mode, adjust=adjust,
                  weight_offload_step=0.0)
    return build_table(catalog, job, [catalog.instance(inst)])


def test_decode_hand_computed_memory_bound(catalog):
    """Batch 1 decode on one A100 is memory-bound: n steps x (weights + KV read) / (bw x eff) + overheads."""
    t = _one(catalog)
    shape, g, e = t.shape, catalog.gpu("A100-40GB-SXM"), catalog.efficiency("A100-40GB-SXM")
    bw = g.memory_bandwidth_gb_s * 1e9 * e.memory_bw
    kv_bw = g.memory_bandwidth_gb_s * 1e9 * (e.memory_bw if e.kv_bw is None else e.kv_bw)
    kv_tok = shape.kv_values_per_token * 2
    layer_w = shape.num_layers * shape.layer_params * 2
    head_w = (shape.lm_head_params or shape.vocab_size * shape.hidden_size) * 2
    expected = 0.0
    for c in range(128, 128 + 64):
        mem = (layer_w + head_w + kv_tok) / bw + kv_tok * c / kv_bw
        flops = (2 * shape.num_layers * shape.layer_active_params + 2 * shape.vocab_size * shape.hidden_size
                 + 4 * shape.num_layers * shape.q_dim * c) / (g.fp16_tflops * 1e12 * e.compute_decode)
        # + per-layer overhead, per-sequence host time (b = 1) and the fixed per-step host time
        expected += max(mem, flops) + shape.num_layers * e.layer_overhead_s + 1 * e.seq_overhead_s + (e.step_overhead_s or 0.0)
    assert t.pred.decode_s[0] == pytest.approx(expected, rel=REL)


def test_prefill_compute_bound_at_large_batch(catalog):
    t = _one(catalog, b=64, s=1024, n=1)
    shape, g, e = t.shape, catalog.gpu("A100-40GB-SXM"), catalog.efficiency("A100-40GB-SXM")
    T = 64 * 1024
    flops = 2 * shape.num_layers * shape.layer_active_params * T + 2 * shape.num_layers * 64 * 1024**2 * shape.q_dim \
        + 2 * 64 * shape.vocab_size * shape.hidden_size
    # plus the per-layer overhead and the fixed per-pass host time (step_overhead_s, None = 0)
    expected = (flops / (g.fp16_tflops * 1e12 * e.compute_prefill) + shape.num_layers * e.layer_overhead_s
                + (e.step_overhead_s or 0.0))
    assert t.pred.prefill_s[0] == pytest.approx(expected, rel=REL)


def test_tensor_parallel_splits_weights_and_adds_allreduce(catalog):
    t1 = _one(catalog, model="OPT-13B", inst="a2-highgpu-1g", b=8)
    t4 = _one(catalog, model="OPT-13B", inst="a2-highgpu-4g", b=8)
    assert t4.pred.weights_gb[0] == pytest.approx(t1.pred.weights_gb[0] / 4, rel=REL)
    # 4 GPUs are faster than 1 but less than 4x (all-reduces and per-layer overheads).
    speedup = t1.pred.total_s[0] / t4.pred.total_s[0]
    assert 1.5 < speedup < 4.0


def test_offload_moves_kv_to_host(catalog):
    t0 = _one(catalog, model="OPT-6.7B", inst="g4dn.4xlarge", b=32, s=512, n=128, r=0.0)
    t5 = _one(catalog, model="OPT-6.7B", inst="g4dn.4xlarge", b=32, s=512, n=128, r=0.5)
    assert t5.pred.kv_cache_gb[0] == pytest.approx(t0.pred.kv_cache_gb[0] / 2, rel=REL)
    assert t5.pred.host_memory_needed_gb[0] > t0.pred.host_memory_needed_gb[0]
    assert t5.pred.total_s[0] > t0.pred.total_s[0]


def test_unsupported_precision_is_infeasible_with_reason(catalog):
    t = _one(catalog, inst="g4dn.xlarge", prec="bf16")
    assert not t.feasible[0]
    reasons = t.reasons(0)
    assert [r.kind for r in reasons] == [ReasonKind.PRECISION]
    assert "bf16" in reasons[0].text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-0.1, 0.1)), min_size=1, max_size=4),
       st.integers(0, 3000), st.integers(1, 400))
def test_sum_max_lines_equals_loop(lines, c0, n):
    a = np.array([[x for x, _ in lines]])
    b = np.array([[y for _, y in lines]])
    brute = sum(max(x + y * c for x, y in lines) for c in range(c0, c0 + n))
    assert sum_max_lines(a, b, c0, n)[0] == pytest.approx(brute, rel=1e-9, abs=1e-9)


MODELS = ["OPT-1.3B", "OPT-6.7B", "OPT-30B", "Llama-2-7B", "Llama-2-70B", "Mixtral-8x7B", "Qwen2-7B"]


@settings(max_examples=150, deadline=None)
@given(model=st.sampled_from(MODELS), b=st.integers(1, 256), s=st.integers(1, 1024), n=st.integers(1, 512),
       adjust=st.booleans(), inst_i=st.integers(0, 10_000))
def test_more_offload_never_faster_and_decode_floor(catalog, model, b, s, n, adjust, inst_i):
    insts = sorted(catalog.instances.values(), key=lambda i: i.name)
    inst = insts[inst_i % len(insts)]
    ratios = tuple(k / 10 for k in range(11))
    for mode in ("stream", "cpu"):
        if adjust and mode == "cpu":
            continue  # overlapped CPU attention may legitimately beat GPU-only (FlexGen's delegation)
        job = JobSpec(model=catalog.model(model), batch_sizes=(b,), input_len=s, output_len=n,
                      offload_ratios=ratios, offload_mode=mode, adjust=adjust, weight_offload_step=0.0)
        t = build_table(catalog, job, [inst])
        if not t.usable[0]:
            continue
        total = t.pred.total_s
        assert np.all(np.diff(total) >= -1e-12 * total[:-1]), (mode, total)
        # Decode is never faster than reading the per-step weights once per step at full peak bandwidth.
        assert np.all(t.pred.decode_s >= t.pred.min_decode_s * (1 - 1e-12))


def test_hardware_arrays_use_nvlink_per_direction(catalog):
    hw = hardware_arrays(catalog, [catalog.instance("p4d.24xlarge"), catalog.instance("g6.12xlarge")], Precision.FP16)
    assert hw.gpu_link_gb_s[0] == 300.0  # A100 NVLink 600 GB/s bidirectional -> 300 per direction
    assert hw.gpu_link_gb_s[1] == 32.0  # L4: PCIe Gen4 x16 per direction


@pytest.mark.parametrize("confidence", [None, 0.9, 0.99])
def test_weight_offload_fraction_passes_the_feasibility_memory_test(catalog, confidence):
    """The weight-offload search tests the same quantity as feasibility (the P-quantile need under
    --confidence): every kept fraction below 1 fits, and one grid step less would not."""
    job = JobSpec(model=catalog.model("OPT-30B"), batch_sizes=(8, 64), input_len=256, output_len=32,
                  safety_factor=0.87, confidence=confidence, offload_ratios=(0.0, 0.5, 1.0))
    insts = [catalog.instance(n) for n in ("g4dn.16xlarge", "g6.4xlarge", "g5.4xlarge")]
    t = build_table(catalog, job, insts)
    partial = (t.weight_offload > 0) & (t.weight_offload < 1)
    assert partial.any()
    assert np.all(t.fits_gpu[partial])
    less = JobSpec(**{**job.__dict__, "weight_offload_step": 0.1})
    for i in np.nonzero(partial)[0][:5]:
        w = round(float(t.weight_offload[i]) - 0.1, 6)
        one = build_table(catalog, JobSpec(**{**less.__dict__, "batch_sizes": (int(t.batch_size[i]),),
                                              "offload_ratios": (float(t.offload_ratio[i]),),
                                              "offload_mode": t.mode_name(i) if t.mode_name(i) != "none" else "auto",
                                              "weight_offload_fixed": w}), [t.instances[i]])
        assert not one.fits_gpu[0]


def test_weight_offload_makes_30b_fit_one_t4(catalog):
    """FlexGen's setting: OPT-30B on one 16 GB T4 only fits with weights in host memory."""
    base = dict(model=catalog.model("OPT-30B"), batch_sizes=(64,), input_len=256, output_len=32, safety_factor=0.87)
    inst = [catalog.instance("g4dn.16xlarge")]
    off = build_table(catalog, JobSpec(**base, weight_offload_step=0.0), inst)
    assert not off.fits_gpu.any()
    on = build_table(catalog, JobSpec(**base, weight_offload_step=0.1), inst)
    assert on.feasible.any()
    i = int(np.argmax(np.where(on.feasible, on.pred.tps, -1)))
    assert 0 < on.weight_offload[i] <= 1
    # The smallest fitting fraction is kept: one grid step less does not fit.
    less = build_table(catalog, JobSpec(**base, weight_offload_fixed=on.weight_offload[i] - 0.1,
                                        offload_ratios=(float(on.offload_ratio[i]),),
                                        offload_mode=on.mode_name(i) if on.offload_ratio[i] else "auto"), inst)
    assert not less.fits_gpu[0]


@settings(max_examples=80, deadline=None)
@given(model=st.sampled_from(MODELS), b=st.integers(1, 128), s=st.integers(1, 1024), n=st.integers(1, 256),
       adjust=st.booleans(), r=st.sampled_from([0.0, 0.5, 1.0]), inst_i=st.integers(0, 10_000))
def test_more_weight_offload_never_faster(catalog, model, b, s, n, adjust, r, inst_i):
    insts = sorted(catalog.instances.values(), key=lambda i: i.name)
    inst = insts[inst_i % len(insts)]
    totals = []
    for w in (0.0, 0.25, 0.5, 1.0):
        job = JobSpec(model=catalog.model(model), batch_sizes=(b,), input_len=s, output_len=n, offload_ratios=(r,),
                      offload_mode="stream", adjust=adjust, weight_offload_fixed=w)
        t = build_table(catalog, job, [inst])
        if not t.usable[0]:
            return
        assert t.pred.decode_s[0] >= t.pred.min_decode_s[0] * (1 - 1e-12)
        totals.append(t.pred.total_s[0])
    assert all(b2 >= a2 * (1 - 1e-12) for a2, b2 in zip(totals, totals[1:]))


def test_numa_crossing_only_for_pcie_rings_over_two_nodes(catalog):
    """g5.48xlarge (8 A10G over PCIe, 2 NUMA nodes by its topology record) crosses; g5.12xlarge (no
    record) and p4d.24xlarge (NVSwitch, though 2 sockets) do not; every node count > 1 has a source."""
    insts = [catalog.instance(n) for n in ("g5.48xlarge", "g5.12xlarge", "p4d.24xlarge")]
    hw = hardware_arrays(catalog, insts, Precision.FP16)
    assert hw.numa_crossing is not None and hw.numa_crossing.tolist() == [True, False, False]
    for inst in catalog.instances.values():
        assert inst.gpu_numa_nodes == 1 or "topology" in inst.topology_source, inst.name


@pytest.mark.parametrize("share", [1.0, 0.5, 0.1])
def test_cross_numa_share_slows_only_the_crossing_ring(catalog, share):
    """The all-reduce term of a ring that spans NUMA nodes is divided by ``cross_numa_bw``: a smaller
    share never predicts faster, and rings that do not cross are unchanged."""
    from dataclasses import replace

    from llmopt_solver.predictor.physics import OffloadMode, predict

    insts = [catalog.instance("g5.48xlarge"), catalog.instance("g5.12xlarge")]
    hw = hardware_arrays(catalog, insts, Precision.FP16)
    shape = catalog.model("Llama-2-13B").shape()
    b = np.array([8.0, 8.0])

    def total(h):
        return predict(shape, 64, 32, 2.0, 2.0, 2.0, h, b, np.zeros(2), np.full(2, int(OffloadMode.STREAM)),
                       True).total_s

    base = total(replace(hw, eff_cross_numa=np.ones(2)))
    got = total(replace(hw, eff_cross_numa=np.full(2, share)))
    assert got[1] == pytest.approx(base[1], rel=REL)  # g5.12xlarge: one node, unaffected
    if share == 1.0:
        assert got[0] == pytest.approx(base[0], rel=REL)
    else:
        assert got[0] > base[0]


@pytest.mark.parametrize("extra_s", [0.0, 1e-4, 4e-4])
def test_dequant_layer_overhead_adds_per_layer_time_only_to_dequantised_weights(catalog, extra_s):
    """``dequant_layer_overhead_s`` is paid once per layer per forward pass (the prefill and each
    decode step) by weights the engine dequantises itself, and by nothing else."""
    from dataclasses import replace

    from llmopt_solver.predictor.physics import OffloadMode, predict

    hw = hardware_arrays(catalog, [catalog.instance("g5.2xlarge")], Precision.FP16)
    shape = catalog.model("Llama-2-7B").shape()
    b, n = np.array([4.0]), 32

    def total(h, dequant_bytes):
        return predict(shape, 64, n, 0.5, 2.0, 2.0, h, b, np.zeros(1), np.full(1, int(OffloadMode.STREAM)),
                       True, weight_dequant_bytes=dequant_bytes, dequant_min_tokens=8).total_s[0]

    base = replace(hw, dequant_layer_overhead_s=np.zeros(1))
    more = replace(hw, dequant_layer_overhead_s=np.full(1, extra_s))
    passes = 1 + n
    assert total(more, 2.0) - total(base, 2.0) == pytest.approx(passes * shape.num_layers * extra_s, rel=1e-9, abs=1e-12)
    assert total(more, 0.0) == pytest.approx(total(base, 0.0), rel=REL)  # fused kernels: unchanged
