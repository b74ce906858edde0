"""The measurement CSV schema and its reader: one ``MeasurementRow`` per CSV row.

The schema is the one of the shared validation sets (one measured figure per row):
``source, model, gpu, num_gpus, precision, framework, batch_size, input_len, output_len, metric,
value, notes``. A missing column is a file error; a bad cell is a row error (see
``parse_measurements``).
"""

from __future__ import annotations

import csv
import io
import math
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmopt_solver.errors import InputError

COLUMNS = ("source", "model", "gpu", "num_gpus", "precision", "framework", "batch_size", "input_len",
           "output_len", "metric", "value", "notes")
OP_PREFIX = "op_time_ms_median:"


class Metric(StrEnum):
    """Measured figures a row can carry (validation README; ``op_time_ms_median:<op>`` aside).

    | name | meaning |
    |---|---|
    | ``e2e_latency_s`` | wall time of one static batch (prefill + all decode steps) |
    | ``ttft_s`` | time to first token (static batch: the batched prefill) |
    | ``throughput_gen_tok_s`` | b * output / e2e latency (FlexGen's definition, = ``tps``) |
    | ``throughput_tok_s_total`` | b * (input + output) / e2e latency |
    """

    E2E = "e2e_latency_s"
    TTFT = "ttft_s"
    GEN_TPS = "throughput_gen_tok_s"
    TOTAL_TPS = "throughput_tok_s_total"

    @property
    def is_time(self) -> bool:
        """True where larger means slower (a time); False for throughputs."""
        return self in (Metric.E2E, Metric.TTFT)


BATCH_METRICS = (Metric.E2E.value, Metric.TOTAL_TPS.value, Metric.GEN_TPS.value, Metric.TTFT.value)
TIME_METRICS = tuple(m.value for m in Metric if m.is_time)  # larger = slower; the rest are throughputs


class MeasurementRow(BaseModel):
    """One measured figure (a CSV row of the validation schema)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    source: str = ""
    model: str = Field(min_length=1, description="Hugging Face id or alias")
    gpu: str = Field(min_length=1, description="GPU name as published")
    num_gpus: int = Field(gt=0, description="tensor-parallel degree")
    precision: str = ""
    framework: str = ""
    batch_size: int | None = Field(default=None, gt=0, description="sequences per static batch")
    input_len: int = Field(gt=0, description="prompt tokens (Vidur: tokens in the operator)")
    output_len: int | None = Field(default=None, gt=0, description="generated tokens")
    metric: str = Field(min_length=1)
    value: float | str = Field(description="the measured figure, or 'OOM'")
    notes: str = ""

    @field_validator("batch_size", "output_len", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, v: Any) -> float | str:
        text = str(v).strip()
        if text.upper() == "OOM":
            return "OOM"
        try:
            x = float(text)
        except ValueError:
            raise ValueError("must be a positive number or 'OOM'") from None
        if not math.isfinite(x) or x <= 0:
            raise ValueError("must be a positive number or 'OOM'")
        return x

    @property
    def oom(self) -> bool:
        return self.value == "OOM"


def read_measurements(path: str | Path) -> list[MeasurementRow]:
    """Returns the rows of a validation CSV; InputError naming the line and field if malformed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found.")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return parse_measurements(text, str(path))


def parse_measurements(text: str, label: str = "CSV") -> list[MeasurementRow]:
    """Returns the rows of validation-CSV ``text``; InputError if the header or a row is bad."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)}; required: {', '.join(COLUMNS)}.")
    rows = []
    for line, raw in enumerate(reader, start=2):
        rec = {k.strip(): (v or "") for k, v in raw.items() if k is not None and k.strip() in COLUMNS}
        try:
            rows.append(MeasurementRow.model_validate(rec))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"]) or "row"
            got = rec.get(loc, "")
            raise InputError(f"{label} line {line}: field {loc!r} = {got!r}: {err['msg']}.") from None
    if not rows:
        raise InputError(f"{label}: no data rows.")
    return rows
