"""Parameter counts from real Hugging Face config.json values vs the published counts.

Each case: the config fields as published in the model's config.json on the Hugging Face Hub
(architecture fields only), and the parameter count its model card / paper / Hub page states.
"Hub page" figures are the safetensors parameter count the Hugging Face model page shows.
Tolerance: 1%.
"""

from __future__ import annotations

import pytest

from llmopt_solver.catalog.model_shape import shape_from_config

CASES: list[tuple[str, dict, float, str]] = [
    ("Llama-2-7B", dict(model_type="llama", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                        num_key_value_heads=32, intermediate_size=11008, vocab_size=32000, tie_word_embeddings=False),
     6.74e9, "huggingface.co/meta-llama/Llama-2-7b-hf Hub page: 6.74B params"),
    ("Llama-3-8B", dict(model_type="llama", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                        num_key_value_heads=8, intermediate_size=14336, vocab_size=128256, tie_word_embeddings=False),
     8.03e9, "huggingface.co/meta-llama/Meta-Llama-3-8B Hub page: 8.03B params"),
    ("Mistral-7B-v0.1", dict(model_type="mistral", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                             num_key_value_heads=8, intermediate_size=14336, vocab_size=32000),
     7.24e9, "huggingface.co/mistralai/Mistral-7B-v0.1 Hub page: 7.24B params (config omits nothing; MistralConfig ties=False)"),
    # Gemma-2-9B's config.json has no tie_word_embeddings: HF's default (tied) must apply.
    ("Gemma-2-9B", dict(model_type="gemma2", num_hidden_layers=42, hidden_size=3584, num_attention_heads=16,
                        num_key_value_heads=8, head_dim=256, intermediate_size=14336, vocab_size=256000,
                        hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=256, sliding_window=4096,
                        final_logit_softcapping=30.0, attn_logit_softcapping=50.0),
     9.24e9, "huggingface.co/google/gemma-2-9b Hub page: 9.24B params"),
    ("Gemma-7B", dict(model_type="gemma", num_hidden_layers=28, hidden_size=3072, num_attention_heads=16,
                      num_key_value_heads=16, head_dim=256, intermediate_size=24576, vocab_size=256000),
     8.54e9, "huggingface.co/google/gemma-7b Hub page: 8.54B params"),
    ("Qwen2-0.5B", dict(model_type="qwen2", num_hidden_layers=24, hidden_size=896, num_attention_heads=14,
                        num_key_value_heads=2, intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True),
     0.494e9, "huggingface.co/Qwen/Qwen2-0.5B Hub page: 494M params"),
    ("Qwen2-7B", dict(model_type="qwen2", num_hidden_layers=28, hidden_size=3584, num_attention_heads=28,
                      num_key_value_heads=4, intermediate_size=18944, vocab_size=152064, tie_word_embeddings=False),
     7.62e9, "huggingface.co/Qwen/Qwen2-7B Hub page: 7.62B params"),
    ("Qwen3-8B", dict(model_type="qwen3", num_hidden_layers=36, hidden_size=4096, num_attention_heads=32,
                      num_key_value_heads=8, head_dim=128, intermediate_size=12288, vocab_size=151936,
                      tie_word_embeddings=False, attention_bias=False),
     8.19e9, "huggingface.co/Qwen/Qwen3-8B model card: 8.2B params; Hub page 8.19B"),
    ("Phi-3-mini-4k", dict(model_type="phi3", num_hidden_layers=32, hidden_size=3072, num_attention_heads=32,
                           num_key_value_heads=32, intermediate_size=8192, vocab_size=32064, tie_word_embeddings=False),
     3.82e9, "huggingface.co/microsoft/Phi-3-mini-4k-instruct Hub page: 3.82B params"),
    ("GPT-2", dict(model_type="gpt2", n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257,
                   activation_function="gelu_new"),
     124.44e6, "huggingface.co/openai-community/gpt2 Hub page: 124M params (124,439,808)"),
    ("OPT-6.7B", dict(model_type="opt", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32, ffn_dim=16384,
                      word_embed_proj_dim=4096, vocab_size=50272, max_position_embeddings=2048, do_layer_norm_before=True),
     6.7e9, "arXiv:2205.01068 (OPT) Table 1: 6.7B"),
    ("GPT-J-6B", dict(model_type="gptj", n_layer=28, n_embd=4096, n_head=16, n_positions=2048, vocab_size=50400,
                      rotary_dim=64, tie_word_embeddings=False),
     6.05e9, "huggingface.co/EleutherAI/gpt-j-6b model card: 6,053,381,344 parameters"),
    # --- mixture of experts ---
    ("Mixtral-8x7B", dict(model_type="mixtral", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                          num_key_value_heads=8, intermediate_size=14336, num_local_experts=8, num_experts_per_tok=2,
                          vocab_size=32000, tie_word_embeddings=False),
     46.7e9, "arXiv:2401.04088 (Mixtral of Experts): 47B total; Hub page 46.7B"),
    ("Qwen1.5-MoE-A2.7B", dict(model_type="qwen2_moe", num_hidden_layers=24, hidden_size=2048, num_attention_heads=16,
                               num_key_value_heads=16, intermediate_size=5632, moe_intermediate_size=1408,
                               shared_expert_intermediate_size=5632, num_experts=60, num_experts_per_tok=4,
                               decoder_sparse_step=1, vocab_size=151936, tie_word_embeddings=False),
     14.3e9, "huggingface.co/Qwen/Qwen1.5-MoE-A2.7B Hub page: 14.3B params"),
    ("Qwen2-57B-A14B", dict(model_type="qwen2_moe", num_hidden_layers=28, hidden_size=3584, num_attention_heads=28,
                            num_key_value_heads=4, intermediate_size=18944, moe_intermediate_size=2560,
                            shared_expert_intermediate_size=20480, num_experts=64, num_experts_per_tok=8,
                            decoder_sparse_step=1, vocab_size=151936, tie_word_embeddings=False),
     57.4e9, "huggingface.co/Qwen/Qwen2-57B-A14B Hub page: 57.4B params"),
    ("Qwen3-30B-A3B", dict(model_type="qwen3_moe", num_hidden_layers=48, hidden_size=2048, num_attention_heads=32,
                           num_key_value_heads=4, head_dim=128, intermediate_size=6144, moe_intermediate_size=768,
                           num_experts=128, num_experts_per_tok=8, decoder_sparse_step=1, mlp_only_layers=[],
                           vocab_size=151936, tie_word_embeddings=False),
     30.5e9, "huggingface.co/Qwen/Qwen3-30B-A3B model card: 30.5B total, 3.3B activated"),
    ("OLMoE-1B-7B", dict(model_type="olmoe", num_hidden_layers=16, hidden_size=2048, num_attention_heads=16,
                         num_key_value_heads=16, intermediate_size=1024, num_experts=64, num_experts_per_tok=8,
                         vocab_size=50304, tie_word_embeddings=False),
     6.92e9, "huggingface.co/allenai/OLMoE-1B-7B-0924 Hub page: 6.92B params (paper arXiv:2409.02060: 7B total)"),
    ("DeepSeek-MoE-16B", dict(model_type="deepseek", num_hidden_layers=28, hidden_size=2048, num_attention_heads=16,
                              num_key_value_heads=16, intermediate_size=10944, moe_intermediate_size=1408,
                              n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6,
                              first_k_dense_replace=1, moe_layer_freq=1, vocab_size=102400, tie_word_embeddings=False),
     16.4e9, "arXiv:2401.06066 (DeepSeekMoE) Table: 16.4B total parameters"),
    ("DeepSeek-V2-Lite", dict(model_type="deepseek_v2", num_hidden_layers=27, hidden_size=2048, num_attention_heads=16,
                              num_key_value_heads=16, intermediate_size=10944, moe_intermediate_size=1408,
                              n_routed_experts=64, n_shared_experts=2, num_experts_per_tok=6,
                              first_k_dense_replace=1, moe_layer_freq=1, kv_lora_rank=512, q_lora_rank=None,
                              qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128, vocab_size=102400,
                              tie_word_embeddings=False, topk_method="greedy"),
     15.7e9, "huggingface.co/deepseek-ai/DeepSeek-V2-Lite model card: 15.7B total, 2.4B active"),
    ("DeepSeek-V3", dict(model_type="deepseek_v3", num_hidden_layers=61, hidden_size=7168, num_attention_heads=128,
                         num_key_value_heads=128, intermediate_size=18432, moe_intermediate_size=2048,
                         n_routed_experts=256, n_shared_experts=1, num_experts_per_tok=8,
                         first_k_dense_replace=3, moe_layer_freq=1, kv_lora_rank=512, q_lora_rank=1536,
                         qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128, vocab_size=129280,
                         tie_word_embeddings=False, topk_method="noaux_tc", num_nextn_predict_layers=1),
     671e9, "arXiv:2412.19437 (DeepSeek-V3): 671B total, 37B activated (MTP module's 14B excluded)"),
    ("BLOOM-7B1", dict(model_type="bloom", n_layer=30, hidden_size=4096, n_head=32, vocab_size=250880),
     7.069e9, "huggingface.co/bigscience/bloom-7b1 model card: 7,069,016,064 params"),
    ("Qwen1.5-7B", dict(model_type="qwen2", num_hidden_layers=32, hidden_size=4096, num_attention_heads=32,
                        num_key_value_heads=32, intermediate_size=11008, vocab_size=151936, tie_word_embeddings=False),
     7.72e9, "huggingface.co/Qwen/Qwen1.5-7B Hub page: 7.72B params"),
]


