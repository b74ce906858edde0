"""Replay of mapped rows through the predictor: the same ``hardware_arrays`` and physics as the
option table, so validation scores the physics users get (no second model here).

Rows sharing model, lengths, precision, placement and schedule (static / online) are one
vectorised call (``schedule.static_in_waves`` or ``schedule.online``); Vidur operator rows go
through ``predictor.physics.gemm_roofline_s`` (GEMMs) or ``measure.operator_fit.op_time_ms``
(element-wise kernels, fitted terms of ``data/operator_fit.json``). Engine runtime parameters come from
``catalog.efficiency(gpu, engine)`` for rows whose framework names a known engine.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.measure.figures import implied_time_s, metric_values
from llmopt_solver.measure.mapping import Case, Placement, synthetic_instance
from llmopt_solver.measure.operator_fit import op_time_ms
from llmopt_solver.measure.rows import Metric
from llmopt_solver.measure.schedule import (  # noqa: F401  (constants re-exported)
    FRAMEWORK_MEMORY_FRACTION,
    GIB_PER_MARKETED_GB,
    RunTiming,
    capacity_gb,
    online,
    predict_placed,
    static_in_waves,
)
from llmopt_solver.predictor.operators import ELEMENTWISE_OPS
from llmopt_solver.predictor.physics import Hardware, decode_floor_s, gemm_roofline_s
from llmopt_solver.table.build import hardware_arrays
from llmopt_solver.table.engines import EngineExecution, execution

_METRICS = {m.value for m in Metric}

EFF_FIELDS = {"compute_prefill": "eff_compute_prefill", "compute_decode": "eff_compute_decode",
              "memory_bw": "eff_memory_bw", "kv_bw": "eff_kv_bw", "layer_overhead_s": "layer_overhead_s",
              "allreduce_latency_s": "allreduce_latency_s", "allreduce_bw": "eff_gpu_link",
              "seq_overhead_s": "seq_overhead_s", "step_overhead_s": "step_overhead_s",
              "cross_numa_bw": "eff_cross_numa", "dequant_layer_overhead_s": "dequant_layer_overhead_s",
              "dequant_warmup_s": "dequant_warmup_s"}


@dataclass
class Prepared:
    """Mapped cases grouped for vectorised prediction; reusable across parameter changes."""

    cases: list[Case]
    groups: list[tuple[np.ndarray, Any, Hardware]] = field(default_factory=list)  # (case idx, key, hw)
    op_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    op_hw: Hardware | None = None
    ew_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # element-wise op rows
    ew_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))  # their predicted time (no eff params)
    gpu_of: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    group_of: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # 'gpu|engine'
    gpu_memory_gb: np.ndarray = field(default_factory=lambda: np.zeros(0))
    batch: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metric_of: np.ndarray = field(default_factory=lambda: np.zeros(0, object))  # Metric value or ''
    num_gpus: np.ndarray = field(default_factory=lambda: np.zeros(0))
    numa_crossing: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # Hardware.numa_crossing per case
    dequant_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # engine dequantises the weights
    run_duration_s: np.ndarray = field(default_factory=lambda: np.zeros(0))  # online load test length, NaN: none
    warmup_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # mean of a load test through them
    shapes: dict[str, Any] = field(default_factory=dict)
    # Per case, from ``prepare``: memory need, wave size and fit of static rows (they depend on the
    # hardware and model only, so every evaluation with other efficiencies reuses them).
    plan_memory_gb: np.ndarray = field(default_factory=lambda: np.zeros(0))
    plan_b_fit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    plan_fits: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def mapped(self) -> np.ndarray:
        return np.array([c.skip is None for c in self.cases], dtype=bool)

    def restrict(self, mask: np.ndarray) -> Prepared:
        """Returns a copy that evaluates only the cases in ``mask`` (cheaper repeated evaluation)."""
        groups = []
        for idx, key, hw in self.groups:
            keep = mask[idx]
            if keep.any():
                groups.append((idx[keep], key, hw.take(np.nonzero(keep)[0])))
        out = replace(self, groups=groups)
        if self.op_hw is not None:
            keep = mask[self.op_idx]
            out.op_idx = self.op_idx[keep]
            out.op_hw = self.op_hw.take(np.nonzero(keep)[0]) if keep.any() else None
        return out


def engine_params(catalog: Catalog, gpu: str, engine: str) -> dict[str, float]:
    """Returns the efficiency fields where ``catalog.efficiency(gpu, engine)`` differs from the GPU's."""
    if not engine:
        return {}
    base, eng = catalog.efficiency(gpu), catalog.efficiency(gpu, engine)
    out = {}
    for name in EFF_FIELDS:
        v = getattr(eng, name)
        if v is not None and v != getattr(base, name):
            out[name] = float(v)
    return out


