"""Predictions against measured rows: the ``llmopt validate`` flow over the measure modules.

- rows.py: the CSV schema and its reader; mapping.py: row -> catalog names (GPU, precision,
  placement) or a skip reason; replay.py: mapped rows through the option table's predictor;
  metrics.py: errors, statistics, the report.

Metrics (DESIGN.md section 5, validation README):
- ``e2e_latency_s``: predicted ``total_s`` (prefill + every decode step of one static batch);
- ``throughput_tok_s_total``: b * (input + output) / ``total_s``;
- ``throughput_gen_tok_s``: ``tps`` = b * output / ``total_s`` (FlexGen's definition);
- ``ttft_s``: ``prefill_s`` (the batched prefill emits the first token);
- ``op_time_ms_median:<op>``: one operator of one layer on one TP shard (Vidur profiles): the four
  GEMMs (``attn_pre_proj``, ``attn_post_proj``, ``mlp_up_proj``, ``mlp_down_proj``) by the roofline
  ``gemm_roofline_s``; the element-wise kernels (``mlp_act``, ``input_layernorm``, ``attn_rope``,
  ``add``, ``emb``) by ``predictor/operators.py`` with the terms of ``data/operator_fit.json``.
"""

from __future__ import annotations

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.measure.mapping import (  # noqa: F401  (re-exported: the public names of this module)
    DEFAULT_GPU_MAP,
    GEMM_OPS,
    Case,
    Placement,
    flexgen_placement,
    map_rows,
    parse_gpu_map,
    parse_row_precision,
    synthetic_instance,
)
from llmopt_solver.measure.metrics import Report, build_report, pct_errors, stats  # noqa: F401
from llmopt_solver.measure.replay import (  # noqa: F401
    EFF_FIELDS,
    FRAMEWORK_MEMORY_FRACTION,
    GIB_PER_MARKETED_GB,
    Predicted,
    Prepared,
    evaluate,
    gemm_shape,
    gemm_time_ms,
    prepare,
)
from llmopt_solver.measure.rows import (  # noqa: F401
    BATCH_METRICS,
    COLUMNS,
    OP_PREFIX,
    TIME_METRICS,
    MeasurementRow,
    Metric,
    parse_measurements,
    read_measurements,
)


def validate_rows(rows: list[MeasurementRow], catalog: Catalog, gpu_map: dict[str, str] | None = None,
                  frameworks: list[str] | None = None, metrics: list[str] | None = None) -> Report:
    """Returns the validation report of ``rows`` against the predictor with ``catalog``'s parameters."""
    gmap = dict(DEFAULT_GPU_MAP if gpu_map is None else gpu_map)
    prep = prepare(map_rows(rows, catalog, gmap, frameworks, metrics), catalog)
    return build_report(prep, evaluate(prep), gmap)
