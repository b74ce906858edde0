"""``llmopt catalog``: what llmopt knows (models, GPUs, instances, engines), with sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from llmopt_solver.catalog.loader import Catalog
from llmopt_solver.cli.common import open_catalog
from llmopt_solver.fileio import dumps
from llmopt_solver.present.console import TextTable, fill

Section = tuple[str, str]  # (title, text) of the text view: a rendered table, or lines


def _distinct(names: tuple[str, ...]) -> list[str]:
    """Returns ``names`` without case variants of an earlier one (model names match in any case)."""
    out: list[str] = []
    for n in names:
        if all(n.lower() != m.lower() for m in out):
            out.append(n)
    return out


def _models(cat: Catalog) -> tuple[list[dict[str, Any]], list[Section]]:
    rows, t, aliases = [], TextTable(), []
    for col, just in (("name", "left"), ("type", "left"), ("params B", "right"), ("layers", "right"),
                      ("hidden", "right"), ("heads/kv", "right"), ("experts", "right")):
        t.add_column(col, just, fold=col != "name")  # type: ignore[arg-type]
    for card in sorted(cat.models.values(), key=lambda c: c.name.lower()):
        s = card.shape()
        rec = {"name": card.name, "aliases": list(card.aliases), "model_type": s.model_type,
               "params": s.total_params, "num_layers": s.num_layers, "hidden_size": s.hidden_size,
               "num_heads": s.num_heads, "num_kv_heads": s.num_kv_heads, "num_experts": s.num_experts,
               "source": card.source, "as_of": card.as_of}
        rows.append(rec)
        t.add_row(card.name, s.model_type, f"{s.total_params / 1e9:.2f}", str(s.num_layers), str(s.hidden_size),
                  f"{s.num_heads}/{s.num_kv_heads}", str(s.num_experts))
        if card.aliases:
            aliases.append(fill(f"{card.name}: {', '.join(_distinct(card.aliases))}", initial_indent="  ",
                                subsequent_indent="    "))
    # the aliases as wrapped lines under the table: as a column they would fold mid-name
    return rows, [("Models (source and date of each: `llmopt catalog models --json`)", t.render())] + (
        [("Aliases (names match in any case)", "\n".join(aliases) + "\n")] if aliases else [])


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _gpus(cat: Catalog) -> tuple[list[dict[str, Any]], list[Section]]:
    spec, eff = TextTable(), TextTable()
    for col in ("gpu", "CC", "mem GB", "HBM GB/s", "fp16 TF", "fp8 TF", "int8 TOPS", "host GB/s", "NVL GB/s", "as of"):
        spec.add_column(col, "left" if col in ("gpu", "as of") else "right", fold=col != "gpu")
    for col in ("gpu", "prefill", "decode", "memory", "PCIe", "accuracy"):
        eff.add_column(col, "left" if col in ("gpu", "accuracy") else "right", fold=col != "gpu")
    rows = []
    for g in sorted(cat.gpus.values(), key=lambda g: g.name):
        e, u = cat.efficiency(g.name), cat.uncertainty(g.name)
        calibrated = g.name in cat.calibrated_gpus
        rec = g.model_dump()
        rec["efficiency"] = e.model_dump()
        rec["uncertainty"] = u.model_dump()
        rec["calibrated"] = calibrated
        rec["accuracy"] = "calibrated" if calibrated else ("spec+transferred" if cat.default_transferred else "spec-only")
        rows.append(rec)
        spec.add_row(g.name, "-" if g.compute_capability is None else f"{g.compute_capability:.1f}", _f(g.memory_gb),
                     _f(g.memory_bandwidth_gb_s), _f(g.fp16_tflops), _f(g.fp8_tflops), _f(g.int8_tops),
                     _f(g.host_link_gb_s), _f(g.nvlink_gb_s), g.as_of)
        eff.add_row(g.name, f"{e.compute_prefill:.2f}", f"{e.compute_decode:.2f}", f"{e.memory_bw:.2f}", f"{e.pcie:.2f}",
                    f"calibrated ({u.rows} rows)" if calibrated else
                    ("spec + transferred runtime" if cat.default_transferred else "spec-only"))
    return rows, [("GPUs (dense peaks; host = link to host memory, NVL = NVLink per GPU)", spec.render()),
                  ("GPU efficiencies (fractions of peak: compute in prefill and decode, memory and PCIe bandwidth)",
                   eff.render())]


def _instances(cat: Catalog) -> tuple[list[dict[str, Any]], list[Section]]:
    rows, tables = [], {}
    for i in sorted(cat.instances.values(), key=lambda i: (i.provider, i.gpu, i.gpu_count, i.name)):
        rows.append(i.model_dump())
        if i.provider not in tables:
            t = tables[i.provider] = TextTable()
            for col in ("instance", "GPUs", "vCPUs", "host GB", "$/h", "spot $/h", "region", "as of"):
                t.add_column(col, "left" if col in ("instance", "GPUs", "region", "as of") else "right",
                             fold=col != "instance")
        tables[i.provider].add_row(i.name, f"{i.gpu_count}x {i.gpu}", str(i.vcpus), f"{i.host_memory_gb:.0f}",
                                   "-" if i.hourly_usd is None else f"{i.hourly_usd:.4f}",
                                   "-" if i.spot_hourly_usd is None else f"{i.spot_hourly_usd:.4f}", i.region, i.as_of)
    return rows, [(f"Instances: {p} (USD/hour)", t.render()) for p, t in tables.items()]


def _kernels(precisions: Mapping[Any, str]) -> str:
    """Returns e.g. 'f: fp16, bf16; d: int8' (f = fused kernel, d = dequantised in the framework)."""
    by = {k: [p for p, v in precisions.items() if ("d" if v == "dequant" else "f") == k] for k in ("f", "d")}
    return "; ".join(f"{k}: {', '.join(ps)}" for k, ps in by.items() if ps)


def _engines(cat: Catalog) -> tuple[list[dict[str, Any]], list[Section]]:
    rows, t, prec = [], TextTable(), TextTable()
    for col in ("engine", "auto", "active-KV offload", "weight offload", "TP", "models", "as of"):
        t.add_column(col, fold=col != "engine")
    for col in ("engine", "weights (kernel)", "KV", "min CC"):
        prec.add_column(col, fold=col != "engine")
    for p in sorted(cat.engines.values(), key=lambda p: (p.tie_rank, p.name)):
        m = p.mechanisms
        rows.append(p.model_dump(mode="json"))
        w_off = m.weight_offload + {"all_or_none": " (all or none)"}.get(m.weight_offload_fractions, "") + (" (sync)" if m.weight_stream_sync else "")
        models = ", ".join(m.model_families) if m.model_families else "any"
        models += f" but {', '.join(m.unsupported_families)}" if m.unsupported_families else ""
        cc = ", ".join(([] if m.min_compute_capability is None else [f"{m.min_compute_capability:.1f}"])
                       + [f"{k} {v:.1f}" for k, v in m.precision_min_compute_capability.items()]) or "-"
        t.add_row(p.name, "yes" if p.auto else "no", ", ".join(m.active_kv_offload) or "none", w_off,
                  "yes" if m.tensor_parallel else "no", models, p.as_of)
        prec.add_row(p.name, _kernels(m.weight_precisions), ", ".join(m.kv_precisions), cc)
    return rows, [("Engines (--engine; 'auto' = every engine marked auto)", t.render()),
                  ("Engine precisions (kernels: f = fused, d = dequantised in the framework)", prec.render())]


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
    out = []
    for k in chosen:
        out += [f"{title}\n{text}" for title, text in built[k][1]]
        if k == "gpus":
            out[-1] += "Efficiency defaults and their sources: `llmopt catalog gpus --json` (efficiency_sources).\n"
        if k == "engines":
            out[-1] += "Sources per mechanism: `llmopt catalog engines --json`.\n"
    click.echo("\n".join(out), nl=False)
