"""Model cards (Hugging Face ``config.json`` fields) and the architecture shape derived from them.

``ModelShape`` holds what the predictor needs, in counts (parameters, values per token); bytes
come later from the precision.
"""

from __future__ import annotations


from dataclasses import dataclass
from typing import Any

from llmopt_solver.errors import ModelConfigError

# model_type -> (gated FFN, norm with bias, linear biases, learned positions, norms per layer)
# Sources: the HF modeling files of each family (LlamaMLP gate/up/down; OPTDecoderLayer with
# biased Linear and LayerNorm and OPTLearnedPositionalEmbedding (offset 2); GPTJBlock with one
# ln_1, parallel attention/MLP, biased MLP only; Qwen2Attention with q/k/v bias).
_FAMILIES: dict[str, dict[str, Any]] = {
    "opt": dict(gated=False, norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True,
                learned_pos_offset=2, norms_per_layer=2),
    "gptj": dict(gated=False, norm_bias=True, qkv_bias=False, o_bias=False, mlp_bias=True,
                 learned_pos_offset=None, norms_per_layer=1),
    "llama": dict(gated=True, norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False,
                  learned_pos_offset=None, norms_per_layer=2),
    "mistral": dict(gated=True, norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False,
                    learned_pos_offset=None, norms_per_layer=2),
    "mixtral": dict(gated=True, norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False,
                    learned_pos_offset=None, norms_per_layer=2),
    "qwen2": dict(gated=True, norm_bias=False, qkv_bias=True, o_bias=False, mlp_bias=False,
                  learned_pos_offset=None, norms_per_layer=2),
    "qwen2_moe": dict(gated=True, norm_bias=False, qkv_bias=True, o_bias=False, mlp_bias=False,
                      learned_pos_offset=None, norms_per_layer=2),
    "gemma": dict(gated=True, norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False,
                  learned_pos_offset=None, norms_per_layer=2),
    "phi3": dict(gated=True, norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False,
                 learned_pos_offset=None, norms_per_layer=2),
    "gpt_neox": dict(gated=False, norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True,
                     learned_pos_offset=None, norms_per_layer=2),
    "falcon": dict(gated=False, norm_bias=True, qkv_bias=False, o_bias=False, mlp_bias=False,
                   learned_pos_offset=None, norms_per_layer=1),
}
# Gated families by activation name when model_type is unknown.
_GATED_ACTS = {"silu", "swiglu", "geglu", "gelu_pytorch_tanh"}


@dataclass(frozen=True)
class ModelShape:
    """Architecture of one decoder-only transformer, in counts (not bytes)."""

    name: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    gated_ffn: bool
    num_experts: int  # 1 for dense models
    experts_per_token: int  # 1 for dense models
    tied_embeddings: bool
    layer_params: int  # one layer, all experts resident
    layer_active_params: int  # one layer, only the experts a token uses
    expert_params: int  # one expert's FFN (0 for dense)
    embedding_params: int  # token (+ learned position) embeddings
    lm_head_params: int  # 0 when tied to the embeddings
    final_norm_params: int

    @property
    def total_params(self) -> int:
        """All parameters, every expert counted."""
        return (self.num_layers * self.layer_params + self.embedding_params
                + self.lm_head_params + self.final_norm_params)

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def kv_values_per_token(self) -> int:
        """K and V values stored per token over all layers: 2·L·n_kv_heads·head_dim."""
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


def _positive_int(cfg: dict[str, Any], name: str, *keys: str, default: Any = None) -> int:
    value = _get(cfg, *keys, default=default)
    if value is None:
        raise ModelConfigError(f"model {name!r}: config has no {keys[0]!r} (needed: a positive integer).")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != int(value):
        raise ModelConfigError(f"model {name!r}: {keys[0]!r} = {value!r}; allowed: a positive integer.")
    return int(value)


