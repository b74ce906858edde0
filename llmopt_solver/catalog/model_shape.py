"""Model cards (Hugging Face ``config.json`` fields) and the architecture shape derived from them.

``ModelShape`` holds what the predictor needs, in counts (parameters, values per token); bytes
come later from the precision. Parameter counting follows the HF modeling file of each family
(dense, GQA/MQA, gated FFN, MoE with routed + shared experts and per-layer dense/MoE mixes, MLA);
tests/test_param_counts.py checks it against the published counts of real models.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from llmopt_solver.catalog.config_fields import FAMILIES, GENERIC, tie_default, unknown_fields
from llmopt_solver.errors import ModelConfigError


@dataclass(frozen=True)
class ModelShape:
    """Architecture of one decoder-only transformer, in counts (not bytes).

    Per-layer figures are averages over the layers (models such as DeepSeek mix dense and MoE
    layers), so ``num_layers * layer_params`` is the exact sum over the decoder blocks.
    """

    name: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int  # query/key head width (MLA: qk_nope_head_dim + qk_rope_head_dim)
    intermediate_size: int  # FFN width of one routed expert (MoE) or of the dense FFN
    vocab_size: int
    gated_ffn: bool
    num_experts: int  # routed experts per MoE layer; 1 for dense models
    experts_per_token: int  # 1 for dense models
    tied_embeddings: bool
    layer_params: float  # one layer on average, all experts resident
    layer_active_params: float  # one layer on average, only the experts a token uses
    expert_params: float  # one routed expert's FFN, averaged over all layers (0 for dense)
    embedding_params: int  # token (+ learned position) embeddings
    lm_head_params: int  # 0 when tied to the embeddings
    final_norm_params: int
    blocks_params: int = 0  # exact sum over the decoder blocks
    kv_latent_dim: int = 0  # MLA: values cached per token and layer (kv_lora_rank + rope dim)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def total_params(self) -> int:
        """All parameters, every expert counted."""
        blocks = self.blocks_params or round(self.num_layers * self.layer_params)
        return blocks + self.embedding_params + self.lm_head_params + self.final_norm_params

    @property
    def active_params(self) -> int:
        """Parameters one token uses (routed experts: only the top-k)."""
        return (round(self.num_layers * self.layer_active_params) + self.embedding_params
                + self.lm_head_params + self.final_norm_params)

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def kv_values_per_token(self) -> int:
        """Values cached per token over all layers: 2·L·n_kv_heads·head_dim, or for MLA the
        compressed latent plus the shared rope key, L·(kv_lora_rank + qk_rope_head_dim)
        (DeepSeek-V2 paper, section 2.1: only c_t^KV and k_t^R are cached)."""
        if self.kv_latent_dim:
            return self.num_layers * self.kv_latent_dim
        return 2 * self.num_layers * self.kv_dim

    @property
    def ffn_width(self) -> int:
        """Width of the FFN's first projection output (gate+up for gated FFNs)."""
        return self.intermediate_size * (2 if self.gated_ffn else 1)


def _get(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return default


def _int(cfg: dict[str, Any], name: str, *keys: str, default: Any = None, minimum: int = 1) -> int:
    value = _get(cfg, *keys, default=default)
    if value is None:
        raise ModelConfigError(f"model {name!r}: config has no {keys[0]!r} (needed: a positive integer).")
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value
            or value in (float("inf"), float("-inf")) or value < minimum or value != int(value)):
        allowed = "a positive integer" if minimum >= 1 else f"an integer >= {minimum}"
        raise ModelConfigError(f"model {name!r}: {keys[0]!r} = {value!r}; allowed: {allowed}.")
    if value > 10**8:
        raise ModelConfigError(f"model {name!r}: {keys[0]!r} = {value!r}; allowed: at most 100000000.")
    return int(value)


