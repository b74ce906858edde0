"""The solve text report fits 100 columns by default; --wide shows every column."""

from __future__ import annotations

from click.testing import CliRunner

from llmopt_solver.cli import cli

BASE = ["solve", "--model", "OPT-6.7B", "--batch-size", "auto", "--input-len", "512", "--output-len", "128",
        "--slo-tps", "200", "--top", "8"]


def test_default_fits_100_columns_and_wide_adds_columns():
    narrow = CliRunner().invoke(cli, BASE)
    assert narrow.exit_code == 0, narrow.output
    table = narrow.output.split("Runners-up")[1].split("\n\n")[0].splitlines()
    assert len(table) == 1 + 2 + 8  # title, header, rule, 8 rows: nothing folded onto a second line
    assert max(len(line) for line in table) <= 100
    assert "provider" not in narrow.output.split("Runners-up")[1].splitlines()[1]
    many = CliRunner().invoke(cli, BASE + ["--top", "30"])  # the engine line under the table wraps
    tail = many.output.split("Runners-up")[1].split("Other GPU types")[0]
    assert "Engine per row:" in tail and max(len(line) for line in tail.splitlines()) <= 100
    wide = CliRunner().invoke(cli, BASE + ["--wide"])
    assert wide.exit_code == 0
    header = wide.output.split("Runners-up")[1].splitlines()[1]
    for col in ("provider", "TPS band", "GPU mem GB", "total s"):
        assert col in header


def test_frontier_and_sweep_fit_100_columns():
    r = CliRunner().invoke(cli, BASE + ["--frontier", "--num-requests", "50000", "--sweep-slo", "0:20000:5"])
    assert r.exit_code == 0, r.output
    tail = r.output[r.output.index("\nFrontier:"):]
    assert "Job frontier" in tail and "SLO sweep" in tail
    assert max(len(line.rstrip()) for line in tail.splitlines()) <= 100


def test_engine_named_in_frontier_and_sweep():
    """One engine on every row: a line names it; rows mixing engines: an engine column, still <= 100."""
    one = CliRunner().invoke(cli, BASE + ["--engine", "vllm", "--frontier", "--sweep-slo", "0:4000:3"])
    assert one.exit_code == 0, one.output
    tail = one.output[one.output.index("\nFrontier:"):]
    assert tail.count("(every row)") == 2  # frontier and sweep
    mixed = CliRunner().invoke(cli, BASE + ["--engine", "vllm,flexgen", "--frontier", "--sweep-slo", "0:4000:3"])
    assert mixed.exit_code == 0, mixed.output
    tail = mixed.output[mixed.output.index("\nFrontier:"):]
    header = tail.splitlines()[2]
    assert header.split()[:3] == ["#", "engine", "instance"]
    assert "flexgen" in tail and "vllm" in tail
    assert max(len(line.rstrip()) for line in tail.splitlines()) <= 100
