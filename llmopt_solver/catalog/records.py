"""Catalog record types: GPUs, cloud instances and the efficiency (fraction-of-peak) parameters.

Frozen dataclasses validated by pydantic at the catalog boundary (``record_base``): unknown keys,
negative numbers and nan/inf are rejected.
"""

# No `from __future__ import annotations`: field types stay objects, so record_base reads them
# without compiling strings (package data loads ~10 ms faster).

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from llmopt_solver.catalog.record_base import Record, rule

Provider = Literal["aws", "gcp", "azure", "other"]


class _Record(Record):
    edge_config: ClassVar[dict[str, Any]] = {"extra": "forbid", "frozen": True, "allow_inf_nan": False}  # nan/inf: exit 2


@dataclass(frozen=True, kw_only=True)
class GpuSpec(_Record):
    """One GPU model's peak specs (dense tensor peaks, per-direction host link)."""

    name: str = rule(min_length=1, description="GPU name, e.g. 'L4'")
    compute_capability: float | None = rule(
        default=None, gt=0, description="CUDA compute capability, e.g. 8.9 (engines' minimum-GPU rules); None = unknown"
    )
    compute_capability_source: str = ""
    memory_gb: float = rule(gt=0, description="marketed memory capacity, GB (1e9 bytes)")
    memory_bandwidth_gb_s: float = rule(gt=0, description="peak memory bandwidth, GB/s")
    fp16_tflops: float | None = rule(default=None, gt=0, description="dense fp16 tensor peak")
    bf16_tflops: float | None = rule(default=None, gt=0, description="dense bf16 tensor peak")
    fp8_tflops: float | None = rule(default=None, gt=0, description="dense fp8 tensor peak")
    int8_tops: float | None = rule(default=None, gt=0, description="dense int8 tensor peak")
    int4_tops: float | None = rule(default=None, gt=0, description="dense int4 tensor peak")
    fp32_tflops: float | None = rule(default=None, gt=0, description="fp32 (non-tensor) peak")
    pcie_gen: int | None = rule(default=None, ge=1)
    host_link_gb_s: float = rule(gt=0, description="GPU<->host link, GB/s per direction")
    nvlink_gb_s: float | None = rule(
        default=None, gt=0, description="NVLink total bidirectional per GPU, GB/s; None = no NVLink"
    )
    tdp_w: float | None = rule(default=None, gt=0)
    source: str = rule(min_length=1)
    as_of: str = rule(min_length=1)
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class InstanceSpec(_Record):
    """One cloud instance type: GPUs, host, prices."""

    name: str = rule(min_length=1)
    provider: Provider
    gpu: str = rule(min_length=1)
    gpu_count: int = rule(gt=0)
    vcpus: int = rule(gt=0)
    host_memory_gb: float = rule(gt=0, description="host (CPU) memory, GB (1e9 bytes)")
    hourly_usd: float | None = rule(default=None, gt=0, description="on-demand USD/hour")
    spot_hourly_usd: float | None = rule(default=None, gt=0, description="spot USD/hour")
    region: str = ""
    gpu_numa_nodes: int = rule(default=1, ge=1, description="CPU NUMA nodes (sockets) the instance's GPUs are attached "
                               "to; 1 = one node, or no topology record")
    topology_source: str = rule(default="", description="source and date of gpu_numa_nodes")
    source: str = rule(min_length=1)
    as_of: str = rule(min_length=1)
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class Efficiency(_Record):
    """Fractions of peak and runtime overheads for one GPU type (what calibration fits)."""

    compute_prefill: float = rule(gt=0, le=1, description="fraction of dense peak in prefill GEMMs")
    compute_decode: float = rule(gt=0, le=1, description="fraction of dense peak in decode GEMMs")
    memory_bw: float = rule(gt=0, le=1, description="fraction of peak HBM/GDDR bandwidth")
    kv_bw: float | None = rule(default=None, gt=0, le=1, description="fraction of peak bandwidth reading the KV cache in decode attention; None = memory_bw")
    pcie: float = rule(gt=0, le=1, description="fraction of per-direction PCIe bandwidth (pinned)")
    nvlink: float = rule(gt=0, le=1, description="fraction of NVLink bandwidth")
    layer_overhead_s: float = rule(ge=0, description="fixed time per layer per forward pass, s")
    seq_overhead_s: float = rule(default=0.0, ge=0, description="host-side time per sequence per decode step (scheduler, sampler), s")
    step_overhead_s: float = rule(default=0.0, ge=0, description="fixed host-side time per forward pass (prefill or decode step), s")
    dequant_layer_overhead_s: float = rule(default=0.0, ge=0, description="extra time per layer per forward pass where the engine "
                                           "runs quantised weights through its own dequantising kernels, s")
    dequant_warmup_s: float = rule(default=0.0, ge=0, description="one-off time of the first passes through those kernels "
                                   "(autotuning, initialisation) inside a fixed-duration load test, s; steady state never pays it")
    allreduce_latency_s: float = rule(ge=0, description="latency of one all-reduce, s")
    allreduce_bw: float | None = rule(default=None, gt=0, le=1,
                                       description="fraction of the GPU-GPU link bandwidth tensor-parallel all-reduces reach; None = nvlink/pcie")
    cross_numa_bw: float = rule(default=1.0, gt=0, le=1,
                                description="share of that all-reduce bandwidth left when a PCIe ring spans CPU NUMA nodes; 1 = no loss")
    reserve_gb: float = rule(ge=0, description="per-GPU runtime reserve (CUDA context, slack), GB")
    host_reserve_gb: float = rule(ge=0, description="host memory kept for OS and runtime, GB")
    host_bw_gb_s_per_vcpu: float = rule(gt=0, description="effective host DRAM bandwidth per vCPU")
    host_bw_max_gb_s: float = rule(gt=0, description="cap on host DRAM bandwidth, GB/s")
    cpu_gflops_per_vcpu: float = rule(gt=0, description="CPU attention throughput per vCPU")


