"""Predictions against measured rows: the CSV schema, row -> prediction mapping, error metrics.

The schema is the one of the shared validation sets (one measured figure per row):
``source, model, gpu, num_gpus, precision, framework, batch_size, input_len, output_len, metric,
value, notes``. Each row is mapped to one call of the predictor (grouped and vectorised: rows
sharing model, lengths and precision are one ``predict`` call) or skipped with a reason.

Metrics (DESIGN.md section 5, validation README):
- ``e2e_latency_s``: predicted ``total_s`` (prefill + every decode step of one static batch);
- ``throughput_tok_s_total``: b * (input + output) / ``total_s``;
- ``throughput_gen_tok_s``: ``tps`` = b * output / ``total_s`` (FlexGen's definition);
- ``ttft_s``: ``prefill_s`` (the batched prefill emits the first token);
- ``op_time_ms_median:<op>``: one GEMM of one layer on one TP shard (Vidur profiles), roofline
  max(FLOPs / (peak x compute_prefill), bytes / (bandwidth x memory_bw)); only the four GEMMs
  (``attn_pre_proj``, ``attn_post_proj``, ``mlp_up_proj``, ``mlp_down_proj``) are modelled.

Errors are ``100 * (predicted - measured) / measured``; the summary gives the median and 90th
percentile of its absolute value and the median signed error (bias), per GPU, framework, metric,
their combination, and overall.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmopt_solver.catalog.loader import Catalog, ModelCard
from llmopt_solver.errors import CatalogError, InputError, ModelConfigError
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.predictor.physics import GB, TERA, Hardware, OffloadMode, predict
from llmopt_solver.table.options import hardware_arrays

COLUMNS = ("source", "model", "gpu", "num_gpus", "precision", "framework", "batch_size", "input_len",
           "output_len", "metric", "value", "notes")
BATCH_METRICS = ("e2e_latency_s", "throughput_tok_s_total", "throughput_gen_tok_s", "ttft_s")
TIME_METRICS = ("e2e_latency_s", "ttft_s")  # larger = slower; the rest are throughputs
OP_PREFIX = "op_time_ms_median:"
# Share of GPU memory the serving frameworks use for weights + KV + activations: vLLM's
# gpu_memory_utilization and TensorRT-LLM's kv_cache_free_gpu_mem_fraction both default to 0.9.
FRAMEWORK_MEMORY_FRACTION = 0.9
# HBM capacities are marketed in GiB: an "A100 40GB" holds 40960 MiB = 42.9e9 bytes (EC2 API,
# shared HARDWARE.md section 1); the catalog's memory_gb (1e9 bytes) is the marketed number, a
# conservative 7% under. Waves (below) use the real capacity, since the frameworks do.
GIB_PER_MARKETED_GB = 2**30 / 1e9
GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")

# GPU names in public data that are ambiguous, and the catalog variant assumed for each.
# - Argonne LLM-Inference-Bench "A100": ALCF Polaris nodes (4 x A100 40 GB SXM4, NVLink); the data
#   has TP <= 4 on A100, and its 70B vLLM rows thin out above batch 16 as on 40 GB parts.
# - "H100": SXM (80 GB, 3.35 TB/s): measured decode at batch 1 reaches ~2.05 TB/s effective,
#   above the 2.0 TB/s peak of the PCIe card, so it cannot be the PCIe variant.
# - Vidur's 'a100' SKU is the 80 GB part (vidur/config/device_sku_config.py), 'h100' the SXM.
# - "T4-16GB" (FlexGen) is the catalog's T4.
DEFAULT_GPU_MAP: dict[str, str] = {
    "A100": "A100-40GB-SXM",
    "A100-40GB": "A100-40GB-SXM",
    "A100-80GB": "A100-80GB-SXM",
    "H100": "H100-SXM",
    "H100-80GB": "H100-SXM",
    "T4-16GB": "T4",
    "A100 (vidur sku 'a100')": "A100-80GB-SXM",
    "H100 (vidur sku 'h100')": "H100-SXM",
}


class MeasurementRow(BaseModel):
    """One measured figure (a CSV row of the validation schema)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)

    source: str = ""
    model: str = Field(min_length=1, description="Hugging Face id or alias")
    gpu: str = Field(min_length=1, description="GPU name as published")
    num_gpus: int = Field(gt=0, description="tensor-parallel degree")
    precision: str = ""
    framework: str = ""
    batch_size: int | None = Field(default=None, gt=0, description="sequences per static batch")
    input_len: int = Field(gt=0, description="prompt tokens (Vidur: tokens in the operator)")
    output_len: int | None = Field(default=None, gt=0, description="generated tokens")
    metric: str = Field(min_length=1)
    value: float | str = Field(description="the measured figure, or 'OOM'")
    notes: str = ""

    @field_validator("batch_size", "output_len", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> float | str:
        text = str(v).strip()
        if text.upper() == "OOM":
            return "OOM"
        try:
            x = float(text)
        except ValueError:
            raise ValueError("must be a positive number or 'OOM'") from None
        if not math.isfinite(x) or x <= 0:
            raise ValueError("must be a positive number or 'OOM'")
        return x

    @property
    def oom(self) -> bool:
        return self.value == "OOM"


def read_measurements(path: str | Path) -> list[MeasurementRow]:
    """Returns the rows of a validation CSV; InputError naming the line and field if malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found.")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return parse_measurements(text, str(path))


def parse_measurements(text: str, label: str = "CSV") -> list[MeasurementRow]:
    """Returns the rows of validation-CSV ``text``; InputError if the header or a row is bad."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)}; required: {', '.join(COLUMNS)}.")
    rows = []
    for line, raw in enumerate(reader, start=2):
        rec = {k.strip(): (v or "") for k, v in raw.items() if k is not None and k.strip() in COLUMNS}
        try:
            rows.append(MeasurementRow.model_validate(rec))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "row"
            got = rec.get(loc, "")
            raise InputError(f"{label} line {line}: field {loc!r} = {got!r}: {err['msg']}.") from None
    if not rows:
        raise InputError(f"{label}: no data rows.")
    return rows