def _hardware(catalog: Catalog, cases: list[Case], idx: np.ndarray, precision: Precision) -> Hardware:
    insts = [synthetic_instance(catalog, cases[i].gpu, cases[i].row.num_gpus, cases[i].gpu_numa_nodes) for i in idx]
    hw = hardware_arrays(catalog, insts, precision)
    groups = np.array([f"{cases[i].gpu}|{cases[i].engine}" for i in idx], dtype=object)
    params = {g: engine_params(catalog, *g.split("|", 1)) for g in set(groups)}
    return _with_params(hw, np.array([cases[i].gpu for i in idx], dtype=object), groups, params)


def _execution(case: Case, catalog: Catalog) -> EngineExecution:
    """Returns how the row's engine runs its precisions (``table.engines.execution``, as the table)."""
    return execution(catalog.engine(case.engine) if case.engine else None, case.weight.value, case.kv.value,
                     identical_prompts=case.identical_prompts)


def _concrete_placement(case: Case, shape: Any, catalog: Catalog, ex: EngineExecution) -> Placement:
    """Turns an Accelerate GPU weight budget into the offloaded weight fraction of this model, and
    the fraction into what the engine executes (ZeRO-Inference: all weights or none)."""
    pl = case.placement
    if pl.gpu_weight_gb is None:
        w = ex.weight_offload(pl.weight_offload)
        return pl if w == pl.weight_offload else replace(pl, weight_offload=w)
    weights_gb = shape.total_params * case.weight.bytes_per_value / case.row.num_gpus / 1e9
    budget = pl.gpu_weight_gb
    if budget < 0:  # device_map='auto': fill the GPU (90%: activations and KV need the rest) first
        budget = FRAMEWORK_MEMORY_FRACTION * catalog.gpu(case.gpu).memory_gb * GIB_PER_MARKETED_GB
    frac = ex.weight_offload(float(np.clip(1.0 - budget / weights_gb, 0.0, 1.0)))
    return replace(pl, weight_offload=round(frac, 4), gpu_weight_gb=None)


def prepare(cases: list[Case], catalog: Catalog) -> Prepared:
    """Returns the cases grouped by (model, lengths, precisions, placement, engine execution,
    schedule) with Hardware."""
    prep = Prepared(cases=cases)
    prep.gpu_of = np.array([c.gpu for c in cases], dtype=object)
    prep.group_of = np.array([f"{c.gpu}|{c.engine}" for c in cases], dtype=object)
    prep.batch = np.array([c.batch for c in cases], dtype=float)
    prep.num_gpus = np.array([c.row.num_gpus for c in cases], dtype=float)
    prep.metric_of = np.array([c.metric if c.metric in _METRICS else "" for c in cases], dtype=object)
    prep.shapes = {c.card.name: c.card.shape() for c in cases if c.card is not None and c.skip is None}
    prep.gpu_memory_gb = np.array([catalog.gpu(c.gpu).memory_gb if c.gpu and c.skip is None else math.nan
                                   for c in cases])
    prep.plan_memory_gb, prep.plan_b_fit = np.full(len(cases), np.nan), np.full(len(cases), np.nan)
    prep.plan_fits = np.zeros(len(cases), dtype=bool)
    prep.numa_crossing = np.zeros(len(cases), dtype=bool)
    prep.dequant_weights = np.zeros(len(cases), dtype=bool)
    prep.run_duration_s = np.array([c.run_duration_s if c.run_duration_s else math.nan for c in cases], dtype=float)
    by_key: dict[Any, list[int]] = defaultdict(list)
    ops, ew = [], []
    for c in cases:
        if c.skip is not None:
            continue
        if c.op in ELEMENTWISE_OPS:
            ew.append(c.index)
        elif c.op:
            ops.append(c.index)
        else:
            assert c.card is not None and c.row.output_len is not None
            ex = _execution(c, catalog)
            c.placement = _concrete_placement(c, prep.shapes[c.card.name], catalog, ex)
            key = (c.card.name, c.input_len, c.row.output_len, c.weight, c.kv, c.placement, ex)
            by_key[key + (True,) if c.online else key].append(c.index)
    for key, idx_list in sorted(by_key.items(), key=lambda kv: str(kv[0])):
        idx = np.asarray(idx_list)
        hw = _hardware(catalog, cases, idx, key[3])
        if hw.numa_crossing is not None:
            prep.numa_crossing[idx] = hw.numa_crossing
        prep.dequant_weights[idx] = key[6].weight_dequant_bytes > 0
        keep = _physically_possible(prep, idx, key, hw)
        if keep.any():
            prep.groups.append((idx[keep], key, hw.take(np.nonzero(keep)[0])))
    # Means (not medians) over a stated fixed-duration load test of dequantised weights include the
    # kernels' one-off warm-up (``serving.load_test_mean_s``).
    prep.warmup_rows = prep.dequant_weights & np.isfinite(prep.run_duration_s) & ~np.array(
        [c.median_statistic for c in cases], dtype=bool)
    if ew:
        prep.ew_idx = np.asarray(ew)
        prep.ew_ms = op_time_ms([cases[i] for i in ew], catalog)
    if ops:
        prep.op_idx = np.asarray(ops)
        prep.op_hw = _hardware(catalog, cases, prep.op_idx, Precision.FP16)
    return prep


