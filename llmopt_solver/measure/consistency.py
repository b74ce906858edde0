"""Measurements that contradict each other: a smaller model measured slower than a larger one.

Two rows of one file describe the same run but for the model (same GPU, GPU count, engine,
precisions, batch or concurrency, lengths, schedule, placement and metric). If one model is
smaller in every dimension the predictor's time grows with (layers, hidden and FFN width, KV
width, parameters; both dense), every term of ``predictor.physics`` makes it at most as slow as the
other: its weights, KV, FLOPs, all-reduce messages and per-layer launches are all no larger. A
measurement where it is slower therefore bounds the error of *any* such predictor from below: with
measured times t_small > t_large and predictions p_small <= p_large, the larger of the two relative
errors is smallest when both predictions equal 2 t_small t_large / (t_small + t_large), and it is
then (r - 1) / (r + 1), r = t_small / t_large (rates are compared as their inverse, a time).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from llmopt_solver.catalog.model_shape import ModelShape
from llmopt_solver.measure.rows import TIME_METRICS

__all__ = ["SizeInversion", "no_larger", "size_inversions"]


@dataclass(frozen=True)
class SizeInversion:
    """A smaller model measured slower than a larger one in the same run setup."""

    small_index: int  # case index of the smaller model's row
    large_index: int  # case index of the larger model's row
    ratio: float  # measured time of the smaller / of the larger (> 1)

    @property
    def min_error(self) -> float:
        """Returns the least possible larger relative error of the pair for a size-monotone predictor (fraction)."""
        return (self.ratio - 1.0) / (self.ratio + 1.0)


def no_larger(a: ModelShape, b: ModelShape) -> bool:
    """Returns True where dense model ``a`` is no larger than dense ``b`` in every dimension the
    predicted time grows with, and strictly smaller in parameters."""
    if a.num_experts > 1 or b.num_experts > 1:
        return False
    return (a.num_layers <= b.num_layers and a.hidden_size <= b.hidden_size
            and a.intermediate_size <= b.intermediate_size and a.kv_dim <= b.kv_dim
            and a.q_dim <= b.q_dim and a.vocab_size <= b.vocab_size and a.total_params < b.total_params)


def size_inversions(cases: list[Any], shapes: dict[str, ModelShape]) -> list[SizeInversion]:
    """Returns every pair of mapped rows (``measure.mapping.Case``) where a smaller model
    (``no_larger``) was measured slower than a larger one in the same run setup."""
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for c in cases:
        if c.skip is not None or c.card is None or c.op or c.card.name not in shapes:
            continue
        r = c.row
        groups[(c.gpu, r.num_gpus, c.engine, r.framework, c.weight, c.kv, c.batch, c.input_len, r.output_len,
                c.metric, c.online, c.placement)].append(c)
    out = []
    for rows in groups.values():
        is_time = rows[0].metric in TIME_METRICS
        for x, y in combinations(rows, 2):
            sx, sy = shapes[x.card.name], shapes[y.card.name]
            small, large = (x, y) if no_larger(sx, sy) else (y, x) if no_larger(sy, sx) else (None, None)
            if small is None or large is None or not (small.measured > 0 and large.measured > 0):
                continue
            ratio = small.measured / large.measured if is_time else large.measured / small.measured
            if ratio > 1.0:
                out.append(SizeInversion(small.index, large.index, float(ratio)))
    return sorted(out, key=lambda v: (v.small_index, v.large_index))
