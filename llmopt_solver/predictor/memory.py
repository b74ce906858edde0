"""Memory quantities, one function each, in bytes (``_bytes``) or GB (``_gb``, 1e9 bytes).

Every other module reads these; none recomputes them (the predictor, the option table, the
plan's start-up estimate and the measurement replay all call the same functions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmopt_solver.catalog.model_shape import ModelShape

GB = 1e9


def weight_bytes(model: ModelShape, bytes_per_weight: float, tp: np.ndarray | float = 1.0) -> np.ndarray | float:
    """Returns the weights one GPU holds under tensor parallelism ``tp``, bytes (all experts resident)."""
    return model.total_params * bytes_per_weight / tp


def kv_share_per_gpu(model: ModelShape, tp: np.ndarray | float) -> np.ndarray | float:
    """Returns the fraction of the KV cache one GPU holds: KV heads split over GPUs, replicated
    when ``tp`` exceeds them (Megatron-style head sharding)."""
    return np.ceil(model.num_kv_heads / np.asarray(tp, dtype=float)) / model.num_kv_heads


def kv_bytes_per_token_per_gpu(model: ModelShape, kv_bytes: float, tp: np.ndarray | float = 1.0) -> np.ndarray | float:
    """Returns the K and V bytes one token adds on one GPU, over all layers: 2 L n_kv d kv_bytes x share."""
    return model.kv_values_per_token * kv_bytes * kv_share_per_gpu(model, tp)


def kv_read_bytes_per_token_per_gpu(model: ModelShape, kv_bytes: float, tp: np.ndarray,
                                    per_query_head: bool) -> np.ndarray | float:
    """Returns the KV bytes decode attention reads per cached token on one GPU: the cached bytes
    (``kv_bytes_per_token_per_gpu``), or, when the kernel reads each KV head once per query head
    sharing it (``per_query_head``, DeepSpeed FastGen), q_dim / kv_dim times as many, the query
    heads split over the GPUs. A latent cache (MLA) has no KV heads to repeat: read as stored."""
    if not per_query_head or model.kv_latent_dim:
        return kv_bytes_per_token_per_gpu(model, kv_bytes, tp)
    return model.kv_values_per_token * kv_bytes * model.q_dim / model.kv_dim / tp


def activation_bytes(model: ModelShape, b: np.ndarray, s: float, act_bytes: float, tp: np.ndarray) -> np.ndarray:
    """Returns the peak activation working set of one prefill layer per GPU, bytes.

    Residual stream and normed input (replicated over GPUs), plus the larger of the attention
    stage (q, k, v, output; a fused/flash kernel is assumed, so no s x s score matrix, as in
    vLLM and TensorRT-LLM) and the FFN stage (gate+up output; MoE: k routed copies), plus fp32
    logits of the last position (vocab-parallel).
    """
    T = b * s
    routed = model.experts_per_token if model.num_experts > 1 else 1
    hidden = 2.0 * T * model.hidden_size * act_bytes
    attn = T * (2 * model.q_dim + 2 * model.kv_dim) * act_bytes / tp
    ffn = T * routed * model.ffn_width * act_bytes / tp
    logits = b * model.vocab_size * 4.0 / tp
    return hidden + np.maximum(attn, ffn) + logits


@dataclass(frozen=True)
class Resident:
    """Memory of one static batch per option, bytes per GPU unless ``host_`` (``resident_bytes``)."""

    kv_tok_gpu: np.ndarray  # K and V bytes one token adds on one GPU
    kv_full_gpu: np.ndarray  # the batch's whole KV cache on one GPU, before offload
    kv_gpu: np.ndarray  # its GPU-resident part
    staging: np.ndarray  # streamed KV's staging buffers
    w_staging: np.ndarray  # offloaded weights' staging buffers and a dequantised layer copy
    weights_gpu: np.ndarray  # GPU-resident weights
    activations: np.ndarray
    reserve: np.ndarray
    gpu_need: np.ndarray  # all of the above
    host_need: np.ndarray  # host memory of all GPUs' offloaded KV and weights, plus the host reserve


def resident_bytes(model: ModelShape, s: float, n: float, bytes_per_weight: float, kv_bytes: float, act_bytes: float,
                   tp: np.ndarray, reserve_gb: np.ndarray, host_reserve_gb: np.ndarray, b: np.ndarray, r: np.ndarray,
                   cpu: np.ndarray, wo: np.ndarray, weight_dequant_bytes: float = 0.0,
                   activation_batch: float | None = None) -> Resident:
    """Returns GPU and host memory per option (``physics.predict``'s memory, nothing timed): batch
    ``b`` of ``s`` + ``n`` tokens, KV fraction ``r`` offloaded (``cpu``: attended on the CPU, so not
    staged), weight fraction ``wo`` offloaded, ``tp`` GPUs; see ``predict`` for the other arguments."""
    L = model.num_layers
    kv_tok_gpu = kv_bytes_per_token_per_gpu(model, kv_bytes, tp)  # KV heads replicate when tp > n_kv_heads
    weights = weight_bytes(model, bytes_per_weight, tp)
    kv_full_gpu = b * (s + n) * kv_tok_gpu
    kv_gpu = (1.0 - r) * kv_full_gpu
    # Streaming stages one layer's offloaded KV, double-buffered, on the GPU and pinned on the host.
    staging = np.where(cpu, 0.0, 2.0 * r * kv_full_gpu / L)
    activations = activation_bytes(model, b if activation_batch is None else np.minimum(b, activation_batch), s,
                                   act_bytes, tp)
    reserve = reserve_gb * GB
    # Offloaded weights live on the host; one layer's share is staged, double-buffered, on the GPU.
    w_staging = 2.0 * wo * weights / L
    weights_gpu = (1.0 - wo) * weights
    # Dequantise-in-framework keeps one layer's full-precision copy on the GPU while it runs.
    w_staging = w_staging + weight_dequant_bytes * model.layer_params / tp
    gpu_need = weights_gpu + kv_gpu + activations + staging + w_staging + reserve
    host_need = (r * kv_full_gpu + wo * weights + staging + 2.0 * wo * weights / L) * tp + host_reserve_gb * GB
    return Resident(kv_tok_gpu=np.asarray(kv_tok_gpu), kv_full_gpu=kv_full_gpu, kv_gpu=kv_gpu, staging=staging,
                    w_staging=w_staging, weights_gpu=weights_gpu, activations=activations, reserve=reserve,
                    gpu_need=gpu_need, host_need=host_need)


def model_memory_gb(model: ModelShape, batch_size: int, input_len: int, output_len: int,
                    weight_bytes_per_value: float, kv_bytes: float, act_bytes: float) -> dict[str, float]:
    """Returns one copy of the model's memory, GB (no parallelism, nothing offloaded): weights,
    the full-length KV cache of the batch, and the peak prefill activations."""
    weights = float(weight_bytes(model, weight_bytes_per_value))
    kv = batch_size * (input_len + output_len) * float(kv_bytes_per_token_per_gpu(model, kv_bytes))
    act = activation_bytes(model, np.asarray([float(batch_size)]), float(input_len), act_bytes, np.asarray([1.0]))[0]
    return {"weights_gb": round(weights / GB, 6), "kv_cache_gb": round(kv / GB, 6),
            "activations_gb": round(float(act) / GB, 6)}
