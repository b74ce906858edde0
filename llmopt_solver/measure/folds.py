"""Cross-validation folds grouped by run: the rows of one measured run (its latency, throughput
and TPOT rows) always share a fold, so no fit sees one metric of a run it is scored on."""

from __future__ import annotations

import numpy as np

from llmopt_solver.measure.validation import Prepared


def run_ids(prep: Prepared) -> np.ndarray:
    """Returns an id per case shared by the rows of one run (its ``config_key``)."""
    ids: dict[object, int] = {}
    return np.array([ids.setdefault(c.config_key, len(ids)) for c in prep.cases])


def grouped_folds(prep: Prepared, mask: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Returns the fold (0..k-1) of every mapped case whose run has a row in ``mask``, -1 elsewhere:
    the runs, sorted, are dealt into k folds in a random order drawn from ``seed``."""
    keys = sorted({prep.cases[i].config_key for i in np.nonzero(mask)[0]}, key=repr)
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_by_key = {keys[j]: int(pos % k) for pos, j in enumerate(order)}
    return np.array([fold_by_key.get(c.config_key, -1) if c.skip is None else -1 for c in prep.cases])