def parse_gpu_map(items: Iterable[str]) -> dict[str, str]:
    """Returns DEFAULT_GPU_MAP updated by ``NAME=CATALOG_GPU`` items (comma lists allowed)."""
    out = dict(DEFAULT_GPU_MAP)
    for item in items:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise InputError(f"--gpu-map: {part!r} is not NAME=CATALOG_GPU (e.g. A100=A100-80GB-SXM).")
            k, v = (x.strip() for x in part.split("=", 1))
            if not k or not v:
                raise InputError(f"--gpu-map: {part!r} is not NAME=CATALOG_GPU (e.g. A100=A100-80GB-SXM).")
            out[k] = v
            # An override of a generic name also covers its Vidur/annotated spellings.
            for name in list(out):
                if re.sub(r"\s*\(.*\)$", "", name) == k:
                    out[name] = v
    return out


_PREC_WORDS = {"fp32": Precision.FP32, "float32": Precision.FP32, "fp16": Precision.FP16,
               "float16": Precision.FP16, "half": Precision.FP16, "bf16": Precision.BF16,
               "bfloat16": Precision.BF16, "fp8": Precision.FP8, "int8": Precision.INT8,
               "int4": Precision.INT4}


def _find_prec(text: str) -> Precision | None:
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _PREC_WORDS:
            return _PREC_WORDS[word]
    return None


def parse_row_precision(text: str) -> tuple[Precision, Precision] | None:
    """Returns (weight, KV-cache) precision named by a free-text precision cell, or None.

    Understands 'fp16', 'float16', 'Weight = fp8, KV Cache = fp8', 'fp16 weights, int4 KV cache',
    'int4 weights+KV'. 'not recorded' and '' mean fp16 (what the public sets ran).
    """
    t = text.lower().strip()
    if not t or "not recorded" in t:
        return Precision.FP16, Precision.FP16
    w = re.search(r"weights?\s*=\s*([a-z0-9]+)", t)
    k = re.search(r"kv[ -]?cache\s*=\s*([a-z0-9]+)", t)
    if w or k:
        wp = _find_prec(w.group(1)) if w else None
        kp = _find_prec(k.group(1)) if k else None
        wp = wp or Precision.FP16
        return wp, kp or wp
    m = re.search(r"([a-z0-9]+)\s+weights?\b(.*)", t)
    if m:
        wp = _find_prec(m.group(1))
        rest = m.group(2)
        if wp is None:
            return None
        kvm = re.search(r"([a-z0-9]+)\s+kv", rest)
        kp = _find_prec(kvm.group(1)) if kvm else None
        if kp is None and re.search(r"\+\s*kv", rest):
            kp = wp
        return wp, kp or wp
    p = _find_prec(t)
    return (p, p) if p else None


