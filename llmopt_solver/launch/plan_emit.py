"""``llmopt plan --emit skypilot --emit-dir DIR``: one SkyPilot task YAML per assignment."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llmopt_solver.errors import InputError
from llmopt_solver.fileio import write_atomic
from llmopt_solver.launch.emit import launch


def plan_task_files(res: Any) -> list[tuple[str, str]]:
    """Returns (file name, YAML text) per assignment of a solved plan, in job order.

    ``num_nodes`` is the assignment's instance count: every node runs its own engine on its share
    of the job's requests (SKYPILOT_NODE_RANK of SKYPILOT_NUM_NODES), within the billed window.
    """
    out = []
    for j, jo in enumerate(res.jobs):
        for k, a in enumerate(res.job_assignments(j)):
            t, i = jo.table, a.option
            comment = (f"plan job {jo.job.name!r}, assignment {k + 1}: {a.count} x {t.instances[i].name} from "
                       f"{a.start_h:.2f} h to {a.end_h:.2f} h (start-up included), {a.requests} requests, "
                       f"{a.batches} batches per instance\n"
                       "each node runs its own engine on its share of the requests "
                       "(SKYPILOT_NODE_RANK of SKYPILOT_NUM_NODES)")
            try:
                text, _ = launch(t, i, "skypilot", num_nodes=a.count, comment=comment)
            except InputError as exc:
                raise InputError(field=f"--emit (job {jo.job.name!r})", problem=exc.problem, allowed=exc.allowed,
                                 hint="Restrict the job with --engine or its 'engine' key to engines with a recipe.") from None
            stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{jo.job.name}-{k + 1}-{t.instances[i].name}").strip("-")
            out.append((f"{stem}.yaml", text))
    return out


def write_plan_tasks(res: Any, emit_dir: str) -> list[str]:
    """Writes the task files into ``emit_dir`` (created if missing) atomically and returns their
    paths; InputError (exit 2) before writing anything if one of them already exists."""
    d = Path(emit_dir)
    if d.exists() and not d.is_dir():
        raise InputError(field="--emit-dir", problem=f"{emit_dir} is not a directory", allowed="a directory path")
    files = plan_task_files(res)
    clash = [n for n, _ in files if (d / n).exists()]
    if clash:
        raise InputError(field="--emit-dir", problem=f"{d / clash[0]} already exists (not overwritten)",
                         allowed="an empty or new directory", hint="Remove the old files or choose another --emit-dir.")
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files:
        write_atomic(str(d / name), text)
        paths.append(str(d / name))
    return paths
