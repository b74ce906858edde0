"""``llmopt solve``: the cheapest instance and offload level for one job."""

from __future__ import annotations

import dataclasses

import click

from llmopt_solver.errors import InfeasibleError
from llmopt_solver.fileio import dumps
from llmopt_solver.launch.emit import EMIT_CHOICES, engines_for_emit, launch
from llmopt_solver.optimize import offload_levels, optimize, select_instances
from llmopt_solver.present.solve import solve_json, solve_text
from llmopt_solver.cli.common import csv_list, make_job, open_catalog, workload_options


@click.command()
@workload_options(allow_auto_batch=True)
@click.option("--slo-tps", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Minimum generated tokens per second of the batch (b*n / total time).")
@click.option("--slo-tps-per-seq", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Minimum tokens per second per sequence (n / total time).")
@click.option("--gpus", default=None, help="Only these GPU types, comma-separated (e.g. L4,A10G).")
@click.option("--instances", default=None, help="Only these instance types, comma-separated.")
@click.option("--provider", default=None, help="Only these providers, comma-separated: aws, gcp, azure.")
@click.option("--offload-step", type=float, default=0.1, show_default=True,
              help="Offload ratio grid step; must divide 1 (0.05, 0.1, 0.25, ...).")
@click.option("--weight-offload-step", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Grid step of the weight-offload fraction (weights in host memory, streamed each pass); 0 disables.")
@click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=None,
              help="Meet the SLO and memory at this confidence (e.g. 0.9) using the error band.")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Solver time limit, seconds.")
@click.option("--solver", type=click.Choice(["cbc", "highs"]), default="cbc", show_default=True)
@click.option("--emit", type=click.Choice(EMIT_CHOICES), default=None,
              help="Print the launch recipe of the pick: an engine's command line, or a SkyPilot task YAML.")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True, help="Runners-up to show.")
def solve(model: str, batch_size: int | str, input_len: int, output_len: int, safety_factor: float,
          adjust: bool, precision, kv_precision, spot: bool, offload_mode: str, engine: str,
          catalog_files: tuple[str, ...], calibration: str | None, as_json: bool, slo_tps: float,
          slo_tps_per_seq: float, gpus: str | None, instances: str | None, provider: str | None,
          offload_step: float, weight_offload_step: float, confidence: float | None, time_limit: float | None, solver: str,
          top: int, emit: str | None) -> None:
    """Pick the cheapest instance and KV offload ratio that meets the SLO."""
    catalog = open_catalog(catalog_files, calibration)
    ratios = offload_levels(offload_step)
    job = make_job(catalog, model, batch_size, input_len, output_len, safety_factor, precision,
                   kv_precision, ratios, offload_mode, adjust, spot, slo_tps, slo_tps_per_seq, confidence,
                   engine=engine)
    if weight_offload_step:
        offload_levels(weight_offload_step)  # same divisibility rule as --offload-step
    job = dataclasses.replace(job, weight_offload_step=weight_offload_step,
                              engines=engines_for_emit(emit, job.engines))
    pool = select_instances(catalog, csv_list(gpus), csv_list(instances), csv_list(provider))
    outcome = optimize(catalog, job, pool, solver=solver, time_limit_s=time_limit)  # type: ignore[arg-type]
    text, launch_doc = ("", None)
    if emit and outcome.best is not None:
        text, launch_doc = launch(outcome.table, outcome.best, emit)
    if as_json:
        doc = solve_json(outcome)
        if launch_doc is not None:
            doc["launch"] = launch_doc
        click.echo(dumps(doc), nl=False)
    else:
        click.echo(solve_text(outcome, top) + ("\n" + text if text else ""), nl=False)
    if outcome.best is None:
        assert outcome.diagnosis is not None
        raise InfeasibleError(outcome.diagnosis.message)