@dataclass
class Case:
    """One CSV row, mapped (``skip`` is None) or not (``skip`` says why)."""

    index: int
    row: MeasurementRow
    metric: str
    skip: str | None = None
    gpu: str = ""  # catalog GPU name
    card: ModelCard | None = None
    weight: Precision = Precision.FP16
    kv: Precision = Precision.FP16
    batch: int = 1
    op: str = ""  # Vidur operator name
    placement: "Placement" = field(default_factory=lambda: Placement())

    @property
    def measured(self) -> float:
        return float(self.row.value) if not self.row.oom else math.nan

    @property
    def config_key(self) -> tuple[Any, ...]:
        """Rows of one run (e.g. its latency and its throughput) share this key (CV folds)."""
        r = self.row
        return (r.model, self.gpu, r.num_gpus, r.framework, r.precision, self.batch, r.input_len,
                r.output_len, self.op)


def _model_cached(catalog: Catalog, name: str, cache: dict[str, Any]) -> Any:
    if name not in cache:
        try:
            cache[name] = catalog.model(name) if not name.endswith(".json") else None
        except ModelConfigError:
            cache[name] = None
    return cache[name]


@dataclass(frozen=True)
class Placement:
    """Where weights and KV live (FlexGen rows): fractions in host memory, CPU attention, overlap."""

    weight_offload: float = 0.0
    kv_offload: float = 0.0
    cpu_attention: bool = False
    overlap: bool = False


def flexgen_placement(row: MeasurementRow) -> tuple[Placement | None, str | None]:
    """Returns the placement described in a FlexGen row's notes, or (None, why it cannot be modelled).

    Understands the notes of the public FlexGen set: 'all GPU', 'percent w 10/90 gpu/cpu, KV 0/100',
    'weights/KV/act 100% CPU', 'CPU attention', 'no overlap' (FlexGen overlaps I/O and compute
    by default). Disk placement is not modelled.
    """
    notes = row.notes.lower()
    if "flexgen" not in row.framework.lower():
        return Placement(), None
    if "disk" in notes:
        return None, "weights or KV cache on disk (FlexGen policy in notes): disk offloading is not modelled"
    overlap = "no overlap" not in notes
    cpu = "cpu attention" in notes
    if "all gpu" in notes:
        return Placement(overlap=overlap), None
    if re.search(r"weights?/kv/act 100% cpu", notes):
        return Placement(1.0, 1.0, cpu, overlap), None
    w = re.search(r"\bw (\d+)/(\d+)", notes)
    kv = re.search(r"\bkv (\d+)/(\d+)", notes)
    if w and kv:
        wg, wc = int(w.group(1)), int(w.group(2))
        kg, kc = int(kv.group(1)), int(kv.group(2))
        if wg + wc == 100 and kg + kc == 100:
            return Placement(wc / 100.0, kc / 100.0, cpu, overlap), None
    return None, "FlexGen placement in notes not understood (need 'all GPU' or 'w G/C ..., KV G/C')"


