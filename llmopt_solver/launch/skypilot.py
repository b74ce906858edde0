"""SkyPilot task YAML for a chosen option: resources from the instance, run from the engine recipe.

Written as plain text (no YAML library needed at run time); keys are those of SkyPilot's task
schema kept in data/skypilot_task_schema.json (source there). Tests load the text with pyyaml
and, when the ``skypilot`` extra is installed, with ``sky.Task.from_yaml``.
"""

from __future__ import annotations

import json
import re

from llmopt_solver.launch.flags import skypilot_schema
from llmopt_solver.launch.recipes import Recipe
from llmopt_solver.table.options import OptionTable


def _q(text: str) -> str:
    """Returns ``text`` as a YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def task_name(model_short: str, instance: str) -> str:
    """Returns a SkyPilot-safe task name: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", f"llmopt-{model_short}-{instance}".lower()).strip("-")[:63]


def sky_instance_type(provider: str, name: str) -> str:
    """Returns the ``instance_type`` SkyPilot takes for a catalog instance.

    GCP attaches T4 (and V100/P100) GPUs to an N1 machine type: the catalog names such a pairing
    'n1-standard-4+1xT4', SkyPilot takes ``instance_type: n1-standard-4`` with ``accelerators:
    T4:1`` (its GCP catalog lists N1 host types per attachable accelerator). Others: the name as is.
    """
    return name.split("+", 1)[0] if provider == "gcp" else name


def task_yaml(table: OptionTable, i: int, rec: Recipe, num_nodes: int = 1, comment: str = "") -> str:
    """Returns the SkyPilot task YAML text of option ``i`` launched with ``rec``.

    ``num_nodes`` instances of the same type (a plan's count); ``comment`` is prepended as
    '#' lines (e.g. the plan's time window).
    """
    inst, job, p = table.instances[i], table.job, table.pred
    sch = skypilot_schema()
    acc = sch["accelerators"].get(inst.gpu, inst.gpu)
    head = [f"# llmopt: {job.model.short_name} on {inst.name} ({inst.provider}), engine {rec.engine}; "
            f"predicted {p.tps[i]:.1f} tokens/s, ${table.cost_per_million_tokens_usd[i]:.4f} per million tokens",
            f"# flags checked against {rec.source}", f"# SkyPilot task schema: {sch['source']}"]
    head += [f"# {ln}" for ln in comment.splitlines() if ln.strip()]
    head += [f"# note: {n}" for n in rec.notes]
    lines = head + [
        f"name: {task_name(job.model.short_name, inst.name)}",
        "resources:",
        f"  cloud: {inst.provider}",
    ]
    if inst.region:
        lines.append(f"  region: {inst.region}")
    lines += [
        f"  instance_type: {_q(sky_instance_type(inst.provider, inst.name))}",
        f"  accelerators: {_q(f'{acc}:{inst.gpu_count}')}",
        f"  use_spot: {'true' if job.spot else 'false'}",
        f"num_nodes: {int(num_nodes)}",
        "setup: |",
        f"  {rec.install}",
        "run: |",
        f"  {rec.command}",
    ]
    return "\n".join(lines) + "\n"


def check_task(doc: dict) -> list[str]:
    """Returns problems of a loaded task mapping against the schema kept as data (empty: valid)."""
    sch, out = skypilot_schema(), []
    types = {"str": str, "int": int, "bool": bool, "dict": dict, "list": list}
    for k, v in doc.items():
        if k not in sch["task_keys"]:
            out.append(f"unknown task key {k!r}")
        elif not isinstance(v, types[sch["task_keys"][k]]):
            out.append(f"{k}: expected {sch['task_keys'][k]}")
    for k, v in (doc.get("resources") or {}).items():
        if k not in sch["resources_keys"]:
            out.append(f"unknown resources key {k!r}")
        elif not isinstance(v, types[sch["resources_keys"][k]]):
            out.append(f"resources.{k}: expected {sch['resources_keys'][k]}")
    cloud = (doc.get("resources") or {}).get("cloud")
    if cloud is not None and cloud not in sch["clouds"]:
        out.append(f"resources.cloud: {cloud!r} is not a SkyPilot cloud")
    return out