@pytest.mark.parametrize("name,cfg,published,source", CASES, ids=[c[0] for c in CASES])
def test_total_params_within_1pct_of_published(name: str, cfg: dict, published: float, source: str) -> None:
    shape = shape_from_config(cfg, name)
    assert abs(shape.total_params / published - 1) < 0.01, (name, shape.total_params, published, source)
    assert shape.warnings == (), shape.warnings  # every field of these real configs is understood


def test_at_least_15_models_and_5_moe() -> None:
    assert len(CASES) >= 15
    assert sum(1 for _, c, _, _ in CASES if (c.get("num_experts") or c.get("num_local_experts") or c.get("n_routed_experts"))) >= 5


@pytest.mark.parametrize("name,cfg,active", [
    ("Mixtral-8x7B", CASES[12][1], 12.9e9),  # Mixtral paper: 13B active (Hub: 12.9B)
    ("Qwen3-30B-A3B", CASES[15][1], 3.3e9),  # model card: 3.3B activated
    ("DeepSeek-V3", CASES[19][1], 37e9),  # paper: 37B activated
])
def test_active_params_near_published(name: str, cfg: dict, active: float) -> None:
    assert abs(shape_from_config(cfg, name).active_params / active - 1) < 0.04


def test_omitted_tie_word_embeddings_follows_hf_class_default() -> None:
    gemma = dict(CASES[3][1])
    assert shape_from_config(gemma).tied_embeddings is True  # Gemma2Config default
    llama = {k: v for k, v in CASES[0][1].items() if k != "tie_word_embeddings"}
    assert shape_from_config(llama).tied_embeddings is False  # LlamaConfig default
    unknown = dict(llama, model_type="brand_new")
    s = shape_from_config(unknown, warn=False)
    assert s.tied_embeddings is True  # PretrainedConfig default
    assert any("brand_new" in w for w in s.warnings)


