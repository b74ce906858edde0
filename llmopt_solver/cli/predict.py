"""``llmopt predict``: the breakdown for one model/workload on one instance at one offload ratio."""

from __future__ import annotations

import dataclasses

import click
import numpy as np

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.cli.common import FiniteFloatRange, make_job, open_catalog, warn_extrapolation, workload_options
from llmopt_solver.errors import InfeasibleError, InputError, ReasonKind
from llmopt_solver.fileio import dumps
from llmopt_solver.launch.emit import EMIT_CHOICES, engines_for_emit, launch
from llmopt_solver.optimize import memory_totals
from llmopt_solver.present.solve import model_doc, predict_text, workload_doc
from llmopt_solver.table.build import build_table
from llmopt_solver.table.engines import default_kv, fixed_choice_problem
from llmopt_solver.table.options import JobSpec, OptionTable


def runnable_engines(catalog: Catalog, job: JobSpec, inst: InstanceSpec, spec: str) -> tuple[str, ...]:
    """Returns the job's engines that can execute this fixed choice; InputError (exit 2) if none."""
    probs = {n: fixed_choice_problem(catalog.engine(n), job, inst.gpu_count, catalog.gpu(inst.gpu)) for n in job.engines}
    ok = tuple(n for n in job.engines if probs[n] is None)
    if not ok:
        able = [n for n in catalog.engines if fixed_choice_problem(catalog.engine(n), job, inst.gpu_count, catalog.gpu(inst.gpu)) is None
                and catalog.engine(n).cannot_run(job.model.shape().model_type, job.precision.value,
                                                 job.kv_precision.value if job.kv_precision
                                                 else default_kv(catalog.engine(n), job.precision.value)) is None]
        first = next(iter(probs.values()))
        raise InputError(field="--engine", problem=first if len(probs) == 1 else f"no engine of {spec!r} can run this ({first})",
                         allowed=", ".join(sorted(able)) or "none")
    return ok


def fastest_row(table: OptionTable) -> int:
    """Returns the option predict reports: the feasible one with the shortest batch time (engine
    tie rank breaks ties), else the shortest overall."""
    t = np.where(np.isfinite(table.pred.total_s), table.pred.total_s, np.inf)
    key = [(not table.feasible[i], round(float(t[i]), 12), int(table.engine_rank[i])) for i in range(len(table))]
    return min(range(len(table)), key=lambda i: key[i])


def resolve_instance(catalog: Catalog, instance: str | None, gpu: str | None, gpu_count: int) -> InstanceSpec:
    """Returns the named instance, or for --gpu the cheapest catalog instance with that GPU count.

    With no such instance, a synthetic one: host memory twice the GPUs' memory, 8 vCPUs per GPU,
    no price.
    """
    if instance and gpu:
        raise InputError("--instance and --gpu: give one of them, not both.")
    if instance:
        return catalog.instance(instance)
    if not gpu:
        raise InputError("--instance or --gpu: one is required (see `llmopt catalog instances`).")
    g = catalog.gpu(gpu)
    same = [i for i in catalog.instances.values() if i.gpu == g.name and i.gpu_count == gpu_count]
    priced = sorted((i for i in same if i.hourly_usd), key=lambda i: (i.hourly_usd, i.name))
    if priced:
        return priced[0]
    return InstanceSpec(name=f"{gpu_count}x{g.name} (synthetic: no such catalog instance)", provider="other", gpu=g.name, gpu_count=gpu_count,
                        vcpus=8 * gpu_count, host_memory_gb=2 * g.memory_gb * gpu_count,
                        source="synthetic (llmopt predict --gpu)", as_of=g.as_of)


@click.command()
@workload_options(allow_auto_batch=False)
@click.option("--instance", default=None, help="Instance type (see `llmopt catalog instances`).")
@click.option("--gpu", default=None, help="GPU type instead of an instance (cheapest instance with --gpu-count GPUs).")
@click.option("--gpu-count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--offload-ratio", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of the full-length KV cache in host memory.")
@click.option("--weight-offload-ratio", type=FiniteFloatRange(0, 1), default=0.0, show_default=True,
              help="Fraction of the weights in host memory, streamed to the GPU every pass.")
@click.option("--slo-tps", type=FiniteFloatRange(min=0), default=0.0, help="Report whether this SLO is met.")
@click.option("--emit", type=click.Choice(EMIT_CHOICES), default=None,
              help="Print the launch recipe: an engine's command line, or a SkyPilot task YAML.")
def predict(model: str, batch_size: int, input_len: int, output_len: int, safety_factor: float,
            adjust: bool, precision, kv_precision, spot: bool, offload_mode: str, engine: str,
            catalog_files: tuple[str, ...], calibration: str | None, as_json: bool,
            instance: str | None, gpu: str | None, gpu_count: int, offload_ratio: float,
            weight_offload_ratio: float, slo_tps: float, emit: str | None) -> None:
    """Predict memory, time and cost of one batch on one instance."""
    catalog = open_catalog(catalog_files, calibration)
    inst = resolve_instance(catalog, instance, gpu, gpu_count)
    job = make_job(catalog, model, batch_size, input_len, output_len, safety_factor, precision,
                   kv_precision, (offload_ratio,), offload_mode, adjust, spot, slo_tps, engine=engine)
    job = dataclasses.replace(job, weight_offload_fixed=weight_offload_ratio)
    job = dataclasses.replace(job, engines=engines_for_emit(emit, runnable_engines(catalog, job, inst, engine)))
    table = build_table(catalog, job, [inst])
    row = fastest_row(table)
    table.inst_reasons = [[r for r in rs if not (inst.provider == "other" and r.kind is ReasonKind.PRICE)]
                          for rs in table.inst_reasons]
    memory = memory_totals(table, engine=str(table.engine[row]))
    warn_extrapolation(catalog, table, row)
    text, launch_doc = launch(table, row, emit) if emit else ("", None)
    if as_json:
        doc = table.record(row)
        doc["memory"] = memory
        doc["model"] = model_doc(table)
        doc["workload"] = workload_doc(table)
        if launch_doc is not None:
            doc["launch"] = launch_doc
        click.echo(dumps(doc), nl=False)
    else:
        click.echo(predict_text(table, row, memory) + ("\n" + text if text else ""), nl=False)
    reasons = table.reasons(row)
    if reasons:  # the numbers are printed above; the exit code says the configuration does not work
        raise InfeasibleError(f"{inst.name}: " + "; ".join(r.text for r in reasons) + ".")
