"""The coefficient table: every option (instance x offload level x batch size) of one job.

Builds per-option hardware arrays from the catalog, calls the predictor once (vectorised), picks
the faster offload mechanism per option, and derives cost coefficients and feasibility. The
MILP and the presenters read this table; nothing here knows about the solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from llmopt_solver.catalog.model_cards import ModelCard
from llmopt_solver.catalog.model_shape import ModelShape
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import Reason, ReasonKind
from llmopt_solver.predictor.physics import OffloadMode, Prediction
from llmopt_solver.predictor.uncertainty import band, memory_quantile_factor, pessimistic_factor

OffloadChoice = Literal["auto", "stream", "cpu"]
MODE_NAMES = {OffloadMode.STREAM: "stream", OffloadMode.CPU: "cpu"}


@dataclass(frozen=True)
class JobSpec:
    """One batch job: model, lengths, precision and the knobs of the search."""

    model: ModelCard
    batch_sizes: tuple[int, ...]
    input_len: int
    output_len: int
    precision: Precision = Precision.FP16
    kv_precision: Precision | None = None  # None: same as the weights
    safety_factor: float = 1.0
    offload_ratios: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    offload_mode: OffloadChoice = "auto"
    adjust: bool = False
    spot: bool = False
    slo_tps: float = 0.0
    slo_tps_per_seq: float = 0.0
    confidence: float | None = None  # P: constraints use the pessimistic P-quantile of tps and memory
    weight_offload_step: float = 0.1  # grid of weight-offload fractions; 0 disables weight offload
    weight_offload_fixed: float | None = None  # one fixed fraction for every option (predict)
    engines: tuple[str, ...] = ("ideal",)  # engines that compete (table.engines.resolve_engines)

    @property
    def kv(self) -> Precision:
        return self.kv_precision or self.precision


@dataclass
class OptionTable:
    """Per-option arrays (length N) with the instance of each option and why it is infeasible."""

    job: JobSpec
    shape: ModelShape
    instance_list: list[InstanceSpec]  # the distinct instances of the table
    inst_idx: np.ndarray  # per option: index into instance_list
    batch_size: np.ndarray
    offload_ratio: np.ndarray
    mode: np.ndarray  # OffloadMode per option (ignored where offload_ratio == 0)
    weight_offload: np.ndarray  # fraction of the weights in host memory, streamed every pass
    gpu_memory_gb: np.ndarray
    gpu_count: np.ndarray
    host_memory_gb: np.ndarray
    hourly_cost_usd: np.ndarray  # NaN where the instance has no price of the requested kind
    pred: Prediction
    inst_reasons: list[list[Reason]] = field(default_factory=list)  # per instance: reasons independent of memory/SLO
    unc_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))  # median ln(measured/predicted)
    unc_sigma_low: np.ndarray = field(default_factory=lambda: np.zeros(0))  # band width per z below the median
    unc_sigma_high: np.ndarray = field(default_factory=lambda: np.zeros(0))  # band width per z above the median
    unc_memory_sigma: np.ndarray = field(default_factory=lambda: np.zeros(0))
    best_batch: int | None = None
    engine: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # engine name per option
    engine_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # its tie rank
    extrapolation: np.ndarray = field(default_factory=lambda: np.zeros(0))  # doublings outside the calibrated ranges

    def take(self, idx: np.ndarray) -> OptionTable:
        """Returns the sub-table of options ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        return OptionTable(
            job=self.job, shape=self.shape, instance_list=self.instance_list, inst_idx=self.inst_idx[idx],
            batch_size=self.batch_size[idx], offload_ratio=self.offload_ratio[idx], mode=self.mode[idx],
            weight_offload=self.weight_offload[idx],
            gpu_memory_gb=self.gpu_memory_gb[idx], gpu_count=self.gpu_count[idx],
            host_memory_gb=self.host_memory_gb[idx], hourly_cost_usd=self.hourly_cost_usd[idx],
            pred=self.pred.take(idx),
            inst_reasons=self.inst_reasons, unc_bias=self.unc_bias[idx],
            unc_sigma_low=self.unc_sigma_low[idx], unc_sigma_high=self.unc_sigma_high[idx],
            unc_memory_sigma=self.unc_memory_sigma[idx],
            engine=self.engine[idx], engine_rank=self.engine_rank[idx], engine_kv_offload=self.engine_kv_offload,
            engine_kv=self.engine_kv, engine_gpu_excluded=self.engine_gpu_excluded,
            extrapolation=self.extrapolation[idx] if len(self.extrapolation) else self.extrapolation,
        )

    @property
    def engines_in(self) -> tuple[str, ...]:
        """The engines of the job that the table covers."""
        return self.job.engines

    engine_kv_offload: dict[str, bool] = field(default_factory=dict)  # engine -> can offload active KV
    engine_kv: dict[str, str] = field(default_factory=dict)  # engine -> KV precision it runs the job with
    engine_gpu_excluded: dict[str, dict[str, str]] = field(default_factory=dict)  # engine -> {GPU: why it cannot run there}

    @property
    def tps_low(self) -> np.ndarray:
        """Lower end of the throughput band (10th percentile), tokens/s."""
        return band(self.pred.tps, self.unc_bias, self.unc_sigma_low, self.unc_sigma_high)[0]

    @property
    def tps_high(self) -> np.ndarray:
        """Upper end of the throughput band (90th percentile), tokens/s."""
        return band(self.pred.tps, self.unc_bias, self.unc_sigma_low, self.unc_sigma_high)[1]

    @property
    def planning_factor(self) -> np.ndarray:
        """Multiplier on predicted tps used by constraints: 1, or the pessimistic P-quantile."""
        return pessimistic_factor(self.unc_bias, self.unc_sigma_low, self.job.confidence)

    @property
    def planning_tps(self) -> np.ndarray:
        return self.pred.tps * self.planning_factor

    @property
    def planning_tps_per_seq(self) -> np.ndarray:
        return self.pred.tps_per_seq * self.planning_factor

    @property
    def planning_total_s(self) -> np.ndarray:
        """Batch time used for scheduling, s: predicted, or its pessimistic P-quantile."""
        return self.pred.total_s / self.planning_factor

    @property
    def planning_gpu_need_gb(self) -> np.ndarray:
        """GPU memory need used by constraints: predicted, or its pessimistic P-quantile."""
        return planning_gpu_need_gb(self.pred.gpu_memory_needed_gb, self.unc_memory_sigma, self.job.confidence)

    def __len__(self) -> int:
        return len(self.inst_idx)

    @cached_property
    def instances(self) -> list[InstanceSpec]:
        """The instance of each option."""
        return [self.instance_list[k] for k in self.inst_idx]

    @property
    def structural(self) -> list[list[Reason]]:
        """Per option: reasons it cannot run at all (unsupported precision, no price, TP split)."""
        return [self.inst_reasons[k] for k in self.inst_idx]

    @property
    def gpu_capacity_gb(self) -> np.ndarray:
        """GPU memory a plan may use per GPU, GB: safety factor x capacity."""
        return gpu_capacity_gb(self.job.safety_factor, self.gpu_memory_gb)

    @cached_property
    def cost_per_million_tokens_usd(self) -> np.ndarray:
        """USD per million generated tokens at the predicted tps (NaN where unpriced); computed once
        (the table's arrays are not changed after build; ``take`` makes a new table)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = self.hourly_cost_usd / (3600.0 * self.pred.tps) * 1e6
        out.flags.writeable = False
        return out

    @cached_property
    def order(self) -> np.ndarray:
        """Option indices in the stable order of ``sort_key`` (one numpy lexsort, built once)."""
        c = self.cost_per_million_tokens_usd
        fin = np.isfinite(c)
        names = sorted({(x.provider, x.name) for x in self.instance_list})
        dense = {k: r for r, k in enumerate(names)}
        inst_rank = np.array([dense[(x.provider, x.name)] for x in self.instance_list], dtype=np.int64)
        rank = inst_rank[self.inst_idx] if len(inst_rank) else np.zeros(0, dtype=np.int64)
        keys = (-self.batch_size.astype(np.int64), self.weight_offload.astype(float), self.offload_ratio.astype(float),
                rank, self.engine_rank.astype(np.int64), np.where(fin, c, 0.0), ~fin)
        out = np.lexsort(keys)  # last key is the primary one; stable, so equal keys keep index order
        out.flags.writeable = False
        return out

    @cached_property
    def _sort_rank(self) -> np.ndarray:
        """Per option its position in ``order``."""
        rank = np.empty(len(self), dtype=np.int64)
        rank[self.order] = np.arange(len(self))
        return rank

    def ranked(self, mask: np.ndarray) -> list[int]:
        """Returns the options where ``mask`` holds, in ``sort_key`` order."""
        return self.order[mask[self.order]].tolist()

    @property
    def tps_per_usd_hour(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.pred.tps / self.hourly_cost_usd

    @property
    def usable(self) -> np.ndarray:
        """True where the option can be priced and run at all (no structural reason)."""
        ok = np.array([not s for s in self.inst_reasons], dtype=bool)
        return ok[self.inst_idx] if len(ok) else np.zeros(0, dtype=bool)

    @property
    def fits_gpu(self) -> np.ndarray:
        return fits_gpu(self.planning_gpu_need_gb, self.gpu_capacity_gb)

    @property
    def fits_host(self) -> np.ndarray:
        return self.pred.host_memory_needed_gb <= self.host_memory_gb + 1e-12

    @property
    def meets_slo(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return (self.planning_tps >= self.job.slo_tps * (1 - 1e-12)) & (
                self.planning_tps_per_seq >= self.job.slo_tps_per_seq * (1 - 1e-12))

    @property
    def feasible(self) -> np.ndarray:
        return self.usable & self.fits_gpu & self.fits_host & self.meets_slo

    def reasons(self, i: int) -> list[Reason]:
        """Returns why option ``i`` is infeasible (empty if it is feasible)."""
        out = list(self.inst_reasons[self.inst_idx[i]])
        if out:
            return out
        p, cap = self.pred, self.gpu_capacity_gb[i]
        if not self.fits_gpu[i]:
            out.append(Reason(ReasonKind.GPU_MEMORY, f"GPU memory: needs {self.planning_gpu_need_gb[i]:.2f} GB per GPU > "
                                                     f"{cap:.2f} GB ({self.job.safety_factor:g} x {self.gpu_memory_gb[i]:g} GB)"))
        if not self.fits_host[i]:
            out.append(Reason(ReasonKind.HOST_MEMORY, f"host memory: needs {p.host_memory_needed_gb[i]:.1f} GB > "
                                                      f"{self.host_memory_gb[i]:.1f} GB"))
        conf = "" if self.job.confidence is None else f" (at confidence {self.job.confidence:g})"
        tps, seq = self.planning_tps[i], self.planning_tps_per_seq[i]
        if self.job.slo_tps and tps < self.job.slo_tps * (1 - 1e-12):
            out.append(Reason(ReasonKind.SLO, f"SLO: {tps:.2f} tokens/s{conf} < {self.job.slo_tps:g} required"))
        if self.job.slo_tps_per_seq and seq < self.job.slo_tps_per_seq * (1 - 1e-12):
            out.append(Reason(ReasonKind.SLO, f"SLO: {seq:.3f} tokens/s per sequence{conf} < "
                                              f"{self.job.slo_tps_per_seq:g} required"))
        return out

    def mode_name(self, i: int) -> str:
        return "none" if self.offload_ratio[i] == 0 else MODE_NAMES[OffloadMode(int(self.mode[i]))]

    def sort_key(self, i: int) -> int:
        """Stable order: priced first, cheaper per token, engine tie rank, provider, instance, KV
        offload, weight offload, larger batch; equal keys by option index (a rank, see ``order``)."""
        return int(self._sort_rank[i])

    def record(self, i: int) -> dict[str, Any]:
        """Returns option ``i`` as the JSON record of DESIGN.md section 5."""
        inst, p = self.instances[i], self.pred

        def num(x: float, nd: int = 6) -> float | None:
            return round(float(x), nd) if np.isfinite(x) else None

        return {
            "instance": inst.name,
            "provider": inst.provider,
            "gpu": inst.gpu,
            "gpu_count": inst.gpu_count,
            "engine": str(self.engine[i]),
            "kv_precision": self.engine_kv.get(str(self.engine[i]), self.job.kv.value),
            "gpu_memory_gb": num(self.gpu_memory_gb[i]),
            "host_memory_gb": num(self.host_memory_gb[i]),
            "hourly_cost_usd": num(self.hourly_cost_usd[i]),
            "offload_ratio": round(float(self.offload_ratio[i]), 6),
            "offload_mode": self.mode_name(i),
            "weight_offload_ratio": round(float(self.weight_offload[i]), 6),
            "batch_size": int(self.batch_size[i]),
            "gpu_memory_needed_gb": num(p.gpu_memory_needed_gb[i]),
            "host_memory_needed_gb": num(p.host_memory_needed_gb[i]),
            "prefill_s": num(p.prefill_s[i], 9),
            "decode_s": num(p.decode_s[i], 9),
            "total_s": num(p.total_s[i], 9),
            "tps": num(p.tps[i]),
            "tps_low": num(self.tps_low[i]),
            "tps_high": num(self.tps_high[i]),
            "tps_per_seq": num(p.tps_per_seq[i]),
            "cost_per_million_tokens_usd": num(self.cost_per_million_tokens_usd[i]),
            "tps_per_usd_hour": num(self.tps_per_usd_hour[i]),
            "feasible": bool(self.feasible[i]),
            "infeasible_reasons": [r.text for r in self.reasons(i)],
        }


def gpu_capacity_gb(safety_factor: float, gpu_memory_gb: np.ndarray) -> np.ndarray:
    """Returns the GPU memory a plan may use per GPU, GB: safety factor x capacity."""
    return safety_factor * gpu_memory_gb


def planning_gpu_need_gb(need_gb: np.ndarray, memory_sigma: np.ndarray, confidence: float | None) -> np.ndarray:
    """Returns the GPU memory need that constraints test, GB: predicted, or its P-quantile."""
    return need_gb * memory_quantile_factor(memory_sigma, confidence)


def fits_gpu(planning_need_gb: np.ndarray, capacity_gb: np.ndarray) -> np.ndarray:
    """Returns True where the (planning) need fits the usable capacity: the one GPU-memory test."""
    return planning_need_gb <= capacity_gb + 1e-12