def test_mla_kv_cache_is_latent_plus_rope_key() -> None:
    v3 = shape_from_config(CASES[19][1])
    assert v3.kv_values_per_token == 61 * (512 + 64)  # DeepSeek-V2 paper 2.1: c^KV and k^R
    dense = shape_from_config(CASES[1][1])
    assert dense.kv_values_per_token == 2 * 32 * 8 * 128


def test_moe_layer_mix_rules() -> None:
    base = CASES[15][1]
    all_moe = shape_from_config(base).total_params
    half = shape_from_config(dict(base, decoder_sparse_step=2)).total_params
    some_dense = shape_from_config(dict(base, mlp_only_layers=[0, 1])).total_params
    assert half < some_dense < all_moe
    # DeepSeek: moe_layer_freq=2 makes every other layer (from first_k_dense_replace on) dense.
    ds = CASES[17][1]
    assert shape_from_config(dict(ds, moe_layer_freq=2)).total_params < shape_from_config(ds).total_params


def test_unknown_architectural_field_is_warned(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = dict(CASES[0][1], num_sparse_mega_experts=16)
    s = shape_from_config(cfg, "warn-test-model")
    assert any("num_sparse_mega_experts" in w for w in s.warnings)
    err = capsys.readouterr().err
    assert "warning" in err and "num_sparse_mega_experts" in err


def test_full_published_configs_raise_no_false_warnings() -> None:
    """The non-architectural fields of the published DeepSeek-V3 and Gemma-2-9B config.json files
    are recognised as such (no warning, same count)."""
    v3_extra = dict(architectures=["DeepseekV3ForCausalLM"], attention_bias=False, attention_dropout=0.0,
                    auto_map={"AutoConfig": "configuration_deepseek.DeepseekV3Config"}, aux_loss_alpha=0.001,
                    bos_token_id=0, eos_token_id=1, ep_size=1, hidden_act="silu", initializer_range=0.02,
                    max_position_embeddings=163840, n_group=8, norm_topk_prob=True, pretraining_tp=1,
                    quantization_config={"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                         "weight_block_size": [128, 128]},
                    rms_norm_eps=1e-6, rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 40,
                                                     "mscale": 1.0, "mscale_all_dim": 1.0,
                                                     "original_max_position_embeddings": 4096, "type": "yarn"},
                    rope_theta=10000, routed_scaling_factor=2.5, scoring_func="sigmoid", seq_aux=True,
                    topk_group=4, torch_dtype="bfloat16", transformers_version="4.33.1", use_cache=True)
    gemma_extra = dict(architectures=["Gemma2ForCausalLM"], attention_bias=False, attention_dropout=0.0,
                       bos_token_id=2, cache_implementation="hybrid", eos_token_id=1, hidden_act="gelu_pytorch_tanh",
                       initializer_range=0.02, max_position_embeddings=8192, pad_token_id=0, rms_norm_eps=1e-6,
                       rope_theta=10000.0, torch_dtype="float32", transformers_version="4.42.0.dev0", use_cache=True)
    for base, extra in ((CASES[19][1], v3_extra), (CASES[3][1], gemma_extra)):
        full = shape_from_config(dict(base, **extra), warn=False)
        assert full.warnings == ()
        assert full.total_params == shape_from_config(base).total_params