def map_rows(rows: list[MeasurementRow], catalog: Catalog, gpu_map: dict[str, str] | None = None,
             frameworks: list[str] | None = None, metrics: list[str] | None = None) -> list[Case]:
    """Returns one Case per row, in file order: mapped to catalog names, or skipped with a reason."""
    gmap = dict(DEFAULT_GPU_MAP if gpu_map is None else gpu_map)
    fw_filter = {f.lower() for f in frameworks} if frameworks else None
    m_filter = set(metrics) if metrics else None
    model_cache: dict[str, Any] = {}
    out = []
    for i, r in enumerate(rows):
        case = Case(index=i, row=r, metric=r.metric)
        out.append(case)
        if fw_filter is not None and r.framework.lower() not in fw_filter:
            case.skip = f"framework {r.framework!r} not selected (--framework)"
            continue
        base_metric = r.metric.split(":", 1)[0] + (":" if r.metric.startswith(OP_PREFIX) else "")
        if m_filter is not None and r.metric not in m_filter and base_metric not in m_filter:
            case.skip = f"metric {r.metric!r} not selected (--metric)"
            continue
        if r.metric.startswith(OP_PREFIX):
            case.op = r.metric[len(OP_PREFIX):]
            if case.op not in GEMM_OPS:
                case.skip = f"operator {case.op!r} is not a GEMM; only {', '.join(GEMM_OPS)} are modelled per op"
                continue
        elif r.metric not in BATCH_METRICS:
            case.skip = f"metric {r.metric!r} not supported; allowed: {', '.join(BATCH_METRICS)}, {OP_PREFIX}<op>"
            continue
        name = gmap.get(r.gpu) or gmap.get(re.sub(r"\s*\(.*\)$", "", r.gpu)) or r.gpu
        try:
            case.gpu = catalog.gpu(name).name
        except CatalogError:
            case.skip = f"GPU {r.gpu!r} is not in the catalog (add it with --catalog, or map it with --gpu-map)"
            continue
        card = _model_cached(catalog, r.model, model_cache)
        if card is None:
            case.skip = f"model {r.model!r} is not in the model catalog (add a config.json with --catalog)"
            continue
        case.card = card
        prec = parse_row_precision(r.precision)
        if prec is None:
            case.skip = f"precision {r.precision!r} not understood"
            continue
        case.weight, case.kv = prec
        spec = catalog.gpu(case.gpu)
        if getattr(spec, case.weight.peak_field) is None:
            case.skip = f"{case.gpu} has no {case.weight.value} tensor peak in the catalog"
            continue
        shape = card.shape()
        if shape.num_heads % r.num_gpus:
            case.skip = f"{shape.num_heads} attention heads do not divide over {r.num_gpus} GPUs"
            continue
        if case.op:
            continue
        if r.batch_size is None or r.output_len is None:
            case.skip = "batch_size and output_len are required for static-batch metrics"
            continue
        case.batch = r.batch_size
        placement, why = flexgen_placement(r)
        if placement is None:
            case.skip = why
            continue
        case.placement = placement
    return out


def synthetic_instance(catalog: Catalog, gpu: str, count: int) -> InstanceSpec:
    """Returns an unpriced instance with ``count`` x ``gpu`` and ample host memory (validation rows)."""
    return InstanceSpec(name=f"{gpu}x{count}", provider="other", gpu=gpu, gpu_count=count, vcpus=32,
                        host_memory_gb=1024.0, source="llmopt validate: synthetic node", as_of="n/a")


EFF_FIELDS = {"compute_prefill": "eff_compute_prefill", "compute_decode": "eff_compute_decode",
              "memory_bw": "eff_memory_bw", "kv_bw": "eff_kv_bw", "layer_overhead_s": "layer_overhead_s",
              "allreduce_latency_s": "allreduce_latency_s",
              "seq_overhead_s": "seq_overhead_s"}


@dataclass
class Prepared:
    """Mapped cases grouped for vectorised prediction; reusable across parameter changes."""

    cases: list[Case]
    groups: list[tuple[np.ndarray, Any, Hardware]] = field(default_factory=list)  # (case idx, key, hw)
    op_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    op_hw: Hardware | None = None
    gpu_of: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    gpu_memory_gb: np.ndarray = field(default_factory=lambda: np.zeros(0))
    batch: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metric_code: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shapes: dict[str, Any] = field(default_factory=dict)

    @property
    def mapped(self) -> np.ndarray:
        return np.array([c.skip is None for c in self.cases], dtype=bool)

    def restrict(self, mask: np.ndarray) -> "Prepared":
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


