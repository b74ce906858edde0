"""Rule 1 of the exact pruning (``plan.prune``): per (instance, requests per batch) only the fastest
option, ties to the less offloaded, then the larger batch.

Jobs sharing a table share most of this work: per table, the fastest option of each (instance,
batch size) is found once (``TableOrder``, kept in ``Orders`` while the table lives). For a job
of N requests, requests per batch are min(batch size, N): the groups with batch sizes below N
are the table's, and those of N or more merge into one group per instance whose fastest option
is the best of their fastest options (a prefix of the instance's groups, largest batch first).
One batch fits the window for some option of a group exactly when it fits for the fastest, so
the window only filters the groups' winners. The result is the one a sort of the job's
candidates gives (``rule1_rows`` without ``orders``), in the same order.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from llmopt_solver.table.options import OptionTable

FIT_EPS = 1e-9  # relative tolerance when comparing times (hours or seconds) and costs


@dataclass(frozen=True)
class TableOrder:
    """Per table: its usable options' batch times (s), and per (instance, batch size) group of
    usable options, in rule 1's order (instance, larger batch first), the fastest option (``rep``),
    its instance, batch size and batch time, and the best of the groups so far in its instance
    (``prefix_best``: the position of the fastest option of this and the instance's earlier groups)."""

    usable_ts: np.ndarray
    rep: np.ndarray
    inst: np.ndarray
    batch: np.ndarray
    ts: np.ndarray
    prefix_best: np.ndarray


Orders = dict[int, tuple["weakref.ref[OptionTable]", TableOrder]]  # id(table) -> (the table, its TableOrder)


def usable(table: OptionTable) -> np.ndarray:
    """Returns per option whether it can be planned at all: feasible, priced, a positive finite batch time."""
    price, ts = table.hourly_cost_usd, table.planning_total_s
    return table.feasible & np.isfinite(price) & np.isfinite(ts) & (ts > 0)


def _sort(table: OptionTable, rows: np.ndarray, beff: np.ndarray) -> np.ndarray:
    """Returns the positions of ``rows`` sorted by rule 1: instance, requests per batch (more
    first), batch time, offload ratio, weight offload, batch size (larger first); stable."""
    b, ts = table.batch_size, table.planning_total_s
    return np.lexsort((-b[rows], table.weight_offload[rows], table.offload_ratio[rows], ts[rows], -beff[rows],
                       table.inst_idx[rows]))


def _group_firsts(inst: np.ndarray, beff: np.ndarray) -> np.ndarray:
    """Returns per position of rows sorted by (instance, requests per batch) whether it opens a group."""
    first = np.ones(len(inst), dtype=bool)
    first[1:] = (inst[1:] != inst[:-1]) | (beff[1:] != beff[:-1])
    return first


def _group_winners(table: OptionTable, rows: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Returns the first row of each (instance, batch size) group of ``rows`` in rule 1's order
    (``_sort`` with full batches), in that order. Tables are built instance by instance, batch
    sizes ascending: then each group's fastest rows are found with one pass and only they are
    sorted; any other row order is sorted whole."""
    inst, bb = table.inst_idx[rows], b[rows]
    if len(rows) < 2 or not np.all((inst[1:] > inst[:-1]) | ((inst[1:] == inst[:-1]) & (bb[1:] >= bb[:-1]))):
        whole = rows[_sort(table, rows, b)]
        return whole[_group_firsts(table.inst_idx[whole], b[whole])]
    starts = np.nonzero(_group_firsts(inst, bb))[0]
    gid = np.cumsum(_group_firsts(inst, bb)) - 1
    ts = table.planning_total_s[rows]
    cand = np.nonzero(ts == np.minimum.reduceat(ts, starts)[gid])[0]  # each group's fastest (ties kept)
    r = rows[cand]
    order = np.lexsort((cand, table.weight_offload[r], table.offload_ratio[r], gid[cand]))
    first = order[_group_firsts(gid[cand][order], np.zeros(len(order), dtype=np.int64))]
    win = r[first]  # one per group, groups in (instance, batch ascending) order
    return win[np.lexsort((-b[win], table.inst_idx[win]))]


def table_order(table: OptionTable) -> TableOrder:
    """Returns the ``TableOrder`` of ``table``."""
    ok = usable(table)
    b = table.batch_size.astype(np.int64)
    rep = _group_winners(table, np.nonzero(ok)[0], b)
    inst, ts = table.inst_idx[rep], table.planning_total_s[rep]
    # rank of each group's winner by rule 1's tie order within a merged group (batch time, offload
    # ratio, weight offload, larger batch): distinct batch sizes per instance, so no two are equal
    key = np.empty(len(rep), dtype=np.int64)
    key[np.lexsort((-b[rep], table.weight_offload[rep], table.offload_ratio[rep], ts))] = np.arange(len(rep))
    # best (lowest key) of each instance's groups so far: a running maximum of a value that grows
    # by instance (segments by instance: each starts above everything before it)
    seg = np.cumsum(_group_firsts(inst, np.zeros(len(inst), dtype=np.int64))) - 1
    m = len(rep) + 1
    run = np.maximum.accumulate(seg * m + (m - 1 - key)) if len(rep) else np.zeros(0, dtype=np.int64)
    best_key = m - 1 - (run - seg * m)
    pos_of_key = np.empty(len(rep), dtype=np.int64)
    pos_of_key[key] = np.arange(len(rep))
    return TableOrder(usable_ts=table.planning_total_s[ok], rep=rep, inst=inst, batch=b[rep], ts=ts,
                      prefix_best=pos_of_key[best_key])


def _held(table: OptionTable, orders: Orders) -> TableOrder:
    """Returns the table's ``TableOrder``, kept in ``orders`` while the table lives (the entry leaves with it)."""
    held = orders.get(id(table))
    if held is not None and held[0]() is table:
        return held[1]
    out = table_order(table)
    key = id(table)
    orders[key] = (weakref.ref(table, lambda _: orders.pop(key, None)), out)
    return out


def rule1_rows(table: OptionTable, num_requests: int, startup_s: float, window_s: float,
               orders: Orders | None = None) -> tuple[np.ndarray, int]:
    """Returns (rule 1's winners whose batch fits the window after the start-up, in rule 1's
    order; the usable options dropped because one batch does not fit). ``orders``: where the
    per-table work is kept for the other jobs of a table (none: sorted here)."""
    lim = window_s * (1 + FIT_EPS)
    if orders is None:
        ok = usable(table)
        fits = startup_s + table.planning_total_s <= lim
        cand = np.nonzero(ok & fits)[0]
        beff = np.minimum(table.batch_size, num_requests).astype(np.int64)
        order = cand[_sort(table, cand, beff)]
        rows = order[_group_firsts(table.inst_idx[order], beff[order])]
        return rows, int(np.count_nonzero(ok & ~fits))
    t = _held(table, orders)
    no_fit = int(np.count_nonzero(~(startup_s + t.usable_ts <= lim)))
    big = t.batch >= num_requests  # groups that merge into one per instance (requests per batch = N)
    # the last merged group of each instance (the smallest batch size >= N) stands for them all
    last = big.copy()
    last[:-1] &= ~big[1:] | (t.inst[1:] != t.inst[:-1])
    pick = np.arange(len(t.rep))
    pick[last] = t.prefix_best[last]
    pick = pick[~big | last]
    pick = pick[startup_s + t.ts[pick] <= lim]
    return t.rep[pick], no_fit
