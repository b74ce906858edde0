"""Size inversions: a smaller model measured slower than a larger one in the same run setup."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from llmopt_solver.catalog.loader import load_catalog
from llmopt_solver.measure.consistency import no_larger, size_inversions
from llmopt_solver.measure.validation import COLUMNS, evaluate, map_rows, parse_measurements, prepare


def _prep(cat, rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    w.writeheader()
    for model, b, metric, value in rows:
        w.writerow(dict(source="synthetic", model=model, gpu="H100", num_gpus=1, precision="fp16", framework="vLLM",
                        batch_size=b, input_len=128, output_len=128, metric=metric, value=value, notes=""))
    return prepare(map_rows(parse_measurements(buf.getvalue()), cat), cat)


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def test_smaller_model_slower_is_an_inversion_with_its_floor(cat):
    seven, thirteen = "meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf"
    prep = _prep(cat, [(seven, 8, "e2e_latency_s", 14.0), (thirteen, 8, "e2e_latency_s", 10.0),
                       (seven, 8, "throughput_tok_s_total", 100.0), (thirteen, 8, "throughput_tok_s_total", 150.0),
                       (seven, 16, "e2e_latency_s", 9.0), (thirteen, 16, "e2e_latency_s", 12.0),  # consistent
                       (seven, 32, "e2e_latency_s", 20.0), (thirteen, 64, "e2e_latency_s", 10.0)])  # other setups
    assert prep.mapped.all()
    inv = size_inversions(prep.cases, prep.shapes)
    assert [(v.small_index, v.large_index) for v in inv] == [(0, 1), (2, 3)]
    assert inv[0].ratio == pytest.approx(1.4) and inv[1].ratio == pytest.approx(1.5)  # rates compared as times
    assert inv[0].min_error == pytest.approx(0.4 / 2.4)


def test_the_floor_holds_for_llmopts_own_predictions(cat):
    """The predictor never makes the smaller model slower (the law the floor rests on): its own
    predictions of a smaller and a larger model, as measurements, give no inversion."""
    models = ["meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf", "mistralai/Mistral-7B-v0.1"]
    rows = [(m, b, "e2e_latency_s", 1e6) for m in models for b in (1, 8, 64)]  # placeholder above any floor
    prep = _prep(cat, rows)
    pred = evaluate(prep).value
    assert np.isfinite(pred).all()
    prep2 = _prep(cat, [(m, b, met, f"{v:.9g}") for (m, b, met, _), v in zip(rows, pred)])
    assert size_inversions(prep2.cases, prep2.shapes) == []
    shapes = [cat.model(n).shape() for n in ("Llama-2-7B", "Llama-2-13B")]
    assert no_larger(shapes[0], shapes[1]) and not no_larger(shapes[1], shapes[0])


def test_validate_reports_the_inverted_pairs(tmp_path):
    """`llmopt validate` names the pairs in its text and lists them, with each row's partner, in --json."""
    import json

    from click.testing import CliRunner

    from llmopt_solver.cli import cli

    path = tmp_path / "inverted.csv"
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    w.writeheader()
    for model, value in (("meta-llama/Llama-2-7b-hf", 30.0), ("meta-llama/Llama-2-13b-hf", 20.0)):
        w.writerow(dict(source="synthetic", model=model, gpu="H100", num_gpus=1, precision="fp16", framework="vLLM",
                        batch_size=8, input_len=128, output_len=128, metric="e2e_latency_s", value=value, notes=""))
    path.write_text(buf.getvalue(), encoding="utf-8")
    text = CliRunner().invoke(cli, ["validate", str(path)])
    assert text.exit_code == 0, text.output
    assert "smaller model was measured slower" in text.output and "20.0-20.0%" in text.output
    doc = json.loads(CliRunner().invoke(cli, ["validate", str(path), "--json"]).output)
    assert doc["summary"]["size_inversions"]["pairs"] == [{"smaller": 0, "larger": 1, "time_ratio": 1.5,
                                                           "floor_pct": 20.0}]
    assert doc["rows"][0]["size_inversion_with"] == [{"index": 1, "floor_pct": 20.0}]
