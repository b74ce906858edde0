"""What the model reader knows about Hugging Face ``config.json`` fields, per family.

Sources: the HF transformers modeling and configuration files of each family (e.g.
modeling_llama.py LlamaMLP gate/up/down; modeling_opt.py biased Linear, LayerNorm and
OPTLearnedPositionalEmbedding offset 2; modeling_gptj.py one ln_1 and a biased lm_head;
modeling_qwen2.py q/k/v bias; modeling_gemma2.py four RMSNorms per layer; modeling_qwen3.py and
modeling_gemma3.py q_norm/k_norm over head_dim; modeling_bloom.py biased LayerNorms and Linears; BAAI
Aquila's modeling_aquila.py (a LLaMA copy); modeling_olmoe.py q_norm/k_norm over all
channels; modeling_gpt2.py Conv1D with bias and learned positions).
"""

from __future__ import annotations

from typing import Any

_BASE: dict[str, Any] = dict(gated=True, norm_bias=False, qkv_bias=False, o_bias=False, mlp_bias=False,
                             learned_pos_offset=None, norms_per_layer=2, qk_norm=None)
# Counted as a pre-norm gated decoder when model_type is unknown (with a warning).
GENERIC: dict[str, Any] = dict(_BASE)


def _fam(**kw: Any) -> dict[str, Any]:
    return dict(_BASE, **kw)


_PLAIN_BIASED = dict(gated=False, norm_bias=True, qkv_bias=True, o_bias=True, mlp_bias=True)
FAMILIES: dict[str, dict[str, Any]] = {
    "opt": _fam(**_PLAIN_BIASED, learned_pos_offset=2),
    "gpt2": _fam(**_PLAIN_BIASED, learned_pos_offset=0),
    "gptj": _fam(gated=False, norm_bias=True, mlp_bias=True, norms_per_layer=1),
    "gpt_neox": _fam(**_PLAIN_BIASED),
    "bloom": _fam(**_PLAIN_BIASED),  # modeling_bloom.py: biased fused QKV, dense, 4h MLP; ALiBi (no position table)
    "falcon": _fam(gated=False, norm_bias=True, norms_per_layer=1),
    "llama": _fam(), "aquila": _fam(), "mistral": _fam(), "mixtral": _fam(), "phi3": _fam(), "gemma": _fam(),
    "gemma2": _fam(norms_per_layer=4),
    "gemma3_text": _fam(norms_per_layer=4, qk_norm="head"),
    "qwen2": _fam(qkv_bias=True), "qwen2_moe": _fam(qkv_bias=True),
    "qwen3": _fam(qk_norm="head"), "qwen3_moe": _fam(qk_norm="head"),
    "olmoe": _fam(qk_norm="full"),
    "deepseek": _fam(), "deepseek_v2": _fam(), "deepseek_v3": _fam(),
}

# tie_word_embeddings when a config omits it: the default of each family's HF config class
# (LlamaConfig, MistralConfig, Qwen2Config, ... set False); PretrainedConfig's default is True
# (OPT, GPT-2, Gemma, Falcon and any family not listed).
_UNTIED_BY_DEFAULT = {"gptj", "gpt_neox", "llama", "aquila", "mistral", "mixtral", "phi3", "qwen2", "qwen2_moe",
                      "qwen3", "qwen3_moe", "olmoe", "deepseek", "deepseek_v2", "deepseek_v3"}


def tie_default(model_type: str) -> bool:
    """Returns HF's tie_word_embeddings default for ``model_type``."""
    return model_type not in _UNTIED_BY_DEFAULT


# Fields the reader uses.
_HANDLED = {
    "model_type", "num_hidden_layers", "n_layer", "num_layers", "hidden_size", "n_embd", "d_model",
    "num_attention_heads", "n_head", "num_key_value_heads", "multi_query_group_num", "num_kv_heads",
    "multi_query", "head_dim", "intermediate_size", "ffn_dim", "n_inner", "vocab_size",
    "num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "moe_top_k",
    "moe_intermediate_size", "shared_expert_intermediate_size", "n_shared_experts",
    "first_k_dense_replace", "moe_layer_freq", "decoder_sparse_step", "mlp_only_layers",
    "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim", "topk_method",
    "tie_word_embeddings", "attention_bias", "mlp_bias", "max_position_embeddings", "n_positions",
    "word_embed_proj_dim", "do_layer_norm_before", "hidden_act", "activation_function",
}
# Fields that do not change the parameter count or the KV cache size (numerics, routing
# arithmetic, attention windows, token ids, bookkeeping). num_nextn_predict_layers: DeepSeek-V3's
# multi-token-prediction module, which HF transformers does not load for inference (not counted).
_NEUTRAL = {
    "name", "aliases", "source", "source_revision", "as_of", "notes", "architectures", "_name_or_path",
    "torch_dtype", "transformers_version", "use_cache", "bos_token_id", "eos_token_id", "pad_token_id",
    "initializer_range", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "rope_theta",
    "rope_scaling", "rotary", "rotary_dim", "rotary_pct", "rotary_emb_base", "rope_interleave",
    "partial_rotary_factor", "sliding_window", "use_sliding_window", "max_window_layers", "layer_types",
    "sliding_window_pattern", "attention_dropout", "hidden_dropout", "dropout", "attn_pdrop",
    "resid_pdrop", "embd_pdrop", "summary_type", "summary_use_proj", "summary_activation",
    "summary_proj_to_labels", "summary_first_dropout", "scale_attn_weights", "reorder_and_upcast_attn",
    "scale_attn_by_inverse_layer_idx", "norm_topk_prob", "router_aux_loss_coef", "output_router_logits",
    "router_jitter_noise", "aux_loss_alpha", "seq_aux", "scoring_func", "routed_scaling_factor",
    "n_group", "topk_group", "ep_size", "num_nextn_predict_layers", "attn_logit_softcapping",
    "final_logit_softcapping", "query_pre_attn_scalar", "clip_qkv", "pretraining_tp", "quantization_config",
    "original_max_position_embeddings", "embed_dropout", "parallel_attn", "use_parallel_residual",
    "enable_bias", "alibi", "attn_implementation", "use_qk_norm", "rope_local_base_freq", "hidden_activation", "auto_map", "cache_implementation",
    "norm_eps", "router_z_loss_coef", "num_labels", "id2label", "label2id",
}
# Substrings of field names that usually change the architecture.
_ARCH_HINTS = ("expert", "lora", "moe", "sparse", "shared", "dense", "layers", "heads", "intermediate",
               "hidden", "kv", "rank", "ffn", "proj", "embd", "_dim", "qk", "norm", "bias", "decoder",
               "num_", "n_", "vocab", "tie", "parallel", "mlp")


def unknown_fields(cfg: dict[str, Any]) -> list[str]:
    """Returns the config fields that look architectural but that the reader does not handle."""
    out = []
    for key, value in cfg.items():
        if key in _HANDLED or key in _NEUTRAL or value in (None, False, 0, [], {}):
            continue
        low = key.lower()
        if any(hint in low for hint in _ARCH_HINTS):
            out.append(key)
    return sorted(out)
