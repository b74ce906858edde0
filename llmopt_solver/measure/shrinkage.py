"""Shrinkage of the per-(engine, GPU) fit toward the shared per-GPU fit, chosen by inner CV.

The engine stage of the hierarchical calibration fits an engine's runtime terms on that engine's
rows; the shared stage fitted the same terms on every engine's rows of the GPU. Where an engine
dominates a GPU's rows (vLLM), the shared values are already close to its own and the engine fit
can trade small errors for large ones under the Huber loss. The calibrated parameters are
therefore the log-linear blend theta(w) = theta_shared^(1-w) * theta_engine^w, with w in
``SHRINK_WEIGHTS`` chosen per (engine, GPU) and per training mask by ``INNER_FOLDS``-fold inner
cross-validation on that mask's rows only (grouped by run), minimising the median absolute error,
the reported metric (ties go to the smaller w, closer to the shared fit). w = 0 keeps the shared
values, w = 1 the engine fit. The inner folds' anchor is the shared fit of the whole mask (it saw
the inner test rows): a bias toward the shared values, i.e. toward w = 0, never toward the engine.
"""

from __future__ import annotations

import numpy as np

from llmopt_solver.measure.validation import Prepared, evaluate, pct_errors

SHRINK_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
INNER_FOLDS = 3
Params = dict[str, dict[str, float]]


def blend(shared: dict[str, float], engine: dict[str, float], w: float) -> dict[str, float]:
    """Returns theta(w) = shared^(1-w) * engine^w for every parameter of ``engine`` (geometric: the
    parameters are fractions and times fitted in log space); values absent from ``shared`` stay."""
    out = {}
    for k, v in engine.items():
        s = shared.get(k)
        out[k] = v if s is None or s <= 0 or v <= 0 else float(np.exp((1 - w) * np.log(s) + w * np.log(v)))
    return out


def choose_weights(prep: Prepared, mask: np.ndarray, keys: np.ndarray, shared: Params, inner: np.ndarray,
                   inner_fits: list[Params]) -> dict[str, float]:
    """Returns {'gpu|engine': w}: the weight of ``SHRINK_WEIGHTS`` whose blend of the shared fit
    (``shared``: {gpu: params}, of the whole mask) and each inner fold's engine fit (``inner_fits[j]``,
    fitted without inner fold j) has the lowest median absolute % error on the inner held-out rows."""
    meas = np.array([c.measured for c in prep.cases])
    errs: dict[str, dict[float, list[np.ndarray]]] = {}
    for j, fits in enumerate(inner_fits):
        test = mask & (inner == j) & np.isin(keys, list(fits))
        if not test.any():
            continue
        for w in SHRINK_WEIGHTS:
            p = {key: blend(shared.get(key.partition("|")[0], {}), f, w) for key, f in fits.items()}
            e = np.abs(pct_errors(evaluate(prep, p, subset=test).value, meas))
            for key in fits:
                sel = test & (keys == key) & np.isfinite(e)
                errs.setdefault(key, {}).setdefault(w, []).append(e[sel])
    out = {}
    for key, by_w in errs.items():
        med = {w: float(np.median(np.concatenate(v))) if sum(map(len, v)) else np.inf for w, v in by_w.items()}
        out[key] = min(SHRINK_WEIGHTS, key=lambda w: (med.get(w, np.inf), w))
    return out
