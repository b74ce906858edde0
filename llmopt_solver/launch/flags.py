"""Each engine's documented flag names, kept as data with their source (data/engine_flags/)."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

RECIPE_ENGINES = ("vllm", "sglang", "tensorrt-llm", "flexgen")


@cache
def flag_doc(engine: str) -> dict[str, Any]:
    """Returns the flag list record of ``engine``: command, install, flags, source, as_of."""
    f = resources.files("llmopt_solver").joinpath("data").joinpath("engine_flags").joinpath(f"{engine}.json")
    return json.loads(f.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def skypilot_schema() -> dict[str, Any]:
    """Returns the SkyPilot task-YAML key schema kept as data (with its source)."""
    f = resources.files("llmopt_solver").joinpath("data").joinpath("skypilot_task_schema.json")
    return json.loads(f.read_text(encoding="utf-8"))


def unknown_flags(engine: str, argv: list[str]) -> list[str]:
    """Returns the ``--flags`` of ``argv`` that are not in ``engine``'s documented flag list."""
    known = set(flag_doc(engine)["flags"])
    return [a for a in argv if a.startswith("--") and a not in known]
