"""The measurement CSV schema and its reader: one ``MeasurementRow`` per CSV row.

The schema is the one of the shared validation sets (one measured figure per row):
``source, model, gpu, num_gpus, precision, framework, batch_size, input_len, output_len, metric,
value, notes``. A missing column is a file error (exit 2); a blank or malformed cell is a
problem of that row only: the row is kept with ``problem`` and ``problem_field`` set and is
skipped later with that reason, so one bad row never aborts the file.
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
    """Measured figures a row can carry (``op_time_ms_median:<op>`` aside). b = batch (static) or
    concurrency (online), s / n = input / output tokens, g = num_gpus.

    | name | static batch | online (continuous batching) |
    |---|---|---|
    | ``e2e_latency_s`` | wall time of the batch (prefill + all decode steps) | mean request time |
    | ``ttft_s`` | the batched prefill | own prefill + one decode step |
    | ``tpot_s`` | e2e / n (prefill included, TGI's time_per_token) | request time / n |
    | ``decode_tok_s`` | n / decode time, one sequence | 1 / steady-state step time |
    | ``throughput_gen_tok_s`` | b n / e2e (FlexGen's definition, = ``tps``) | b n / request time |
    | ``throughput_out_tok_s_total`` | = ``throughput_gen_tok_s`` | generated tok/s over all users |
    | ``throughput_gen_tok_s_per_gpu`` | ``throughput_gen_tok_s`` / g | same / g |
    | ``throughput_out_tok_s_per_gpu`` | ``throughput_out_tok_s_total`` / g | same / g |
    | ``throughput_tok_s_total`` | b (s + n) / e2e | b (s + n) / request time |
    """

    E2E = "e2e_latency_s"
    TTFT = "ttft_s"
    TPOT = "tpot_s"
    DECODE_TPS = "decode_tok_s"
    GEN_TPS = "throughput_gen_tok_s"
    OUT_TPS = "throughput_out_tok_s_total"
    GEN_TPS_PER_GPU = "throughput_gen_tok_s_per_gpu"
    OUT_TPS_PER_GPU = "throughput_out_tok_s_per_gpu"
    TOTAL_TPS = "throughput_tok_s_total"

    @property
    def is_time(self) -> bool:
        """True where larger means slower (a time); False for rates."""
        return self in (Metric.E2E, Metric.TTFT, Metric.TPOT)

    @property
    def online_only(self) -> bool:
        """True for figures only serving (continuous-batching) benchmarks report."""
        return self in (Metric.TPOT, Metric.OUT_TPS, Metric.OUT_TPS_PER_GPU)


BATCH_METRICS = tuple(m.value for m in Metric)
TIME_METRICS = tuple(m.value for m in Metric if m.is_time)  # larger = slower; the rest are throughputs


class MeasurementRow(BaseModel):
    """One measured figure (a CSV row of the validation schema)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)

    source: str = ""
    model: str = Field(min_length=1, description="Hugging Face id or alias")
    gpu: str = Field(min_length=1, description="GPU name as published")
    num_gpus: int = Field(gt=0, description="tensor-parallel degree")
    precision: str = ""
    framework: str = ""
    batch_size: int | None = Field(default=None, gt=0, description="sequences per static batch")
    input_len: int | None = Field(default=None, gt=0, description="prompt tokens (Vidur: tokens in the operator)")
    output_len: int | None = Field(default=None, gt=0, description="generated tokens")
    metric: str = Field(min_length=1)
    value: float | str = Field(description="the measured figure, or 'OOM'")
    notes: str = ""
    problem: str = ""  # why the row cannot be read ('' when it can); never a CSV column
    problem_field: str = ""  # the column at fault
    problem_summary: str = ""  # ``problem`` without this row's line and value (groups the skip table)
    problem_value: str | None = None  # the cell's text, quoted

    @field_validator("batch_size", "output_len", "input_len", mode="before")
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

    @property
    def readable(self) -> bool:
        """True when every cell parsed (``problem`` empty)."""
        return not self.problem


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
        rows.append(parse_row(rec, line))
    if not rows:
        raise InputError(f"{label}: no data rows.")
    if all(r.problem for r in rows):  # nothing to validate: the file, not a row, is wrong
        raise InputError(f"{label} {rows[0].problem}; no row could be read.")
    return rows


def parse_row(rec: dict[str, str], line: int = 0) -> MeasurementRow:
    """Returns the row of CSV record ``rec``; a bad cell gives a row with ``problem`` set instead."""
    try:
        return MeasurementRow.model_validate(rec)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "row"
        got = rec.get(loc, "")
        why = "blank" if not str(got).strip() else f"{got!r}: {err['msg']}"
        # Keep what can be read, for the report; constructed without validation on purpose.
        safe: dict[str, Any] = {k: str(rec.get(k, "")).strip() for k in ("source", "model", "gpu", "precision", "framework",
                                                         "metric", "notes")}
        return MeasurementRow.model_construct(
            **safe, num_gpus=1, batch_size=None, input_len=None, output_len=None, value=str(rec.get("value", "")),
            problem=f"line {line}: field {loc!r} is {why}" if line else f"field {loc!r} is {why}",
            problem_field=loc, problem_summary=f"field {loc!r} is " + ("blank" if why == "blank" else f"{{value}}: {err['msg']}"),
            problem_value=None if why == "blank" else repr(got))
