"""Engine profiles and (engine, GPU) runtime parameters merge over the GPU's own efficiency."""

import json

import pytest

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.errors import CatalogError


def test_engine_overrides_apply_most_specific_last(tmp_path):
    f = tmp_path / "eng.json"
    f.write_text(json.dumps({
        "engines": [{"name": "toy", "aliases": ["Toy-Engine"], "source": "test", "as_of": "2026-12-02"}],
        "efficiency": {"engines": {"toy": {"default": {"seq_overhead_s": 1e-5, "layer_overhead_s": 3e-5},
                                           "gpus": {"L4": {"seq_overhead_s": 2e-5}}}}},
        "uncertainty": {"engines": {"toy": {"default": {"bias": 0.1, "sigma": 0.2}}}},
    }))
    cat = load_catalog([f])
    base_l4, base_t4 = cat.efficiency("L4"), cat.efficiency("T4")
    l4, t4 = cat.efficiency("L4", "toy"), cat.efficiency("T4", "toy")
    assert (l4.seq_overhead_s, l4.layer_overhead_s) == (2e-5, 3e-5)  # (engine, GPU) beats engine default
    assert (t4.seq_overhead_s, t4.layer_overhead_s) == (1e-5, 3e-5)  # transfer rule: engine default
    assert l4.memory_bw == base_l4.memory_bw and t4.compute_prefill == base_t4.compute_prefill  # GPU's own kept
    assert cat.uncertainty("T4", "toy").sigma == 0.2
    assert cat.uncertainty("T4") == load_catalog().uncertainty("T4")
    assert cat.engine_for_framework(" toy-engine ").name == "toy"
    assert cat.engine_for_framework("llama.cpp") is None


def test_unknown_engine_names_field_and_allowed():
    with pytest.raises(CatalogError) as exc:
        load_catalog().engine("no-such-engine")
    assert str(exc.value).startswith("--engine: unknown engine 'no-such-engine'; allowed: ")
    assert exc.value.field == "--engine"


def test_users_gpu_calibration_is_not_overridden_by_builtin_engine_layers(tmp_path):
    """A per-GPU profile from `llmopt calibrate` (no --per-engine) is the user's data: the built-in vLLM
    engine default (a transfer rule) and the built-in (vllm, A100) fit must not replace its values."""
    builtin = load_catalog()
    assert builtin.efficiency("L4", "vllm").seq_overhead_s != 3.3e-4  # the built-in rule applies without it
    f = tmp_path / "my_profile.json"
    f.write_text(json.dumps({"efficiency": {"gpus": {"L4": {"seq_overhead_s": 3.3e-4},
                                                     "A100-40GB-SXM": {"step_overhead_s": 2.2e-3}}},
                             "uncertainty": {"gpus": {"A100-40GB-SXM": {"bias": 0.0, "sigma": 0.31}}}}))
    cat = load_catalog(calibration=f)
    assert cat.efficiency("L4", "vllm").seq_overhead_s == 3.3e-4
    assert cat.efficiency("A100-40GB-SXM", "vllm").step_overhead_s == 2.2e-3
    assert cat.efficiency("A100-40GB-SXM", "vllm").kv_bw == builtin.efficiency("A100-40GB-SXM", "vllm").kv_bw
    assert cat.uncertainty("A100-40GB-SXM", "vllm").sigma >= 0.31
    # the user's own (engine, GPU) layer is still more specific than their per-GPU one
    g = tmp_path / "both.json"
    g.write_text(json.dumps({"efficiency": {"gpus": {"L4": {"seq_overhead_s": 3.3e-4}},
                                            "engines": {"vllm": {"gpus": {"L4": {"seq_overhead_s": 4.4e-4}}}}}}))
    assert load_catalog(calibration=g).efficiency("L4", "vllm").seq_overhead_s == 4.4e-4
    assert load_catalog(calibration=g).efficiency("L4", "sglang").seq_overhead_s == 3.3e-4
