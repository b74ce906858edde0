"""``llmopt validate FILE.csv``: predictions against measured rows, with a summary of the errors."""

from __future__ import annotations

from typing import Any

import click

from llmopt_solver.cli.common import csv_list, open_catalog
from llmopt_solver.errors import InfeasibleError
from llmopt_solver.fileio import dumps
from llmopt_solver.measure.validation import parse_gpu_map, read_measurements, validate_rows
from llmopt_solver.present.console import NBSP, TextTable, fill


def _fmt(x: float | None, suffix: str = "%") -> str:
    return "-" if x is None else f"{x:.1f}{suffix}"


def summary_table(groups: dict[str, dict[str, Any]], key_cols: tuple[str, ...]) -> TextTable:
    """Returns a table of error stats per group (keys split on '|' into ``key_cols``): median and
    P90 of |error| and the bias, in %."""
    t = TextTable()
    for col in key_cols:
        t.add_column(col, "left", fold=col != "gpu")
    for col in ("rows", "median", "P90", "bias"):
        t.add_column(col, "right")
    for key, s in groups.items():
        parts = key.split("|") if len(key_cols) > 1 else [key]
        t.add_row(*parts, str(s["rows"]), _fmt(s["median_abs_pct_err"]), _fmt(s["p90_abs_pct_err"]),
                  _fmt(s["bias_pct"]))
    return t


def line_ranges(lines: list[int], most: int = 4) -> str:
    """Returns CSV line numbers as ranges, e.g. '26, 75-83', at most ``most`` ranges then '(+N lines)'."""
    runs: list[list[int]] = []
    for n in sorted(lines):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:most])
    rest = sum(b - a + 1 for a, b in runs[most:])
    return text + (f" (+{rest} lines)" if rest else "")


def validate_text(path: str, summary: dict[str, Any]) -> str:
    """Returns the human summary, at most TERMINAL_WIDTH columns: overall figures, per
    GPU/framework/metric table, skips, memory."""
    out: list[str] = []
    o = summary["overall"]
    out.append(fill(f"Validation of {path}: {summary['rows']} rows, {summary['mapped']} predicted, "
                    f"{summary['skipped']} skipped."))
    out.append(fill(f"Overall: median |error| {_fmt(o['median_abs_pct_err'])}, P90 |error| {_fmt(o['p90_abs_pct_err'])}, "
                    f"bias {_fmt(o['bias_pct'])} (error = predicted/measured - 1)."))
    out.append("\nPer GPU, framework and metric: median and P90 of |error|, bias (%)\n"
               + summary_table(summary["by_gpu_framework_metric"], ("gpu", "framework", "metric")).render().rstrip("\n"))
    if summary["skip_reasons"]:
        t = TextTable()
        t.add_column("rows", "right")
        t.add_column("field")
        t.add_column("CSV lines")
        t.add_column("reason")
        for d in summary["skipped_rows"]:
            t.add_row(str(len(d["lines"])), ", ".join(d["fields"]) or "-", line_ranges(d["lines"]), d["reason"])
        out.append("\nSkipped rows (--json lists each row with its field)\n" + t.render().rstrip("\n"))
    oom = summary["oom"]
    out.append(f"\nOut-of-memory rows: {oom['rows']}; predicted to fit: {oom['predicted_to_fit']}.")
    if summary["predicted_oom"]["rows"]:
        out.append(fill(f"Measured runs predicted not to fit (predicted OOM, an error not in the % figures): "
                        f"{summary['predicted_oom']['rows']}."))
    if summary["online_rows"]:
        out.append(fill(f"Online serving rows predicted with continuous batching (batch = concurrency): "
                        f"{summary['online_rows']}; input_len estimated from the quoted prompt: "
                        f"{summary['input_len_estimated_rows']}."))
    pairs = summary["size_inversions"]["pairs"]
    if pairs:
        floors = [p["floor_pct"] for p in pairs]
        out.append(fill(f"Pairs of rows where a smaller model was measured slower than a larger one in the same "
                        f"setup (no size-monotone model matches both; the worse row misses by at least "
                        f"{min(floors):.1f}-{max(floors):.1f}%): {len(pairs)}; --json lists them."))
    waves = summary["run_in_waves"]
    if waves["rows"]:
        out.append(fill(f"Rows whose static batch exceeds {waves['memory_fraction']:g} of GPU memory, predicted as "
                        f"sequential waves (as vLLM/TensorRT-LLM schedule them): {waves['rows']}."))
    names = [f"{k}{NBSP}->{NBSP}{v}" for k, v in summary["gpu_names"].items()]
    out.append(fill("GPU names read: " + ", ".join(names) + " (override with --gpu-map NAME=GPU)."))
    return "\n".join(out) + "\n"


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
