"""GPU names as people write them -> catalog GPU names (``Catalog.resolve_gpu``).

Order: an exact ``--gpu-map`` entry, an exact alias of ``data/gpu_aliases.json`` (each with its
source), the same two after dropping a parenthesised note, then normalisation: drop notes and
vendor words, read the memory size and the form factor out of the name, and match the family
against the catalog's GPUs. 'A10G-24GB (AWS g5.2xlarge)' -> A10G, 'A100-SXM4-80GB' ->
A100-80GB-SXM, 'H100-SXM-80GB' -> H100-SXM, 'RTX A6000-48GB' -> RTX-A6000, 'L40S-48GB' -> L40S.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import NamedTuple, Protocol


class _GpuLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def memory_gb(self) -> float: ...


@dataclass(frozen=True)
class GpuName:
    """A GPU name split into family ('A100', 'RTX-A6000'), memory (GB, None if unstated) and form."""

    family: str
    memory_gb: float | None
    form: str | None  # 'SXM', 'PCIE', 'NVL' or None


class GpuMatch(NamedTuple):
    """How a GPU name was read: ``name`` (catalog name, None if not matched), ``text`` (said in
    full, e.g. 'alias: <source>') and ``how``, the route as a label: '--gpu-map', 'catalog name',
    'alias', 'normalised name', or why not: '--gpu-map target', 'no GPU name', 'ambiguous',
    NOT_IN_CATALOG."""

    name: str | None
    text: str
    how: str


NOT_IN_CATALOG = "not in the catalog"

_FORM = re.compile(r"[-\s_]*(SXM\d?|PCIE|NVL)\b")
_MEM = re.compile(r"[-\s_]*(\d+(?:\.\d+)?)\s*GB\b")


def split_name(text: str) -> GpuName:
    """Returns the family, memory and form factor written in a GPU name."""
    t = re.sub(r"\s*\(.*?\)", " ", text).upper()
    t = re.sub(r"\b(NVIDIA|TESLA|GEFORCE|HBM\d?E?|GDDR\dX?)\b", " ", t)  # vendor and memory-type words
    mem = _MEM.search(t)
    memory = float(mem.group(1)) if mem else None
    t = _MEM.sub(" ", t)
    form_m = _FORM.search(t)
    form = None
    if form_m:
        form = "SXM" if form_m.group(1).startswith("SXM") else form_m.group(1)
        t = _FORM.sub(" ", t)
    family = "-".join(re.findall(r"[A-Z0-9]+", t))
    return GpuName(family=family, memory_gb=memory, form=form)


@lru_cache(maxsize=1)
def builtin_aliases() -> dict[str, tuple[str, str]]:
    """Returns {alias: (catalog GPU, source)} of data/gpu_aliases.json."""
    doc = json.loads(resources.files("llmopt_solver").joinpath("data").joinpath("gpu_aliases.json")
                     .read_text(encoding="utf-8"))
    return {a["alias"]: (a["gpu"], a["source"]) for a in doc["aliases"]}


def resolve(text: str, gpus: Iterable[_GpuLike], extra: dict[str, str] | None = None) -> GpuMatch:
    """Returns the catalog GPU name (or None) for a GPU name ``text``, with how it was read or why not."""
    records = list(gpus)
    by_lower = {g.name.lower(): g.name for g in records}
    aliases = builtin_aliases()
    bare = re.sub(r"\s*\(.*\)\s*$", "", text).strip()
    for key in dict.fromkeys((text.strip(), bare)):
        if extra and key in extra:
            name = by_lower.get(extra[key].lower())
            if name:
                return GpuMatch(name, "--gpu-map", "--gpu-map")
            return GpuMatch(None, f"--gpu-map target {extra[key]!r} is not in the catalog", "--gpu-map target")
        if key.lower() in by_lower:
            return GpuMatch(by_lower[key.lower()], "catalog name", "catalog name")
        if key in aliases:
            return GpuMatch(aliases[key][0], f"alias: {aliases[key][1]}", "alias")
    want = split_name(text)
    if not want.family:
        return GpuMatch(None, "no GPU name", "no GPU name")
    found = []
    for g in records:
        have = split_name(g.name)
        if have.family != want.family:
            continue
        if want.memory_gb is not None and abs(g.memory_gb - want.memory_gb) > 0.6:
            continue
        if want.form is not None and have.form is not None and have.form != want.form:
            continue
        found.append(g.name)
    if len(found) == 1:
        return GpuMatch(found[0], "normalised name", "normalised name")
    if found:
        return GpuMatch(None, f"ambiguous: {', '.join(sorted(found))} all match; pick one with --gpu-map", "ambiguous")
    return GpuMatch(None, NOT_IN_CATALOG, NOT_IN_CATALOG)
