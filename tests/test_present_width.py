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


def test_text_table_plain_path_matches_rich():
    """The tables written without rich are byte for byte what rich prints (random shapes and widths)."""
    import random

    from llmopt_solver.present.console import TextTable

    rng = random.Random(7)
    alphabet = "abcXYZ019 .-_%$/*()"
    plain = 0
    for case in range(300):
        n_cols, n_rows = rng.randint(1, 7), rng.randint(1, 6)
        t = TextTable(rng.choice(["", "Runners-up (next 5 of 99 options)", "T" * rng.randint(1, 60)]))
        for _ in range(n_cols):
            t.add_column(rng.choice(["#", "instance", "KV off", "$/M tok", "x" * rng.randint(1, 12)]),
                         rng.choice(["left", "right"]))  # type: ignore[arg-type]
        for _ in range(n_rows):
            cells = ("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 18))) for _ in range(n_cols))
            t.add_row(*(c.strip() if rng.random() < 0.95 else c for c in cells))
        width = rng.choice([40, 60, 100, 160])
        got, want = t._plain(width), t._rich(width)
        if got is not None:
            plain += 1
            assert got == want, (case, width, got, want)
        assert t.render(width) == want
    assert plain > 100  # the fast path is the common one
