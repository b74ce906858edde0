"""Calibration: fit the predictor's efficiency parameters per GPU to measured rows.

Robust and honest by construction:
- residuals are log-ratios ln(predicted / measured), so a 2x error counts the same either way
  and big and small runs weigh alike; a Huber loss (``HUBER_DELTA``) limits outliers' pull;
- every parameter is bounded (``BOUNDS``) and fitted in log space, with numpy only (a
  Levenberg-Marquardt / iteratively reweighted Gauss-Newton on a handful of parameters);
- a GPU is fitted only from at least ``MIN_CONFIGS`` distinct runs, never from one row;
- k-fold cross-validation groups the rows of one run (its latency and its throughput) in the
  same fold and reports out-of-fold error next to the training fit; the uncertainty written to
  the profile (median and tolerance-bound 10th and 90th percentiles of ln(measured / predicted)
  throughput, as a split log-normal's bias and per-side widths, ``predictor.uncertainty.fit_band``)
  comes from out-of-fold residuals, so the error bars are out-of-sample too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np

from llmopt_solver.catalog.loader import Catalog, _data_text
from llmopt_solver.errors import InputError
from llmopt_solver.measure.folds import grouped_folds, run_ids
from llmopt_solver.measure.shrinkage import INNER_FOLDS, blend, choose_weights
from llmopt_solver.measure.validation import (  # re-exports of rows/replay/metrics
    OP_PREFIX,
    TIME_METRICS,
    Predicted,
    Prepared,
    evaluate,
)
from llmopt_solver.predictor.uncertainty import fit_band

# Parameter -> (lower, upper) bound. Fractions of peak cannot exceed 1; overheads are per layer
# per forward pass (kernel launches, framework bookkeeping) and per all-reduce.
BOUNDS: dict[str, tuple[float, float]] = {
    "compute_prefill": (0.4, 0.9), "compute_decode": (0.02, 1.0), "memory_bw": (0.15, 1.0), "kv_bw": (0.05, 1.0),
    "layer_overhead_s": (1e-7, 1e-3), "allreduce_latency_s": (1e-7, 5e-4), "allreduce_bw": (2e-3, 1.0),
    "cross_numa_bw": (0.05, 1.0), "seq_overhead_s": (1e-8, 5e-4), "step_overhead_s": (1e-6, 2e-2),
    "dequant_layer_overhead_s": (1e-7, 1e-3), "dequant_warmup_s": (1e-2, 60.0),
}
DEFAULT_PARAMS = ("compute_prefill", "compute_decode", "memory_bw", "kv_bw", "layer_overhead_s",
                  "allreduce_latency_s", "allreduce_bw", "cross_numa_bw", "seq_overhead_s", "step_overhead_s",
                  "dequant_layer_overhead_s", "dequant_warmup_s")
# Hierarchical per-engine fit: the GPU's hardware fractions (its GEMM and memory-system efficiency,
# a property of the silicon measured through every engine's rows) are fitted once per GPU on all
# engines' rows and held there; an (engine, GPU) fit then adds only the engine's runtime terms
# (per-layer/step/sequence host overheads, all-reduce; sources in data/efficiency.json) and the
# engine-kernel factor in ENGINE_KERNEL_PARAMS: kv_bw, the attention kernel's KV-cache read, is
# the engine's own code (vLLM PagedAttention, TensorRT-LLM XQA/MMHA, DeepSpeed-FastGen blocked
# attention, TGI flash/paged attention), not the GPU's; in the A100 DeepSpeed-MII rows the error
# differs between MHA (Llama-2-7B) and GQA models (Mistral, Llama-3) of equal weights, a KV-read cost.
HARDWARE_PARAMS = ("compute_prefill", "compute_decode", "memory_bw", "kv_bw")
ENGINE_KERNEL_PARAMS: tuple[str, ...] = ("kv_bw",)
# Terms of an engine's own int4/int8 kernels: a GPU's shared fit over several engines fits them (the
# engine stage starts there) but never ships them per GPU, where they would reach every engine.
ENGINE_ONLY_PARAMS: tuple[str, ...] = ("dequant_layer_overhead_s", "dequant_warmup_s")
HUBER_DELTA = 0.1  # |ln error| beyond ~10% counts linearly, not quadratically
MIN_CONFIGS = 8  # distinct runs needed before a GPU's parameters are fitted


@cache
def engine_rules() -> dict[str, dict[str, float]]:
    """Returns {engine: {parameter: value}} that the built-in efficiency.json fixes by rule (with
    its source there), held constant in that engine's (engine, GPU) fit rather than fitted: e.g.
    TensorRT-LLM's seq_overhead_s = 0 (its batch manager and sampler run in C++)."""
    blocks = json.loads(_data_text("efficiency.json")).get("engines") or {}
    return {e: {k: float(v) for k, v in (b.get("default") or {}).items() if k in BOUNDS} for e, b in blocks.items()}


