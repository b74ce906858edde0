"""Model cards: a Hugging Face ``config.json`` with a name, aliases and a source, built-in or local.

The built-in cards are the repository's top-level ``models/`` folder (``llmopt_solver/models`` in a
wheel); ``--model path/to/config.json`` reads a local one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from llmopt_solver.catalog.model_shape import ModelShape, shape_from_config
from llmopt_solver.errors import InputError, ModelConfigError


@dataclass(frozen=True)
class ModelCard:
    """A model card: its HF config, names and source."""

    name: str
    aliases: tuple[str, ...]
    config: dict[str, Any]
    source: str
    as_of: str

    @property
    def short_name(self) -> str:
        return self.aliases[0] if self.aliases else self.name

    def shape(self) -> ModelShape:
        """Returns the model's architecture (read from the config once per card)."""
        return self._shape

    @cached_property
    def _shape(self) -> ModelShape:
        return shape_from_config(self.config, self.short_name)

    def check_context(self, input_len: int, output_len: int, label: str) -> None:
        """Raises InputError, starting with ``label``, if input + output exceed the context window."""
        max_pos = self.config.get("max_position_embeddings") or self.config.get("n_positions")
        if isinstance(max_pos, int) and input_len + output_len > max_pos:
            raise InputError(f"{label} = {input_len + output_len} exceeds {self.short_name}'s context window "
                             f"of {max_pos} tokens.")


def card_from_dict(data: dict[str, Any], origin: str, check: bool = True) -> ModelCard:
    """Returns the card of a model file's ``data``; ``check`` reads its shape now, so that errors name
    ``origin`` (package cards are checked by tests instead: tests/test_record_base.py)."""
    if not isinstance(data, dict):
        raise ModelConfigError(f"{origin}: a model card must be a JSON object (a Hugging Face config.json).")
    name = str(data.get("name") or data.get("_name_or_path") or origin)
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list):
        raise ModelConfigError(f"{origin}: 'aliases' must be a list of names.")
    card = ModelCard(name=name, aliases=tuple(str(a) for a in aliases), config=data,
                     source=str(data.get("source", origin)), as_of=str(data.get("as_of", "")))
    if check:
        card.shape()  # validate now so errors name the file
    return card


def load_model_file(path: Path) -> ModelCard:
    """Returns the model card in a local HF config.json; ModelConfigError if missing or invalid."""
    if not path.is_file():
        raise ModelConfigError(field="--model", problem=f"{str(path)!r} is neither a known model nor an existing config.json file.")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # with or without a BOM
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelConfigError(field="--model", problem=f"{str(path)!r} is not valid JSON ({exc}).") from None
    try:
        card = card_from_dict(data, str(path))
    except ModelConfigError as exc:
        raise ModelConfigError(f"--model {path}: {exc}") from None
    if "name" not in data:
        # Named by its _name_or_path, else by the path given (a folder name such as 'cfg' says nothing).
        label = str(data.get("_name_or_path") or "") or str(path)
        card = ModelCard(name=str(path), aliases=(label,), config=data,
                         source=str(path), as_of=card.as_of)
    return card


def model_dir() -> Any:
    packaged = resources.files("llmopt_solver").joinpath("models")
    if packaged.is_dir():
        return packaged
    # Source checkout / editable install: the repository's top-level models/ folder.
    return Path(__file__).resolve().parents[2] / "models"
