"""The physics: memory (bytes) and time (seconds) of one static batch, vectorised over options.

Pure numpy, no solver. Every input array has one entry per option (instance x offload level x
batch size x offload mode); scalars describe the model and the lengths. All quantities are per
GPU unless named ``host_`` or ``_total``; bytes and seconds inside, GB only in field names that
say so.

References for the terms:
- roofline per phase, max(compute, memory): Williams et al., CACM 2009; LLM-Viewer (Yuan et al.,
  arXiv:2402.16363) applies it per layer to prefill and decode;
- decode reads all weights and the resident KV once per step (FlexGen, Sheng et al., ICML 2023,
  section 4 cost model); KV offloading by streaming over PCIe or by CPU attention (FlexGen's
  "CPU delegation"); transfer/compute overlap as FlexGen's pipelined schedule;
- FLOPs: 2 per parameter per token (Kaplan et al., 2020) plus attention 4*b*c*q_dim per layer
  per decode step, halved for the causal prefill;
- tensor parallelism: Megatron-LM (Shoeybi et al., 2019), 2 all-reduces per layer, ring cost
  latency + 2(p-1)/p * message / bandwidth (Patarasuk & Yuan, JPDC 2009; NCCL's "bus bandwidth",
  nccl-tests doc/PERFORMANCE.md); the bandwidth is the link's times ``eff_gpu_link``, which
  calibration fits as ``allreduce_bw``: small decode messages over PCIe without peer-to-peer (NCCL
  through host shared memory, e.g. AWS g5's A10G) reach a small fraction of the link. A PCIe ring
  whose GPUs hang off two CPU sockets (g5.48xlarge: 4 GPUs per NUMA node, aws-ofi-nccl
  topology/g5.48xl-topo.xml) sends every step across the inter-socket link, which NCCL's
  topology model rates on its own (src/graph/topo.h: a ``SYS`` path crosses "the SMP
  interconnect between NUMA nodes", rated ``AMD_BW``/``*_QPI_BW``): that ring runs at its slowest
  hop, so its bandwidth is the single-node one times ``eff_cross_numa`` (calibration's
  ``cross_numa_bw``) where ``numa_crossing`` says the ring spans nodes.
- runtime overheads, serial with the GPU work of a synchronous engine: ``layer_overhead_s`` per layer
  per pass (kernel launches), ``step_overhead_s`` per forward pass (the engine's per-iteration host
  work: scheduling, input preparation, sampling and output handling; the vLLM team measured it as a
  large share of small-model step time, blog.vllm.ai/2024/09/05/perf-update.html), and
  ``seq_overhead_s`` per sequence per decode step (per-request Python work in the sampler/detokeniser);
  weights an engine dequantises in its own kernels (TGI 1.0.x GPTQ: ExLlama q4 launches, a
  reconstruct kernel before cuBLAS) add ``dequant_layer_overhead_s`` per layer per pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

from llmopt_solver.catalog.model_shape import ModelShape, expected_experts_touched
from llmopt_solver.predictor.disk import DiskTier, disk_time
from llmopt_solver.predictor.memory import GB, activation_bytes, kv_read_bytes_per_token_per_gpu, resident_bytes

__all__ = ["GB", "Hardware", "OffloadMode", "Prediction", "activation_bytes", "predict", "sum_max_lines"]
TERA = 1e12
GIGA = 1e9


class OffloadMode(IntEnum):
    """How the host-resident part of the KV cache is used in decode."""

    STREAM = 0  # copy it to the GPU over PCIe each step
    CPU = 1  # compute attention over it on the CPU (FlexGen's delegation)


@dataclass(frozen=True)
class Hardware:
    """Per-option hardware and efficiency arrays (all shape (N,)), per GPU unless host_*."""

    gpu_memory_gb: np.ndarray
    mem_bw_gb_s: np.ndarray
    peak_tflops: np.ndarray  # dense peak for the run's precision; NaN where unsupported
    host_link_gb_s: np.ndarray  # per direction
    gpu_link_gb_s: np.ndarray  # per direction, GPU<->GPU (NVLink, else PCIe)
    gpu_count: np.ndarray
    host_memory_gb: np.ndarray
    host_bw_gb_s: np.ndarray
    cpu_gflops: np.ndarray
    eff_compute_prefill: np.ndarray
    eff_compute_decode: np.ndarray
    eff_memory_bw: np.ndarray
    eff_pcie: np.ndarray
    eff_gpu_link: np.ndarray
    layer_overhead_s: np.ndarray
    allreduce_latency_s: np.ndarray
    reserve_gb: np.ndarray
    host_reserve_gb: np.ndarray
    eff_kv_bw: np.ndarray | None = None  # decode attention's KV reads; None: eff_memory_bw
    seq_overhead_s: np.ndarray | None = None  # host time per sequence per decode step; None: 0
    step_overhead_s: np.ndarray | None = None  # fixed host time per forward pass (step); None: 0
    numa_crossing: np.ndarray | None = None  # True: the PCIe all-reduce ring spans CPU NUMA nodes; None: never
    eff_cross_numa: np.ndarray | None = None  # share of the all-reduce bandwidth left then; None: 1
    dequant_layer_overhead_s: np.ndarray | None = None  # extra per-layer time of dequantising kernels; None: 0
    dequant_warmup_s: np.ndarray | None = None  # one-off warm-up of those kernels in a load test (serving.py); None: 0

    def take(self, idx: np.ndarray) -> Hardware:
        """Returns the rows ``idx`` of every array."""
        rows: dict[str, Any] = {k: (None if getattr(self, k) is None else getattr(self, k)[idx])
                                for k in self.__dataclass_fields__}
        return Hardware(**rows)


@dataclass(frozen=True)
class Prediction:
    """Predicted memory (GB, per GPU unless host_) and time (s) per option; arrays of shape (N,)."""

    weights_gb: np.ndarray  # per GPU
    kv_cache_gb: np.ndarray  # GPU-resident KV per GPU
    activations_gb: np.ndarray  # per GPU
    staging_gb: np.ndarray  # per GPU staging buffers for streamed KV and weights
    reserve_gb: np.ndarray
    gpu_memory_needed_gb: np.ndarray
    host_memory_needed_gb: np.ndarray
    prefill_s: np.ndarray
    decode_s: np.ndarray
    total_s: np.ndarray
    tps: np.ndarray
    tps_per_seq: np.ndarray
    min_decode_s: np.ndarray  # n x (weights read per step at peak bandwidth): a physical floor

    def take(self, idx: np.ndarray) -> Prediction:
        """Returns the rows ``idx`` of every array."""
        return Prediction(**{k: getattr(self, k)[idx] for k in self.__dataclass_fields__})


def sum_max_lines(a: np.ndarray, b: np.ndarray, c0: int, n: int) -> np.ndarray:
    """Returns sum over integers c in [c0, c0+n) of max_k (a[:, k] + b[:, k] * c), shape (N,).

    The maximum of lines is convex and piecewise linear; its pieces change only at pairwise
    crossings, so the sum is exact: arithmetic series on the integer segments between crossings.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    N, K = a.shape
    lo, hi = float(c0), float(c0 + n)
    cuts = [np.full(N, lo), np.full(N, hi)]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for i in range(K):
            for j in range(i + 1, K):
                x = (a[:, i] - a[:, j]) / (b[:, j] - b[:, i])
                x = np.where(np.isfinite(x), np.ceil(np.clip(x, lo, hi)), lo)
                cuts.append(x)
    edges = np.sort(np.stack(cuts, axis=1), axis=1)
    total = np.zeros(N)
    rows = np.arange(N)
    for m in range(edges.shape[1] - 1):
        s, e = edges[:, m], edges[:, m + 1]
        count = e - s
        mid = (s + e - 1.0) / 2.0
        k = np.argmax(a + b * mid[:, None], axis=1)
        sum_c = (s + e - 1.0) * count / 2.0
        total += np.where(count > 0, a[rows, k] * count + b[rows, k] * sum_c, 0.0)
    return total