def _attention(cfg: dict[str, Any], name: str, fam: dict[str, Any], h: int, a: int, kv: int, d: int) -> tuple[int, int, int]:
    """Returns (attention params per layer, query/key head width, MLA latent per token or 0)."""
    bias = fam["qkv_bias"]
    if cfg.get("kv_lora_rank"):
        # MLA (HF DeepseekV2Attention / DeepseekV3Attention): q via optional low-rank q_a/q_b
        # with an RMSNorm, kv_a_proj_with_mqa -> (latent, rope key), kv_a_layernorm, kv_b_proj.
        r_kv = _int(cfg, name, "kv_lora_rank")
        rope = _int(cfg, name, "qk_rope_head_dim")
        nope = _int(cfg, name, "qk_nope_head_dim")
        v = _int(cfg, name, "v_head_dim")
        r_q = _get(cfg, "q_lora_rank")
        qk = nope + rope
        if r_q:
            r_q = _int(cfg, name, "q_lora_rank")
            q = h * r_q + (r_q if bias else 0) + r_q + r_q * a * qk
        else:
            q = h * a * qk
        kv_p = h * (r_kv + rope) + (r_kv + rope if bias else 0) + r_kv + r_kv * a * (nope + v)
        o = a * v * h + (h if bias else 0)
        return q + kv_p + o, qk, r_kv + rope
    q_dim, kv_dim = a * d, kv * d
    attn = h * q_dim + 2 * h * kv_dim + q_dim * h
    if bias:
        attn += q_dim + 2 * kv_dim
    if fam["o_bias"]:
        attn += h
    qk_norm = fam.get("qk_norm")
    if qk_norm == "head":  # Qwen3, Gemma-3: RMSNorm(head_dim) on q and k
        attn += 2 * d
    elif qk_norm == "full":  # OLMoE: RMSNorm over all q and all k channels
        attn += q_dim + kv_dim
    return attn, d, 0


def _ffn(h: int, f: int, fam: dict[str, Any]) -> int:
    p = h * f * (3 if fam["gated"] else 2)
    if fam["mlp_bias"]:
        p += f * (2 if fam["gated"] else 1) + h
    return p


def _moe_layers(cfg: dict[str, Any], name: str, model_type: str, L: int, E: int) -> list[bool]:
    """Returns, per layer, whether its FFN is a mixture of experts (HF modeling files' rules)."""
    if E <= 1:
        return [False] * L
    if "first_k_dense_replace" in cfg or "moe_layer_freq" in cfg or model_type.startswith("deepseek"):
        first = _int(cfg, name, "first_k_dense_replace", default=0, minimum=0)
        freq = _int(cfg, name, "moe_layer_freq", default=1)
        return [i >= first and i % freq == 0 for i in range(L)]
    only = cfg.get("mlp_only_layers") or []
    if not isinstance(only, list) or any(isinstance(i, bool) or not isinstance(i, int) for i in only):
        raise ModelConfigError(f"model {name!r}: 'mlp_only_layers' = {only!r}; allowed: a list of layer indices.")
    step = _int(cfg, name, "decoder_sparse_step", default=1)
    return [i not in only and (i + 1) % step == 0 for i in range(L)]


