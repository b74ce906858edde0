"""The plan file (``llmopt plan FILE.json``): a pydantic schema and a loader with one-line errors.

A plan is a portfolio of offline jobs with release times and deadlines, plus plan-wide quotas,
budget and time-slot length. Unknown keys are errors. Catalog lookups (models, instances) happen
later, in ``plan.py``; this module checks only what the file alone can tell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator, model_validator

from llmopt_solver.catalog.precision import parse_precision
from llmopt_solver.errors import InputError, error_text, field_path

# Problem-size limits (README "Limits"): checked here, before any option or slot is built.
MAX_NUM_REQUESTS = 10**9  # per job
MAX_TOKENS = 10**7  # input_len, output_len
MAX_BATCH_SIZE = 1 << 20
MAX_JOBS = 10_000  # measured: benchmarks/bench_plan.py (README "Limits")
MAX_MILP_JOBS = 200  # beyond it no MILP is built: the searched greedy plan and the quota-free bound decide
MAX_SLOTS = 1000  # latest deadline / slot_h
MIN_OFFLOAD_STEP = 0.01  # at most 101 offload levels


class _Strict(BaseModel):
    # Counts are strict integers (true, 1.0 and "3" are not counts); floats must be finite.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PlanJob(_Strict):
    """One offline job of the portfolio."""

    name: str = Field(min_length=1, description="unique job name")
    model: str = Field(min_length=1, description="HF id, alias or path to a config.json")
    num_requests: StrictInt = Field(gt=0, le=MAX_NUM_REQUESTS, description="sequences to process")
    input_len: StrictInt = Field(gt=0, le=MAX_TOKENS, description="prompt tokens per sequence")
    output_len: StrictInt = Field(gt=0, le=MAX_TOKENS, description="generated tokens per sequence")
    batch_size: StrictInt | Literal["auto"] = Field(default="auto", description="sequences per batch or 'auto'")
    precision: StrictStr | StrictInt = Field(default="fp16", description="weight precision: 1, 2, 4 or a name")
    kv_precision: StrictStr | StrictInt | None = Field(default=None, description="KV-cache precision (default: as precision)")
    safety_factor: float = Field(default=0.87, gt=0, le=1, description="usable fraction of GPU memory")
    deadline_h: float = Field(gt=0, description="hours from the plan's start by which every request is done")
    release_h: float = Field(default=0.0, ge=0, description="hours from the plan's start before which nothing runs")
    slo_tps: float = Field(default=0.0, ge=0, description="minimum generated tokens/s of one batch")
    instances: list[str] | None = Field(default=None, description="allow-list of instance types")
    gpus: list[str] | None = Field(default=None, description="allow-list of GPU types")
    engine: str | None = Field(default=None, description="engines: 'auto' or NAME[,NAME...] (default: --engine, else auto)")

    @field_validator("batch_size")
    @classmethod
    def _batch_positive(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 1 <= v <= MAX_BATCH_SIZE:
            raise ValueError(f"{v} is not a batch size; allowed: a whole number from 1 to {MAX_BATCH_SIZE} or 'auto'")
        return v

    @field_validator("precision", "kv_precision")
    @classmethod
    def _precision_known(cls, v: str | int | None) -> str | int | None:
        if v is not None:
            try:
                parse_precision(v, "precision")
            except InputError as exc:
                raise ValueError(InputError(problem=exc.problem, allowed=exc.allowed).render()) from None
        return v

    @model_validator(mode="after")
    def _window(self) -> PlanJob:
        if self.deadline_h <= self.release_h:
            raise ValueError(f"deadline_h {self.deadline_h:g} must be after release_h {self.release_h:g}")
        return self


class Quotas(_Strict):
    """Instances running at the same time: per instance type, and per GPU type counting GPUs."""

    instances: dict[str, StrictInt] = Field(default_factory=dict, description="instance type -> max running instances")
    gpus: dict[str, StrictInt] = Field(default_factory=dict, description="GPU type -> max running GPUs")

    @field_validator("instances", "gpus")
    @classmethod
    def _non_negative(cls, v: dict[str, int]) -> dict[str, int]:
        for k, n in v.items():
            if n < 0:
                raise ValueError(f"quota for {k!r} is {n}; allowed: a whole number >= 0")
        return v


class PlanFile(_Strict):
    """The whole plan file."""

    jobs: list[PlanJob] = Field(min_length=1, max_length=MAX_JOBS, description="the portfolio (at least one job)")
    quotas: Quotas = Field(default_factory=Quotas)
    budget_usd: float | None = Field(default=None, gt=0, description="maximum total cost, USD")
    slot_h: float = Field(default=1.0, gt=0, description="time-slot length for quotas, hours")
    startup_s: float | None = Field(default=None, ge=0, description="boot + model load per instance start, s")
    providers: list[str] | None = Field(default=None, description="allowed providers (aws, gcp, azure)")
    spot: StrictBool = Field(default=False, description="use spot prices")
    catalog: list[str] = Field(default_factory=list, description="extra catalog files (relative to the plan file)")
    objective: Literal["cost", "makespan"] = Field(default="cost")
    offload_step: float = Field(default=0.1, ge=MIN_OFFLOAD_STEP, le=1, description="KV offload-ratio grid step")
    confidence: float | None = Field(
        default=None, ge=0.5, lt=1, description="schedule with the pessimistic P-quantile of each batch time "
        "(and of GPU memory), from the GPU's error band; None: the predictions as they are")
    prune: Literal["exact", "heuristic"] = Field(
        default="exact", description="option pruning: exact dominance only (optimum kept), or also options worse in "
        "cost per request, speed and whole-job cost than one with the same quotas (or none)")

    @model_validator(mode="after")
    def _unique_names(self) -> PlanFile:
        seen: set[str] = set()
        for i, job in enumerate(self.jobs):
            if job.name in seen:
                raise ValueError(f"jobs[{i}].name: duplicate job name {job.name!r}; job names must be unique")
            seen.add(job.name)
        if self.objective == "makespan" and len(self.jobs) > MAX_MILP_JOBS:
            raise ValueError(f"jobs: {len(self.jobs)} jobs with objective 'makespan' (it needs the MILP, limit "
                             f"{MAX_MILP_JOBS} jobs); allowed: at most {MAX_MILP_JOBS} jobs, or objective 'cost'")
        slots = self.horizon_h / self.slot_h
        if slots > MAX_SLOTS:
            i = max(range(len(self.jobs)), key=lambda k: self.jobs[k].deadline_h)
            raise ValueError(f"jobs[{i}].deadline_h: {self.jobs[i].deadline_h:g} h makes {slots:,.0f} slots of slot_h "
                             f"{self.slot_h:g} h (limit {MAX_SLOTS}); allowed: deadline_h <= {MAX_SLOTS * self.slot_h:g} "
                             f"at this slot_h (or a larger slot_h)")
        return self

    @property
    def horizon_h(self) -> float:
        """Returns the latest deadline, hours."""
        return max(j.deadline_h for j in self.jobs)


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    parent = [p for p in loc[:-1] if not isinstance(p, int)]
    model: type[BaseModel] = PlanFile
    if parent[:1] == ["jobs"]:
        model = PlanJob
    elif parent[:1] == ["quotas"]:
        model = Quotas
    return ", ".join(model.model_fields)


_UNION_PARTS = {"int", "str", "bool", "float", "none"}


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def first_error(exc: ValidationError, data: Any) -> str:
    """Returns the first validation error as 'field: what is wrong; allowed: ...'."""
    errors = exc.errors()
    err = errors[0]
    # Union members (StrictInt | Literal['auto']) add their type name to the location: drop it,
    # and say every alternative that failed.
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and (p in _UNION_PARTS or "[" in p)))
    alts = [error_text(e) for e in errors if tuple(p for p in e["loc"] if not (
        isinstance(p, str) and (p in _UNION_PARTS or "[" in p))) == loc]
    msg = " or ".join(dict.fromkeys(alts))
    if err["type"] not in ("missing", "extra_forbidden", "value_error") and loc and not isinstance(err.get("input"), (dict, list)):
        msg += f" (got {json.dumps(err.get('input')) if _jsonable(err.get('input')) else repr(err.get('input'))})"
    if err["type"] == "extra_forbidden":
        return f"{field_path(loc, data)}: unknown key; allowed: {_allowed_keys(loc)}"
    if err["type"] == "missing":
        return f"{field_path(loc, data)}: required key is missing"
    if not loc:  # model-level validators carry their own location in the message
        return msg
    # model_validator errors on a job carry the job's location only
    return f"{field_path(loc, data)}: {msg}"


def parse_plan(data: Any, origin: str = "plan") -> PlanFile:
    """Returns the validated plan from parsed JSON; InputError naming the field otherwise."""
    if not isinstance(data, dict):
        raise InputError(f"{origin}: a plan must be a JSON object with a 'jobs' list.")
    try:
        return PlanFile.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"{origin}: {first_error(exc, data)}.") from None


def load_plan(path: str | Path) -> PlanFile:
    """Returns the validated plan in ``path``; InputError (with line and column for bad JSON)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")  # with or without a BOM
    except FileNotFoundError:
        raise InputError(f"{p}: no such plan file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read the plan file ({exc}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    return parse_plan(data, str(p))
