"""Fit of the element-wise operator terms (``predictor/operators.py``) on Vidur operator profiles.

Per operator and GPU, two numbers shared by every model: the fixed launch cost ``fixed_s`` and the
fraction of peak memory bandwidth ``bw_eff`` (GDDR6 and HBM reach different shares); a pooled fit
over every GPU serves GPUs the set lacks. Least squares on relative error over whole sets
(t_pred / t_measured - 1), with ``fixed_s >= 0`` and ``bw_eff <= 1``. The out-of-fold error
leaves out one model of a GPU at a time (its rows predicted by the fit on the GPU's other models). ``data/operator_fit.json`` holds the fit and its OOF error;
regenerate it with

    python -m llmopt_solver.measure.operator_fit vidur_operator_profiles.csv \\
        --out llmopt_solver/data/operator_fit.json --report docs/runs/operator_fit.md
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from llmopt_solver.catalog.loader import Catalog, load_catalog
from llmopt_solver.measure.mapping import Case, map_rows
from llmopt_solver.measure.rows import read_measurements
from llmopt_solver.predictor.operators import ELEMENTWISE_OPS, elementwise_bytes, elementwise_time_s
from llmopt_solver.predictor.physics import GB

# Used only where data/operator_fit.json lacks an operator: no fixed cost, the catalog default bandwidth share.
FALLBACK = {"fixed_s": 0.0, "bw_eff": 0.8}


Params = dict[str, dict[str, float]]


@lru_cache(maxsize=1)
def operator_params() -> dict[str, Params]:
    """Returns {'' (pooled) or GPU: {op: {'fixed_s', 'bw_eff'}}} of data/operator_fit.json."""
    text = resources.files("llmopt_solver").joinpath("data").joinpath("operator_fit.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    out = {"": doc["ops"], **doc.get("by_gpu", {})}
    return {k: {op: {"fixed_s": float(v["fixed_s"]), "bw_eff": float(v["bw_eff"])} for op, v in ops.items()}
            for k, ops in out.items()}


def _lookup(params: dict[str, Params], gpu: str, op: str) -> dict[str, float]:
    return params.get(gpu, {}).get(op) or params.get("", {}).get(op) or FALLBACK


def ideal_time_s(cases: list[Case], catalog: Catalog) -> np.ndarray:
    """Returns each element-wise case's bytes over the GPU's peak bandwidth, s (no fixed cost)."""
    out = np.empty(len(cases))
    for j, c in enumerate(cases):
        assert c.card is not None
        b = elementwise_bytes(c.op, np.array([c.input_len]), c.card.shape(), c.row.num_gpus)
        out[j] = float(b[0]) / (catalog.gpu(c.gpu).memory_bandwidth_gb_s * GB)
    return out


def op_time_ms(cases: list[Case], catalog: Catalog, params: dict[str, Params] | None = None) -> np.ndarray:
    """Returns the predicted time of each element-wise operator case, ms (the GPU's fit, else pooled)."""
    params = operator_params() if params is None else params
    x = ideal_time_s(cases, catalog)
    fixed = np.array([_lookup(params, c.gpu, c.op)["fixed_s"] for c in cases])
    eff = np.array([_lookup(params, c.gpu, c.op)["bw_eff"] for c in cases])
    return 1e3 * elementwise_time_s(x, 1.0 / GB, fixed, eff)


def fit_one(x_s: np.ndarray, y_s: np.ndarray) -> dict[str, float]:
    """Returns {'fixed_s', 'bw_eff'} minimising sum((fixed + x / eff) / y - 1)^2, fixed >= 0, eff <= 1."""
    a = np.column_stack([1.0 / y_s, x_s / y_s])
    fixed, inv_eff = np.linalg.lstsq(a, np.ones(len(y_s)), rcond=None)[0]
    if fixed < 0:
        fixed, inv_eff = 0.0, float(np.sum(x_s / y_s) / np.sum((x_s / y_s) ** 2))
    if inv_eff < 1.0:  # faster than peak bandwidth is not physical: cap at 100% and refit the fixed cost
        inv_eff = 1.0
        fixed = max(0.0, float(np.sum((1 - x_s / y_s) / y_s) / np.sum(1 / y_s**2)))
    return {"fixed_s": float(fixed), "bw_eff": float(1.0 / inv_eff)}


def _elementwise(cases: list[Case]) -> list[Case]:
    return [c for c in cases if c.skip is None and c.op in ELEMENTWISE_OPS]


def fit(cases: list[Case], catalog: Catalog) -> dict[str, Any]:
    """Returns the per-op fit on every element-wise case, with the leave-one-(GPU, model)-out error."""
    ew = _elementwise(cases)
    x, y = ideal_time_s(ew, catalog), np.array([c.measured for c in ew]) / 1e3
    ops = np.array([c.op for c in ew])
    gpus = np.array([c.gpu for c in ew])
    models = np.array([c.row.model for c in ew])
    params: dict[str, Any] = {}
    by_gpu: dict[str, Any] = {}
    oof = np.full(len(ew), np.nan)
    for op in ELEMENTWISE_OPS:
        sel = ops == op
        if not sel.any():
            continue
        params[op] = dict(fit_one(x[sel], y[sel]), rows=int(sel.sum()))
        for gpu in np.unique(gpus[sel]):
            on = sel & (gpus == gpu)
            by_gpu.setdefault(str(gpu), {})[op] = dict(fit_one(x[on], y[on]), rows=int(on.sum()))
            for m in np.unique(models[on]):
                train, test = on & (models != m), on & (models == m)
                if not train.any():
                    continue
                p = fit_one(x[train], y[train])
                oof[test] = elementwise_time_s(x[test], 1.0 / GB, p["fixed_s"], p["bw_eff"]) / y[test] - 1
    report = {}
    for op in list(params) + ["all"]:
        sel = np.isfinite(oof) & ((ops == op) if op != "all" else True)
        e = np.abs(oof[sel]) * 100
        report[op] = {"rows": int(sel.sum()),  # None: no group had another model to train on
                      "median_abs_pct_err": round(float(np.median(e)), 1) if len(e) else None,
                      "p90_abs_pct_err": round(float(np.percentile(e, 90)), 1) if len(e) else None}
    for p in [*params.values(), *(v for ops_ in by_gpu.values() for v in ops_.values())]:
        p["fixed_s"] = float(f"{p['fixed_s']:.4g}")
        p["bw_eff"] = round(p["bw_eff"], 4)
    groups = sorted({f"{g}|{m}" for g, m in zip(gpus, models)})
    return {"ops": params, "by_gpu": by_gpu, "out_of_fold": report, "groups": groups}


def main(argv: list[str] | None = None) -> None:
    """Fits the operator terms on a Vidur-schema CSV; writes the JSON and a markdown report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--out", required=True)
    ap.add_argument("--report", default=None)
    args = ap.parse_args(argv)
    catalog = load_catalog()
    result = fit(map_rows(read_measurements(args.csv), catalog), catalog)
    doc = {"source": f"llmopt fit of predictor/operators.py on {Path(args.csv).name} (microsoft/vidur @7d475133 "
                     "data/profiling/compute/{a100,h100,a40}/<model>/mlp.csv); least squares on relative error "
                     "over whole sets, one (fixed_s, bw_eff) per operator and GPU shared by every model ('ops': pooled over GPUs)",
           "as_of": date.today().isoformat(), **result}
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.report:
        lines = [f"# Element-wise operator fit ({doc['as_of']})", "", f"Command: `python -m llmopt_solver.measure.operator_fit "
                 f"{Path(args.csv).name} --out {args.out} --report {args.report}` (the CSV of the shared validation sets)", "",
                 "Out-of-fold: the rows of each model on a GPU predicted by the fit on the GPU's other models.", "",
                 "| op | fixed (us), pooled | bandwidth share, pooled | rows | OOF median abs err | OOF P90 abs err |",
                 "|---|---|---|---|---|---|"]
        for op, r in result["out_of_fold"].items():
            p = result["ops"].get(op)
            fixed = f"{p['fixed_s'] * 1e6:.2f}" if p else "-"
            share = f"{p['bw_eff']:.3f}" if p else "-"
            lines.append(f"| {op} | {fixed} | {share} | {r['rows']} | {r['median_abs_pct_err']}% | {r['p90_abs_pct_err']}% |")
        lines += ["", "Per GPU (fixed us / bandwidth share): " + "; ".join(
            f"{g}: " + ", ".join(f"{op} {v['fixed_s'] * 1e6:.2f}/{v['bw_eff']:.3f}" for op, v in ops_.items())
            for g, ops_ in result["by_gpu"].items()) + ".", "", f"Groups: {', '.join(result['groups'])}."]
        Path(args.report).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps(result["out_of_fold"], indent=1))


if __name__ == "__main__":
    main()
