"""Engine profiles: the serving/offloading runtimes an option can run on, as data.

One JSON file per engine under ``llmopt_solver/data/engines/`` (a user adds or overrides one with
``--catalog FILE`` and an ``engines`` list). A profile names the engine, the spellings measurement
files use for it (``aliases``, matched case-insensitively against a CSV's ``framework`` column),
and what it can execute (``mechanisms``, an ``EngineMechanisms`` record). Its runtime parameters
(per-step and per-sequence overheads, kernel efficiencies) are efficiency overrides per (engine,
GPU), merged by the catalog loader from efficiency/calibration files under
``efficiency.engines.<name>``.
"""

# No `from __future__ import annotations`: field types stay objects, so record_base reads them
# without compiling strings (package data loads ~10 ms faster).

import re
from dataclasses import dataclass
from typing import Literal

from llmopt_solver.catalog.record_base import Record, rule

PrecisionName = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4"]
KernelKind = Literal["fused", "dequant"]


def _all_fused() -> dict[PrecisionName, KernelKind]:
    """Every weight precision on fused kernels (the default of an engine profile)."""
    return {"fp32": "fused", "fp16": "fused", "bf16": "fused", "fp8": "fused", "int8": "fused", "int4": "fused"}


@dataclass(frozen=True, kw_only=True)
class EngineMechanisms(Record):
    """What an engine can execute. The default (all fields unset) is the seed's ideal runtime.

    - ``active_kv_offload``: how host-resident *active* KV is used in decode: "stream" (copied to
      the GPU each step), "cpu" (attention on the CPU). Empty: the engine cannot offload active KV.
    - ``weight_offload``: "stream" (host-resident weights streamed over PCIe every forward pass,
      e.g. vLLM ``--cpu-offload-gb``) or "none".
    - ``reuse_kv_offload``: the engine has a host KV tier for *inactive/prefix* KV (vLLM
      OffloadingConnector/LMCache, SGLang HiCache). It never serves active decode KV, so it
      does not count as active-KV offload; it is reported, not modelled.
    - ``weight_precisions``: precision -> "fused" (a quantised GEMM kernel reads the packed
      weights) or "dequant" (the framework dequantises to fp16 in memory before an fp16 matmul;
      the predictor charges writing and reading the fp16 copy every pass). Absent: unsupported.
    - ``kv_precisions``: KV-cache precisions the engine stores; ``kv_dequant``: those of them it
      decompresses to fp16 in memory before attention (FlexGen ``--compress-cache``).
    - ``dequant_traffic_bytes``: GPU memory traffic per value dequantised in the framework, bytes,
      on top of reading the packed value once: 4.0 is the least (write the fp16 copy, read it
      back in the matmul); an engine that unpacks and rescales in several element-wise passes moves
      more, counted pass by pass from its code (source in ``sources``).
    - ``dequant_min_tokens``: a "dequant" precision is dequantised only in forward passes of at
      least this many tokens; smaller passes (small-batch decode) run a fused kernel. ExLlama's
      ``matmul_recons_thd`` (TGI 1.0.x GPTQ: 8). 0: always dequantised.
    - ``memory_reserve_gb``: the engine sizes its KV cache to all free GPU memory but this
      reserve, GB (DeepSpeed FastGen ``MemoryConfig`` RESERVE mode, 1e9 bytes); None: it uses a
      fraction of the GPU (vLLM ``gpu_memory_utilization``, TensorRT-LLM ``kv_cache_free_gpu_mem_fraction``: 0.9).
    - ``kv_read_per_query_head``: decode attention reads each KV head once per query head sharing
      it, so grouped-query attention saves KV memory but not KV traffic (DeepSpeed FastGen's blocked
      flash attention runs each attention atom for each query head); False: once per KV head.
    - ``same_prompts_decode_alike``: under the engine's default decoding, a batch of identical
      prompts generates identical tokens (greedy, or nucleus sampling whose top_p keeps only a
      confident continuation), so MoE routing sees one sequence; set per run by ``measure.replay``.
    - ``batching``: "continuous" (in-flight) or "static".
    - ``tensor_parallel``: runs one model over several GPUs of an instance.
    - ``model_families``: HF ``model_type`` values the engine supports; None: any.
      ``unsupported_families``: ``model_type`` values it cannot run (TensorRT-LLM: opt, gptj).
    - ``weight_offload_fractions``: "any" (any fraction of the weights, e.g. vLLM ``--cpu-offload-gb``)
      or "all_or_none" (ZeRO-Inference offloads whole parameters: 0 or 1).
    - ``weight_stream_sync``: offloaded weights are copied synchronously, with no prefetch (HF
      Accelerate hooks): the copy never overlaps GPU work, even under ``--adjust``.
    - ``kv_offload_all_or_none``: KV precisions whose offload is 0 or 1 only (FlexGen's int4
      ``--compress-cache`` cannot mix GPU and CPU KV).
    - ``min_compute_capability``: the oldest GPU the engine runs on; ``precision_min_compute_capability``:
      per weight/KV precision (fp8 needs 8.9 everywhere).
    """

    active_kv_offload: tuple[Literal["stream", "cpu"], ...] = ("stream", "cpu")
    weight_offload: Literal["stream", "none"] = "stream"
    reuse_kv_offload: bool = False
    weight_precisions: dict[PrecisionName, KernelKind] = rule(default_factory=_all_fused)
    kv_precisions: tuple[PrecisionName, ...] = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
    kv_dequant: tuple[PrecisionName, ...] = ()
    dequant_traffic_bytes: float = rule(default=4.0, ge=4.0, le=64.0)
    dequant_min_tokens: int = rule(default=0, ge=0)
    memory_reserve_gb: float | None = rule(default=None, ge=0)
    kv_read_per_query_head: bool = False
    same_prompts_decode_alike: bool = False
    batching: Literal["continuous", "static"] = "static"
    tensor_parallel: bool = True
    model_families: tuple[str, ...] | None = None
    unsupported_families: tuple[str, ...] = ()
    weight_offload_fractions: Literal["any", "all_or_none"] = "any"
    weight_stream_sync: bool = False
    kv_offload_all_or_none: tuple[PrecisionName, ...] = ()
    min_compute_capability: float | None = None
    precision_min_compute_capability: dict[PrecisionName, float] = rule(default_factory=dict)
    sources: dict[str, str] = rule(default_factory=dict, description="per field: where it comes from")

    def supports_family(self, model_type: str) -> bool:
        """True when the engine runs models of HF ``model_type``."""
        key = model_type.lower()
        if key in {f.lower() for f in self.unsupported_families}:
            return False
        return self.model_families is None or key in {f.lower() for f in self.model_families}

    def gpu_problem(self, gpu: str, compute_capability: float | None, precision: str, kv_precision: str) -> str | None:
        """Returns why the engine cannot run ``precision`` weights and a ``kv_precision`` KV cache on
        a GPU of ``compute_capability`` (None: unknown, refused when the engine has a minimum), or None."""
        needs = [(self.min_compute_capability, "")]
        needs += [(self.precision_min_compute_capability.get(p), f" for {p}")  # type: ignore[call-overload]
                  for p in dict.fromkeys((precision, kv_precision))]
        for need, what in needs:
            if need is None:
                continue
            if compute_capability is None:
                return f"needs compute capability >= {need:.1f}{what} ({gpu}'s is not in the catalog)"
            if compute_capability + 1e-9 < need:
                return f"needs compute capability >= {need:.1f}{what} ({gpu} has {compute_capability:.1f})"
        return None


