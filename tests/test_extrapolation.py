"""Calibrated ranges: a profile records the measured batch/length ranges per GPU, and options
outside them get a warning and a wider throughput band (sigma x2 per doubling outside)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.cli import cli
from llmopt_solver.measure.profile import measured_ranges
from llmopt_solver.measure.validation import map_rows, prepare, read_measurements
from llmopt_solver.table.build import _doublings

REPO = Path(__file__).resolve().parents[1]


def _profile(tmp: Path) -> Path:
    prof = tmp / "prof.json"
    prof.write_text(json.dumps({"uncertainty": {"gpus": {"L4": {
        "bias": 0.0, "sigma": 0.1, "rows": 12, "batch_range": [1, 32], "input_len_range": [128, 128],
        "output_len_range": [64, 512]}}}}), encoding="utf-8")
    return prof


def _predict(prof: Path, batch: int) -> tuple[dict, str]:
    res = CliRunner().invoke(cli, ["predict", "--model", "OPT-1.3B", "--instance", "g6.xlarge", "--batch-size",
                                   str(batch), "--input-len", "128", "--output-len", "128", "--calibration",
                                   str(prof), "--json", "--engine", "sglang"])  # one engine: its band only
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout), res.stderr


def test_inside_range_no_warning_and_outside_band_widens(tmp_path: Path) -> None:
    prof = _profile(tmp_path)
    inside, err_in = _predict(prof, 32)
    assert "warning" not in err_in
    outside, err_out = _predict(prof, 256)  # 3 doublings above batch 32
    assert "calibrated on batch 1-32" in err_out and "3.0 doublings" in err_out and "x8" in err_out
    width_in = np.log(inside["tps_high"] / inside["tps_low"])
    width_out = np.log(outside["tps_high"] / outside["tps_low"])
    assert abs(width_out / width_in - 8.0) < 0.05  # the band (in log space) is 2^3 times wider


def test_doublings() -> None:
    assert float(_doublings(32, (1, 32))) == 0.0
    assert float(_doublings(128, (1, 32))) == 2.0
    assert float(_doublings(2, (8, 32))) == 2.0
    assert float(_doublings(5, None)) == 0.0


def test_profile_records_measured_ranges() -> None:
    cat = load_catalog()
    rows = read_measurements(REPO / "tests/data/argonne_slice.csv")
    prep = prepare(map_rows(rows, cat, None, None, None), cat)
    gpus = {c.gpu for c in prep.cases if c.skip is None}
    assert gpus
    for gpu in gpus:
        r = measured_ranges(prep, gpu)
        batches = [c.batch for c in prep.cases if c.skip is None and c.gpu == gpu]
        assert r["batch_range"] == [min(batches), max(batches)]
        assert r["input_len_range"][0] <= r["input_len_range"][1]
