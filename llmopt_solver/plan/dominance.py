"""The pair tests of the exact pruning (``plan.prune``, rules 2 and 3), vectorised over blocks of pairs.

``Cands`` holds one job's candidates (after rule 1) and what every pair test reuses: per option
its price, requests per batch, batch time, batches per instance in the window and per run, quota
group; per pair of distinct requests per batch (at most a dozen per job) the rule-3 batch counts
of one batch. ``dominates`` returns the dominance matrix of two blocks; ``dominated`` only whether
each option of a block has a dominator, testing the likeliest dominators first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmopt_solver.plan.rule1 import FIT_EPS

STAGE_ROWS = 8  # ``dominated``: rows in the first block of a query
STAGE_GROWTH = 4  # and the factor by which each next block grows


@dataclass
class Cands:
    """Per candidate option: price p (USD/h), requests per batch b, batch time t (s), batches per
    instance in the window (cap), per run (u = min(batches covering the job, cap)), quota group
    (0: counts in no quota, ``free``); and the pair tests' precomputed parts (``cands``)."""

    p: np.ndarray
    b: np.ndarray
    t: np.ndarray
    cap: np.ndarray
    u: np.ndarray
    group: np.ndarray
    free: np.ndarray
    w_le: np.ndarray  # [group, group]: every weight of the first <= the second's
    weights: np.ndarray  # [group, key]: quota weights
    startup_s: float
    runs: bool  # rule 3 on
    hits: np.ndarray  # per candidate: options it was found to dominate so far (an order of tests only)
    p_tol: np.ndarray  # p (1 + FIT_EPS)
    t_tol: np.ndarray  # t (1 + FIT_EPS)
    bf: np.ndarray  # b as float
    cap_b: np.ndarray  # cap b: requests one instance carries in the window (float)
    b_id: np.ndarray  # index of b among the job's distinct requests per batch
    batches1: np.ndarray  # [b_id', b_id]: rule 3's batches of o' for one batch of o
    gcd: np.ndarray  # [b_id', b_id]: gcd(b', b) as float
    cost1: np.ndarray  # per option: p (sigma + t) (1 + FIT_EPS), its run of one batch (USD-s)
    ub: np.ndarray  # per option: u b, the requests of its longest run (float)
    cost_u: np.ndarray  # per option: p (sigma + u t) (1 + FIT_EPS), its longest run (USD-s)


def cands(p: np.ndarray, b: np.ndarray, t: np.ndarray, cap: np.ndarray, u: np.ndarray, group: np.ndarray,
          weights: np.ndarray, startup_s: float, runs: bool) -> Cands:
    """Returns the ``Cands`` of these candidates (``b``: int64 requests per batch)."""
    tol = 1 + FIT_EPS
    values, b_id = np.unique(b, return_inverse=True)
    vf = values.astype(float)
    ba, bo = vf[:, None], vf[None, :]
    g = np.gcd(values[:, None], values[None, :]).astype(float)
    need1 = np.ceil(np.round(bo / ba, 9))
    sig, uf, bf = startup_s, u.astype(float), b.astype(float)
    return Cands(p=p, b=b, t=t, cap=cap, u=u, group=group, free=group == 0,
                 w_le=np.all(weights[:, None, :] <= weights[None, :, :], axis=2), weights=weights,
                 startup_s=startup_s, runs=runs, hits=np.zeros(len(p), dtype=np.int64), p_tol=p * tol, t_tol=t * tol,
                 bf=bf, cap_b=cap.astype(float) * bf, b_id=b_id.reshape(-1), batches1=np.maximum(need1, (bo + ba - g) / ba),
                 gcd=g, cost1=p * (sig + t) * tol, ub=uf * bf, cost_u=p * (sig + uf * t) * tol)


def dominates(c: Cands, a: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Returns D[i, j]: option a[i] dominates option o[j] by rule 2 or (``c.runs``) rule 3.

    Rule 3, for k = 1 and k = u_o batches of o: ceil(k b_o / b_o') batches of o' fit its window
    (k b_o <= cap_o' b_o', all integers) and the linear bound (k b_o + b_o' - g) / b_o' on them,
    never below that ceiling, costs no more: p_o' (sigma + batches t_o') <= p_o (sigma + k t_o).
    """
    d: np.ndarray = ((c.p[a][:, None] <= c.p_tol[o][None, :]) & (c.b[a][:, None] >= c.b[o][None, :])
                     & (c.t[a][:, None] <= c.t_tol[o][None, :]) & c.w_le[c.group[a]][:, c.group[o]])
    free = c.free[a]
    if not c.runs or not free.any():
        return d
    fa = a[free]
    pa, ta, capb = c.p[fa][:, None], c.t[fa][:, None], c.cap_b[fa][:, None]
    ia, io = c.b_id[fa], c.b_id[o]
    sig = c.startup_s
    ok = (c.bf[o][None, :] <= capb) & (pa * (sig + c.batches1[ia][:, io] * ta) <= c.cost1[o][None, :])
    ub, baf = c.ub[o][None, :], c.bf[fa][:, None]
    ok &= (ub <= capb) & (pa * (sig + (ub + baf - c.gcd[ia][:, io]) / baf * ta) <= c.cost_u[o][None, :])
    d[free] |= ok
    return d


def dominated(c: Cands, a: np.ndarray, o: np.ndarray, earlier: bool = False) -> np.ndarray:
    """Returns per option o[j] whether some a[i] dominates it (``earlier``: ``a`` is ``o`` and only
    i < j counts). The answer of ``dominates(c, a, o).any(axis=0)``, found in stages: rows in
    blocks that grow by STAGE_GROWTH, each block tested only against the options no earlier block
    dominated (candidates come cheapest first, so the first rows dominate most)."""
    out = np.zeros(len(o), dtype=bool)
    open_ = np.arange(len(o))  # positions in ``o`` not yet known to be dominated
    lo, size = 0, STAGE_ROWS
    while lo < len(a) and len(open_):
        hi = min(len(a), lo + size)
        if earlier:
            open_ = open_[open_ > lo]  # o[j] with j <= lo has no earlier row left to test
            if not len(open_):
                break
        d = dominates(c, a[lo:hi], o[open_])
        if earlier:
            d &= np.arange(lo, hi)[:, None] < open_[None, :]
        hit = d.any(axis=0)
        c.hits[a[lo:hi]] += d.sum(axis=1)
        out[open_[hit]] = True
        open_ = open_[~hit]
        lo, size = hi, size * STAGE_GROWTH
    return out
