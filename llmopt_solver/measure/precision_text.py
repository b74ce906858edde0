"""Precision prose of measurement files -> (weight, KV-cache) ``Precision``.

'fp16', 'float16', 'Weight = fp8, KV Cache = fp8', 'fp16 weights, int4 KV cache', 'int4 weights+KV',
'int4 weights (group 64)', 'GPTQ 4-bit', 'AWQ', 'W8A8', 'W4A16', 'W4A8KV4', 'fp8'. Weight-only
quantisation (GPTQ, AWQ, W4A16, 'int4 weights') keeps an fp16 KV cache unless the text names one.
"""

from __future__ import annotations

import re

from llmopt_solver.catalog.precision import Precision

_PREC_WORDS = {"fp32": Precision.FP32, "float32": Precision.FP32, "fp16": Precision.FP16,
               "float16": Precision.FP16, "half": Precision.FP16, "bf16": Precision.BF16,
               "bfloat16": Precision.BF16, "fp8": Precision.FP8, "int8": Precision.INT8,
               "int4": Precision.INT4}
_BITS = {16: Precision.FP16, 8: Precision.INT8, 4: Precision.INT4}


def _find_prec(text: str) -> Precision | None:
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _PREC_WORDS:
            return _PREC_WORDS[word]
    return None


def _quantised(t: str) -> tuple[Precision, Precision | None] | None:
    """(weight, KV or None) of quantisation-scheme names, or None if the text names none."""
    m = re.search(r"\bw(4|8|16)a(4|8|16)(?:kv(4|8|16))?\b", t)
    if m:
        w = _BITS[int(m.group(1))]
        kv = _BITS[int(m.group(3))] if m.group(3) else None
        # W4A8 (QServe) and W4A16 store int4 weights; the predictor's int4 computes on fp16
        # tensor cores, an upper bound on time for W4A8's int8 GEMMs.
        return w, kv
    if re.search(r"\b(gptq|awq|exllama|marlin|nf4|bnb[- ]?4|4[- ]?bit)\b", t):
        return Precision.INT4, None
    if re.search(r"\b(llm\.int8|bnb[- ]?8|8[- ]?bit|smoothquant)\b", t):
        return Precision.INT8, None
    return None


def _kv_named(t: str) -> Precision | None:
    k = re.search(r"kv[ -]?cache\s*=\s*([a-z0-9]+)", t) or re.search(r"([a-z0-9]+)\s+(?:activations?/)?kv", t) \
        or re.search(r"kv(?:[ -]?cache)?\s+(?:in\s+)?([a-z0-9]+)", t)
    return _find_prec(k.group(1)) if k else None


def parse_row_precision(text: str) -> tuple[Precision, Precision] | None:
    """Returns (weight, KV-cache) precision named by a free-text precision cell, or None.

    'not recorded' and '' mean fp16 (what the public sets ran).
    """
    t = text.lower().strip()
    if not t or "not recorded" in t:
        return Precision.FP16, Precision.FP16
    q = _quantised(t)
    if q is not None:
        w, kv = q
        return w, kv or _kv_named(t) or Precision.FP16
    wm = re.search(r"weights?\s*=\s*([a-z0-9]+)", t)
    km = re.search(r"kv[ -]?cache\s*=\s*([a-z0-9]+)", t)
    if wm or km:
        wp = _find_prec(wm.group(1)) if wm else None
        kp = _find_prec(km.group(1)) if km else None
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
        # Integer weights are weight-only quantisation: the KV cache stays fp16 unless named.
        return wp, kp or (Precision.FP16 if wp in (Precision.INT4, Precision.INT8) else wp)
    p = _find_prec(t)
    return (p, p) if p else None
