"""``llmopt solve``: the cheapest instance and offload level for one job."""

from __future__ import annotations

import dataclasses
import time

import click

from llmopt_solver.cli.common import (
    MIN_OFFLOAD_STEP,
    FiniteFloatRange,
    check_grid,
    csv_list,
    make_job,
    open_catalog,
    warn_extrapolation,
    workload_options,
)
from llmopt_solver.errors import InfeasibleError, InputError
from llmopt_solver.fileio import dumps, write_output
from llmopt_solver.launch.emit import EMIT_CHOICES, engines_for_emit, launch
from llmopt_solver.optimize import optimize
from llmopt_solver.selection import offload_levels, select_instances
from llmopt_solver.table.engines import grid_rows

# The frontier, the sweep, plotting and their presenters are imported where used (``solve`` without
# --frontier/--sweep-slo/--plot/--report needs none of them); rich only when a table must fold.


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
              help="Time limit of the whole command, seconds (the solver gets what is left; CBC counts its CPU seconds).")
@click.option("--solver", type=click.Choice(["cbc", "highs"]), default="cbc", show_default=True)
@click.option("--emit", type=click.Choice(EMIT_CHOICES), default=None,
              help="Print the launch recipe of the pick: an engine's command line, or a SkyPilot task YAML.")
@click.option("--top", type=click.IntRange(min=0), default=5, show_default=True, help="Runners-up to show.")
@click.option("--frontier", "show_frontier", is_flag=True,
              help="List the Pareto-optimal options over (cost per million tokens, TPS); the pick is marked.")
@click.option("--num-requests", type=click.IntRange(min=1, max=10**15), default=None,
              help="Requests in the whole job: adds the frontier over (job cost, job time) (implies --frontier).")
@click.option("--sweep-slo", default=None, metavar="A:B:N",
              help="Also re-solve for N throughput SLOs from A to B tokens/s and print the cheapest option per SLO.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write the frontier picture to FILE.png or FILE.svg (needs the plot extra).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report to FILE.html (picture with the plot extra).")
@click.option("--wide", is_flag=True, help="Show every column of the tables (provider, band, memory, time); default fits 100 columns.")
def solve(model: str, batch_size: int | str, input_len: int, output_len: int, safety_factor: float,
          adjust: bool, precision, kv_precision, spot: bool, offload_mode: str, engine: str,
          catalog_files: tuple[str, ...], calibration: str | None, as_json: bool, slo_tps: float,
          slo_tps_per_seq: float, gpus: str | None, instances: str | None, provider: str | None,
          offload_step: float, weight_offload_step: float, confidence: float | None, time_limit: float | None, solver: str,
          top: int, emit: str | None, show_frontier: bool, num_requests: int | None, sweep_slo: str | None,
          plot_file: str | None, report_file: str | None, wide: bool) -> None:
    """Pick the cheapest instance and KV offload ratio that meets the SLO."""
    started = time.monotonic()
    for field, step in (("--offload-step", offload_step), ("--weight-offload-step", weight_offload_step)):
        if 0 < step < MIN_OFFLOAD_STEP:
            raise InputError(field=field, problem=f"{step:g} is below the limit {MIN_OFFLOAD_STEP:g}",
                             allowed=f"1/k for a whole k from 1 to {round(1 / MIN_OFFLOAD_STEP)} (e.g. 0.01, 0.05, 0.1)")
    gpu_list, inst_list = csv_list(gpus, "--gpus"), csv_list(instances, "--instances")
    prov_list = csv_list(provider, "--provider")
    sweep = None
    if sweep_slo:
        from llmopt_solver.frontier import parse_sweep

        sweep = parse_sweep(sweep_slo)
    if plot_file or report_file:
        from llmopt_solver.present.plotting import check_out_files

        check_out_files(plot_file, report_file)  # exit 2 before any work (suffix; matplotlib missing)
    catalog = open_catalog(catalog_files, calibration)
    ratios = offload_levels(offload_step)
    job = make_job(catalog, model, batch_size, input_len, output_len, safety_factor, precision,
                   kv_precision, ratios, offload_mode, adjust, spot, slo_tps, slo_tps_per_seq, confidence,
                   engine=engine)
    if weight_offload_step:
        offload_levels(weight_offload_step)  # same divisibility rule as --offload-step
    job = dataclasses.replace(job, weight_offload_step=weight_offload_step,
                              engines=engines_for_emit(emit, job.engines))
    pool = select_instances(catalog, gpu_list, inst_list, prov_list)
    # the grid over engines, as instance-equivalents of the seed's (instance x batch x level x mode) grid
    per_inst = len(job.batch_sizes) * len(ratios) * (2 if offload_mode == "auto" else 1)
    check_grid(-(-grid_rows(catalog, job, pool) // per_inst), len(job.batch_sizes), len(ratios),
               2 if offload_mode == "auto" else 1)
    if time_limit is not None:  # --time-limit bounds the whole command: the solver gets what is left
        time_limit = max(0.5, time_limit - (time.monotonic() - started))
    outcome = optimize(catalog, job, pool, solver=solver, time_limit_s=time_limit)  # type: ignore[arg-type]
    warn_extrapolation(catalog, outcome.table, outcome.best)
    launch_text, launch_doc = ("", None)
    if emit and outcome.best is not None:
        launch_text, launch_doc = launch(outcome.table, outcome.best, emit)
    show_frontier = show_frontier or num_requests is not None
    front, rows = None, None
    if show_frontier or sweep or plot_file or report_file:
        from llmopt_solver.frontier import frontier, slo_values
        from llmopt_solver.frontier import sweep_slo as sweep_slo_rows

        front = frontier(outcome.table, outcome.best, num_requests) if outcome.best is not None else None
        rows = sweep_slo_rows(outcome.table, slo_values(*sweep), solver=solver,  # type: ignore[arg-type]
                              time_limit_s=time_limit) if sweep else None
    if show_frontier or rows is not None:
        from llmopt_solver.present.frontier import frontier_text, sweep_json, sweep_text
    if as_json:
        from llmopt_solver.present.solve import solve_json

        doc = solve_json(outcome)
        if show_frontier:
            doc["frontier"] = front.to_json() if front is not None else None
        if rows is not None:
            doc["sweep_slo"] = sweep_json(outcome.table, rows)
        if launch_doc is not None:
            doc["launch"] = launch_doc
        click.echo(dumps(doc), nl=False)
    else:
        from llmopt_solver.present.solve import solve_text

        text = solve_text(outcome, top, wide)
        if show_frontier and front is not None:
            text += frontier_text(front, wide)
        if rows is not None:
            text += sweep_text(outcome.table, rows, wide)
        if launch_text:
            text += "\n" + launch_text
        click.echo(text, nl=False)
    if outcome.best is None:
        assert outcome.diagnosis is not None
        wanted = [f for f, on in (("--frontier", show_frontier), ("--plot", plot_file), ("--report", report_file)) if on]
        note = f" (no {', '.join(wanted)} output written)" if wanted else ""
        raise InfeasibleError(outcome.diagnosis.message + note)
    if plot_file:
        assert front is not None
        from llmopt_solver.present.plot_solve import frontier_figure
        from llmopt_solver.present.plotting import save

        save(frontier_figure(front), plot_file)
    if report_file:
        from llmopt_solver.present.report_solve import solve_report_html

        assert front is not None
        write_output(report_file, solve_report_html(outcome, front, rows, catalog))