def _huber(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _weights(r: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-300))


def minimise_log_params(resid: Callable[[dict[str, float]], np.ndarray], start: dict[str, float],
                        bounds: dict[str, tuple[float, float]], max_iter: int = 60,
                        grid_sweeps: int = 2, grid_points: int = 9) -> tuple[dict[str, float], float]:
    """Returns (parameters, loss) minimising sum Huber(resid(params)) over bounded log-parameters.

    Levenberg-Marquardt with iteratively reweighted least squares (Huber weights) and a
    forward-difference Jacobian in log space; a step is kept only if it lowers the loss.
    """
    names = list(start)
    lo = np.log([bounds[k][0] for k in names])
    hi = np.log([bounds[k][1] for k in names])
    z = np.clip(np.log([max(start[k], bounds[k][0]) for k in names]), lo, hi)

    def params(zz: np.ndarray) -> dict[str, float]:
        return {k: float(math.exp(v)) for k, v in zip(names, zz)}

    def loss_of(r: np.ndarray) -> float:
        r = r[np.isfinite(r)]
        return float(_huber(r).sum()) if len(r) else math.inf

    # Coarse log-grid sweeps first: the roofline's max() leaves flat regions where a parameter
    # has no gradient (e.g. decode compute while every row is memory-bound at the start).
    loss = loss_of(resid(params(z)))
    for _ in range(grid_sweeps):
        for j in range(len(z)):
            best_v = z[j]
            for v in np.linspace(lo[j], hi[j], grid_points):
                zz = z.copy()
                zz[j] = v
                lv = loss_of(resid(params(zz)))
                if lv < loss:
                    loss, best_v = lv, v
            z[j] = best_v
    r = resid(params(z))
    loss = loss_of(r)
    lam = 1e-2
    rel = 1.0
    for _ in range(max_iter):
        ok = np.isfinite(r)
        w = _weights(r[ok])
        J = np.zeros((int(ok.sum()), len(z)))
        for j in range(len(z)):
            h = 1e-3 if z[j] + 1e-3 <= hi[j] else -1e-3
            zz = z.copy()
            zz[j] += h
            rj = resid(params(zz))[ok]
            J[:, j] = np.where(np.isfinite(rj), (rj - r[ok]) / h, 0.0)
        g = J.T @ (w * r[ok])
        H = J.T @ (J * w[:, None])
        improved = False
        for _ in range(8):
            A = H + lam * np.diag(np.diag(H) + 1e-9)
            try:
                dz = -np.linalg.solve(A, g)
            except np.linalg.LinAlgError:
                lam *= 10
                continue
            z_new = np.clip(z + dz, lo, hi)
            r_new = resid(params(z_new))
            loss_new = loss_of(r_new)
            if loss_new < loss - 1e-12 * max(1.0, loss):
                improved = True
                rel = (loss - loss_new) / max(loss, 1e-300)
                z, r, loss = z_new, r_new, loss_new
                lam = max(lam / 3.0, 1e-7)
                break
            lam *= 4.0
        if not improved or rel < 1e-7:
            break
    return params(z), loss


