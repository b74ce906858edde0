"""Row -> catalog names: GPU names, precision prose, offload placement; skipped rows say why.

``map_rows`` turns each ``MeasurementRow`` into a ``Case``: catalog GPU, model card, weight and
KV precision, batch and placement, or a skip reason. No prediction happens here (replay.py).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from llmopt_solver.catalog.loader import Catalog, ModelCard
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import CatalogError, InputError, ModelConfigError
from llmopt_solver.measure.rows import BATCH_METRICS, OP_PREFIX, MeasurementRow

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


@dataclass(frozen=True)
class Placement:
    """Where weights and KV live (FlexGen rows): fractions in host memory, CPU attention, overlap."""

    weight_offload: float = 0.0
    kv_offload: float = 0.0
    cpu_attention: bool = False
    overlap: bool = False


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
    placement: Placement = field(default_factory=lambda: Placement())

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

