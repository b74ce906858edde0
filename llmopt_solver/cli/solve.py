"""``llmopt solve``: the cheapest instance and offload level for one job."""

from __future__ import annotations

import dataclasses
import time

import click

from llmopt_solver.errors import InfeasibleError
from llmopt_solver.fileio import dumps
from llmopt_solver.optimize import offload_levels, optimize, select_instances
from llmopt_solver.present.solve import solve_json, solve_text
from llmopt_solver.cli.common import (MIN_OFFLOAD_STEP, FiniteFloatRange, check_grid, csv_list, make_job,
                                      open_catalog, warn_extrapolation, workload_options)
from llmopt_solver.errors import InputError


@click.command()
@workload_options(allow_auto_batch=True)
@click.option("--slo-tps", type=FiniteFloatRange(min=0), default=0.0, show_default=True,
              help="Minimum generated tokens per second of the batch (b*n / total time).")
@click.option("--slo-tps-per-seq", type=FiniteFloatRange(min=0), default=0.0, show_default=True,
              help="Minimum tokens per second per sequence (n / total time).")
@click.option("--gpus", default=None, help="Only these GPU types, comma-separated (e.g. L4,A10G).")
@click.option("--instances", default=None, help="Only these instance types, comma-separated.")
@click.option("--provider", default=None, help="Only these providers, comma-separated: aws, gcp, azure.")
@click.option("--offload-step", type=FiniteFloatRange(), default=0.1, show_default=True,
              help="Offload ratio grid step; must divide 1 (0.05, 0.1, 0.25, ...).")
@click.option("--weight-offload-step", type=FiniteFloatRange(0, 1), default=0.1, show_default=True,
              help="Grid step of the weight-offload fraction (weights in host memory, streamed each pass); 0 disables.")
@click.option("--confidence", type=FiniteFloatRange(0.5, 1, max_open=True), default=None,
              help="Meet the SLO and memory at this confidence (e.g. 0.9) using the error band.")
@click.option("--time-limit", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Solver time limit, seconds.")
@click.option("--solver", type=click.Choice(["cbc", "highs"]), default="cbc", show_default=True)
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True, help="Runners-up to show.")
def solve(model: str, batch_size: int | str, input_len: int, output_len: int, safety_factor: float,
          adjust: bool, precision, kv_precision, spot: bool, offload_mode: str,
          catalog_files: tuple[str, ...], calibration: str | None, as_json: bool, slo_tps: float,
          slo_tps_per_seq: float, gpus: str | None, instances: str | None, provider: str | None,
          offload_step: float, weight_offload_step: float, confidence: float | None, time_limit: float | None, solver: str,
          top: int) -> None:
    """Pick the cheapest instance and KV offload ratio that meets the SLO."""
    started = time.monotonic()
    for field, step in (("--offload-step", offload_step), ("--weight-offload-step", weight_offload_step)):
        if 0 < step < MIN_OFFLOAD_STEP:
            raise InputError(field=field, problem=f"{step:g} is below the limit {MIN_OFFLOAD_STEP:g}",
                             allowed=f"1/k for a whole k from 1 to {round(1 / MIN_OFFLOAD_STEP)} (e.g. 0.01, 0.05, 0.1)")
    gpu_list, inst_list = csv_list(gpus, "--gpus"), csv_list(instances, "--instances")
    prov_list = csv_list(provider, "--provider")
    catalog = open_catalog(catalog_files, calibration)
    ratios = offload_levels(offload_step)
    job = make_job(catalog, model, batch_size, input_len, output_len, safety_factor, precision,
                   kv_precision, ratios, offload_mode, adjust, spot, slo_tps, slo_tps_per_seq, confidence)
    if weight_offload_step:
        offload_levels(weight_offload_step)  # same divisibility rule as --offload-step
    job = dataclasses.replace(job, weight_offload_step=weight_offload_step)
    pool = select_instances(catalog, gpu_list, inst_list, prov_list)
    check_grid(len(pool), len(job.batch_sizes), len(ratios), 2 if offload_mode == "auto" else 1)
    if time_limit is not None:  # --time-limit bounds the whole command: the solver gets what is left
        time_limit = max(0.5, time_limit - (time.monotonic() - started))
    outcome = optimize(catalog, job, pool, solver=solver, time_limit_s=time_limit)  # type: ignore[arg-type]
    warn_extrapolation(catalog, outcome.table, outcome.best)
    if as_json:
        click.echo(dumps(solve_json(outcome)), nl=False)
    else:
        click.echo(solve_text(outcome, top), nl=False)
    if outcome.best is None:
        assert outcome.diagnosis is not None
        raise InfeasibleError(outcome.diagnosis.message)