@dataclass
class GpuFit:
    """One GPU's fitted parameters and the rows behind them."""

    gpu: str
    params: dict[str, float]
    rows: int
    configs: int
    loss: float  # Huber loss of the fit (before any blend toward the shared fit)
    shrink: float = 1.0  # engine stage: blend weight of its own fit vs the shared one (measure/shrinkage.py)


@dataclass
class CalibrationResult:
    """Fitted parameters, training and out-of-fold errors, and the uncertainty per GPU."""

    fits: dict[str, GpuFit]
    skipped_gpus: dict[str, str]
    train_pred: Predicted
    cv_pred: Predicted | None
    folds: int
    uncertainty: dict[str, dict[str, float]] = field(default_factory=dict)
    mask_fits: list[dict[str, GpuFit]] = field(default_factory=list)  # all rows, then per fold


def _usable(prep: Prepared) -> np.ndarray:
    """Rows a fit may use: mapped, measured, and not predicted out-of-memory."""
    meas = np.array([c.measured for c in prep.cases])
    oom = np.array([c.predicted_oom for c in prep.cases], dtype=bool)
    return prep.mapped & np.isfinite(meas) & (meas > 0) & ~oom


def _keys(prep: Prepared, by: str) -> np.ndarray:
    """Returns the fit key of every case: its GPU (``by='gpu'``) or 'gpu|engine' (``by='engine'``)."""
    if by not in ("gpu", "engine"):
        raise InputError(f"calibrate: by={by!r}; allowed: gpu, engine.")
    return prep.gpu_of if by == "gpu" else prep.group_of


def fit_gpus(prep: Prepared, catalog: Catalog, train: np.ndarray, param_names: tuple[str, ...] = DEFAULT_PARAMS,
             min_configs: int = MIN_CONFIGS, by: str = "gpu", grid_sweeps: int = 2, max_iter: int = 60,
             grid_points: int = 9, fixed: dict[str, dict[str, float]] | None = None,
             start: dict[str, dict[str, float]] | None = None) -> tuple[dict[str, GpuFit], dict[str, str]]:
    """Returns the fits on rows ``train`` (a mask) per GPU, or per (GPU, engine) with ``by='engine'``
    (keys 'gpu|engine'; rows of no known engine are not fitted there), and the keys left out with why.
    ``fixed``: {gpu: {parameter: value}} held constant (not fitted) and carried in that GPU's fits.
    ``start``: {gpu: {parameter: value}} to start from instead of the catalog's values (the engine
    stage starts at the shared fit of the same rows, so it never ends worse on its training rows)."""
    meas = np.array([c.measured for c in prep.cases])
    use = train & _usable(prep)
    keys = _keys(prep, by)
    fits, skipped = {}, {}
    for key in sorted({str(g) for g in keys[use]}):
        gpu, _, engine = key.partition("|")
        if by == "engine" and not engine:
            continue
        sel = use & (keys == key)
        configs = {prep.cases[i].config_key for i in np.nonzero(sel)[0]}
        if len(configs) < min_configs:
            skipped[key] = f"only {len(configs)} distinct runs (need {min_configs}); kept spec-only"
            continue
        eff = catalog.efficiency(gpu, engine or None)
        hold = (fixed or {}).get(gpu, {})
        names = [k for k in param_names if k not in engine_rules().get(engine, {}) and k not in hold]
        if not any(prep.cases[i].row.num_gpus > 1 for i in np.nonzero(sel)[0]):
            names = [k for k in names if not k.startswith("allreduce")]  # no TP rows: not identifiable
        # Likewise a term no training row exercises: no ring across NUMA nodes, no dequantised
        # weights, no mean over a fixed-duration load test of them.
        for term, rows in (("cross_numa_bw", prep.numa_crossing), ("dequant_layer_overhead_s", prep.dequant_weights),
                           ("dequant_warmup_s", prep.warmup_rows)):
            names = names if rows[sel].any() else [k for k in names if k != term]
        if not any(prep.cases[i].op == "" for i in np.nonzero(sel)[0]):
            names = [k for k in names if k in ("compute_prefill", "memory_bw")]  # GEMM rows only
        unset = {"kv_bw": eff.memory_bw, "allreduce_bw": eff.pcie}  # optional fields' effective defaults
        begin = (start or {}).get(gpu, {})
        x0 = {k: float(begin[k] if k in begin else getattr(eff, k) if getattr(eff, k) is not None
                       else unset.get(k, eff.memory_bw)) for k in names}
        sub = prep.restrict(sel)

        def resid(p: dict[str, float], sel: np.ndarray = sel, key: str = key, sub: Prepared = sub,
                  hold: dict[str, float] = hold) -> np.ndarray:
            pred = evaluate(sub, {key: {**hold, **p}}).value
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(pred[sel] / meas[sel])

        params, loss = minimise_log_params(resid, x0, BOUNDS, max_iter=max_iter, grid_sweeps=grid_sweeps,
                                           grid_points=grid_points) if names else ({}, float(_huber(resid({})).sum()))
        fits[key] = GpuFit(gpu=key, params={**hold, **params}, rows=int(sel.sum()), configs=len(configs), loss=loss)
    return fits, skipped