def prepare(cases: list[Case], catalog: Catalog) -> Prepared:
    """Returns the cases grouped by (model, lengths, precisions) with their Hardware arrays."""
    prep = Prepared(cases=cases)
    prep.gpu_of = np.array([c.gpu for c in cases], dtype=object)
    prep.batch = np.array([c.batch for c in cases], dtype=float)
    codes = {"e2e_latency_s": 0, "ttft_s": 1, "throughput_gen_tok_s": 2, "throughput_tok_s_total": 3}
    prep.metric_code = np.array([codes.get(c.metric, -1) for c in cases], dtype=np.int64)
    prep.shapes = {c.card.name: c.card.shape() for c in cases if c.card is not None and c.skip is None}
    prep.gpu_memory_gb = np.array([catalog.gpu(c.gpu).memory_gb if c.gpu and c.skip is None else math.nan
                                   for c in cases])
    by_key: dict[Any, list[int]] = defaultdict(list)
    ops = []
    for c in cases:
        if c.skip is not None:
            continue
        if c.op:
            ops.append(c.index)
        else:
            assert c.card is not None and c.row.output_len is not None
            by_key[(c.card.name, c.row.input_len, c.row.output_len, c.weight, c.kv, c.placement)].append(c.index)
    for key, idx_list in sorted(by_key.items(), key=lambda kv: str(kv[0])):
        idx = np.asarray(idx_list)
        insts = [synthetic_instance(catalog, cases[i].gpu, cases[i].row.num_gpus) for i in idx]
        hw = hardware_arrays(catalog, insts, key[3])
        keep = _physically_possible(prep, idx, key, hw)
        if keep.any():
            prep.groups.append((idx[keep], key, hw.take(np.nonzero(keep)[0])))
    if ops:
        prep.op_idx = np.asarray(ops)
        insts = [synthetic_instance(catalog, cases[i].gpu, cases[i].row.num_gpus) for i in ops]
        prep.op_hw = hardware_arrays(catalog, insts, Precision.FP16)
    return prep