def shape_from_config(cfg: dict[str, Any], name: str | None = None) -> ModelShape:
    """Returns the ModelShape of a Hugging Face config dict; raises ModelConfigError if unusable."""
    name = name or str(cfg.get("name") or cfg.get("_name_or_path") or "model")
    model_type = str(cfg.get("model_type", "")).lower()
    fam = _FAMILIES.get(model_type)
    if fam is None:
        act = str(_get(cfg, "hidden_act", "activation_function", default="")).lower()
        fam = dict(gated=act in _GATED_ACTS, norm_bias=False,
                   qkv_bias=bool(cfg.get("attention_bias", False)),
                   o_bias=bool(cfg.get("attention_bias", False)),
                   mlp_bias=bool(cfg.get("mlp_bias", False)),
                   learned_pos_offset=None, norms_per_layer=2)
    else:
        fam = dict(fam)
        if "attention_bias" in cfg and model_type not in ("opt",):
            fam["qkv_bias"] = fam["o_bias"] = bool(cfg["attention_bias"])

    L = _positive_int(cfg, name, "num_hidden_layers", "n_layer", "num_layers")
    h = _positive_int(cfg, name, "hidden_size", "n_embd", "d_model")
    a = _positive_int(cfg, name, "num_attention_heads", "n_head")
    kv = _positive_int(cfg, name, "num_key_value_heads", "multi_query_group_num", default=a)
    if cfg.get("multi_query") is True and "num_key_value_heads" not in cfg:
        kv = 1
    if a % kv:
        raise ModelConfigError(f"model {name!r}: num_attention_heads ({a}) must be a multiple of num_key_value_heads ({kv}).")
    d = _positive_int(cfg, name, "head_dim", default=h // a)
    f = _positive_int(cfg, name, "intermediate_size", "ffn_dim", "n_inner", default=4 * h)
    V = _positive_int(cfg, name, "vocab_size")
    E = _positive_int(cfg, name, "num_local_experts", "num_experts", default=1)
    k = _positive_int(cfg, name, "num_experts_per_tok", default=1 if E == 1 else 2)
    if k > E:
        raise ModelConfigError(f"model {name!r}: num_experts_per_tok ({k}) exceeds the number of experts ({E}).")
    tied = bool(cfg.get("tie_word_embeddings", model_type == "opt"))

    q_dim, kv_dim = a * d, kv * d
    attn = h * q_dim + 2 * h * kv_dim + q_dim * h
    if fam["qkv_bias"]:
        attn += q_dim + 2 * kv_dim
    if fam["o_bias"]:
        attn += h
    expert = h * f * (3 if fam["gated"] else 2)
    if fam["mlp_bias"]:
        expert += f * (2 if fam["gated"] else 1) + h
    router = h * E if E > 1 else 0
    norm = h * (2 if fam["norm_bias"] else 1)
    layer = attn + E * expert + router + fam["norms_per_layer"] * norm
    layer_active = attn + k * expert + router + fam["norms_per_layer"] * norm

    emb = V * h
    if fam["learned_pos_offset"] is not None:
        emb += (_positive_int(cfg, name, "max_position_embeddings", default=2048) + fam["learned_pos_offset"]) * h
    proj = cfg.get("word_embed_proj_dim")
    if model_type == "opt" and proj and proj != h:
        emb = V * proj + (emb - V * h) + 2 * h * proj  # project_in / project_out
    lm_head = 0 if tied else V * h + (V if model_type == "gptj" else 0)
    final_norm = 0 if (model_type == "opt" and cfg.get("do_layer_norm_before") is False) else norm

    return ModelShape(
        name=name, model_type=model_type or "unknown", num_layers=L, hidden_size=h, num_heads=a,
        num_kv_heads=kv, head_dim=d, intermediate_size=f, vocab_size=V, gated_ffn=bool(fam["gated"]),
        num_experts=E, experts_per_token=k if E > 1 else 1, tied_embeddings=tied,
        layer_params=layer, layer_active_params=layer_active, expert_params=expert if E > 1 else 0,
        embedding_params=emb, lm_head_params=lm_head, final_norm_params=final_norm,
    )


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


