"""``llmopt catalog``: what llmopt knows (models, GPUs, instances, engines), with sources."""

from __future__ import annotations

import io
from typing import Any

import click
from rich.table import Table

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.cli.common import open_catalog
from llmopt_solver.fileio import dumps
from llmopt_solver.present.console import console


def _models(cat: Catalog) -> tuple[list[dict[str, Any]], Table]:
    rows, t = [], Table(title="Models", title_justify="left")
    for col in ("name", "aliases", "type", "params (B)", "layers", "hidden", "heads/kv", "experts", "source"):
        t.add_column(col)
    for card in sorted(cat.models.values(), key=lambda c: c.name.lower()):
        s = card.shape()
        rec = {"name": card.name, "aliases": list(card.aliases), "model_type": s.model_type,
               "params": s.total_params, "num_layers": s.num_layers, "hidden_size": s.hidden_size,
               "num_heads": s.num_heads, "num_kv_heads": s.num_kv_heads, "num_experts": s.num_experts,
               "source": card.source, "as_of": card.as_of}
        rows.append(rec)
        t.add_row(card.name, ", ".join(card.aliases), s.model_type, f"{s.total_params / 1e9:.2f}",
                  str(s.num_layers), str(s.hidden_size), f"{s.num_heads}/{s.num_kv_heads}",
                  str(s.num_experts), card.source)
    return rows, t


def _gpus(cat: Catalog) -> tuple[list[dict[str, Any]], Table]:
    rows, t = [], Table(title="GPUs (dense peaks; efficiencies are fractions of peak)", title_justify="left")
    for col in ("gpu", "CC", "mem GB", "HBM GB/s", "fp16 TF", "fp8 TF", "int8 TOPS", "host link GB/s", "NVLink GB/s",
                "eff prefill/decode/mem/pcie", "accuracy", "as of"):
        t.add_column(col)
    for g in sorted(cat.gpus.values(), key=lambda g: g.name):
        e, u = cat.efficiency(g.name), cat.uncertainty(g.name)
        calibrated = g.name in cat.calibrated_gpus
        rec = g.model_dump()
        rec["efficiency"] = e.model_dump()
        rec["uncertainty"] = u.model_dump()
        rec["calibrated"] = calibrated
        rec["accuracy"] = "calibrated" if calibrated else ("spec+transferred" if cat.default_transferred else "spec-only")
        rows.append(rec)

        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:g}"

        t.add_row(g.name, "-" if g.compute_capability is None else f"{g.compute_capability:.1f}", f(g.memory_gb), f(g.memory_bandwidth_gb_s), f(g.fp16_tflops), f(g.fp8_tflops),
                  f(g.int8_tops), f(g.host_link_gb_s), f(g.nvlink_gb_s),
                  f"{e.compute_prefill:.2f}/{e.compute_decode:.2f}/{e.memory_bw:.2f}/{e.pcie:.2f}",
                  f"calibrated ({u.rows} rows)" if calibrated else
                  ("spec + transferred runtime" if cat.default_transferred else "spec-only"), g.as_of)
    return rows, t


def _instances(cat: Catalog) -> tuple[list[dict[str, Any]], Table]:
    rows, t = [], Table(title="Instances (USD/hour)", title_justify="left")
    for col in ("provider", "instance", "GPUs", "vCPUs", "host GB", "on-demand", "spot", "region", "as of"):
        t.add_column(col)
    for i in sorted(cat.instances.values(), key=lambda i: (i.provider, i.gpu, i.gpu_count, i.name)):
        rows.append(i.model_dump())
        t.add_row(i.provider, i.name, f"{i.gpu_count}x {i.gpu}", str(i.vcpus), f"{i.host_memory_gb:.0f}",
                  "-" if i.hourly_usd is None else f"{i.hourly_usd:.4f}",
                  "-" if i.spot_hourly_usd is None else f"{i.spot_hourly_usd:.4f}", i.region, i.as_of)
    return rows, t


def _engines(cat: Catalog) -> tuple[list[dict[str, Any]], Table]:
    rows, t = [], Table(title="Engines (--engine; 'auto' = every engine marked auto)", title_justify="left")
    for col in ("engine", "auto", "active-KV offload", "weight offload", "weights (kernel)", "KV", "TP", "models", "min CC", "as of"):
        t.add_column(col)
    for p in sorted(cat.engines.values(), key=lambda p: (p.tie_rank, p.name)):
        m = p.mechanisms
        rows.append(p.model_dump(mode="json"))
        w_off = m.weight_offload + {"all_or_none": " (all or none)"}.get(m.weight_offload_fractions, "") + (" (sync)" if m.weight_stream_sync else "")
        models = ", ".join(m.model_families) if m.model_families else "any"
        models += f" but {', '.join(m.unsupported_families)}" if m.unsupported_families else ""
        cc = ", ".join(([] if m.min_compute_capability is None else [f"{m.min_compute_capability:.1f}"])
                       + [f"{k} {v:.1f}" for k, v in m.precision_min_compute_capability.items()]) or "-"
        t.add_row(p.name, "yes" if p.auto else "no", ", ".join(m.active_kv_offload) or "none", w_off,
                  ", ".join(f"{k}({'d' if v == 'dequant' else 'f'})" for k, v in m.weight_precisions.items()),
                  ", ".join(m.kv_precisions), "yes" if m.tensor_parallel else "no", models, cc, p.as_of)
    return rows, t


@click.command()
@click.argument("what", type=click.Choice(["models", "gpus", "instances", "engines", "all"]), default="all")
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog file (JSON or CSV) merged over the built-ins; repeatable.")
@click.option("--calibration", type=click.Path(dir_okay=False), default=None, help="Calibration profile.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def catalog(what: str, catalog_files: tuple[str, ...], calibration: str | None, as_json: bool) -> None:
    """List known models, GPUs and instances with their sources."""
    cat = open_catalog(catalog_files, calibration)
    parts = {"models": _models, "gpus": _gpus, "instances": _instances, "engines": _engines}
    chosen = list(parts) if what == "all" else [what]
    built = {k: parts[k](cat) for k in chosen}
    if as_json:
        doc: dict[str, Any] = {k: v[0] for k, v in built.items()}
        if "gpus" in chosen:
            doc["efficiency_sources"] = cat.efficiency_sources
        click.echo(dumps(doc), nl=False)
        return
    buf = io.StringIO()
    con = console(buf, width=200)
    for k in chosen:
        con.print(built[k][1])
        if k == "gpus":
            con.print("Efficiency defaults and their sources: `llmopt catalog gpus --json` (efficiency_sources).")
        if k == "engines":
            con.print("Kernels: f = fused, d = dequantised in the framework. Sources per mechanism: `llmopt catalog engines --json`.")
    click.echo(buf.getvalue(), nl=False)