def fold_of(prep: Prepared, k: int, seed: int = 0) -> np.ndarray:
    """Returns the fold (0..k-1) of every case; the rows of one run share a fold (-1: unusable)."""
    return grouped_folds(prep, _usable(prep), k, seed)


def throughput_log_residual(prep: Prepared, pred: np.ndarray) -> np.ndarray:
    """Returns ln(measured / predicted) throughput per case (times inverted; NaN for op rows)."""
    meas = np.array([c.measured for c in prep.cases])
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(meas / pred)
    time = np.array([c.metric in TIME_METRICS for c in prep.cases])
    op = np.array([c.metric.startswith(OP_PREFIX) for c in prep.cases])
    return np.where(op, np.nan, np.where(time, -lr, lr))


# A fit task: (training mask, 'gpu' or 'engine', parameters held fixed per GPU or None, start
# values per GPU or None).
FitTask = tuple[np.ndarray, str, dict[str, dict[str, float]] | None, dict[str, dict[str, float]] | None]
FitMap = Callable[[list[FitTask]], list[tuple[dict[str, GpuFit], dict[str, str]]]]


def hardware_of(fits: dict[str, GpuFit]) -> dict[str, dict[str, float]]:
    """Returns {gpu: its shared fit's hardware fractions} held in the (engine, GPU) fits (all but
    ENGINE_KERNEL_PARAMS)."""
    hw = [k for k in HARDWARE_PARAMS if k not in ENGINE_KERNEL_PARAMS]
    return {g: {k: v for k, v in f.params.items() if k in hw} for g, f in fits.items()}


