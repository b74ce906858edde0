"""Calibration: fit the predictor's efficiency parameters per GPU to measured rows.

Robust and honest by construction:
- residuals are log-ratios ln(predicted / measured), so a 2x error counts the same either way
  and big and small runs weigh alike; a Huber loss (``HUBER_DELTA``) limits outliers' pull;
- every parameter is bounded (``BOUNDS``) and fitted in log space, with numpy only (a
  Levenberg-Marquardt / iteratively reweighted Gauss-Newton on a handful of parameters);
- a GPU is fitted only from at least ``MIN_CONFIGS`` distinct runs, never from one row;
- k-fold cross-validation groups the rows of one run (its latency and its throughput) in the
  same fold and reports out-of-fold error next to the training fit; the uncertainty written to
  the profile (median and 10th-90th percentile spread of ln(measured / predicted) throughput,
  as a log-normal's bias and sigma) comes from out-of-fold residuals, so the error bars are
  out-of-sample too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from llmopt_solver.catalog.loader import Catalog, _data_text
from llmopt_solver.errors import InputError
from llmopt_solver.measure.validation import (  # re-exports of rows/replay/metrics
    OP_PREFIX,
    TIME_METRICS,
    Predicted,
    Prepared,
    evaluate,
)

# Parameter -> (lower, upper) bound. Fractions of peak cannot exceed 1; overheads are per layer
# per forward pass (kernel launches, framework bookkeeping) and per all-reduce.
BOUNDS: dict[str, tuple[float, float]] = {
    "compute_prefill": (0.4, 0.9),
    "compute_decode": (0.02, 1.0),
    "memory_bw": (0.15, 1.0),
    "kv_bw": (0.05, 1.0),
    "layer_overhead_s": (1e-7, 1e-3),
    "allreduce_latency_s": (1e-7, 5e-4),
    "allreduce_bw": (2e-3, 1.0),
    "seq_overhead_s": (1e-8, 5e-4),
    "step_overhead_s": (1e-6, 2e-2),
}
DEFAULT_PARAMS = ("compute_prefill", "compute_decode", "memory_bw", "kv_bw", "layer_overhead_s",
                  "allreduce_latency_s", "allreduce_bw", "seq_overhead_s", "step_overhead_s")
HUBER_DELTA = 0.1  # |ln error| beyond ~10% counts linearly, not quadratically
MIN_CONFIGS = 8  # distinct runs needed before a GPU's parameters are fitted
Z90 = 1.2815515655446004  # standard normal 90th percentile


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
    loss: float


@dataclass
class CalibrationResult:
    """Fitted parameters, training and out-of-fold errors, and the uncertainty per GPU."""

    fits: dict[str, GpuFit]
    skipped_gpus: dict[str, str]
    train_pred: Predicted
    cv_pred: Predicted | None
    folds: int
    uncertainty: dict[str, dict[str, float]] = field(default_factory=dict)


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
             grid_points: int = 9) -> tuple[dict[str, GpuFit], dict[str, str]]:
    """Returns the fits on rows ``train`` (a mask) per GPU, or per (GPU, engine) with ``by='engine'``
    (keys 'gpu|engine'; rows of no known engine are not fitted there), and the keys left out with why."""
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
        names = [k for k in param_names if k not in engine_rules().get(engine, {})]
        if not any(prep.cases[i].row.num_gpus > 1 for i in np.nonzero(sel)[0]):
            names = [k for k in names if not k.startswith("allreduce")]  # no TP rows: not identifiable
        if not any(prep.cases[i].op == "" for i in np.nonzero(sel)[0]):
            names = [k for k in names if k in ("compute_prefill", "memory_bw")]  # GEMM rows only
        unset = {"kv_bw": eff.memory_bw, "allreduce_bw": eff.pcie}  # optional fields' effective defaults
        start = {k: float(getattr(eff, k) if getattr(eff, k) is not None else unset.get(k, eff.memory_bw)) for k in names}
        sub = prep.restrict(sel)

        def resid(p: dict[str, float], sel: np.ndarray = sel, key: str = key, sub: Prepared = sub) -> np.ndarray:
            pred = evaluate(sub, {key: p}).value
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(pred[sel] / meas[sel])

        params, loss = minimise_log_params(resid, start, BOUNDS, max_iter=max_iter, grid_sweeps=grid_sweeps,
                                           grid_points=grid_points)
        fits[key] = GpuFit(gpu=key, params=params, rows=int(sel.sum()), configs=len(configs), loss=loss)
    return fits, skipped


def fold_of(prep: Prepared, k: int, seed: int = 0) -> np.ndarray:
    """Returns the fold (0..k-1) of every case; the rows of one run share a fold (-1: unusable)."""
    keys = sorted({prep.cases[i].config_key for i in np.nonzero(_usable(prep))[0]}, key=repr)
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_by_key = {keys[j]: int(pos % k) for pos, j in enumerate(order)}
    return np.array([fold_by_key.get(c.config_key, -1) if c.skip is None else -1 for c in prep.cases])


def throughput_log_residual(prep: Prepared, pred: np.ndarray) -> np.ndarray:
    """Returns ln(measured / predicted) throughput per case (times inverted; NaN for op rows)."""
    meas = np.array([c.measured for c in prep.cases])
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(meas / pred)
    time = np.array([c.metric in TIME_METRICS for c in prep.cases])
    op = np.array([c.metric.startswith(OP_PREFIX) for c in prep.cases])
    return np.where(op, np.nan, np.where(time, -lr, lr))


FitMap = Callable[[list[np.ndarray]], list[tuple[dict[str, GpuFit], dict[str, str]]]]


def calibrate(prep: Prepared, catalog: Catalog, folds: int = 5, param_names: tuple[str, ...] = DEFAULT_PARAMS,
              min_configs: int = MIN_CONFIGS, seed: int = 0, by: str = "gpu", grid_sweeps: int = 2,
              max_iter: int = 60, fit_map: FitMap | None = None) -> CalibrationResult:
    """Returns the fit on all usable rows plus ``folds``-fold out-of-fold predictions (0: no CV).

    ``by='engine'`` fits each (GPU, engine) on its own rows (keys 'gpu|engine'); rows of no known
    engine stay unfitted (NaN out-of-fold) there. ``fit_map`` runs ``fit_gpus`` on a list of
    training masks (default: one after the other; docs/make_accuracy.py passes a process pool).
    """
    usable = _usable(prep)
    if not usable.any():
        raise InputError("calibrate: no row could be mapped to a prediction (see `llmopt validate` for the reasons).")
    fold = fold_of(prep, folds, seed) if folds >= 2 else np.full(len(prep.cases), -1)
    masks = [usable] + [usable & (fold != f) & (fold >= 0) for f in range(folds if folds >= 2 else 0)]
    if fit_map is None:
        results = [fit_gpus(prep, catalog, m, param_names, min_configs, by, grid_sweeps, max_iter) for m in masks]
    else:
        results = fit_map(masks)
    fits, skipped = results[0]
    if not fits:
        raise InputError(f"calibrate: no GPU has enough measurements: {'; '.join(f'{g}: {r}' for g, r in skipped.items())}.")
    keys = _keys(prep, by)
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
    res = CalibrationResult(fits=fits, skipped_gpus=skipped, train_pred=train_pred, cv_pred=cv_pred, folds=folds)
    basis = cv_pred if cv_pred is not None else train_pred
    u = throughput_log_residual(prep, basis.value)
    for gpu in fits:
        sel = usable & (keys == gpu) & np.isfinite(u)
        if sel.sum() >= 2:
            # Matched to the band the option table shows (10th-90th percentile of a log-normal):
            # bias = median, sigma = (P90 - P10) / (2 z_0.9), robust to a stray row yet honest
            # about heavy tails at the band's own quantiles.
            q10, q50, q90 = np.percentile(u[sel], [10, 50, 90])
            res.uncertainty[gpu] = {"bias": round(float(q50), 4), "sigma": round(float((q90 - q10) / (2 * Z90)), 4),
                                    "rows": int(sel.sum())}
    return res


# Parameters that describe the serving runtime (kernels, scheduler, collectives) rather than the
# memory/compute hardware: these transfer across GPU types (checked leave-one-GPU-out in
# docs/accuracy.md); HBM/GDDR bandwidth and prefill GEMM fractions stay per-GPU measured defaults.
RUNTIME_PARAMS = ("compute_decode", "kv_bw", "layer_overhead_s", "allreduce_latency_s", "allreduce_bw",
                  "seq_overhead_s", "step_overhead_s")


@dataclass
class TransferPrior:
    """Runtime parameters for GPUs without measurements, and how well they transfer."""

    params: dict[str, float]  # geometric mean over every calibrated GPU
    uncertainty: dict[str, float]  # from leave-one-GPU-out residuals
    logo_pred: Predicted  # each calibrated GPU predicted with the other GPUs' geometric mean


def _gmean(fits: list[GpuFit], keys: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for k in keys:
        vals = [f.params[k] for f in fits if k in f.params]
        if vals:
            out[k] = float(np.exp(np.mean(np.log(vals))))
    return out


def transfer_prior(prep: Prepared, res: CalibrationResult, keys: tuple[str, ...] = RUNTIME_PARAMS) -> TransferPrior | None:
    """Returns the runtime-parameter prior for spec-only GPUs, validated leave-one-GPU-out.

    Needs at least two calibrated GPUs (None otherwise): each one is predicted with the geometric
    mean of the others' runtime parameters, and the residuals of those predictions give the
    prior's uncertainty (bias = median, sigma from the 10th-90th percentile spread, but never
    narrower than the widest calibrated GPU's band).
    """
    if len(res.fits) < 2:
        return None
    usable = _usable(prep)
    n = len(prep.cases)
    value, mem, waves = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    for gpu in res.fits:
        others = [f for g, f in res.fits.items() if g != gpu]
        sel = usable & (prep.gpu_of == gpu)
        p = evaluate(prep, {gpu: _gmean(others, keys)}, subset=sel)
        value[sel], mem[sel], waves[sel] = p.value[sel], p.gpu_memory_needed_gb[sel], p.waves[sel]
    logo = Predicted(value=value, gpu_memory_needed_gb=mem, waves=waves)
    u = throughput_log_residual(prep, value)
    ok = np.isfinite(u)
    q10, q50, q90 = np.percentile(u[ok], [10, 50, 90])
    # A GPU without measurements is never reported as more certain than a measured one.
    widest = max((u["sigma"] for u in res.uncertainty.values()), default=0.0)
    sigma = max(float((q90 - q10) / (2 * Z90)), widest)
    unc = {"bias": round(float(q50), 4), "sigma": round(sigma, 4), "rows": int(ok.sum())}
    return TransferPrior(params=_gmean(list(res.fits.values()), keys), uncertainty=unc, logo_pred=logo)

