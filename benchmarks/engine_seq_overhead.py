"""Median signed error of predicted e2e latency, TensorRT-LLM rows of the Argonne set, by batch
size: the engine profile 'tensorrt-llm' (seq_overhead_s = 0) vs the shared GPU parameters.

usage: PYTHONPATH=. python benchmarks/engine_seq_overhead.py
Note: the shared parameters were fitted on this set (mostly its vLLM rows), so this is not an
out-of-fold figure; it shows the size of the per-sequence term at large batch.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.measure.validation import synthetic_instance
from llmopt_solver.table.build import build_table
from llmopt_solver.table.options import JobSpec

CSV = Path(__file__).parent / "data" / "validation" / "llm_inference_bench_argonne_nvidia.csv"
GPUS = {"A100": "A100-40GB-SXM", "H100": "H100-SXM"}


def main() -> None:
    cat = load_catalog()
    err: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in csv.DictReader(CSV.open()):
        if r["framework"] != "TensorRT-LLM" or r["metric"] != "e2e_latency_s" or r["gpu"] not in GPUS:
            continue
        try:
            card = cat.model(r["model"])
        except Exception:
            continue
        b, s, n, g = int(r["batch_size"]), int(r["input_len"]), int(r["output_len"]), int(r["num_gpus"])
        inst = synthetic_instance(cat, GPUS[r["gpu"]], g)
        band = f"b={b}"
        for eng in ("ideal", "tensorrt-llm"):
            job = JobSpec(model=card, batch_sizes=(b,), input_len=s, output_len=n, offload_ratios=(0.0,),
                          weight_offload_step=0.0, engines=(eng,))
            t = build_table(cat, job, [inst])
            pred = float(t.pred.total_s[0])
            err[(eng, band)].append(100.0 * (pred / float(r["value"]) - 1.0))
    print("engine params    batch   rows  median signed / median abs error of e2e latency (%)")
    for (eng, band), v in sorted(err.items(), key=lambda kv: (kv[0][0], int(kv[0][1][2:]))):
        print(f"{('shared GPU' if eng == 'ideal' else eng):15s}  {band:6s}  {len(v):5d}  {np.median(v):+7.1f} / {np.median(np.abs(v)):5.1f}")


if __name__ == "__main__":
    main()
