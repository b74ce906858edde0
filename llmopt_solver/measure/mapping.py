"""Row -> catalog names: GPU names, precision prose, offload placement; skipped rows say why.

``map_rows`` turns each ``MeasurementRow`` into a ``Case``: catalog GPU, model card, weight and
KV precision, batch and placement, or a skip reason. No prediction happens here (replay.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmopt_solver.catalog.gpu_names import NOT_IN_CATALOG, builtin_aliases
from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.model_cards import ModelCard
from llmopt_solver.catalog.precision import Precision
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import InputError, ModelConfigError
from llmopt_solver.measure.placement import Placement, flexgen_placement, offload_placement  # noqa: F401
from llmopt_solver.measure.precision_text import parse_row_precision
from llmopt_solver.measure.rows import BATCH_METRICS, OP_PREFIX, MeasurementRow, Metric
from llmopt_solver.predictor.operators import ELEMENTWISE_OPS

GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")

# The aliases, each with its source, live in data/gpu_aliases.json (Catalog.resolve_gpu); other
# spellings ('A10G-24GB (AWS g5.2xlarge)', 'A100-SXM4-40GB', 'T4-16GB') are normalised there.
DEFAULT_GPU_MAP: dict[str, str] = {alias: gpu for alias, (gpu, _) in builtin_aliases().items()}


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


# Online (continuous-batching) runs: what the notes say, else what only serving benchmarks report.
_ONLINE = re.compile(r"continuous batching|in-flight batching|inflight batching|concurren|virtual users|"
                     r"load test|online serving|requests? per second")
# OpenAI's tokenizer guidance: one token is ~3/4 of an English word; +1 for the BOS token.
TOKENS_PER_WORD = 4.0 / 3.0


def is_online(row: MeasurementRow) -> bool:
    """True when the row measures online serving (continuous batching), not one static batch."""
    try:
        if Metric(row.metric).online_only:
            return True
    except ValueError:
        pass
    return bool(_ONLINE.search(row.notes.lower()))


_DURATION = re.compile(r"\bfor\s+(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds|min|mins|minutes)\b", re.IGNORECASE)
_MEDIAN = re.compile(r"\b(median|med|p50)\b", re.IGNORECASE)


def run_duration_from_notes(notes: str) -> float | None:
    """Returns the length of a fixed-duration load test the notes state ("load test for 90 s",
    "for 2 minutes"), s; None when they state none."""
    m = _DURATION.search(notes)
    if not m:
        return None
    return float(m.group(1)) * (60.0 if m.group(2).lower().startswith("min") else 1.0)


def is_median_from_notes(notes: str) -> bool:
    """True when the notes say the figure is a median (e.g. TGI's 'Latency (ms/token) med'), not a
    mean or a total over the run."""
    return bool(_MEDIAN.search(notes))


def prompt_tokens_from_notes(notes: str) -> int | None:
    """Returns an estimate of the prompt length, tokens, when the notes quote the one prompt used
    ("prompt 'Write a 500 word long story about llamas'"): words x 4/3 + 1 (BOS); else None."""
    m = re.search(r"prompt\s+['\"]([^'\"]{1,400})['\"]", notes, flags=re.IGNORECASE)
    if not m:
        return None
    words = len(re.findall(r"\S+", m.group(1)))
    return int(round(words * TOKENS_PER_WORD)) + 1


@dataclass
class Case:
    """One CSV row, mapped (``skip`` is None) or not (``skip`` says why, ``skip_field`` where)."""

    index: int
    row: MeasurementRow
    metric: str
    skip: str | None = None
    skip_field: str = ""
    skip_summary: str = ""  # the reason with the row's own value as "{value}" (groups the skip table)
    skip_value: str | None = None  # the value "{value}" stands for in this row
    gpu: str = ""  # catalog GPU name
    gpu_how: str = ""  # how the GPU name was read: GpuMatch.how ('alias', 'normalised name', '--gpu-map', ...)
    engine: str = ""  # engine profile name ('' if the framework names none)
    card: ModelCard | None = None
    weight: Precision = Precision.FP16
    kv: Precision = Precision.FP16
    batch: int = 1  # static batch, or concurrency of an online row
    input_len: int = 0
    input_estimated: bool = False
    gpu_numa_nodes: int = 1  # of the catalog instance the GPU text names ("A10G (AWS g5.48xlarge)"), else 1
    online: bool = False
    identical_prompts: bool = False  # the notes say every sequence of the batch had the same prompt
    run_duration_s: float | None = None  # online: length of the fixed-duration load test, if stated
    median_statistic: bool = False  # the figure is a median over the run's requests (else a mean / total)
    op: str = ""  # Vidur operator name
    placement: Placement = field(default_factory=lambda: Placement())
    predicted_oom: bool = False  # the predictor says this run cannot fit (set by replay.prepare)

    @property
    def measured(self) -> float:
        if self.row.problem or self.row.oom:
            return math.nan
        return float(self.row.value)

    @property
    def config_key(self) -> tuple[Any, ...]:
        """Rows of one run (e.g. its latency and its throughput) share this key (CV folds)."""
        r = self.row
        return (r.model, self.gpu, r.num_gpus, r.framework, r.precision, self.batch, r.input_len,
                r.output_len, self.op)

    def skipped(self, field_name: str, reason: str, summary: str = "", value: str | None = None) -> None:
        """Marks the case skipped because of column ``field_name``.

        ``summary`` is the reason shared by every row skipped the same way, with ``"{value}"`` where
        this row's own ``value`` goes (default: the reason itself, which then names no value).
        """
        self.skip, self.skip_field = reason, field_name
        self.skip_summary, self.skip_value = summary or reason, value


# Quantised repacks name their base model plus a suffix (TheBloke/Llama-2-70B-GPTQ): the shape is
# the base model's; the precision column says how the weights are stored.
_QUANT_SUFFIX = re.compile(r"[-_.](gptq|awq|gguf|ggml|exl2|int4|int8|fp8|4bit|8bit)([-_.].*)?$", re.IGNORECASE)


# Chat / instruction-tuned releases keep their base model's architecture (same config.json shape):
# Llama-2-7b-chat-hf -> Llama-2-7b-hf, Meta-Llama-3-8B-Instruct -> Meta-Llama-3-8B.
_TUNED = re.compile(r"[-_](chat|instruct|it)(?=[-_.]|$)", re.IGNORECASE)


def _model_cached(catalog: Catalog, name: str, cache: dict[str, Any]) -> Any:
    """Returns the model card of ``name`` (or of its base model, for quantised repacks), or None."""
    if name not in cache:
        cache[name] = None
        if not name.endswith(".json"):
            base = _QUANT_SUFFIX.sub("", name)
            tuned = _TUNED.sub("", base)
            for cand in dict.fromkeys((name, base, base.split("/")[-1], tuned, tuned.split("/")[-1])):
                try:
                    cache[name] = catalog.model(cand)
                    break
                except ModelConfigError:
                    continue
    return cache[name]


def _user_overrides(gmap: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in gmap.items() if DEFAULT_GPU_MAP.get(k) != v}


def map_rows(rows: list[MeasurementRow], catalog: Catalog, gpu_map: dict[str, str] | None = None,
             frameworks: list[str] | None = None, metrics: list[str] | None = None) -> list[Case]:
    """Returns one Case per row, in file order: mapped to catalog names, or skipped with a reason."""
    extra = _user_overrides(dict(DEFAULT_GPU_MAP if gpu_map is None else gpu_map))
    fw_filter = {f.lower() for f in frameworks} if frameworks else None
    m_filter = set(metrics) if metrics else None
    model_cache: dict[str, Any] = {}
    out = []
    for i, r in enumerate(rows):
        case = Case(index=i, row=r, metric=r.metric)
        out.append(case)
        if r.problem:
            case.skipped(r.problem_field, f"unreadable row: {r.problem}", f"unreadable row: {r.problem_summary}",
                         r.problem_value)
            continue
        _map_one(case, catalog, extra, fw_filter, m_filter, model_cache)
    return out


def _map_one(case: Case, catalog: Catalog, extra: dict[str, str], fw_filter: set[str] | None,
             m_filter: set[str] | None, model_cache: dict[str, Any]) -> None:
    r = case.row
    if fw_filter is not None and r.framework.lower() not in fw_filter:
        return case.skipped("framework", f"framework {r.framework!r} not selected (--framework)",
                            "framework {value} not selected (--framework)", repr(r.framework))
    base_metric = r.metric.split(":", 1)[0] + (":" if r.metric.startswith(OP_PREFIX) else "")
    if m_filter is not None and r.metric not in m_filter and base_metric not in m_filter:
        return case.skipped("metric", f"metric {r.metric!r} not selected (--metric)",
                            "metric {value} not selected (--metric)", repr(r.metric))
    if r.metric.startswith(OP_PREFIX):
        case.op = r.metric[len(OP_PREFIX):]
        if case.op not in GEMM_OPS + ELEMENTWISE_OPS:
            allowed_ops = ", ".join(GEMM_OPS + ELEMENTWISE_OPS)
            return case.skipped("metric", f"operator {case.op!r} is not modelled; allowed: {allowed_ops}",
                                "operator {value} is not modelled", repr(case.op))
    elif r.metric not in BATCH_METRICS:
        return case.skipped("metric", f"metric {r.metric!r} not supported; allowed: {', '.join(BATCH_METRICS)}, {OP_PREFIX}<op>",
                            "metric {value} not supported", repr(r.metric))
    found = catalog.resolve_gpu(r.gpu, extra)
    if found.name is None:
        gpu_hint = "(add it with --catalog, or map it with --gpu-map)"
        gpu_why = "" if found.how == NOT_IN_CATALOG else ": " + found.text
        return case.skipped("gpu", f"GPU {r.gpu!r} is not in the catalog {gpu_hint}{gpu_why}",
                            "GPU {value} is not in the catalog " + gpu_hint, repr(r.gpu))
    case.gpu, case.gpu_how = found.name, found.how
    case.gpu_numa_nodes = named_instance_numa_nodes(catalog, r.gpu, found.name, r.num_gpus)
    prof = catalog.engine_for_framework(r.framework) if r.framework else None
    case.engine = prof.name if prof is not None else ""
    card = _model_cached(catalog, r.model, model_cache)
    if card is None:
        return case.skipped("model", f"model {r.model!r} is not in the model catalog (add a config.json with --catalog)",
                            "model {value} is not in the model catalog (add a config.json with --catalog)", repr(r.model))
    case.card = card
    prec = parse_row_precision(r.precision)
    if prec is None:
        return case.skipped("precision", f"precision {r.precision!r} not understood", "precision {value} not understood",
                            repr(r.precision))
    case.weight, case.kv = prec
    spec = catalog.gpu(case.gpu)
    if getattr(spec, case.weight.peak_field) is None:
        return case.skipped("precision", f"{case.gpu} has no {case.weight.value} tensor peak in the catalog",
                            "{value} tensor peak not in the catalog", f"{case.gpu} {case.weight.value}")
    shape = card.shape()
    if shape.num_heads % r.num_gpus:
        return case.skipped("num_gpus", f"{shape.num_heads} attention heads do not divide over {r.num_gpus} GPUs",
                            "attention heads do not divide over the GPUs ({value})",
                            f"{shape.num_heads} heads / {r.num_gpus} GPUs")
    case.online = not case.op and is_online(r)
    case.identical_prompts = "identical prompts" in r.notes.lower()
    if case.online:
        case.run_duration_s = run_duration_from_notes(r.notes)
        case.median_statistic = is_median_from_notes(r.notes)
    if r.input_len is not None:
        case.input_len = r.input_len
    elif case.online and (est := prompt_tokens_from_notes(r.notes)) is not None:
        case.input_len, case.input_estimated = est, True
    else:
        return case.skipped("input_len", "input_len is blank (and the notes quote no prompt to count)")
    if case.op:
        return None
    if r.output_len is None:
        return case.skipped("output_len", "output_len is required for batch and serving metrics")
    if r.batch_size is None:
        m = re.search(r"\((\d+)\s*x\s*(\d+)\b", r.notes)  # FlexGen tables: "(gpu_batch x num_batches, ...)"
        if m is None:
            return case.skipped("batch_size", "batch_size is blank (static batch size or concurrency needed)")
        case.batch = int(m.group(1)) * int(m.group(2))
    else:
        case.batch = r.batch_size
    placement, why = offload_placement(r)
    if placement is None:
        return case.skipped("notes", why or "placement not understood")
    case.placement = placement
    return None


def named_instance_numa_nodes(catalog: Catalog, gpu_text: str, gpu: str, count: int) -> int:
    """Returns the GPU NUMA nodes of the catalog instance that ``gpu_text`` names as a whole word
    (e.g. "A10G-24GB (AWS g5.48xlarge, 8 GPUs)") if it holds ``count`` x ``gpu``; else 1."""
    for word in re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", gpu_text):
        inst = catalog.instances.get(word)
        if inst is not None and inst.gpu == gpu and inst.gpu_count == count:
            return inst.gpu_numa_nodes
    return 1


def synthetic_instance(catalog: Catalog, gpu: str, count: int, gpu_numa_nodes: int = 1) -> InstanceSpec:
    """Returns an unpriced instance with ``count`` x ``gpu`` and ample host memory (validation rows),
    its GPUs on ``gpu_numa_nodes`` CPU NUMA nodes."""
    return InstanceSpec(name=f"{gpu}x{count}", provider="other", gpu=gpu, gpu_count=count, vcpus=32,
                        host_memory_gb=1024.0, gpu_numa_nodes=gpu_numa_nodes,
                        source="llmopt validate: synthetic node", as_of="n/a")

