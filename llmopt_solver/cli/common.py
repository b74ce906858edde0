"""Options shared by several commands, and turning them into a JobSpec."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from llmopt_solver.catalog.loader import Catalog, load_catalog
from llmopt_solver.catalog.precision import ALLOWED as PRECISIONS
from llmopt_solver.catalog.precision import Precision, parse_precision
from llmopt_solver.errors import InputError
from llmopt_solver.selection import AUTO_BATCH_SIZES
from llmopt_solver.table.engines import resolve_engines
from llmopt_solver.table.options import JobSpec


class FiniteFloatRange(click.FloatRange):
    """A click FloatRange that also rejects nan and inf (click lets nan through every range)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        out = super().convert(value, param, ctx)
        if isinstance(out, float) and not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number; allowed: {self._describe_range() if (self.min is not None or self.max is not None) else 'a finite number'}.", param, ctx)
        return out


# Problem-size limits (README "Limits"): a grid or horizon larger than these exits 2 before
# anything is built. Option rows ~ 1 KB of arrays each while predicting.
MIN_OFFLOAD_STEP = 0.01  # at most 101 KV (or weight) offload levels
MAX_OPTION_ROWS = 60_000  # instances x batch sizes x offload levels x offload modes, per job (CBC: ~1 min)


def check_grid(n_instances: int, n_batches: int, n_levels: int, n_modes: int, field: str = "--offload-step") -> None:
    """Raises InputError (naming ``field``) if the option grid would exceed MAX_OPTION_ROWS rows."""
    rows = n_instances * n_batches * n_levels * n_modes
    if rows > MAX_OPTION_ROWS:
        most = max(1, MAX_OPTION_ROWS // max(1, n_instances * n_batches * n_modes) - 1)
        raise InputError(field=field, problem=f"the option grid would have {rows:,} rows (limit {MAX_OPTION_ROWS:,})",
                         allowed=f"a step >= {1 / most:.3g} for this instance and batch-size pool",
                         hint="Narrow --gpus/--instances/--provider or fix --batch-size.")


class PrecisionType(click.ParamType):
    name = "precision"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Precision:
        try:
            return parse_precision(value, f"--{param.name.replace('_', '-')}" if param and param.name else "--precision")
        except InputError as exc:
            self.fail(InputError(problem=exc.problem, allowed=exc.allowed).render(), param, ctx)


class BatchSizeType(click.ParamType):
    """A positive integer, or 'auto' where the command allows it."""

    name = "batch_size"

    def __init__(self, allow_auto: bool) -> None:
        self.allow_auto = allow_auto

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        text = str(value).strip().lower()
        if self.allow_auto and text == "auto":
            return "auto"
        try:
            n = int(text)
        except ValueError:
            n = 0
            if not text.lstrip("-").isdigit():
                self.fail(f"{value!r} is not a batch size; allowed: a whole number >= 1" + (" or 'auto'." if self.allow_auto else "."), param, ctx)
        if n < 1:
            self.fail(f"{value} is not a batch size; allowed: a whole number >= 1" + (" or 'auto'." if self.allow_auto else "."), param, ctx)
        return n


def csv_list(value: str | None, field: str | None = None) -> list[str] | None:
    """Returns the comma-separated items of ``value``; None when not given.

    With ``field``: InputError when given but empty ('--gpus ""' is not "no filter").
    """
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items and field:
        raise InputError(field=field, problem=f"{value!r} names nothing",
                         allowed="one or more comma-separated names (omit the option for no filter)")
    return items or None


def workload_options(allow_auto_batch: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding the original README's workload flags (verbatim) plus precision knobs."""

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        opts = [
            click.option("--model", required=True, help="Model: HF id (facebook/opt-2.7b), alias (OPT-2.7B) or path to a config.json."),
            click.option("--batch-size", type=BatchSizeType(allow_auto_batch), default=32, show_default=True,
                         help="Sequences per static batch" + (" ('auto': the search picks a power of two)." if allow_auto_batch else ".")),
            click.option("--input-len", type=click.IntRange(min=1), default=128, show_default=True, help="Prompt tokens per sequence."),
            click.option("--output-len", type=click.IntRange(min=1), default=512, show_default=True, help="Generated tokens per sequence."),
            click.option("--safety-factor", type=FiniteFloatRange(0, 1, min_open=True), default=0.87, show_default=True,
                         help="Fraction of each GPU's memory the plan may use, in (0, 1]."),
            click.option("--adjust", is_flag=True, help="Overlap KV transfers / CPU attention with GPU compute (pipelined); default is the serial model."),
            click.option("--precision", type=PrecisionType(), default="2", show_default=True, help=f"Weight precision: {PRECISIONS}."),
            click.option("--kv-precision", type=PrecisionType(), default=None, help="KV-cache precision (default: as --precision)."),
            click.option("--spot", is_flag=True, help="Use spot prices instead of on-demand."),
            click.option("--offload-mode", type=click.Choice(["auto", "stream", "cpu"]), default="auto", show_default=True,
                         help="Offloaded KV: stream over PCIe, attention on the CPU, or the faster per option."),
            click.option("--engine", default="auto", show_default=True,
                         help="Engine(s) to predict for: auto (every engine that can run the model; not 'ideal'), "
                              "or NAME[,NAME...] (`llmopt catalog engines`); 'ideal' is the framework-agnostic what-if model."),
            click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
                         help="Extra catalog file (JSON or CSV) merged over the built-ins; repeatable."),
            click.option("--calibration", type=click.Path(dir_okay=False), default=None,
                         help="Calibration profile from `llmopt calibrate` (efficiencies, error bands)."),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout."),
        ]
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


def open_catalog(catalog_files: tuple[str, ...], calibration: str | None) -> Catalog:
    """Returns the built-in catalog with user files, then the calibration profile, merged over it."""
    return load_catalog(list(catalog_files), calibration)


def make_job(catalog: Catalog, model: str, batch_size: int | str, input_len: int, output_len: int,
             safety_factor: float, precision: Precision, kv_precision: Precision | None,
             offload_ratios: tuple[float, ...], offload_mode: str, adjust: bool, spot: bool,
             slo_tps: float = 0.0, slo_tps_per_seq: float = 0.0, confidence: float | None = None,
             engine: str | None = None) -> JobSpec:
    """Returns the JobSpec for CLI arguments; InputError if the lengths exceed the model's context."""
    card = catalog.model(model)
    card.check_context(input_len, output_len, "--input-len + --output-len")
    batches = AUTO_BATCH_SIZES if batch_size == "auto" else (int(batch_size),)
    engines = resolve_engines(catalog, engine, card.shape().model_type, precision.value,
                              kv_precision.value if kv_precision else None)
    return JobSpec(engines=engines, model=card, batch_sizes=batches, input_len=input_len, output_len=output_len,
                   precision=precision, kv_precision=kv_precision, safety_factor=safety_factor,
                   offload_ratios=offload_ratios, offload_mode=offload_mode,  # type: ignore[arg-type]
                   adjust=adjust, spot=spot, slo_tps=slo_tps, slo_tps_per_seq=slo_tps_per_seq,
                   confidence=confidence)


def warn_extrapolation(catalog: Catalog, table: Any, i: int | None) -> None:
    """Writes a warning on stderr if option ``i`` lies outside its GPU's calibrated ranges."""
    from llmopt_solver.table.build import EXTRAPOLATION_SIGMA_FACTOR

    if i is None or not len(table.extrapolation) or table.extrapolation[i] <= 0:
        return
    inst = table.instances[i]
    u = catalog.uncertainty(inst.gpu)
    d = float(table.extrapolation[i])
    have = ", ".join(f"{label} {r[0]}-{r[1]}" for label, r in (("batch", u.batch_range), ("input", u.input_len_range),
                                                             ("output", u.output_len_range)) if r)
    click.echo(f"llmopt: warning: {inst.gpu} was calibrated on {have}; batch {int(table.batch_size[i])}, input "
               f"{table.job.input_len}, output {table.job.output_len} lies {d:.1f} doublings outside: the "
               f"throughput band is widened x{EXTRAPOLATION_SIGMA_FACTOR ** d:.3g} (sigma).", err=True)
