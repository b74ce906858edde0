"""Domain exceptions. The CLI turns each into one line and an exit code (see ``cli.py``)."""

from __future__ import annotations


class LlmoptError(Exception):
    """Base class: ``exit_code`` is what the CLI returns for it."""

    exit_code = 2


class InputError(LlmoptError):
    """Bad user input: names the field and what is allowed (exit 2)."""


class CatalogError(InputError):
    """A catalog file or lookup is wrong (exit 2)."""


class ModelConfigError(InputError):
    """A model name or config.json cannot be used (exit 2)."""


class InfeasibleError(LlmoptError):
    """Nothing meets the constraints (exit 1): says which constraint binds and the best achievable."""

    exit_code = 1


class SolverError(LlmoptError):
    """The solver failed or hit its time limit without a solution (exit 3)."""

    exit_code = 3


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
