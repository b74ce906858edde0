"""``llmopt plan FILE.json``: the cheapest plan for a portfolio of jobs under deadlines and quotas."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from llmopt_solver.cli.common import FiniteFloatRange
from llmopt_solver.errors import InfeasibleError, InputError
from llmopt_solver.fileio import check_output, dumps, write_output

# Show a spinner only when building and solving take longer than this (LLMOPT_PROGRESS_AFTER_S overrides,
# e.g. 0 to see it at once; the tests use that).
PROGRESS_AFTER_S = float(os.environ.get("LLMOPT_PROGRESS_AFTER_S", "1.0"))


class DelayedStatus:
    """A rich spinner on stderr that appears only after PROGRESS_AFTER_S; ``update`` sets its text.

    Shows the elapsed time of the whole run beside the latest message (which, while the solver
    runs, carries its own elapsed time, best plan and bound). Off when stderr is not a terminal.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.message = "planning"
        self._t0 = time.perf_counter()
        self._status: Any = None
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> DelayedStatus:
        if self.enabled:
            self._timer = threading.Timer(PROGRESS_AFTER_S, self._start)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _start(self) -> None:
        from rich.console import Console

        with self._lock:
            if self._done:
                return
            self._status = Console(stderr=True).status(self._text())
            self._status.start()

    def _text(self) -> str:
        return f"{self.message} [{time.perf_counter() - self._t0:.0f} s]"

    def update(self, message: str) -> None:
        self.message = message
        with self._lock:
            if self._status is not None:
                self._status.update(self._text())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self._status is not None:
                self._status.stop()


def plan_inputs(plan_file: str) -> list[str]:
    """Returns the files a plan reads: itself, its catalogs and local model configs (best effort)."""
    out = [plan_file]
    try:
        data = json.loads(Path(plan_file).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return out
    if not isinstance(data, dict):
        return out
    base = Path(plan_file).parent
    cat_list = data.get("catalog")
    cats = cat_list if isinstance(cat_list, list) else []
    out += [str(base / c) for c in cats if isinstance(c, str)]
    jobs = data.get("jobs")
    for job in jobs if isinstance(jobs, list) else []:
        model = job.get("model") if isinstance(job, dict) else None
        if isinstance(model, str) and model.lower().endswith(".json"):
            out += [model, str(base / model)]
    return out


@click.command()
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON document to this file (atomically).")
@click.option("--time-limit", type=FiniteFloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Solver time limit, seconds (CBC: its CPU seconds; per solve; makespan plans solve twice).")
@click.option("--gap", type=FiniteFloatRange(0, 1), default=0.005, show_default=True,
              help="Stop when the plan is proven within this relative gap of the optimum.")
@click.option("--solver", type=click.Choice(["cbc", "highs"]), default="cbc", show_default=True)
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog file merged over the built-ins (and the plan's own); repeatable.")
@click.option("--confidence", type=FiniteFloatRange(0.5, 1, max_open=True), default=None,
              help="Schedule with the pessimistic P-quantile of each batch time (overrides the file's).")
@click.option("--calibration", type=click.Path(dir_okay=False), default=None,
              help="Calibration profile from `llmopt calibrate` (merged last).")
@click.option("--quiet", "--no-progress", "quiet", is_flag=True,
              help="No progress on stderr (it shows only on a terminal: step, elapsed time, best plan and bound).")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write a Gantt of the plan (per instance type, with quotas and deadlines) to FILE.png or FILE.svg.")
@click.option("--engine", default=None,
              help="Engines for jobs without an 'engine' key: auto (default; not 'ideal') or NAME[,NAME...].")
@click.option("--emit", type=click.Choice(["skypilot"]), default=None,
              help="Write one SkyPilot task YAML per assignment into --emit-dir.")
@click.option("--emit-dir", type=click.Path(file_okay=False), default=None,
              help="Directory for --emit files (created; existing files are never overwritten).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False), default=None,
              help="Write a self-contained HTML report of the plan to FILE.html.")
def plan(plan_file: str, as_json: bool, out_file: str | None, time_limit: float, gap: float, solver: str,
         catalog_files: tuple[str, ...], confidence: float | None, calibration: str | None,
         quiet: bool, plot_file: str | None = None, report_file: str | None = None,
         engine: str | None = None, emit: str | None = None, emit_dir: str | None = None) -> None:
    """Plan a portfolio of batch jobs (JSON file): instances, counts and times per job.

    Every request of every job runs between its release and deadline, within the quotas and the
    budget, at the least total cost (or, with "objective": "makespan", the earliest finish).
    """
    from llmopt_solver.launch.flags import RECIPE_ENGINES
    from llmopt_solver.plan.run import plan_from_file
    from llmopt_solver.present.plan import infeasible_json, plan_json, plan_text
    from llmopt_solver.present.plotting import check_out_files

    if emit and not emit_dir:
        raise InputError(field="--emit-dir", problem="missing: --emit skypilot writes one file per assignment",
                         allowed="a directory path")
    if emit_dir and not emit:
        raise InputError(field="--emit", problem="missing: --emit-dir needs --emit", allowed="skypilot")
    check_out_files(plot_file, report_file)

    if calibration:  # checked here so that its errors name --calibration (the plan merges it as a catalog)
        from llmopt_solver.catalog.loader import load_catalog

        load_catalog(list(catalog_files), calibration)
    if out_file:
        check_output(out_file, plan_inputs(plan_file) + list(catalog_files) + ([calibration] if calibration else []))
    try:
        with DelayedStatus(enabled=not quiet) as status:
            extra = tuple(catalog_files) + ((calibration,) if calibration else ())
            res = plan_from_file(plan_file, extra_catalogs=extra, confidence=confidence, engine=engine, solver=solver,
                                 time_limit_s=time_limit, gap_rel=gap, progress=status.update,
                                 only_engines=RECIPE_ENGINES if emit else None)
    except InfeasibleError as exc:
        doc = infeasible_json(exc.reasons)
        if out_file:
            # Never replace an earlier (good) plan with an infeasible one: write only a new file.
            if Path(out_file).exists():
                click.echo(f"llmopt: kept existing {out_file} (no feasible plan to write)", err=True)
            else:
                write_output(out_file, dumps(doc))
        if as_json:
            click.echo(dumps(doc), nl=False)
        raise
    doc = plan_json(res)
    if emit and emit_dir:
        from llmopt_solver.launch.plan_emit import write_plan_tasks

        doc["launch"] = {"skypilot_files": write_plan_tasks(res, emit_dir)}
    if out_file:
        write_output(out_file, dumps(doc))
    click.echo(dumps(doc) if as_json else plan_text(res), nl=False)
    if plot_file:
        from llmopt_solver.present.plot_plan import gantt_figure
        from llmopt_solver.present.plotting import save

        save(gantt_figure(res), plot_file)
    if report_file:
        from llmopt_solver.present.report_plan import plan_report_html

        write_output(report_file, plan_report_html(res, plan_file))
