"""Element-wise operator terms (predictor/operators.py) and their fit (measure/operator_fit.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.measure.mapping import map_rows
from llmopt_solver.measure.operator_fit import fit, fit_one, operator_params
from llmopt_solver.measure.rows import read_measurements
from llmopt_solver.predictor.operators import ELEMENTWISE_OPS, elementwise_bytes, elementwise_time_s

VIDUR = Path(__file__).parent / "data" / "vidur_slice.csv"


def test_fit_one_recovers_known_terms():
    x = np.geomspace(1e-7, 1e-3, 30)  # bytes / peak bandwidth, s
    y = 3e-6 + x / 0.6
    p = fit_one(x, y)
    assert abs(p["fixed_s"] - 3e-6) < 1e-9 and abs(p["bw_eff"] - 0.6) < 1e-6


def test_fit_one_never_beats_peak_bandwidth():
    x = np.geomspace(1e-7, 1e-3, 30)
    p = fit_one(x, 0.5 * x)  # measured twice as fast as peak allows
    assert p["bw_eff"] == 1.0 and p["fixed_s"] >= 0.0


def test_bytes_grow_with_tokens_and_shrink_with_tp():
    shape = load_catalog().model("Llama-2-7B").shape()
    t = np.array([1.0, 1024.0])
    for op in ELEMENTWISE_OPS:
        b = elementwise_bytes(op, t, shape, 1)
        assert b[1] > b[0] > 0
    assert elementwise_bytes("mlp_act", t, shape, 2)[1] < elementwise_bytes("mlp_act", t, shape, 1)[1]
    assert elementwise_bytes("add", t, shape, 2)[1] == elementwise_bytes("add", t, shape, 1)[1]  # replicated
    assert np.allclose(elementwise_time_s(np.array([2e9]), 2000.0, 1e-6, 0.5), 1e-6 + 2e9 / (0.5 * 2000e9))


def test_shipped_fit_covers_every_elementwise_op_and_reports_oof():
    params = operator_params()
    assert set(params[""]) == set(ELEMENTWISE_OPS)
    assert all(0 < p["bw_eff"] <= 1 and p["fixed_s"] >= 0 for ops in params.values() for p in ops.values())


def test_fit_on_slice_gives_out_of_fold_figures():
    catalog = load_catalog()
    result = fit(map_rows(read_measurements(VIDUR), catalog), catalog)
    assert set(result["ops"]) == {"mlp_act"}  # the slice's only element-wise operator
    oof = result["out_of_fold"]["mlp_act"]
    # One model per GPU in the slice: no other model to train on, so no out-of-fold figure.
    assert oof == {"rows": 0, "median_abs_pct_err": None, "p90_abs_pct_err": None}
    assert set(result["by_gpu"]) == {"A100-80GB-SXM", "H100-SXM"}