def shape_from_config(cfg: dict[str, Any], name: str | None = None, warn: bool = True) -> ModelShape:
    """Returns the ModelShape of a Hugging Face config dict; raises ModelConfigError if unusable.

    Fields that would change the architecture but that the reader does not handle, and an unknown
    model_type, are listed in ``warnings`` and (``warn``) written once per process to stderr.
    """
    name = name or str(cfg.get("name") or cfg.get("_name_or_path") or "model")
    model_type = str(cfg.get("model_type", "")).lower()
    notes: list[str] = []
    fam = FAMILIES.get(model_type)
    if fam is None:
        act = str(_get(cfg, "hidden_act", "activation_function", default="")).lower()
        fam = dict(GENERIC, gated=act in {"silu", "swiglu", "geglu", "gelu_pytorch_tanh"},
                   qkv_bias=bool(cfg.get("attention_bias", False)), o_bias=bool(cfg.get("attention_bias", False)),
                   mlp_bias=bool(cfg.get("mlp_bias", False)))
        notes.append(f"model_type {model_type or '(none)'!r} is not a family the reader knows; "
                     f"counted as a {'gated' if fam['gated'] else 'plain'}-FFN pre-norm decoder")
    else:
        fam = dict(fam)
        if "attention_bias" in cfg and model_type not in ("opt",):
            fam["qkv_bias"] = fam["o_bias"] = bool(cfg["attention_bias"])
        if "mlp_bias" in cfg and model_type not in ("opt", "gptj", "gpt2"):
            fam["mlp_bias"] = bool(cfg["mlp_bias"])
    notes += [f"config field {k!r} is not understood by the reader; the parameter count ignores it"
              for k in unknown_fields(cfg)]

    L = _int(cfg, name, "num_hidden_layers", "n_layer", "num_layers")
    h = _int(cfg, name, "hidden_size", "n_embd", "d_model")
    a = _int(cfg, name, "num_attention_heads", "n_head")
    kv = _int(cfg, name, "num_key_value_heads", "multi_query_group_num", "num_kv_heads", default=a)
    if cfg.get("multi_query") is True and "num_key_value_heads" not in cfg:
        kv = 1
    if a % kv:
        raise ModelConfigError(f"model {name!r}: num_attention_heads ({a}) must be a multiple of num_key_value_heads ({kv}).")
    d = _int(cfg, name, "head_dim", default=h // a if h >= a else None)
    f = _int(cfg, name, "intermediate_size", "ffn_dim", "n_inner", default=4 * h)
    V = _int(cfg, name, "vocab_size")
    E = _int(cfg, name, "num_local_experts", "num_experts", "n_routed_experts", default=1, minimum=0) or 1
    k = _int(cfg, name, "num_experts_per_tok", "moe_top_k", default=1 if E == 1 else 2)
    if k > E:
        raise ModelConfigError(f"model {name!r}: num_experts_per_tok ({k}) exceeds the number of experts ({E}).")
    tied_raw = cfg.get("tie_word_embeddings", tie_default(model_type))
    if not isinstance(tied_raw, bool):
        raise ModelConfigError(f"model {name!r}: 'tie_word_embeddings' = {tied_raw!r}; allowed: true or false.")

    attn, qk_dim, latent = _attention(cfg, name, fam, h, a, kv, d)
    norm = h * (2 if fam["norm_bias"] else 1)
    per_layer_fixed = attn + fam["norms_per_layer"] * norm
    fe = _int(cfg, name, "moe_intermediate_size", default=f) if E > 1 else f
    expert = _ffn(h, fe, fam)
    shared = 0
    if E > 1 and cfg.get("shared_expert_intermediate_size"):  # Qwen2-MoE: shared expert + sigmoid gate
        shared = _ffn(h, _int(cfg, name, "shared_expert_intermediate_size"), fam) + h
    elif E > 1 and cfg.get("n_shared_experts"):  # DeepSeek: n_shared experts fused into one MLP
        shared = _ffn(h, fe * _int(cfg, name, "n_shared_experts"), fam)
    router = h * E + (E if cfg.get("topk_method") == "noaux_tc" else 0)  # V3: e_score_correction_bias
    moe = _moe_layers(cfg, name, model_type, L, E)
    n_moe = sum(moe)
    dense_ffn = _ffn(h, f, fam)
    blocks = L * per_layer_fixed + n_moe * (E * expert + shared + router) + (L - n_moe) * dense_ffn
    active = L * per_layer_fixed + n_moe * (k * expert + shared + router) + (L - n_moe) * dense_ffn

    emb = V * h
    if fam["learned_pos_offset"] is not None:
        pos = _int(cfg, name, "max_position_embeddings", "n_positions", default=2048)
        emb += (pos + fam["learned_pos_offset"]) * h
    proj = cfg.get("word_embed_proj_dim")
    if model_type == "opt" and proj and proj != h:
        emb = V * proj + (emb - V * h) + 2 * h * proj  # project_in / project_out
    lm_head = 0 if tied_raw else V * h + (V if model_type == "gptj" else 0)
    final_norm = 0 if (model_type == "opt" and cfg.get("do_layer_norm_before") is False) else norm

    if warn:
        for note in notes:
            _warn_once(name, note)
    return ModelShape(
        name=name, model_type=model_type or "unknown", num_layers=L, hidden_size=h, num_heads=a,
        num_kv_heads=a if latent else kv, head_dim=qk_dim, intermediate_size=fe, vocab_size=V,
        gated_ffn=bool(fam["gated"]), num_experts=E if n_moe else 1,
        experts_per_token=k if n_moe else 1, tied_embeddings=tied_raw,
        layer_params=blocks / L, layer_active_params=active / L,
        expert_params=expert * n_moe / L if n_moe else 0, embedding_params=emb,
        lm_head_params=lm_head, final_norm_params=final_norm, blocks_params=blocks,
        kv_latent_dim=latent, warnings=tuple(notes),
    )


_WARNED: set[tuple[str, str]] = set()


def _warn_once(name: str, note: str) -> None:
    """Writes one 'warning' line to stderr, once per (model, note) and process."""
    if (name, note) not in _WARNED:
        _WARNED.add((name, note))
        sys.stderr.write(f"llmopt: warning: model {name!r}: {note}.\n")


def expected_experts_touched(num_experts: int, experts_per_token: int, tokens: Any) -> Any:
    """Returns the expected number of distinct experts a batch of ``tokens`` routes to.

    Uniform routing: each token picks k of E experts, so an expert is missed with probability
    (1 - k/E)^tokens (the standard balls-in-bins estimate).
    """
    import numpy as np

    if num_experts <= 1:
        return np.ones_like(np.asarray(tokens, dtype=float))
    miss = (1.0 - experts_per_token / num_experts) ** np.asarray(tokens, dtype=float)
    return num_experts * (1.0 - miss)
