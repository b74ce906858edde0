"""Engine command lines for one option of a table: the flags that make the engine run the option.

Every emitted flag name is one of the engine's documented flags (``launch.flags``); a test checks
it. Sizes are as each engine counts them: vLLM/SGLang ``--cpu-offload-gb`` is GiB per GPU.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from llmopt_solver.errors import InputError
from llmopt_solver.launch.flags import RECIPE_ENGINES, flag_doc, unknown_flags
from llmopt_solver.table.options import OptionTable

GIB = 2**30
GB = 1e9
_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass
class Recipe:
    """One engine launch: argv, install command, and notes the user must act on."""

    engine: str
    argv: list[str]
    install: str
    notes: list[str] = field(default_factory=list)
    source: str = ""

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def doc(self) -> dict[str, Any]:
        return {"engine": self.engine, "argv": self.argv, "command": self.command, "install": self.install,
                "notes": self.notes, "flags_source": self.source}

    def text(self) -> str:
        lines = [f"Launch ({self.engine}):", f"  {self.command}"]
        lines += [f"  # {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _floor2(x: float) -> float:
    return math.floor(x * 100 + 1e-9) / 100


def _quant(engine: str, precision: str, notes: list[str]) -> list[str]:
    """Returns the --quantization flag for vLLM/SGLang, with the checkpoint it needs as a note."""
    if precision in _DTYPE:
        return []
    if precision == "fp8":
        return ["--quantization", "fp8"]  # both quantise fp16 checkpoints to fp8 on load
    if precision == "int4":
        notes.append("int4: use an AWQ-quantised checkpoint of the model (fused AWQ/Marlin kernels)")
        return ["--quantization", "awq"]
    notes.append("int8: use a W8A8 int8 checkpoint of the model")
    return ["--quantization", "compressed-tensors" if engine == "vllm" else "w8a8_int8"]


def recipe(table: OptionTable, i: int) -> Recipe:
    """Returns the launch recipe of option ``i`` for the engine the option was predicted for.

    InputError (exit 2) when that engine has no recipe.
    """
    engine = str(table.engine[i])
    if engine not in RECIPE_ENGINES:
        raise InputError(field="--emit", problem=f"no launch recipe for engine {engine!r}",
                         allowed=", ".join(RECIPE_ENGINES + ("skypilot",)))
    job, p, inst = table.job, table.pred, table.instances[i]
    model, b, ctx = job.model.name, int(table.batch_size[i]), job.input_len + job.output_len
    w, kv = job.precision.value, table.engine_kv.get(engine, job.kv.value)
    notes: list[str] = []
    doc = flag_doc(engine)
    # weights per GPU held in host memory, GiB (vLLM's and SGLang's unit for --cpu-offload-gb)
    w_off_gib = float(table.weight_offload[i]) * float(job.model.shape().total_params) * job.precision.bytes_per_value \
        / inst.gpu_count / GIB
    sf = _floor2(job.safety_factor)
    if engine == "vllm":
        argv = ["vllm", "serve", model, "--tensor-parallel-size", str(inst.gpu_count), "--max-num-seqs", str(b),
                "--max-model-len", str(ctx), "--gpu-memory-utilization", f"{sf:g}",
                "--dtype", _DTYPE.get(w, "float16"), "--kv-cache-dtype", "fp8" if kv == "fp8" else "auto"]
        argv += _quant(engine, w, notes)
        if w_off_gib > 0:
            argv += ["--cpu-offload-gb", f"{math.ceil(w_off_gib * 10) / 10:g}"]
        notes.append("offline use: the same values as LLM(model, tensor_parallel_size=..., max_num_seqs=..., ...) arguments")
    elif engine == "sglang":
        argv = ["python", "-m", "sglang.launch_server", "--model-path", model, "--tp-size", str(inst.gpu_count),
                "--mem-fraction-static", f"{sf:g}", "--max-running-requests", str(b), "--context-length", str(ctx),
                "--dtype", _DTYPE.get(w, "float16"), "--kv-cache-dtype", "fp8_e5m2" if kv == "fp8" else "auto"]
        argv += _quant(engine, w, notes)
        if w_off_gib > 0:  # SGLang's cpu_offload_gb is an int (GiB of weights in CPU memory)
            argv += ["--cpu-offload-gb", str(math.ceil(w_off_gib - 1e-9))]
    elif engine == "tensorrt-llm":
        # KV gets what the plan leaves after weights, activations and reserve, as a fraction of
        # the memory free after them (TensorRT-LLM's definition of the fraction).
        mem = float(table.gpu_memory_gb[i])
        non_kv = float(p.gpu_memory_needed_gb[i] - p.kv_cache_gb[i])
        frac = min(0.95, max(0.05, (job.safety_factor * mem - non_kv) / max(mem - non_kv, 1e-9)))
        argv = ["trtllm-serve", model, "--tp_size", str(inst.gpu_count),
                "--max_batch_size", str(b), "--max_seq_len", str(ctx),
                "--max_num_tokens", str(max(8192, job.input_len)),
                "--kv_cache_free_gpu_memory_fraction", f"{_floor2(frac):g}"]
        if w not in ("fp16", "bf16"):
            notes.append(f"{w}: use a {w}-quantised checkpoint (TensorRT Model Optimizer); trtllm-serve reads the precision from it")
        if kv not in ("fp16", "bf16"):
            notes.append(f"{kv} KV cache: set kv_cache_config.dtype in an --extra_llm_api_options YAML")
    else:  # flexgen
        r, wo = float(table.offload_ratio[i]), float(table.weight_offload[i])
        w_gpu, kv_gpu = round(100 * (1 - wo)), round(100 * (1 - r))
        argv = ["python3", "-m", "flexllmgen.flex_opt", "--model", model,
                "--percent", str(w_gpu), str(100 - w_gpu), str(kv_gpu), str(100 - kv_gpu), "100", "0",
                "--gpu-batch-size", str(b), "--num-gpu-batches", "1",
                "--prompt-len", str(job.input_len), "--gen-len", str(job.output_len)]
        if r > 0 and table.mode_name(i) == "cpu":
            argv.append("--cpu-cache-compute")
        if w == "int4":
            argv.append("--compress-weight")
        if kv == "int4":
            argv.append("--compress-cache")
        notes.append("FlexLLMGen runs a static batch benchmark; --gpu-batch-size x --num-gpu-batches sequences per batch")
    bad = unknown_flags(engine, argv)
    assert not bad, f"recipe emitted undocumented {engine} flags {bad}"  # guarded by tests too
    source = f"{doc['source']} at commit {doc['source_commit'][:12]}" if doc.get("source_commit") else doc["source"]
    return Recipe(engine=engine, argv=argv, install=doc["install"], notes=notes, source=source)
