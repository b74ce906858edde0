"""What the search ranges over: the instance pool (filters) and the grids (offload levels, batch sizes).

Errors name the field as the CLI spells it (``--gpus``); the plan loader relocates them with
``InputError.at`` (``jobs[0].gpus``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.errors import InputError

AUTO_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)  # batch_size "auto": powers of two


def select_instances(
    catalog: Catalog,
    gpus: list[str] | None = None,
    instances: list[str] | None = None,
    providers: list[str] | None = None,
) -> list[InstanceSpec]:
    """Returns catalog instances passing the filters, sorted by (provider, name).

    Raises InputError naming the filter (``--gpus``, ``--instances``, ``--provider``) for unknown names.
    """
    pool = list(catalog.instances.values())
    if providers:
        known = sorted({i.provider for i in pool})
        wanted = {p.lower() for p in providers}
        for p in wanted - set(known):
            raise InputError(field="--provider", problem=f"unknown provider {p!r}", allowed=", ".join(known))
        pool = [i for i in pool if i.provider in wanted]
    if gpus:
        wanted_gpus = set(resolve_names(gpus, catalog.gpu, "--gpus").values())
        pool = [i for i in pool if i.gpu in wanted_gpus]
    if instances:
        wanted = set(resolve_names(instances, catalog.instance, "--instances").values())
        pool = [i for i in pool if i.name in wanted]
    if not pool:
        raise InputError("filters: no instance matches --gpus/--instances/--provider together; "
                         "see `llmopt catalog instances`.")
    return sorted(pool, key=lambda i: (i.provider, i.name))


def resolve_names(names: Iterable[str], lookup: Callable[[str], Any], field: str) -> dict[str, str]:
    """Returns {name as given: name as the catalog spells it}; InputError located at ``field``."""
    out = {}
    for n in names:
        try:
            out[n] = lookup(n).name
        except InputError as exc:
            raise exc.at(field) from None
    return out


def offload_levels(step: float, field: str = "--offload-step") -> tuple[float, ...]:
    """Returns (0, step, 2 step, ..., 1); InputError unless step is in (0, 1] and divides 1."""
    if not (0 < step <= 1):
        raise InputError(f"{field}: {step:g} is out of range; allowed: a value in (0, 1] that divides 1 (e.g. 0.05, 0.1, 0.25).")
    k = round(1.0 / step)
    if abs(k * step - 1.0) > 1e-9:
        raise InputError(f"{field}: {step:g} does not divide 1; allowed: 1/k for a whole k (e.g. 0.05, 0.1, 0.25, 0.5, 1).")
    return tuple(round(i / k, 12) for i in range(k + 1))
