"""Per-operator time of one transformer layer's non-GEMM kernels (one tensor-parallel shard).

Vidur's operator profiles time, besides the four GEMMs (``physics.gemm_roofline_s``), the
element-wise kernels of a layer: the activation, the RMSNorm, RoPE, the residual add and the
embedding gather. Each is memory-bound: it reads and writes a few T x width activations once.
Its time is a fixed launch cost plus the bytes moved over an effective bandwidth,

    t = fixed_s + bytes / (bw_eff x peak memory bandwidth),

with ``fixed_s`` and ``bw_eff`` fitted per operator on whole sets (``measure/operator_fit.py``).
Bytes are counted from the HF modeling files (LlamaMLP act_fn(gate) * up, LlamaRMSNorm,
apply_rotary_pos_emb on q and k, the residual add, nn.Embedding / VocabParallelEmbedding).
"""

from __future__ import annotations

import math

import numpy as np

from llmopt_solver.catalog.model_shape import ModelShape
from llmopt_solver.predictor.physics import GB

ELEMENTWISE_OPS = ("mlp_act", "input_layernorm", "attn_rope", "add", "emb")


def elementwise_bytes(op: str, tokens: np.ndarray, shape: ModelShape, tp: int, dtype_bytes: float = 2.0) -> np.ndarray:
    """Returns the bytes one shard's ``op`` reads and writes for ``tokens`` tokens (KeyError if unknown).

    mlp_act: gated FFNs read gate and up and write their product (3 x T x I/tp), plain FFNs read
    and write T x I/tp; input_layernorm: read and write T x h plus the h weights; attn_rope:
    read and write the shard's q and k (2 x T x (q + k)) plus the cos/sin rows (2 x T x head_dim);
    add: two T x h inputs, one output; emb: T token ids (int64) in, T x h rows gathered and written.
    """
    t = np.asarray(tokens, dtype=float)
    h = shape.hidden_size
    inter = shape.intermediate_size / tp
    q_shard = shape.q_dim / tp
    kv_shard = math.ceil(shape.num_kv_heads / tp) * shape.head_dim
    values = {
        "mlp_act": (3.0 if shape.gated_ffn else 2.0) * t * inter,
        "input_layernorm": 2.0 * t * h + h,
        "attn_rope": 2.0 * t * (q_shard + kv_shard) + 2.0 * t * shape.head_dim,
        "add": 3.0 * t * h,
        "emb": 2.0 * t * h,
    }[op]
    extra = 8.0 * t if op == "emb" else 0.0
    return dtype_bytes * values + extra


def elementwise_time_s(bytes_: np.ndarray, mem_bw_gb_s: float | np.ndarray, fixed_s: float | np.ndarray,
                       bw_eff: float | np.ndarray) -> np.ndarray:
    """Returns the time of a memory-bound kernel, s: ``fixed_s`` + bytes / (bw_eff x bandwidth)."""
    return np.asarray(fixed_s) + np.asarray(bytes_, dtype=float) / (np.asarray(bw_eff) * np.asarray(mem_bw_gb_s) * GB)
