"""Errors, their statistics and the validation report (the ``--json`` document of ``llmopt validate``).

Errors are ``100 * (predicted - measured) / measured``; the summary gives the median and 90th
percentile of its absolute value and the median signed error (bias), per GPU, framework, metric,
their combination, and overall.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmopt_solver.measure.consistency import size_inversions
from llmopt_solver.measure.replay import FRAMEWORK_MEMORY_FRACTION, Predicted, Prepared


def pct_errors(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Returns 100 * (pred - measured) / measured, elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (pred - measured) / measured


def stats(err_pct: np.ndarray) -> dict[str, Any]:
    """Returns rows, median/P90 absolute % error and median signed % error (bias) of ``err_pct``."""
    e = err_pct[np.isfinite(err_pct)]
    if len(e) == 0:
        return {"rows": 0, "median_abs_pct_err": None, "p90_abs_pct_err": None, "bias_pct": None}
    a = np.abs(e)
    return {"rows": int(len(e)), "median_abs_pct_err": round(float(np.median(a)), 3),
            "p90_abs_pct_err": round(float(np.percentile(a, 90)), 3),
            "bias_pct": round(float(np.median(e)), 3)}


def _fmt_num(x: float) -> float:
    return float(f"{x:.6g}")


@dataclass
class Report:
    """A validation run: one record per row and the summary (the ``--json`` document)."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "summary": self.summary}


