"""``llmopt validate FILE.csv``: predictions against measured rows, with a summary of the errors."""

from __future__ import annotations

import io
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from llmopt_solver.cli.common import csv_list, open_catalog
from llmopt_solver.errors import InfeasibleError
from llmopt_solver.fileio import dumps
from llmopt_solver.measure.validation import parse_gpu_map, read_measurements, validate_rows


def _fmt(x: float | None, suffix: str = "%") -> str:
    return "-" if x is None else f"{x:.1f}{suffix}"


def summary_table(title: str, groups: dict[str, dict[str, Any]], key_cols: tuple[str, ...]) -> Table:
    """Returns a rich Table of error stats per group (keys split on '|' into ``key_cols``)."""
    t = Table(title=title, title_justify="left")
    for col in key_cols + ("rows", "median |err|", "P90 |err|", "bias"):
        t.add_column(col, justify="right" if col not in key_cols else "left")
    for key, s in groups.items():
        parts = key.split("|") if len(key_cols) > 1 else [key]
        t.add_row(*parts, str(s["rows"]), _fmt(s["median_abs_pct_err"]), _fmt(s["p90_abs_pct_err"]),
                  _fmt(s["bias_pct"]))
    return t


def validate_text(path: str, summary: dict[str, Any]) -> str:
    """Returns the human summary: overall figures, per GPU/framework/metric table, skips, memory."""
    buf = io.StringIO()
    con = Console(file=buf, width=160, no_color=True, highlight=False, soft_wrap=True)
    o = summary["overall"]
    con.print(f"Validation of {path}: {summary['rows']} rows, {summary['mapped']} predicted, "
              f"{summary['skipped']} skipped.")
    con.print(f"Overall: median |error| {_fmt(o['median_abs_pct_err'])}, P90 |error| {_fmt(o['p90_abs_pct_err'])}, "
              f"bias {_fmt(o['bias_pct'])} (error = predicted/measured - 1).")
    con.print(summary_table("Per GPU, framework and metric", summary["by_gpu_framework_metric"],
                            ("gpu", "framework", "metric")))
    if summary["skip_reasons"]:
        t = Table(title="Skipped rows (--json lists each row with its field)", title_justify="left")
        t.add_column("rows", justify="right")
        t.add_column("field")
        t.add_column("CSV lines")
        t.add_column("reason")
        for d in summary["skipped_rows"]:
            lines = ", ".join(str(x) for x in d["lines"][:8]) + (f" (+{len(d['lines']) - 8})" if len(d["lines"]) > 8 else "")
            t.add_row(str(len(d["lines"])), ", ".join(d["fields"]) or "-", lines, d["reason"])
        con.print(t)
    oom = summary["oom"]
    con.print(f"Out-of-memory rows: {oom['rows']}; predicted to fit: {oom['predicted_to_fit']}.")
    if summary["predicted_oom"]["rows"]:
        con.print(f"Measured runs predicted not to fit (predicted OOM, an error not in the % figures): "
                  f"{summary['predicted_oom']['rows']}.")
    if summary["online_rows"]:
        con.print(f"Online serving rows predicted with continuous batching (batch = concurrency): "
                  f"{summary['online_rows']}; input_len estimated from the quoted prompt: "
                  f"{summary['input_len_estimated_rows']}.")
    waves = summary["run_in_waves"]
    if waves["rows"]:
        con.print(f"Rows whose static batch exceeds {waves['memory_fraction']:g} of GPU memory, predicted as "
                  f"sequential waves (as vLLM/TensorRT-LLM schedule them): {waves['rows']}.")
    con.print("GPU names read: " + ", ".join(f"{k} -> {v}" for k, v in summary["gpu_names"].items())
              + " (override with --gpu-map NAME=GPU).")
    return buf.getvalue()


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--gpu-map", "gpu_map", multiple=True, metavar="NAME=GPU",
              help="Map a GPU name in the data to a catalog GPU, e.g. A100=A100-80GB-SXM; repeatable or comma-separated.")
@click.option("--framework", "frameworks", default=None,
              help="Only rows of these frameworks (comma-separated, e.g. vLLM,TensorRT-LLM); others are skipped.")
@click.option("--metric", "metrics", default=None,
              help="Only rows of these metrics (comma-separated; 'op_time_ms_median:' selects every operator).")
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog file (JSON or CSV) merged over the built-ins; repeatable.")
@click.option("--calibration", type=click.Path(dir_okay=False), default=None,
              help="Calibration profile from `llmopt calibrate` (applied over the built-in one).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (rows, summary) on stdout.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), default=None,
              help="Write predicted vs measured (log-log, per GPU/framework, a panel per metric) to FILE.png or FILE.svg.")
def validate(file: str, gpu_map: tuple[str, ...], frameworks: str | None, metrics: str | None,
             catalog_files: tuple[str, ...], calibration: str | None, as_json: bool,
             plot_file: str | None = None) -> None:
    """Predict every measured row of FILE.csv and report the errors (median, P90, bias).

    FILE uses the schema of the public validation sets: source, model, gpu, num_gpus, precision,
    framework, batch_size, input_len, output_len, metric, value, notes.
    """
    if plot_file:
        from llmopt_solver.present.plotting import check_out_files

        check_out_files(plot_file, None)
    cat = open_catalog(catalog_files, calibration)
    rows = read_measurements(file)
    gmap = parse_gpu_map(gpu_map)
    report = validate_rows(rows, cat, gmap, csv_list(frameworks, "--framework"), csv_list(metrics, "--metric"))
    if plot_file:
        from llmopt_solver.present.plot_validate import validate_figure
        from llmopt_solver.present.plotting import save

        save(validate_figure(report.rows, f"llmopt validate {file}"), plot_file)
    if as_json:
        doc = report.to_json()
        doc["file"] = file
        click.echo(dumps(doc), nl=False)
    else:
        click.echo(validate_text(file, report.summary), nl=False)
    if not report.summary["mapped"]:
        reasons = "; ".join(f"{n} x {r}" for r, n in list(report.summary["skip_reasons"].items())[:3])
        raise InfeasibleError(f"{file}: no row could be predicted ({reasons}).")