@dataclass(frozen=True, kw_only=True)
class EngineProfile(Record):
    """One engine: its names, what it can run, and where that comes from."""

    name: str = rule(min_length=1, description="canonical engine name, e.g. 'vllm'")
    aliases: tuple[str, ...] = rule(default=(), description="other spellings, e.g. 'vLLM' in a CSV")
    description: str = ""
    mechanisms: EngineMechanisms = rule(default_factory=EngineMechanisms)
    auto: bool = rule(default=True, description="takes part in --engine auto ('ideal' does not: what-if only)")
    tie_rank: int = rule(default=50, description="among options of equal predicted cost, the lower rank wins")
    source: str = rule(min_length=1)
    as_of: str = rule(min_length=1)
    notes: str = ""

    def cannot_run(self, model_type: str, precision: str, kv_precision: str) -> str | None:
        """Returns why this engine cannot run the job at all (family or precision), or None."""
        m = self.mechanisms
        if not m.supports_family(model_type):
            if model_type.lower() in {f.lower() for f in m.unsupported_families}:
                return f"{self.name} cannot run {model_type!r} models"
            return f"{self.name} runs only {', '.join(m.model_families or ())} models, not {model_type!r}"
        if precision not in m.weight_precisions:
            return (f"{self.name} has no {precision} weights; its weight precisions: "
                    f"{', '.join(m.weight_precisions)}")
        if kv_precision not in m.kv_precisions:
            return f"{self.name} has no {kv_precision} KV cache; its KV precisions: {', '.join(m.kv_precisions)}"
        return None

    def matches(self, text: str) -> bool:
        """True when ``text`` names this engine: name or alias, case-insensitive, with or without a
        trailing version ('TGI 1.0.3', 'vLLM v0.6.3')."""
        key = text.strip().lower()
        names = {self.name.lower(), *(a.lower() for a in self.aliases)}
        return key in names or re.sub(r"[\s_-]*v?\d+(\.\d+)*$", "", key) in names