def predict(
    model: ModelShape,
    input_len: int,
    output_len: int,
    bytes_per_weight: float,
    kv_bytes: float,
    act_bytes: float,
    hw: Hardware,
    batch_size: np.ndarray,
    offload_ratio: np.ndarray,
    mode: np.ndarray,
    overlap: bool,
    weight_offload: np.ndarray | None = None,
    weight_dequant_bytes: float = 0.0,
    kv_dequant_bytes: float = 0.0,
    weight_stream_sync: bool = False,
    dequant_traffic_bytes: float | None = None,
    dequant_min_tokens: float = 0.0,
    disk: DiskTier | None = None,
    activation_batch: float | None = None,
    kv_read_per_query_head: bool = False,
    routing_sequences: float | None = None,
) -> Prediction:
    """Returns memory (GB) and time (s) of one static batch for every option.

    Args:
        bytes_per_weight, kv_bytes, act_bytes: bytes per weight, KV value, activation value.
        hw: per-option hardware arrays; batch_size, offload_ratio, mode: per-option arrays.
        overlap: True overlaps host transfers / CPU attention with GPU work (``--adjust``);
            False adds them (the conservative serial model).
        weight_offload: per-option fraction of the weights kept in host memory and streamed to
            the GPU layer by layer in every forward pass (FlexGen); None means 0.
        weight_dequant_bytes, kv_dequant_bytes: bytes per value of a dequantised copy the engine
            writes to GPU memory and reads back before the matmul / attention (an engine that
            dequantises in the framework, e.g. FlexGen's group-wise int4 decompressed in PyTorch
            to fp16: 2.0); 0 for fused kernels that read the packed values directly.
        dequant_traffic_bytes: GPU memory traffic per dequantised value beyond reading the packed
            value once, bytes; None: write and read the copy once (2 x the copy's bytes per value).
        dequant_min_tokens: weights are dequantised only in passes of at least this many tokens;
            smaller passes run a fused kernel (ExLlama's ``matmul_recons_thd``, TGI 1.0.x GPTQ: 8).
        disk: FlexGen's disk tier (``predictor.disk``): shares of the offloaded weights / KV kept
            on disk and read back every pass; None: none.
        activation_batch: sequences whose activations are on the GPU at once (FlexGen's
            ``gpu_batch``: a block of ``num_gpu_batches`` runs one GPU batch at a time); None: the batch.
        weight_stream_sync: weights copied with no prefetch (HF Accelerate): serial even if ``overlap``.
        kv_read_per_query_head: decode attention reads each KV head once per query head that shares
            it (grouped-query attention gains no KV traffic: DeepSpeed FastGen's blocked flash
            kernel runs every attention atom once per query head); False: once per KV head.
        routing_sequences: distinct sequences a batch's MoE routing sees (a batch of identical
            prompts decoded alike routes as one sequence); None: every sequence routes on its own.
    """
    s, n = float(input_len), float(output_len)
    b = np.asarray(batch_size, dtype=float)
    r = np.asarray(offload_ratio, dtype=float)
    cpu = np.asarray(mode) == OffloadMode.CPU
    wo = np.zeros_like(r) if weight_offload is None else np.asarray(weight_offload, dtype=float)
    tp = hw.gpu_count.astype(float)
    L, h, V = model.num_layers, model.hidden_size, model.vocab_size
    qd, kvd = model.q_dim, model.kv_dim

    # --- memory (bytes, per GPU; ``memory.resident_bytes``)
    mem = resident_bytes(model, s, n, bytes_per_weight, kv_bytes, act_bytes, tp, hw.reserve_gb, hw.host_reserve_gb, b,
                         r, cpu, wo, weight_dequant_bytes, activation_batch)
    kv_tok_gpu, kv_full_gpu, staging, w_staging = mem.kv_tok_gpu, mem.kv_full_gpu, mem.staging, mem.w_staging
    T = b * s
    routed = model.experts_per_token if model.num_experts > 1 else 1

    # --- effective rates (per second)
    with np.errstate(invalid="ignore"):
        flops_pre = hw.peak_tflops * TERA * hw.eff_compute_prefill
        flops_dec = hw.peak_tflops * TERA * hw.eff_compute_decode
    mem_bw = hw.mem_bw_gb_s * GB * hw.eff_memory_bw
    # Paged/flash decode attention streams the KV cache at its own fraction of peak bandwidth.
    kv_bw = hw.mem_bw_gb_s * GB * (hw.eff_memory_bw if hw.eff_kv_bw is None else hw.eff_kv_bw)
    pcie = hw.host_link_gb_s * GB * hw.eff_pcie
    link = hw.gpu_link_gb_s * GB * hw.eff_gpu_link
    if hw.numa_crossing is not None and hw.eff_cross_numa is not None:
        link = link * np.where(hw.numa_crossing, hw.eff_cross_numa, 1.0)
    cpu_bw = hw.host_bw_gb_s * GB
    cpu_flops = hw.cpu_gflops * GIGA
    head_params = model.lm_head_params or V * h  # tied: the embedding matrix is the LM head

    route = 1.0 if routing_sequences is None else np.minimum(b, routing_sequences) / b  # share routing apart

    def layer_weight_bytes(tokens: np.ndarray) -> np.ndarray:
        # MoE: only experts some token routes to are read (dense: all of the layer).
        touched = expected_experts_touched(model.num_experts, model.experts_per_token, tokens * route)
        unread = (model.num_experts - touched) * model.expert_params if model.num_experts > 1 else 0.0
        return L * (model.layer_params - unread) * bytes_per_weight / tp

    def allreduce_s(tokens: np.ndarray) -> np.ndarray:
        # 2 all-reduces of tokens x h activations per layer (Megatron), ring algorithm.
        ring = 2.0 * (tp - 1.0) / tp * tokens * h * act_bytes / link
        return np.where(tp > 1, 2.0 * L * (hw.allreduce_latency_s + ring), 0.0)

    # --- prefill: roofline over the whole forward pass of b*s tokens
    pre_flops = (2.0 * L * model.layer_active_params * T + 2.0 * L * b * s * s * qd
                 + 2.0 * b * V * h) / tp
    act_traffic = L * T * act_bytes * (6 * h + 2 * qd + 2 * kvd + routed * (model.ffn_width + model.intermediate_size)) / tp
    # Dequantise-in-framework: every pass writes and reads a full-precision copy of the weights.
    def dq_factor(copy_bytes: float, packed_bytes: float) -> float:
        if copy_bytes <= 0:
            return 0.0
        return (2.0 * copy_bytes if dequant_traffic_bytes is None else dequant_traffic_bytes) / packed_bytes

    dq_w, dq_kv = dq_factor(weight_dequant_bytes, bytes_per_weight), dq_factor(kv_dequant_bytes, kv_bytes)
    pre_bytes = (layer_weight_bytes(T) * (1.0 + np.where(T >= dequant_min_tokens, dq_w, 0.0)) + head_params * bytes_per_weight / tp + T * kv_tok_gpu
                 + act_traffic)
    # A forward pass also pays the engine's fixed per-step host time (scheduling, input
    # preparation, sampling launch, output handling): ``step_overhead_s``.
    step_s = np.zeros_like(b) if hw.step_overhead_s is None else hw.step_overhead_s
    # Quantised weights run through the engine's own dequantising kernels (TGI 1.0.x GPTQ: ExLlama
    # q4 launches, reconstruct + cuBLAS) cost more launches and host work per layer than cuBLAS fp16.
    layer_s = hw.layer_overhead_s
    if weight_dequant_bytes > 0 and hw.dequant_layer_overhead_s is not None:
        layer_s = layer_s + hw.dequant_layer_overhead_s
    pre_gpu = (np.maximum(pre_flops / flops_pre, pre_bytes / mem_bw) + L * layer_s
               + allreduce_s(T) + step_s)
    # The prompt's offloaded KV goes to the host; offloaded weights come over once per pass.
    head_bytes = head_params * bytes_per_weight / tp
    w_stream_s = wo * (layer_weight_bytes(b) + head_bytes) / pcie
    sync, pre_w_s = float(weight_stream_sync), wo * (layer_weight_bytes(T) + head_bytes) / pcie
    pre_gpu, pre_offload = pre_gpu + sync * pre_w_s, r * T * kv_tok_gpu / pcie + (1.0 - sync) * pre_w_s
    dk = disk_time(disk, layer_weight_bytes(b) + head_bytes, kv_tok_gpu, b, T, kv_full_gpu)  # FlexGen's disk tier
    pre_offload = pre_offload + dk.prefill_s
    prefill = np.maximum(pre_gpu, pre_offload) if overlap else pre_gpu + pre_offload

    # --- decode: step time at context c is a max of lines a + slope * c; summed exactly
    gpu_attn_share = np.where(cpu, 1.0 - r, 1.0)  # stream: GPU attends over all KV
    comp_a = (2.0 * L * model.layer_active_params * b + 2.0 * b * V * h) / tp / flops_dec
    comp_b = 4.0 * L * b * qd / tp * gpu_attn_share / flops_dec
    w_step = layer_weight_bytes(b) + head_params * bytes_per_weight / tp
    dq_dec = np.where(b >= dequant_min_tokens, dq_w, 0.0)
    mem_a = (w_step + layer_weight_bytes(b) * dq_dec + b * kv_tok_gpu) / mem_bw  # weights + new KV write
    kv_read_gpu = kv_read_bytes_per_token_per_gpu(model, kv_bytes, tp, kv_read_per_query_head)
    mem_b = b * kv_read_gpu * gpu_attn_share * (1.0 + dq_kv) / kv_bw
    new_kv_out = r * b * kv_tok_gpu / pcie  # the new token's offloaded KV goes back to the host
    stream_b = r * b * kv_tok_gpu / pcie
    # CPU attention: host-resident KV of all GPUs read from DRAM, 4*q_dim FLOPs per token & layer.
    cpu_b = np.maximum(r * b * kv_tok_gpu * tp / cpu_bw, r * 4.0 * L * b * qd / cpu_flops)
    qo_transfer = np.where(r > 0, 2.0 * L * b * qd * act_bytes / tp / pcie, 0.0)
    # sync: weight copies serial with GPU work (no prefetch); step_s: fixed host time per pass.
    const = L * layer_s + allreduce_s(b) + step_s + sync * w_stream_s
    off_a = new_kv_out + np.where(cpu, qo_transfer, 0.0) + (1.0 - sync) * w_stream_s
    off_b = np.where(cpu, cpu_b, stream_b)
    if hw.seq_overhead_s is not None:
        # Serving frameworks' per-step host work (scheduling, sampling) grows with the batch and
        # is serial with the GPU step in a synchronous engine.
        const = const + b * hw.seq_overhead_s
    if overlap:  # disk I/O is one more overlapped pipeline stage
        lines_a = np.stack([comp_a, mem_a, off_a, dk.a], axis=1) + const[:, None]
        lines_b = np.stack([comp_b, mem_b, off_b, dk.slope], axis=1)
    else:
        off_a, off_b = off_a + dk.a, off_b + dk.slope
        lines_a = np.stack([comp_a + off_a, mem_a + off_a], axis=1) + const[:, None]
        lines_b = np.stack([comp_b + off_b, mem_b + off_b], axis=1)
    decode = sum_max_lines(lines_a, lines_b, int(input_len), int(output_len))

    total = prefill + decode
    with np.errstate(divide="ignore", invalid="ignore"):
        tps = b * n / total
        tps_per_seq = n / total
    min_decode = n * w_step / (hw.mem_bw_gb_s * GB)  # weights read once per step at peak bandwidth
    return Prediction(
        weights_gb=mem.weights_gpu / GB, kv_cache_gb=mem.kv_gpu / GB, activations_gb=mem.activations / GB,
        staging_gb=(staging + w_staging) / GB, reserve_gb=mem.reserve / GB,
        gpu_memory_needed_gb=mem.gpu_need / GB, host_memory_needed_gb=mem.host_need / GB - dk.disk_gb * tp,
        prefill_s=prefill, decode_s=decode, total_s=total, tps=tps, tps_per_seq=tps_per_seq,
        min_decode_s=min_decode,
    )


