"""``llmopt calibrate MEASUREMENTS.csv --out profile.json``: fit efficiencies, print k-fold CV error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from llmopt_solver.cli.common import csv_list, open_catalog
from llmopt_solver.cli.validate import _fmt
from llmopt_solver.errors import InputError
from llmopt_solver.fileio import check_output, dumps, write_output
from llmopt_solver.measure.calibration import BOUNDS, DEFAULT_PARAMS, MIN_CONFIGS
from llmopt_solver.measure.calibration import calibrate as run_calibration
from llmopt_solver.measure.profile import engine_sections, error_table, profile_document
from llmopt_solver.measure.validation import map_rows, parse_gpu_map, prepare, read_measurements
from llmopt_solver.present.console import NBSP, TextTable, fill


def calibrate_text(doc: dict[str, Any], out: str, prep_rows: int, used_rows: int) -> str:
    """Returns the human report, at most TERMINAL_WIDTH columns: fitted parameters (one wrapped
    line per GPU, as there are more parameters than columns fit), training vs out-of-fold error,
    uncertainty."""
    cal = doc["calibration"]
    lines = [fill(f"Calibrated on {used_rows} of {prep_rows} rows; profile written to {out}.")]
    lines.append("\nFitted efficiency parameters (per GPU, or GPU / engine)")
    fitted = {g: (rec, doc["uncertainty"].get("gpus", {}).get(g, {})) for g, rec in doc["efficiency"].get("gpus", {}).items()}
    for engine, block in doc["efficiency"].get("engines", {}).items():
        for g, rec in block.get("gpus", {}).items():
            fitted[f"{g} / {engine}"] = (rec, doc["uncertainty"].get("engines", {}).get(engine, {}).get("gpus", {}).get(g, {}))
    for gpu, (rec, u) in fitted.items():
        values = ", ".join(f"{n}{NBSP}{rec[n]:.3g}" for n in sorted(rec) if n not in ("source", "as_of"))
        lines.append(fill(f"{gpu} ({u.get('rows', '-')} rows): {values}", initial_indent="  ", subsequent_indent="    "))
    t = TextTable()
    for col in ("metric", "rows", "train median", "train P90", "CV median", "CV P90", "CV bias"):
        t.add_column(col, "left" if col == "metric" else "right")
    cv = cal.get("cv_error") or {}
    for metric, tr in cal["train_error"].items():
        c = cv.get(metric, {})
        t.add_row(metric, str(tr["rows"]), _fmt(tr["median_abs_pct_err"]), _fmt(tr["p90_abs_pct_err"]),
                  _fmt(c.get("median_abs_pct_err")), _fmt(c.get("p90_abs_pct_err")), _fmt(c.get("bias_pct")))
    lines.append(f"\nError by metric: training fit vs {cal['folds']}-fold cross-validation (out-of-sample)")
    lines.append(t.render().rstrip("\n") + "\n")
    for gpu, (_, u) in fitted.items():
        if u:
            lines.append(fill(f"{gpu}: throughput ln(measured/predicted) bias {u['bias']:+.3f}, "
                              f"sigma {u['sigma']:.3f} ({u['rows']} rows)"))
    for gpu, why in cal.get("skipped_gpus", {}).items():
        lines.append(fill(f"{gpu}: not fitted: {why}"))
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("measurements", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Profile to write (JSON), for --calibration.")
@click.option("--folds", type=click.IntRange(min=0), default=5, show_default=True,
              help="k of the k-fold cross-validation (0 or 1: no CV; the uncertainty then comes from the training fit).")
@click.option("--params", default=",".join(DEFAULT_PARAMS), show_default=True,
              help=f"Efficiency parameters to fit, comma-separated; allowed: {', '.join(BOUNDS)}.")
@click.option("--min-runs", type=click.IntRange(min=1), default=MIN_CONFIGS, show_default=True,
              help="Distinct runs a GPU needs before it is fitted (never fit to one row).")
@click.option("--gpu-map", "gpu_map", multiple=True, metavar="NAME=GPU",
              help="Map a GPU name in the data to a catalog GPU, e.g. A100=A100-80GB-SXM.")
@click.option("--framework", "frameworks", default=None, help="Only rows of these frameworks (comma-separated).")
@click.option("--metric", "metrics", default=None, help="Only rows of these metrics (comma-separated).")
@click.option("--catalog", "catalog_files", multiple=True, type=click.Path(dir_okay=False),
              help="Extra catalog file (JSON or CSV) merged over the built-ins; repeatable.")
@click.option("--calibration", type=click.Path(dir_okay=False), default=None,
              help="Start from this profile instead of the built-in one.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fold assignment.")
@click.option("--per-engine", is_flag=True,
              help="Fit each (engine, GPU) on its own rows (engine from the framework column) and write them under "
                   "efficiency.engines / uncertainty.engines; rows of no known engine are not fitted.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON on stdout (it is also written to --out).")
def calibrate(measurements: str, out: str, folds: int, params: str, min_runs: int, gpu_map: tuple[str, ...],
              frameworks: str | None, metrics: str | None, catalog_files: tuple[str, ...],
              calibration: str | None, seed: int, per_engine: bool, as_json: bool) -> None:
    """Fit per-GPU efficiency parameters to MEASUREMENTS.csv and write a calibration profile.

    Robust (log errors, Huber loss, bounded parameters), with k-fold cross-validated error so
    the figure you read is out-of-sample. Apply the result with --calibration in solve, predict,
    plan and validate.
    """
    names = tuple(csv_list(params) or ())
    bad = [n for n in names if n not in BOUNDS]
    if bad or not names:
        raise InputError(f"--params: {', '.join(bad) or '(empty)'} not fittable; allowed: {', '.join(BOUNDS)}.")
    check_output(out, [measurements, *catalog_files, *([calibration] if calibration else [])])
    cat = open_catalog(catalog_files, calibration)
    rows = read_measurements(measurements)
    gmap = parse_gpu_map(gpu_map)
    prep = prepare(map_rows(rows, cat, gmap, csv_list(frameworks, "--framework"), csv_list(metrics, "--metric")), cat)
    res = run_calibration(prep, cat, folds=folds if folds >= 2 else 0, param_names=names, min_configs=min_runs,
                          seed=seed, by="engine" if per_engine else "gpu")
    doc = profile_document(res, Path(measurements).name, prep,
                           extra={"rows": len(rows), "gpu_map": dict(sorted(gmap.items())),
                                  "frameworks": csv_list(frameworks), "metrics": csv_list(metrics),
                                  "cv_error_by_gpu_metric": error_table(prep, res.cv_pred) if res.cv_pred else None})
    if per_engine:  # the per-GPU sections would carry 'gpu|engine' keys: write the engine sections instead
        eff, unc = engine_sections(res, Path(measurements).name)
        doc["efficiency"] = {"engines": eff}
        doc["uncertainty"] = {"engines": unc}
    write_output(out, dumps(doc))
    if as_json:
        click.echo(dumps(doc), nl=False)
        return
    used = sum(f.rows for f in res.fits.values())
    click.echo(calibrate_text(doc, out, len(rows), used), nl=False)