def calibrate(prep: Prepared, catalog: Catalog, folds: int = 5, param_names: tuple[str, ...] = DEFAULT_PARAMS,
              min_configs: int = MIN_CONFIGS, seed: int = 0, by: str = "gpu", grid_sweeps: int = 2,
              max_iter: int = 60, fit_map: FitMap | None = None,
              shared: list[dict[str, GpuFit]] | None = None, inner_folds: int = INNER_FOLDS) -> CalibrationResult:
    """Returns the fit on all usable rows plus ``folds``-fold out-of-fold predictions (0: no CV).

    ``by='engine'`` is hierarchical: per training mask (all rows, then each fold's) the shared
    per-GPU fit on that mask's rows of every engine gives the GPU's hardware fractions
    (``hardware_of``), then each (GPU, engine) fits its runtime terms on its own rows of that mask
    (keys 'gpu|engine'; rows of no known engine stay unfitted, NaN out-of-fold). ``shared``: that
    stage's fits per mask when already run (``CalibrationResult.mask_fits`` of a ``by='gpu'`` run
    on the same prep, seed and folds). The engine stage starts at the shared fit of its mask, and its
    parameters are blended toward it by a weight chosen by ``inner_folds``-fold inner CV on the
    mask's rows (measure/shrinkage.py; < 2: no blend). ``fit_map`` runs ``fit_gpus`` on a list of
    tasks (default: one after the other; docs/make_accuracy.py passes a process pool).
    """
    usable = _usable(prep)
    if not usable.any():
        raise InputError("calibrate: no row could be mapped to a prediction (see `llmopt validate` for the reasons).")
    fold = fold_of(prep, folds, seed) if folds >= 2 else np.full(len(prep.cases), -1)
    masks = [usable] + [usable & (fold != f) & (fold >= 0) for f in range(folds if folds >= 2 else 0)]
    run = fit_map or (lambda tasks: [fit_gpus(prep, catalog, m, param_names, min_configs, b, grid_sweeps, max_iter,
                                              fixed=fx, start=x0) for m, b, fx, x0 in tasks])
    if by == "engine" and shared is None:
        shared = [r[0] for r in run([(m, "gpu", None, None) for m in masks])]  # refitted per fold: no leakage
    fixed = [hardware_of(s) for s in shared] if by == "engine" and shared else [None] * len(masks)
    starts = [{g: f.params for g, f in s.items()} for s in shared] if by == "engine" and shared else [None] * len(masks)
    results = run([(m, by, fx, x0) for m, fx, x0 in zip(masks, fixed, starts)])
    keys = _keys(prep, by)
    if by == "engine" and shared and inner_folds >= 2:
        inner = [grouped_folds(prep, m, inner_folds, seed + 1) for m in masks]
        inner_res = run([(m & (inn != j) & (inn >= 0), by, fx, x0) for m, inn, fx, x0 in zip(masks, inner, fixed, starts)
                         for j in range(inner_folds)])
        for mi, (m, inn, x0) in enumerate(zip(masks, inner, starts)):
            w = choose_weights(prep, m, keys, x0 or {}, inn, [{k: f.params for k, f in r[0].items()} for r in
                                                            inner_res[mi * inner_folds:(mi + 1) * inner_folds]])
            for key, ef in results[mi][0].items():
                wk = w.get(key, 1.0)
                results[mi][0][key] = replace(ef, params=blend((x0 or {}).get(key.partition("|")[0], {}), ef.params, wk),
                                              shrink=wk)
    fits, skipped = results[0]
    if not fits:
        raise InputError(f"calibrate: no GPU has enough measurements: {'; '.join(f'{g}: {r}' for g, r in skipped.items())}.")
    fitted = np.isin(keys, list(fits))
    train_pred = evaluate(prep, {g: f.params for g, f in fits.items()}, subset=fitted if by == "engine" else None)
    cv_pred = None
    if folds >= 2:
        value = np.full(len(prep.cases), np.nan)
        mem = np.full(len(prep.cases), np.nan)
        waves = np.full(len(prep.cases), np.nan)
        for f in range(folds):
            test = (fold == f) & (fitted if by == "engine" else True)
            if not test.any():
                continue
            fold_fits = results[1 + f][0]
            p = evaluate(prep, {g: x.params for g, x in fold_fits.items()}, subset=test)
            value[test], mem[test], waves[test] = p.value[test], p.gpu_memory_needed_gb[test], p.waves[test]
        cv_pred = Predicted(value=value, gpu_memory_needed_gb=mem, waves=waves)
    res = CalibrationResult(fits=fits, skipped_gpus=skipped, train_pred=train_pred, cv_pred=cv_pred, folds=folds,
                            mask_fits=[r[0] for r in results])
    basis = cv_pred if cv_pred is not None else train_pred
    u = throughput_log_residual(prep, basis.value)
    for gpu in fits:
        sel = usable & (keys == gpu) & np.isfinite(u)
        if sel.sum() >= 2:
            # The band the option table shows: median, and the residuals' tolerance-bound 10th and
            # 90th percentiles (runs as units) as one width per side (predictor/uncertainty.py).
            res.uncertainty[gpu] = fit_band(u[sel], runs=run_ids(prep)[sel])
    return res
