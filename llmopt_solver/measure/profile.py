"""Calibration output: error tables and the profile document (a catalog overlay) with its
per-GPU and per-(engine, GPU) sections, in the shape ``catalog.efficiency(gpu, engine)`` reads."""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from llmopt_solver.measure.calibration import (
    BOUNDS,
    ENGINE_ONLY_PARAMS,
    HUBER_DELTA,
    CalibrationResult,
    GpuFit,
    _usable,
    engine_rules,
)
from llmopt_solver.measure.transfer import ENGINE_RUNTIME_PARAMS, _gmean
from llmopt_solver.measure.validation import Predicted, Prepared, pct_errors, stats


def error_table(prep: Prepared, pred: Predicted, mask: np.ndarray | None = None,
                key: Callable[[Any], str] = lambda c: f"{c.gpu}|{c.metric}") -> dict[str, dict[str, Any]]:
    """Returns stats of the % errors of ``pred`` grouped by ``key(case)``, plus 'overall'."""
    meas = np.array([c.measured for c in prep.cases])
    err = pct_errors(pred.value, meas)
    ok = _usable(prep) & np.isfinite(err)
    if mask is not None:
        ok &= mask
    groups: dict[str, list[int]] = defaultdict(list)
    for i in np.nonzero(ok)[0]:
        groups[key(prep.cases[i])].append(int(i))
    out = {k: stats(err[np.asarray(v)]) for k, v in sorted(groups.items())}
    out["overall"] = stats(err[ok])
    return out


def _band(u: dict[str, Any]) -> dict[str, Any]:
    """Returns the profile fields of a band (``predictor.uncertainty.fit_band``'s keys present)."""
    keys = ("bias", "sigma", "sigma_low", "sigma_high", "rows")
    return {**{k: u[k] for k in keys if k in u}, "memory_sigma": 0.05}


def measured_ranges(prep: Prepared, gpu: str) -> dict[str, list[int]]:
    """Returns the [min, max] batch size, input and output length of ``gpu``'s mapped rows
    (recorded in the profile so that predictions outside them are flagged and their band widened)."""
    cases = [c for c in prep.cases if c.skip is None and c.gpu == gpu]
    out: dict[str, list[int]] = {}
    for key, get in (("batch_range", lambda c: c.batch), ("input_len_range", lambda c: c.row.input_len),
                     ("output_len_range", lambda c: c.row.output_len)):
        vals = [int(v) for v in map(get, cases) if v]
        if vals:
            out[key] = [min(vals), max(vals)]
    return out


def profile_document(res: CalibrationResult, source: str, prep: Prepared, as_of: str | None = None,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Returns the calibration profile (a catalog overlay: efficiency + uncertainty per GPU)."""
    as_of = as_of or _dt.date.today().isoformat()
    basis = f"out-of-fold ({res.folds}-fold CV)" if res.cv_pred is not None else "training fit"
    eff, unc = {}, {}
    for gpu, f in sorted(res.fits.items()):
        engines = {c.engine for c in prep.cases if c.gpu == gpu and c.skip is None}
        rec: dict[str, Any] = {k: float(f"{v:.4g}") for k, v in sorted(f.params.items())
                               if len(engines) <= 1 or k not in ENGINE_ONLY_PARAMS}
        rec["source"] = f"fitted by llmopt calibrate on {f.rows} rows ({f.configs} runs) of {source}"
        rec["as_of"] = as_of
        eff[gpu] = rec
        if gpu in res.uncertainty:
            u = res.uncertainty[gpu]
            unc[gpu] = {**_band(u), "source": f"ln(measured/predicted) throughput, {basis}, {source}"}
            unc[gpu].update(measured_ranges(prep, gpu))
    cv = error_table(prep, res.cv_pred, key=lambda c: c.metric) if res.cv_pred is not None else None
    doc: dict[str, Any] = {
        "source": f"llmopt calibrate: {source}",
        "as_of": as_of,
        "efficiency": {"gpus": eff},
        "uncertainty": {"gpus": unc},
        "calibration": {
            "folds": res.folds,
            "huber_delta": HUBER_DELTA,
            "bounds": {k: list(v) for k, v in BOUNDS.items()},
            "train_error": error_table(prep, res.train_pred, key=lambda c: c.metric),
            "cv_error": cv,
            "skipped_gpus": res.skipped_gpus,
        },
    }
    if extra:
        doc["calibration"].update(extra)
    return doc


def engine_sections(res: CalibrationResult, source: str, as_of: str | None = None,
                    keys: tuple[str, ...] = ENGINE_RUNTIME_PARAMS) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns ``(efficiency.engines, uncertainty.engines)`` of a ``by='engine'`` result, the catalog's
    format: {engine: {"default": {...}, "gpus": {gpu: {...}}}}.

    The engine's default (its transfer rule for GPUs without (engine, GPU) data) is the geometric
    mean of its GPUs' runtime parameters (``keys``; hardware fractions stay the GPU's own), and its
    band is the widest of its GPUs' (a GPU without data is never reported more certain).
    """
    as_of = as_of or _dt.date.today().isoformat()
    basis = f"out-of-fold ({res.folds}-fold CV)" if res.cv_pred is not None else "training fit"
    eff: dict[str, Any] = {}
    unc: dict[str, Any] = {}
    by_engine: dict[str, list[GpuFit]] = defaultdict(list)
    for key, f in sorted(res.fits.items()):
        gpu, _, engine = key.partition("|")
        by_engine[engine].append(f)
        rec: dict[str, Any] = {k: float(f"{v:.4g}") for k, v in sorted(f.params.items())}
        rec.update(source=f"fitted by llmopt calibrate per (engine, GPU) on {f.rows} rows ({f.configs} runs) of {source}; "
                          f"blend weight toward this fit vs the shared one {f.shrink:g} (inner CV)",
                   as_of=as_of)
        eff.setdefault(engine, {"gpus": {}})["gpus"][gpu] = rec
        if key in res.uncertainty:
            u = res.uncertainty[key]
            unc.setdefault(engine, {"gpus": {}})["gpus"][gpu] = {
                **_band(u), "source": f"ln(measured/predicted) throughput, {basis}, {engine} on {gpu}, {source}"}
    for engine, fits in by_engine.items():
        fitted = {k: float(f"{v:.4g}") for k, v in _gmean(fits, keys).items()}
        # Parameters the engine's rule fixes (not fitted) are carried in its default, so that the
        # calibration overlay keeps them for every GPU.
        fitted.update(engine_rules().get(engine, {}))
        eff[engine]["default"] = {**dict(sorted(fitted.items())),
                                  "source": f"geometric mean over {', '.join(f.gpu.split('|')[0] for f in fits)} of "
                                            f"{engine}'s fitted runtime parameters ({', '.join(keys)}); {source}",
                                  "as_of": as_of}
        gpus_u = (unc.get(engine) or {}).get("gpus") or {}
        if gpus_u:
            widest = dict(max(gpus_u.values(), key=lambda u: u["sigma"]))
            for side in ("sigma_low", "sigma_high"):  # and each side at least every GPU's
                widest[side] = max(u.get(side, u["sigma"]) for u in gpus_u.values())
            unc[engine]["default"] = {**_band(widest), "rows": sum(u["rows"] for u in gpus_u.values()),
                                      "source": f"widest band of {engine}'s calibrated GPUs, {basis}, {source}"}
    return eff, unc
