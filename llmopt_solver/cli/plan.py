"""``llmopt plan FILE.json``: the cheapest plan for a portfolio of jobs under deadlines and quotas."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import click

from llmopt_solver.errors import InfeasibleError, InputError
from llmopt_solver.fileio import dumps, write_atomic

PROGRESS_AFTER_S = 1.0  # show a spinner only when building and solving take longer than this


class DelayedStatus:
    """A rich spinner on stderr that appears only after PROGRESS_AFTER_S; ``update`` sets its text."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.message = "planning"
        self._status: Any = None
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> "DelayedStatus":
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
            self._status = Console(stderr=True).status(self.message)
            self._status.start()

    def update(self, message: str) -> None:
        self.message = message
        with self._lock:
            if self._status is not None:
                self._status.update(message)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
            if self._status is not None:
                self._status.stop()


@click.command()
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), default=None,
              help="Also write the JSON document to this file (atomically).")
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
              help="Solver time limit, seconds (per solve; makespan plans solve twice).")
@click.option("--gap", type=click.FloatRange(0, 1), default=0.005, show_default=True,
              help="Stop when the plan is proven within this relative gap of the optimum.")
@click.option("--solver", type=click.Choice(["cbc", "highs"]), default="cbc", show_default=True)
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog file merged over the built-ins (and the plan's own); repeatable.")
@click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=None,
              help="Schedule with the pessimistic P-quantile of each batch time (overrides the file's).")
@click.option("--calibration", type=click.Path(dir_okay=False), default=None,
              help="Calibration profile from `llmopt calibrate` (merged last).")
@click.option("--no-progress", is_flag=True, help="Never show the progress spinner on stderr.")
@click.option("--engine", default=None,
              help="Engines for jobs without an 'engine' key: auto (default; not 'ideal') or NAME[,NAME...].")
@click.option("--emit", type=click.Choice(["skypilot"]), default=None,
              help="Write one SkyPilot task YAML per assignment into --emit-dir.")
@click.option("--emit-dir", type=click.Path(file_okay=False), default=None,
              help="Directory for --emit files (created; existing files are never overwritten).")
def plan(plan_file: str, as_json: bool, out_file: str | None, time_limit: float, gap: float, solver: str,
         catalog_files: tuple[str, ...], confidence: float | None, calibration: str | None,
         no_progress: bool, engine: str | None, emit: str | None, emit_dir: str | None) -> None:
    """Plan a portfolio of batch jobs (JSON file): instances, counts and times per job.

    Every request of every job runs between its release and deadline, within the quotas and the
    budget, at the least total cost (or, with "objective": "makespan", the earliest finish).
    """
    from llmopt_solver.plan.run import plan_from_file
    from llmopt_solver.present.plan import infeasible_json, plan_json, plan_text

    if emit and not emit_dir:
        raise InputError(field="--emit-dir", problem="missing: --emit skypilot writes one file per assignment",
                         allowed="a directory path")
    if emit_dir and not emit:
        raise InputError(field="--emit", problem="missing: --emit-dir needs --emit", allowed="skypilot")
    try:
        with DelayedStatus(enabled=not no_progress) as status:
            extra = tuple(catalog_files) + ((calibration,) if calibration else ())
            res = plan_from_file(plan_file, extra_catalogs=extra, confidence=confidence, engine=engine,
                                 solver=solver,  # type: ignore[arg-type]
                                 time_limit_s=time_limit, gap_rel=gap, progress=status.update)
    except InfeasibleError as exc:
        doc = infeasible_json(str(exc))
        if out_file:
            write_atomic(out_file, dumps(doc))
        if as_json:
            click.echo(dumps(doc), nl=False)
        raise
    doc = plan_json(res)
    if emit and emit_dir:
        from llmopt_solver.launch.plan_emit import write_plan_tasks

        doc["launch"] = {"skypilot_files": write_plan_tasks(res, emit_dir)}
    if out_file:
        write_atomic(out_file, dumps(doc))
    click.echo(dumps(doc) if as_json else plan_text(res), nl=False)
