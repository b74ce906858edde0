"""Domain exceptions and infeasibility reasons, kept as data until the edge.

An ``InputError`` carries the field, the problem, the allowed values and a hint; the CLI renders
the field as a flag (``--gpus``), the plan loader as a key path (``jobs[0].gpus``), via ``at``.
An infeasibility ``Reason`` carries a kind and a text. No code parses a message back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class LlmoptError(Exception):
    """Base class: ``exit_code`` is what the CLI returns for it."""

    exit_code = 2


class InputError(LlmoptError):
    """Bad user input (exit 2): what is wrong, where, what is allowed, and how to fix it.

    ``InputError("text")`` keeps a plain message; ``InputError(field=..., problem=...,
    allowed=..., hint=...)`` builds one line ``field: problem; allowed: allowed. hint``.
    """

    def __init__(self, message: str | None = None, *, field: str | None = None, problem: str | None = None,
                 allowed: str | None = None, hint: str | None = None) -> None:
        self.field = field
        self.problem = problem if problem is not None else (message or "")
        self.allowed = allowed
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        """Returns the one-line message."""
        if not (self.field or self.allowed or self.hint):
            return self.problem
        text = self.problem
        if self.field:
            text = f"{self.field}: {text}"
        if self.allowed:
            text = text.rstrip(".") + f"; allowed: {self.allowed.rstrip('.')}"
        if not text.endswith((".", "?", "!")):
            text += "."
        if self.hint:
            text += f" {self.hint}"
        return text

    def at(self, field: str, keep_inner: bool = False) -> InputError:
        """Returns the same error located at ``field`` (e.g. '--gpus' -> 'jobs[0].gpus').

        ``keep_inner``: prefix the current field instead of replacing it ('jobs[0]' + '.model').
        """
        new_field = f"{field}.{self.field}" if keep_inner and self.field else field
        err = type(self)(field=new_field, problem=self.problem, allowed=self.allowed, hint=self.hint)
        return err


class CatalogError(InputError):
    """A catalog file or lookup is wrong (exit 2)."""


class ModelConfigError(InputError):
    """A model name or config.json cannot be used (exit 2)."""


class InfeasibleError(LlmoptError):
    """Nothing meets the constraints (exit 1): says which constraint binds and the best achievable.

    ``InfeasibleError("text")`` or ``InfeasibleError(["reason", ...])``: ``reasons`` keeps each
    reason apart (the plan's ``--json`` lists them); the message joins them with '; '.
    """

    exit_code = 1

    def __init__(self, reasons: str | Sequence[str]) -> None:
        self.reasons: tuple[str, ...] = (reasons,) if isinstance(reasons, str) else tuple(reasons)
        super().__init__("; ".join(self.reasons))


class SolverError(LlmoptError):
    """The solver failed or hit its time limit without a solution (exit 3)."""

    exit_code = 3


class ReasonKind(StrEnum):
    """Why an option (or a whole job) is infeasible."""

    GPU_MEMORY = "gpu_memory"
    HOST_MEMORY = "host_memory"
    SLO = "slo"
    PRICE = "price"
    PRECISION = "precision"
    ENGINE = "engine"
    TENSOR_PARALLEL = "tensor_parallel"
    CATALOG = "catalog"


@dataclass(frozen=True)
class Reason:
    """One infeasibility reason: its kind and a human text."""

    kind: ReasonKind
    text: str

    def __str__(self) -> str:
        return self.text


def did_you_mean(word: str, choices: list[str], n: int = 3) -> str:
    """Returns ' Did you mean: a, b?' for close matches of ``word`` (case-insensitive), or ''."""
    import difflib

    lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lower), n=n, cutoff=0.5)
    if not close:
        close = [lower[c] for c in lower if word.lower() in c][:n]
    else:
        close = [lower[c] for c in close]
    return f" Did you mean: {', '.join(close)}?" if close else ""


def field_path(loc: tuple[Any, ...], data: Any = None) -> str:
    """Returns a pydantic error location as a key path, e.g. "jobs[1] ('summarize').deadline_h".

    List items named in ``data`` (a dict with a 'name') carry that name, so a user finds the row.
    """
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node):
                node = node[part]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    out += f" ({node['name']!r})"
            else:
                node = None
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def first_validation_error(exc: Any, data: Any = None) -> tuple[str, str, str]:
    """Returns (key path, message, error type) of a pydantic ValidationError's first error."""
    err = exc.errors()[0]
    return field_path(tuple(err["loc"]), data), error_text(err), str(err["type"])


def error_text(err: Any) -> str:
    """Returns the text of one pydantic error: a validator's own ValueError text as raised, else pydantic's."""
    cause = err.get("ctx", {}).get("error") if err.get("type") == "value_error" else None
    return str(cause) if cause is not None else str(err["msg"])