def gemm_roofline_s(tokens: np.ndarray, k: np.ndarray, n: np.ndarray, dtype_bytes: float, peak_tflops: np.ndarray,
                    eff_compute: np.ndarray, mem_bw_gb_s: np.ndarray, eff_memory_bw: np.ndarray) -> np.ndarray:
    """Returns the roofline time of one GEMM, s: ``tokens`` x (k x n) weights, operands of ``dtype_bytes``.

    max(FLOPs / effective peak, bytes / effective bandwidth), Williams et al. 2009; the bytes are
    the weight matrix plus the input and output activations read/written once. Used to score
    Vidur's per-operator profiles (one layer, one tensor-parallel shard).
    """
    flops = 2.0 * tokens * k * n
    bytes_ = dtype_bytes * (k * n + tokens * k + tokens * n)
    return np.maximum(flops / (peak_tflops * TERA * eff_compute), bytes_ / (mem_bw_gb_s * GB * eff_memory_bw))


def decode_floor_s(model: ModelShape, input_len: int, output_len: int, kv_bytes: float, hw: Hardware,
                   batch_size: np.ndarray, min_decode_s: np.ndarray) -> np.ndarray:
    """Returns a physical lower bound on ``output_len`` decode steps, s.

    ``min_decode_s`` (weights read once per step at 100% of peak bandwidth, ``Prediction``) plus the
    resident KV cache read once per step at peak bandwidth, since attention must read it: context
    grows from ``input_len`` by one token per step. No run can beat it.
    """
    s, n = float(input_len), float(output_len)
    b = np.asarray(batch_size, dtype=float)
    tp = hw.gpu_count.astype(float)
    kv_tok_gpu = model.kv_values_per_token * kv_bytes * np.ceil(model.num_kv_heads / tp) / model.num_kv_heads
    return min_decode_s + b * kv_tok_gpu * (n * s + n * (n - 1) / 2.0) / (hw.mem_bw_gb_s * GB)
