"""``llmopt predict``: the breakdown for one model/workload on one instance at one offload ratio."""

from __future__ import annotations

import dataclasses

import click

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.errors import InfeasibleError, InputError, ReasonKind
from llmopt_solver.fileio import dumps
from llmopt_solver.catalog.records import InstanceSpec
from llmopt_solver.optimize import memory_totals
from llmopt_solver.present.solve import model_doc, predict_text, workload_doc
from llmopt_solver.table.options import build_table
from llmopt_solver.cli.common import FiniteFloatRange, make_job, open_catalog, warn_extrapolation, workload_options


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
def predict(model: str, batch_size: int, input_len: int, output_len: int, safety_factor: float,
            adjust: bool, precision, kv_precision, spot: bool, offload_mode: str,
            catalog_files: tuple[str, ...], calibration: str | None, as_json: bool,
            instance: str | None, gpu: str | None, gpu_count: int, offload_ratio: float,
            weight_offload_ratio: float, slo_tps: float) -> None:
    """Predict memory, time and cost of one batch on one instance."""
    catalog = open_catalog(catalog_files, calibration)
    inst = resolve_instance(catalog, instance, gpu, gpu_count)
    job = make_job(catalog, model, batch_size, input_len, output_len, safety_factor, precision,
                   kv_precision, (offload_ratio,), offload_mode, adjust, spot, slo_tps)
    job = dataclasses.replace(job, weight_offload_fixed=weight_offload_ratio)
    table = build_table(catalog, job, [inst])
    table.inst_reasons = [[r for r in rs if not (inst.provider == "other" and r.kind is ReasonKind.PRICE)]
                          for rs in table.inst_reasons]
    memory = memory_totals(table)
    warn_extrapolation(catalog, table, 0)
    if as_json:
        doc = table.record(0)
        doc["memory"] = memory
        doc["model"] = model_doc(table)
        doc["workload"] = workload_doc(table)
        click.echo(dumps(doc), nl=False)
    else:
        click.echo(predict_text(table, 0, memory), nl=False)
    reasons = table.reasons(0)
    if reasons:  # the numbers are printed above; the exit code says the configuration does not work
        raise InfeasibleError(f"{inst.name}: " + "; ".join(r.text for r in reasons) + ".")