@dataclass(frozen=True, kw_only=True)
class EfficiencyOverride(_Record):
    """A partial Efficiency: only the fields given replace the defaults."""

    compute_prefill: float | None = rule(default=None, gt=0, le=1)
    compute_decode: float | None = rule(default=None, gt=0, le=1)
    memory_bw: float | None = rule(default=None, gt=0, le=1)
    kv_bw: float | None = rule(default=None, gt=0, le=1)
    pcie: float | None = rule(default=None, gt=0, le=1)
    nvlink: float | None = rule(default=None, gt=0, le=1)
    layer_overhead_s: float | None = rule(default=None, ge=0)
    seq_overhead_s: float | None = rule(default=None, ge=0)
    step_overhead_s: float | None = rule(default=None, ge=0)
    dequant_layer_overhead_s: float | None = rule(default=None, ge=0)
    dequant_warmup_s: float | None = rule(default=None, ge=0)
    allreduce_latency_s: float | None = rule(default=None, ge=0)
    allreduce_bw: float | None = rule(default=None, gt=0, le=1)
    cross_numa_bw: float | None = rule(default=None, gt=0, le=1)
    reserve_gb: float | None = rule(default=None, ge=0)
    host_reserve_gb: float | None = rule(default=None, ge=0)
    host_bw_gb_s_per_vcpu: float | None = rule(default=None, gt=0)
    host_bw_max_gb_s: float | None = rule(default=None, gt=0)
    cpu_gflops_per_vcpu: float | None = rule(default=None, gt=0)
    source: str = ""
    as_of: str = ""

    def apply(self, base: Efficiency) -> Efficiency:
        """Returns ``base`` with this override's non-None fields replaced."""
        changes = {
            k: v
            for k, v in self.model_dump(exclude={"source", "as_of"}).items()
            if v is not None
        }
        return base.model_copy(update=changes)


@dataclass(frozen=True, kw_only=True)
class Uncertainty(_Record):
    """Spread of measured/predicted throughput for one GPU type, as a (split) log-normal.

    ``bias`` is the median of ln(measured / predicted) over calibration rows (out-of-sample where
    cross-validated). ``sigma_low`` and ``sigma_high`` are the band's widths below and above it
    (from the residuals' band quantiles, ``predictor.uncertainty.fit_band``; skewed residuals give
    an asymmetric band); a record with ``sigma`` only is symmetric. A band at confidence P is
    tps * exp(bias - z_P * sigma_low) .. tps * exp(bias + z_P * sigma_high).
    """

    bias: float = rule(description="median of ln(measured/predicted)")
    sigma: float = rule(ge=0, description="width of ln(measured/predicted) per z, both sides' mean")
    sigma_low: float | None = rule(default=None, ge=0, description="width below the median per z; None = sigma")
    sigma_high: float | None = rule(default=None, ge=0, description="width above the median per z; None = sigma")
    memory_sigma: float = rule(default=0.05, ge=0, description="std of ln(real/predicted) GPU memory need")
    rows: int = rule(default=0, ge=0, description="measurements behind it (0 = spec-only)")
    # Calibrated ranges [min, max] (written by `llmopt calibrate`); outside them the band widens.
    batch_range: tuple[int, int] | None = rule(default=None, description="batch sizes of the calibration rows")
    input_len_range: tuple[int, int] | None = rule(default=None, description="input lengths of the calibration rows")
    output_len_range: tuple[int, int] | None = rule(default=None, description="output lengths of the calibration rows")
    source: str = ""

    @property
    def sides(self) -> tuple[float, float]:
        """(sigma_low, sigma_high), either falling back to ``sigma``."""
        return (self.sigma if self.sigma_low is None else self.sigma_low,
                self.sigma if self.sigma_high is None else self.sigma_high)

    def widened(self, other: "Uncertainty") -> "Uncertainty":
        """Returns this band with each width at least ``other``'s (ranges and bias kept)."""
        (lo, hi), (olo, ohi) = self.sides, other.sides
        return self.model_copy(update={"sigma": max(self.sigma, other.sigma), "sigma_low": max(lo, olo),
                                       "sigma_high": max(hi, ohi)})
