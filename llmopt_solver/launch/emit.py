"""``--emit``: the launch recipe of the chosen option, as text and as the JSON ``launch`` object."""

from __future__ import annotations

from typing import Any

from llmopt_solver.errors import InputError
from llmopt_solver.launch.flags import RECIPE_ENGINES
from llmopt_solver.table.options import OptionTable

# recipes and skypilot are imported by ``launch``: ``solve`` without --emit needs neither.
EMIT_CHOICES = RECIPE_ENGINES + ("skypilot",)


def engines_for_emit(emit: str | None, engines: tuple[str, ...]) -> tuple[str, ...]:
    """Returns the engines that may compete when ``--emit`` is given: for 'skypilot', those with a
    recipe (InputError if none); otherwise ``engines`` unchanged (checked after the prediction)."""
    if emit != "skypilot":
        return engines
    kept = tuple(e for e in engines if e in RECIPE_ENGINES)
    if not kept:
        raise InputError(field="--emit", problem=f"no launch recipe for engine(s) {', '.join(engines)}",
                         allowed="engines " + ", ".join(RECIPE_ENGINES))
    return kept


def launch(table: OptionTable, i: int, emit: str, num_nodes: int = 1, comment: str = "") -> tuple[str, dict[str, Any]]:
    """Returns (text, JSON object) of the launch for option ``i``; InputError (exit 2) when ``emit``
    names an engine other than the one the option was predicted for."""
    engine = str(table.engine[i])
    if emit != "skypilot" and emit != engine:
        raise InputError(field="--emit", problem=f"{emit!r} is not the engine of the prediction ({engine})",
                         allowed=f"{engine}, skypilot" if engine in RECIPE_ENGINES else "skypilot",
                         hint=f"Use --engine {emit} to predict for {emit}.")
    from llmopt_solver.launch.recipes import recipe
    from llmopt_solver.launch.skypilot import task_yaml

    rec = recipe(table, i)
    doc = rec.doc()
    if emit == "skypilot":
        y = task_yaml(table, i, rec, num_nodes=num_nodes, comment=comment)
        doc["skypilot_yaml"] = y
        return y, doc
    return rec.text(), doc
