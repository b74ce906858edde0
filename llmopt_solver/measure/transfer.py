"""Transfer of runtime parameters to GPUs without measurements (leave-one-GPU-out checked)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmopt_solver.measure.calibration import CalibrationResult, GpuFit, _usable, run_ids, throughput_log_residual
from llmopt_solver.measure.validation import Predicted, Prepared, evaluate
from llmopt_solver.predictor.uncertainty import fit_band

# Parameters that describe the serving runtime (kernels, scheduler, collectives) rather than the
# memory/compute hardware: these transfer across GPU types (checked leave-one-GPU-out in
# docs/accuracy.md); HBM/GDDR bandwidth and prefill GEMM fractions stay per-GPU measured defaults.
RUNTIME_PARAMS = ("compute_decode", "kv_bw", "layer_overhead_s", "allreduce_latency_s", "allreduce_bw",
                  "seq_overhead_s", "step_overhead_s")
# An engine's own default (its GPUs' geometric mean) also carries the per-layer cost of its
# dequantising int4/int8 kernels: that is the engine's code, so it transfers to the engine's other
# GPUs but never to other engines through the global default.
ENGINE_RUNTIME_PARAMS = RUNTIME_PARAMS + ("dequant_layer_overhead_s",)


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
    prior's uncertainty (``fit_band``: median and per-side widths, each never narrower than the
    widest calibrated GPU's).
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
    unc = fit_band(u[ok], runs=run_ids(prep)[ok])
    # A GPU without measurements is never reported as more certain than a measured one (per side).
    for side in ("sigma", "sigma_low", "sigma_high"):
        unc[side] = max(unc[side], max((g.get(side, g["sigma"]) for g in res.uncertainty.values()), default=0.0))
    return TransferPrior(params=_gmean(list(res.fits.values()), keys), uncertainty=unc, logo_pred=logo)