def _run(prep: Prepared, key: Any, hw: Hardware, b: np.ndarray, idx: np.ndarray | None = None) -> RunTiming:
    """Returns the timing of rows ``idx`` of one group (with their wave plan when ``idx`` is given)."""
    name, s, n, wp, kvp, pl, ex = key[:7]
    if len(key) > 7:
        return online(prep.shapes[name], s, n, wp, kvp, pl, hw, b, ex)
    plan = None
    if idx is not None and len(prep.plan_b_fit):
        plan = RunTiming(b, b, b, prep.plan_memory_gb[idx], np.ones(len(b)), prep.plan_fits[idx],
                         b_fit=prep.plan_b_fit[idx])
    return static_in_waves(prep.shapes[name], s, n, wp, kvp, pl, hw, b, plan=plan, ex=ex)


def _physically_possible(prep: Prepared, idx: np.ndarray, key: Any, hw: Hardware) -> np.ndarray:
    """Returns False for rows whose measured time beats the physical floor, and marks them skipped;
    marks rows the predictor says cannot fit as ``predicted_oom`` (reported and scored apart).

    The floor (``decode_floor_s``): n decode steps, each reading the (per-GPU) weights and the
    resident KV once at 100% of peak bandwidth. A measurement below it cannot be the stated run
    (e.g. generation stopped early at an end-of-sequence token or a length cap), so it is neither
    scored nor fitted.
    """
    _, s, n, wp, kvp, pl, ex = key[:7]
    b = prep.batch[idx]
    p = predict_placed(prep.shapes[key[0]], s, n, wp, kvp, pl, hw, b, ex)
    meas = np.array([prep.cases[i].measured for i in idx])
    t = np.array([implied_time_s(str(m), x, float(bb), s, n, float(g))
                  for m, x, bb, g in zip(prep.metric_of[idx], meas, b, prep.num_gpus[idx])])
    floor = decode_floor_s(prep.shapes[key[0]], s, n, kvp.bytes_per_value, hw, b, p.min_decode_s)
    bad = np.isfinite(meas) & (t < floor)
    for j in np.nonzero(bad)[0]:
        prep.cases[idx[j]].skipped("value", (
            f"physically impossible: implies {t[j]:.3g} s for {n} decode steps, below the "
            f"floor of {floor[j]:.3g} s (weights and KV read once per step at peak "
            "bandwidth); likely not the stated run (early stop?)"),
            "physically impossible: faster than the floor of weights and KV read once per step at peak bandwidth")
    run = _run(prep, key, hw, b)
    fits = run.fits
    if run.b_fit is not None:
        prep.plan_memory_gb[idx], prep.plan_b_fit[idx], prep.plan_fits[idx] = run.gpu_memory_needed_gb, run.b_fit, fits
    for j in np.nonzero(~fits & ~bad)[0]:
        prep.cases[idx[j]].predicted_oom = True
    return ~bad


