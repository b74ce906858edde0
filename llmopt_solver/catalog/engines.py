"""Engine profiles: the serving/offloading runtimes an option can run on, as data.

One JSON file per engine under ``llmopt_solver/data/engines/`` (a user adds or overrides one with
``--catalog FILE`` and an ``engines`` list). A profile names the engine, the spellings measurement
files use for it (``aliases``, matched case-insensitively against a CSV's ``framework`` column),
and what it can execute (``mechanisms``). Its runtime parameters (per-step and per-sequence
overheads, kernel efficiencies) are efficiency overrides per (engine, GPU), merged by the catalog
loader from efficiency/calibration files under ``efficiency.engines.<name>``.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EngineProfile(BaseModel):
    """One engine: its names, what it can run, and where that comes from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="canonical engine name, e.g. 'vllm'")
    aliases: tuple[str, ...] = Field(default=(), description="other spellings, e.g. 'vLLM' in a CSV")
    description: str = ""
    mechanisms: dict[str, Any] = Field(default_factory=dict, description="what the engine can execute")
    source: str = Field(min_length=1)
    as_of: str = Field(min_length=1)
    notes: str = ""

    def matches(self, text: str) -> bool:
        """True when ``text`` names this engine: name or alias, case-insensitive, with or without a
        trailing version ('TGI 1.0.3', 'vLLM v0.6.3')."""
        key = text.strip().lower()
        names = {self.name.lower(), *(a.lower() for a in self.aliases)}
        return key in names or re.sub(r"[\s_-]*v?\d+(\.\d+)*$", "", key) in names
