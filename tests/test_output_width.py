"""Text output fits a 100-column terminal: no line of a golden snapshot's text (tests/golden/out/)
is wider than TERMINAL_WIDTH, except the allow-listed lines below, each of which cannot be wrapped.

Not checked: JSON documents (--json) and what --emit writes (launch commands, SkyPilot YAML),
which are meant to be copied or parsed, not read in a terminal; and --wide, which asks for more.
"""

from __future__ import annotations

import re

from click.testing import CliRunner
from test_readme_outputs import GOLDEN, ROOT, _golden_outputs

from llmopt_solver.cli import cli
from llmopt_solver.present.console import TERMINAL_WIDTH

# The emitted block of `solve --emit`: a "Launch (engine):" section, or the SkyPilot task YAML
# (which opens with its "# llmopt:" comment); every line from it on is the emitted text.
EMITTED = re.compile(r"^(Launch \(|# llmopt: )")
# Exact line -> why it cannot be wrapped (one unbreakable word: a path, a URL). Keep it short.
ALLOWED: dict[str, str] = {}


def text_lines(cmd: str, lines: list[str]) -> list[str]:
    """Returns the lines of ``cmd``'s output meant to be read in a terminal ([] for --json)."""
    if "--json" in cmd.split():
        return []
    for k, line in enumerate(lines):
        if "--emit" in cmd.split() and EMITTED.match(line):
            return lines[:k]
    return lines


def too_wide(cmd: str, lines: list[str]) -> list[str]:
    """Returns 'cmd: width: line' for each text line over TERMINAL_WIDTH that is not allowed."""
    return [f"{cmd[:50]}: {len(ln)}: {ln[:60]}..." for ln in text_lines(cmd, lines)
            if len(ln) > TERMINAL_WIDTH and ln not in ALLOWED]


def test_golden_text_fits_100_columns():
    golden = _golden_outputs()
    assert len(golden) >= 20 and any(not text_lines(c, o) for c, o in golden.items())  # JSON ones skipped
    wide = [w for cmd, out in golden.items() for w in too_wide(cmd, out)]
    assert not wide, f"lines wider than {TERMINAL_WIDTH} columns (wrap them, or allow-list an unbreakable one):\n" + "\n".join(wide)


def test_allow_list_is_used_and_explained():
    """Every allowed line still occurs in a snapshot (else drop it) and says why it is allowed."""
    snapshots = "\n".join(p.read_text(encoding="utf-8") for p in sorted((GOLDEN / "out").glob("*.txt")))
    for line, why in ALLOWED.items():
        assert line in snapshots.splitlines() and len(why) > 10, line


def test_checker_flags_a_wide_line_and_skips_json_and_emitted_text():
    wide = "x" * (TERMINAL_WIDTH + 1)
    assert too_wide("catalog gpus", ["ok", wide]) == [f"catalog gpus: {TERMINAL_WIDTH + 1}: {'x' * 60}..."]
    assert too_wide("catalog gpus --json", [wide]) == []
    assert too_wide("solve --emit vllm", ["ok", "Launch (vllm):", wide]) == []
    assert too_wide("solve --emit skypilot", [wide, "# llmopt: x"]) != []


def test_calibrate_text_fits_100_columns(tmp_path):
    """calibrate has no golden snapshot (it writes a profile): its report, per-engine names included."""
    data = ROOT / "tests" / "data" / "tgi_slice.csv"
    r = CliRunner().invoke(cli, ["calibrate", str(data), "--out", str(tmp_path / "p.json"), "--per-engine",
                                 "--folds", "0", "--min-runs", "4",
                                 "--params", "compute_decode,memory_bw,layer_overhead_s,step_overhead_s"])
    assert r.exit_code == 0, r.output
    assert "A10G / tgi (24 rows): " in r.stdout and "layer_overhead_s" in r.stdout  # names not truncated
    assert max(len(line) for line in r.stdout.splitlines()) <= TERMINAL_WIDTH


def test_skipped_csv_lines_shown_as_ranges_with_the_rest_counted():
    from llmopt_solver.cli.validate import line_ranges

    assert line_ranges([84, 75, 76, 77, 26]) == "26, 75-77, 84"
    assert line_ranges([1, 3, 5, 7, 9, 10, 11, 20]) == "1, 3, 5, 7 (+4 lines)"  # 9-11 and 20