def _physically_possible(prep: Prepared, idx: np.ndarray, key: Any, hw: Hardware) -> np.ndarray:
    """Returns False for rows whose measured time beats the physical floor, and marks them skipped.

    The floor: n decode steps, each reading the (per-GPU) weights once at 100% of peak memory
    bandwidth (``Prediction.min_decode_s``). A measurement below it cannot be the stated run
    (e.g. generation stopped early at an end-of-sequence token or a length cap), so it is neither
    scored nor fitted.
    """
    _, s, n, wp, kvp, pl = key
    b = prep.batch[idx]
    p = _predict_placed(prep.shapes[key[0]], s, n, wp, kvp, pl, hw, b)
    meas = np.array([prep.cases[i].measured for i in idx])
    code = prep.metric_code[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.select([code == 0, code == 2, code == 3], [meas, b * n / meas, b * (s + n) / meas], np.inf)
    # ... plus the resident KV cache read once per step at peak bandwidth (attention must read it).
    sh = prep.shapes[key[0]]
    tp = hw.gpu_count.astype(float)
    kv_tok_gpu = sh.kv_values_per_token * kvp.bytes_per_value * np.ceil(sh.num_kv_heads / tp) / sh.num_kv_heads
    floor = p.min_decode_s + b * kv_tok_gpu * (n * s + n * (n - 1) / 2.0) / (hw.mem_bw_gb_s * GB)
    bad = np.isfinite(meas) & (t < floor)
    for j in np.nonzero(bad)[0]:
        prep.cases[idx[j]].skip = (f"physically impossible: implies {t[j]:.3g} s for {n} decode steps, below the "
                                   f"floor of {floor[j]:.3g} s (weights and KV read once per step at peak "
                                   "bandwidth); likely not the stated run (early stop?)")
    return ~bad


def _with_params(hw: Hardware, gpus: np.ndarray, params: dict[str, dict[str, float]] | None) -> Hardware:
    if not params:
        return hw
    changes: dict[str, np.ndarray] = {}
    for gpu, vals in params.items():
        sel = gpus == gpu
        if not sel.any():
            continue
        for name, value in vals.items():
            attr = EFF_FIELDS[name]
            arr = changes.get(attr)
            if arr is None:
                base = getattr(hw, attr)
                if base is None:  # optional arrays: kv_bw defaults to memory_bw, seq overhead to 0
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


@dataclass(frozen=True)
class _Timing:
    prefill_s: np.ndarray
    total_s: np.ndarray
    gpu_memory_needed_gb: np.ndarray


def _predict_placed(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
                    b: np.ndarray) -> Any:
    """Returns ``predict`` for batches ``b`` with placement ``pl`` (same for every option)."""
    m = len(b)
    mode = np.full(m, int(OffloadMode.CPU if pl.cpu_attention else OffloadMode.STREAM))
    return predict(shape, s, n, wp.bytes_per_value, kvp.bytes_per_value, wp.activation_bytes, hw, b,
                   np.full(m, pl.kv_offload), mode, pl.overlap, weight_offload=np.full(m, pl.weight_offload))


def _predict_in_waves(shape: Any, s: int, n: int, wp: Precision, kvp: Precision, pl: Placement, hw: Hardware,
                      b: np.ndarray) -> tuple[_Timing, np.ndarray]:
    """Returns timings of static batches ``b``, run in waves where the whole batch does not fit.

    vLLM and TensorRT-LLM never fail a static batch whose KV cache exceeds the free memory: their
    schedulers admit as many sequences as the KV blocks allow and queue the rest. With equal
    lengths that is ceil(b / b_fit) waves of at most b_fit sequences, b_fit the largest batch
    whose predicted need fits FRAMEWORK_MEMORY_FRACTION of the GPU memory. The measured sets show
    it: on A100-40GB, Llama-2-7B at 512+512 tokens takes 13.6 s at batch 32 and 25.8 s at 64.
    The reported memory need is that of the whole batch at once.
    """
    m = len(b)

    def run(batch: np.ndarray) -> Any:
        return _predict_placed(shape, s, n, wp, kvp, pl, hw, batch)

    full = run(b)
    if pl != Placement():  # offloaded rows (FlexGen) are run as stated, never in waves
        return _Timing(full.prefill_s, full.total_s, full.gpu_memory_needed_gb), np.ones(m)
    one = run(np.ones(m))
    cap = FRAMEWORK_MEMORY_FRACTION * hw.gpu_memory_gb * GIB_PER_MARKETED_GB
    per_seq = np.where(b > 1, (full.gpu_memory_needed_gb - one.gpu_memory_needed_gb) / np.maximum(b - 1, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b_fit = np.floor((cap - one.gpu_memory_needed_gb) / per_seq) + 1
    b_fit = np.where(full.gpu_memory_needed_gb <= cap, b, np.clip(b_fit, 1, b))
    waves = np.ceil(b / b_fit)
    if np.all(waves <= 1):
        return _Timing(full.prefill_s, full.total_s, full.gpu_memory_needed_gb), waves
    n_full = np.floor(b / b_fit)
    rest = b - n_full * b_fit
    wave = run(b_fit)
    last = run(np.maximum(rest, 1))
    total = n_full * wave.total_s + np.where(rest > 0, last.total_s, 0.0)
    # The first token of the last admitted sequences comes after the earlier waves.
    prefill = np.where(waves > 1, total - np.where(rest > 0, last.total_s - last.prefill_s,
                                                   wave.total_s - wave.prefill_s), full.prefill_s)
    return _Timing(prefill, total, full.gpu_memory_needed_gb), waves


def evaluate(prep: Prepared, params: dict[str, dict[str, float]] | None = None,
             subset: np.ndarray | None = None) -> Predicted:
    """Returns the predicted metric of every mapped case, with efficiency ``params`` per GPU applied.

    Args:
        params: {catalog GPU: {efficiency field: value}} replacing the catalog's values.
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
        _, s, out_len, wp, kvp, pl = key
        shape = prep.shapes[key[0]]
        hw = _with_params(hw, prep.gpu_of[idx], params)
        b = prep.batch[idx]
        p, waves = _predict_in_waves(shape, s, out_len, wp, kvp, pl, hw, b)
        mem[idx] = p.gpu_memory_needed_gb
        wave_count[idx] = waves
        code = prep.metric_code[idx]
        value[idx] = np.select(
            [code == 0, code == 1, code == 2],
            [p.total_s, p.prefill_s, b * out_len / p.total_s],
            b * (s + out_len) / p.total_s)  # 0 e2e, 1 ttft, 2 gen throughput, 3 total throughput
    if prep.op_hw is not None:
        idx, hw = prep.op_idx, prep.op_hw
        if subset is not None:
            keep = subset[idx]
            idx, hw = idx[keep], hw.take(np.nonzero(keep)[0])
        if len(idx):
            hw = _with_params(hw, prep.gpu_of[idx], params)
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
    T = np.array([c.row.input_len for c in cases], dtype=float)
    KN = np.array([gemm_shape(c) for c in cases], dtype=float)
    K, N = KN[:, 0], KN[:, 1]
    flops = 2.0 * T * K * N
    bytes_ = 2.0 * (K * N + T * K + T * N)
    t = np.maximum(flops / (hw.peak_tflops * TERA * hw.eff_compute_prefill),
                   bytes_ / (hw.mem_bw_gb_s * GB * hw.eff_memory_bw))
    return 1e3 * t


# ---------------------------------------------------------------- metrics and the report


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
    skip_values: dict[str, set[str]] = defaultdict(set)  # the bad values a class hides behind 'X'
    oom_rows, oom_fit, measured_no_fit = [], [], []
    for c in prep.cases:
        rec: dict[str, Any] = {"index": c.index, "metric": c.metric,
                               "measured": "OOM" if c.row.oom else _fmt_num(c.measured),
                               "model": c.row.model, "gpu": c.gpu or c.row.gpu, "framework": c.row.framework}
        i = c.index
        need = pred.gpu_memory_needed_gb[i]
        fits = bool(need <= prep.gpu_memory_gb[i]) if np.isfinite(need) else None  # at safety factor 1
        if c.skip is None and c.row.oom:
            rec["predicted"] = "does not fit" if fits is False else "fits"
            rec["gpu_memory_needed_gb"] = round(float(need), 3)
            oom_rows.append(i)
            if fits:
                oom_fit.append(i)
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
            key = _reason_class(reason)
            skip_reasons[key] += 1
            skip_values[key].update(re.findall(r"'[^']*'|\"[^\"]*\"", reason.split(";")[0])[:1])
        recs.append(rec)
    summary: dict[str, Any] = {
        "rows": n, "mapped": int(ok.sum() + len(oom_rows)), "skipped": int(n - ok.sum() - len(oom_rows)),
        "skip_reasons": {_name_values(k, skip_values[k]): v
                         for k, v in sorted(skip_reasons.items(), key=lambda kv: (-kv[1], kv[0]))},
        "overall": stats(err[ok]),
        "gpu_map": {k: v for k, v in sorted(gpu_map.items())},
        "oom": {"rows": len(oom_rows), "predicted_to_fit": len(oom_fit), "indices_predicted_to_fit": oom_fit},
        "run_in_waves": {"rows": len(measured_no_fit), "memory_fraction": FRAMEWORK_MEMORY_FRACTION,
                         "note": "static batches larger than fit in memory, predicted as sequential waves"},
    }
    for label, keyf in (("by_gpu", lambda c: c.gpu), ("by_framework", lambda c: c.row.framework),
                        ("by_metric", lambda c: c.metric),
                        ("by_gpu_framework_metric", lambda c: f"{c.gpu}|{c.row.framework}|{c.metric}")):
        groups: dict[str, list[int]] = defaultdict(list)
        for c in prep.cases:
            if ok[c.index]:
                groups[keyf(c)].append(c.index)
        summary[label] = {k: stats(err[np.asarray(v)]) for k, v in sorted(groups.items())}
    return Report(rows=recs, summary=summary)


def _name_values(key: str, values: set[str]) -> str:
    """Returns the class ``key`` with its first 'X' replaced by the (first three) values it stands for."""
    if "X" not in key or not values:
        return key
    shown = sorted(values)[:3]
    more = f" (+{len(values) - 3} more)" if len(values) > 3 else ""
    return key.replace("X", ", ".join(shown) + more, 1)


def _reason_class(reason: str) -> str:
    """Collapses per-row details so the skip summary has a handful of lines."""
    r = re.sub(r"'[^']*'|\"[^\"]*\"", "X", reason.split(";")[0])
    return re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "N", r)


def validate_rows(rows: list[MeasurementRow], catalog: Catalog, gpu_map: dict[str, str] | None = None,
                  frameworks: list[str] | None = None, metrics: list[str] | None = None) -> Report:
    """Returns the validation report of ``rows`` against the predictor with ``catalog``'s parameters."""
    gmap = dict(DEFAULT_GPU_MAP if gpu_map is None else gpu_map)
    prep = prepare(map_rows(rows, catalog, gmap, frameworks, metrics), catalog)
    return build_report(prep, evaluate(prep), gmap)