def _with_params(hw: Hardware, gpus: np.ndarray, groups: np.ndarray | None,
                 params: dict[str, dict[str, float]] | None) -> Hardware:
    """Returns ``hw`` with efficiency ``params`` applied: keys 'gpu' (every row of that GPU), then
    'gpu|engine' (rows of that GPU on that engine), so the more specific key wins."""
    if not params:
        return hw
    changes: dict[str, np.ndarray] = {}
    for key in sorted(params, key=lambda k: ("|" in k, k)):
        if groups is None and "|" in key:
            continue
        sel = np.asarray((groups == key) if "|" in key else (gpus == key), dtype=bool)
        if not sel.any():
            continue
        for name, value in params[key].items():
            attr = EFF_FIELDS[name]
            arr = changes.get(attr)
            if arr is None:
                base = getattr(hw, attr)
                if base is None:  # optional arrays: kv_bw defaults to memory_bw, overheads to 0
                    base = hw.eff_memory_bw if attr == "eff_kv_bw" else np.zeros(len(gpus))
                arr = changes[attr] = np.array(base, dtype=float, copy=True)
            arr[sel] = value
    return replace(hw, **changes) if changes else hw


@dataclass
class Predicted:
    """Per-case predictions (NaN where skipped) and predicted GPU memory need."""

    value: np.ndarray
    gpu_memory_needed_gb: np.ndarray  # of the whole batch at once
    waves: np.ndarray  # sub-batches the frameworks run when the whole batch does not fit


def evaluate(prep: Prepared, params: dict[str, dict[str, float]] | None = None,
             subset: np.ndarray | None = None) -> Predicted:
    """Returns the predicted metric of every mapped case, with efficiency ``params`` applied.

    Args:
        params: {'gpu' or 'gpu|engine': {efficiency field: value}} replacing the catalog's values.
        subset: optional boolean mask of cases to evaluate (others stay NaN); speeds up fitting.
    """
    n = len(prep.cases)
    value = np.full(n, np.nan)
    mem = np.full(n, np.nan)
    wave_count = np.full(n, np.nan)
    for idx, key, hw in prep.groups:
        if subset is not None:
            keep = subset[idx]
            if not keep.any():
                continue
            if not keep.all():
                idx, hw = idx[keep], hw.take(np.nonzero(keep)[0])
        s, out_len = key[1], key[2]
        hw = _with_params(hw, prep.gpu_of[idx], prep.group_of[idx], params)
        b = prep.batch[idx]
        p = _run(prep, key, hw, b, idx)
        mem[idx] = p.gpu_memory_needed_gb
        wave_count[idx] = p.waves
        value[idx] = metric_values(prep.metric_of[idx], p, b, s, out_len, prep.num_gpus[idx],
                                   prep.warmup_rows[idx], hw.dequant_warmup_s, prep.run_duration_s[idx])
    if len(prep.ew_idx):
        keep = np.ones(len(prep.ew_idx), bool) if subset is None else subset[prep.ew_idx]
        value[prep.ew_idx[keep]] = prep.ew_ms[keep]
    if prep.op_hw is not None:
        idx, hw = prep.op_idx, prep.op_hw
        if subset is not None:
            keep = subset[idx]
            idx, hw = idx[keep], hw.take(np.nonzero(keep)[0])
        if len(idx):
            hw = _with_params(hw, prep.gpu_of[idx], prep.group_of[idx], params)
            value[idx] = gemm_time_ms([prep.cases[i] for i in idx], hw)
    return Predicted(value=value, gpu_memory_needed_gb=mem, waves=wave_count)


def gemm_shape(case: Case) -> tuple[int, int]:
    """Returns (K, N) of the per-shard weight matrix of a Vidur GEMM operator."""
    assert case.card is not None
    sh, tp = case.card.shape(), case.row.num_gpus
    q_shard = sh.q_dim // tp
    kv_shard = math.ceil(sh.num_kv_heads / tp) * sh.head_dim
    inter = sh.intermediate_size // tp
    return {
        "attn_pre_proj": (sh.hidden_size, q_shard + 2 * kv_shard),
        "attn_post_proj": (q_shard, sh.hidden_size),
        "mlp_up_proj": (sh.hidden_size, inter * (2 if sh.gated_ffn else 1)),
        "mlp_down_proj": (inter, sh.hidden_size),
    }[case.op]


def gemm_time_ms(cases: list[Case], hw: Hardware) -> np.ndarray:
    """Returns the roofline time of one fp16 GEMM per case, ms: T tokens x (K x N) weights."""
    T = np.array([c.input_len for c in cases], dtype=float)
    KN = np.array([gemm_shape(c) for c in cases], dtype=float)
    K, N = KN[:, 0], KN[:, 1]
    return 1e3 * gemm_roofline_s(T, K, N, 2.0, hw.peak_tflops, hw.eff_compute_prefill, hw.mem_bw_gb_s,
                                 hw.eff_memory_bw)
