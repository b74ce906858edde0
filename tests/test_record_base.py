"""Catalog records: the package data's cheap conversion equals full validation; pydantic stays off `solve`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmopt_solver.catalog.engines import EngineMechanisms, EngineProfile
from llmopt_solver.catalog.loader import builtin_catalog
from llmopt_solver.catalog.record_base import validation_error
from llmopt_solver.catalog.records import GpuSpec, InstanceSpec, Uncertainty


def test_trusted_package_data_equals_validated():
    """Every built-in record validates, and the trusted load gives the same values of the same types."""
    fast, checked = builtin_catalog(trusted=True), builtin_catalog(trusted=False)
    assert fast is not checked
    for name in ("gpus", "instances", "default_efficiency", "efficiency_overrides", "default_uncertainty",
                 "uncertainties", "engines", "engine_efficiency", "engine_uncertainty", "calibrated_gpus", "models"):
        # repr tells 24 from 24.0 and a list from a tuple
        assert repr(getattr(fast, name)) == repr(getattr(checked, name)), name
    assert fast.engines and fast.gpus and fast.instances
    assert all(card.shape() == checked.models[name].shape() for name, card in fast.models.items())


def test_validation_keeps_pydantic_rules_and_messages():
    rec = {"name": "X", "memory_gb": 24, "memory_bandwidth_gb_s": 300, "host_link_gb_s": 16, "source": "s", "as_of": "d"}
    g = GpuSpec.model_validate(rec)
    assert isinstance(g.memory_gb, float) and g.fp16_tflops is None
    for bad, loc, msg in (({**rec, "memory_gb": -1}, "memory_gb", "greater than 0"),
                          ({**rec, "memory_gb": float("nan")}, "memory_gb", "finite number"),
                          ({**rec, "colour": "red"}, "colour", "Extra inputs are not permitted"),
                          ({**rec, "source": ""}, "source", "at least 1 character")):
        with pytest.raises(validation_error()) as err:
            GpuSpec.model_validate(bad)
        first = err.value.errors()[0]  # type: ignore[attr-defined]
        assert first["loc"] == (loc,) and msg in first["msg"]
    with pytest.raises(validation_error()):
        InstanceSpec.model_validate({"name": "i", "provider": "mars", "gpu": "X", "gpu_count": 1, "vcpus": 4,
                                     "host_memory_gb": 16, "source": "s", "as_of": "d"})


def test_nested_records_and_dumps():
    prof = EngineProfile.model_validate({"name": "e", "source": "s", "as_of": "d", "aliases": ["E"],
                                         "mechanisms": {"kv_precisions": ["fp16"], "min_compute_capability": 8}})
    assert isinstance(prof.mechanisms, EngineMechanisms) and prof.mechanisms.kv_precisions == ("fp16",)
    assert prof.aliases == ("E",) and isinstance(prof.mechanisms.min_compute_capability, float)
    assert prof.model_dump(mode="json")["mechanisms"]["kv_precisions"] == ["fp16"]
    assert prof.model_dump()["aliases"] == ("E",)
    with pytest.raises(validation_error()) as err:
        EngineProfile.model_validate({"name": "e", "source": "s", "as_of": "d", "mechanisms": {"batching": "x"}})
    assert err.value.errors()[0]["loc"] == ("mechanisms", "batching")  # type: ignore[attr-defined]
    u = Uncertainty.trusted({"bias": 0, "sigma": 0.1, "batch_range": [1, 64]})
    assert u.batch_range == (1, 64) and isinstance(u.bias, float)
    assert u.model_copy(update={"sigma": 0.2}).sigma == 0.2 and u.sigma == 0.1


@pytest.mark.parametrize("flags", [[], ["--json"]])
def test_solve_imports_neither_pydantic_models_nor_rich(flags):
    """`solve` loads the built-in catalog without pydantic's model machinery and writes its tables
    without rich when they fit (the start-up cost: issue 11)."""
    code = ("import sys; from llmopt_solver.cli import main; sys.argv = ['llmopt', 'solve', '--model', 'OPT-2.7B', "
            f"'--slo-tps', '100', *{flags!r}]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('pydantic.main', 'pydantic._internal._model_construction', 'rich') if m in sys.modules]\n"
            "print('LOADED', bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LOADED []"), out[-300:]
