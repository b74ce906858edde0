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
    wide = CliRunner().invoke(cli, BASE + ["--wide"])
    assert wide.exit_code == 0
    header = wide.output.split("Runners-up")[1].splitlines()[1]
    for col in ("provider", "TPS band", "GPU mem GB", "total s"):
        assert col in header