def build_report(prep: Prepared, pred: Predicted, gpu_map: dict[str, str]) -> Report:
    """Returns per-row records (file order) and the summary of errors, skips and memory checks."""
    recs: list[dict[str, Any]] = []
    n = len(prep.cases)
    measured = np.array([c.measured for c in prep.cases])
    err = pct_errors(pred.value, measured)
    ok = np.zeros(n, dtype=bool)
    skip_reasons: Counter[str] = Counter()
    skip_where: dict[str, list[tuple[int, str]]] = defaultdict(list)
    skip_values: dict[str, set[str]] = defaultdict(set)  # the bad values a class hides behind 'X'
    oom_rows, oom_fit, measured_no_fit, pred_oom = [], [], [], []
    names: dict[str, str] = {}
    online = estimated = 0
    for c in prep.cases:
        shown = str(c.row.value) if c.row.problem else "OOM" if c.row.oom else _fmt_num(c.measured)
        rec: dict[str, Any] = {"index": c.index, "metric": c.metric, "measured": shown,
                               "model": c.row.model, "gpu": c.gpu or c.row.gpu, "framework": c.row.framework}
        if c.gpu:
            names[c.row.gpu] = f"{c.gpu} ({c.gpu_how})"
        if c.skip is None:
            rec["engine"] = c.engine or None
            if c.online:
                rec["schedule"] = "continuous batching"
                online += 1
            if c.input_estimated:
                rec["input_len_estimated"] = c.input_len
                estimated += 1
        i = c.index
        need = pred.gpu_memory_needed_gb[i]
        fits = bool(need <= prep.gpu_memory_gb[i]) if np.isfinite(need) else None  # at safety factor 1
        if c.skip is None and c.row.oom:
            rec["predicted"] = "does not fit" if fits is False else "fits"
            rec["gpu_memory_needed_gb"] = round(float(need), 3)
            oom_rows.append(i)
            if fits:
                oom_fit.append(i)
        elif c.skip is None and c.predicted_oom:
            # A measured run the predictor calls out-of-memory: an error of its own kind, counted
            # apart and never averaged into the % errors.
            rec["predicted"] = "OOM"
            rec["error_kind"] = "predicted OOM"
            if np.isfinite(need):
                rec["gpu_memory_needed_gb"] = round(float(need), 3)
            pred_oom.append(i)
        elif c.skip is None and np.isfinite(pred.value[i]):
            rec["predicted"] = _fmt_num(pred.value[i])
            rec["error_pct"] = round(float(err[i]), 3)
            if np.isfinite(need):
                rec["gpu_memory_needed_gb"] = round(float(need), 3)
                rec["fits"] = fits
                w = pred.waves[i]
                if np.isfinite(w) and w > 1:
                    rec["waves"] = int(w)
                    measured_no_fit.append(i)
            ok[i] = True
        else:
            reason = c.skip or "the predictor returned no finite value"
            rec["skipped"] = reason
            rec["field"] = c.skip_field or None
            key = c.skip_summary or reason
            skip_reasons[key] += 1
            skip_where[key].append((i + 2, c.skip_field or ""))  # CSV line (header is line 1), column
            if c.skip_value is not None:
                skip_values[key].add(c.skip_value)
        recs.append(rec)
    summary: dict[str, Any] = {
        "rows": n, "mapped": int(ok.sum() + len(oom_rows) + len(pred_oom)),
        "skipped": int(n - ok.sum() - len(oom_rows) - len(pred_oom)),
        "skip_reasons": {_name_values(k, skip_values[k]): v
                         for k, v in sorted(skip_reasons.items(), key=lambda kv: (-kv[1], kv[0]))},
        "skipped_rows": [{"reason": _name_values(k, skip_values[k]),
                          "fields": sorted({f for _, f in skip_where[k] if f}),
                          "lines": [line for line, _ in skip_where[k]]}
                         for k, _ in sorted(skip_reasons.items(), key=lambda kv: (-kv[1], kv[0]))],
        "overall": stats(err[ok]),
        "gpu_map": {k: v for k, v in sorted(gpu_map.items())},
        "gpu_names": dict(sorted(names.items())),
        "predicted_oom": {"rows": len(pred_oom), "indices": pred_oom,
                          "note": "measured runs the predictor says do not fit; an error of their own kind, not scored in %"},
        "online_rows": online, "input_len_estimated_rows": estimated,
        "size_inversions": _inversions(prep, recs),
        "oom": {"rows": len(oom_rows), "predicted_to_fit": len(oom_fit), "indices_predicted_to_fit": oom_fit},
        "run_in_waves": {"rows": len(measured_no_fit), "memory_fraction": FRAMEWORK_MEMORY_FRACTION,
                         "note": "static batches larger than fit in memory, predicted as sequential waves"},
    }
    for label, keyf in (("by_gpu", lambda c: c.gpu), ("by_framework", lambda c: c.row.framework),
                        ("by_engine", lambda c: c.engine or "(unknown engine)"),
                        ("by_metric", lambda c: c.metric),
                        ("by_gpu_framework_metric", lambda c: f"{c.gpu}|{c.row.framework}|{c.metric}")):
        groups: dict[str, list[int]] = defaultdict(list)
        for c in prep.cases:
            if ok[c.index]:
                groups[keyf(c)].append(c.index)
        summary[label] = {k: stats(err[np.asarray(v)]) for k, v in sorted(groups.items())}
    return Report(rows=recs, summary=summary)


def _inversions(prep: Prepared, recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Returns the pairs of rows where a smaller model was measured slower than a larger one in the
    same setup (``measure.consistency``), and marks each such row's record with its partner."""
    inv = size_inversions(prep.cases, prep.shapes)
    for v in inv:
        for i, j in ((v.small_index, v.large_index), (v.large_index, v.small_index)):
            recs[i].setdefault("size_inversion_with", []).append({"index": j, "floor_pct": round(100 * v.min_error, 2)})
    return {"pairs": [{"smaller": v.small_index, "larger": v.large_index, "time_ratio": round(v.ratio, 4),
                       "floor_pct": round(100 * v.min_error, 2)} for v in inv],
            "note": "a smaller model (no larger in any dimension) measured slower than a larger one in the same "
                    "setup: no size-monotone model can match both rows; the worse of the two misses by floor_pct or more"}


def _name_values(key: str, values: set[str]) -> str:
    """Returns the summary ``key`` with "{value}" replaced by the (first three) values it stands for."""
    if "{value}" not in key:
        return key
    shown = sorted(values)[:3]
    more = f" (+{len(values) - 3} more)" if len(values) > 3 else ""
    return key.replace("{value}", ", ".join(shown) + more if shown else "...", 1)


