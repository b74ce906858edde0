"""README's example outputs are real: every line shown under `$ llmopt ...` in README.md is in the
golden snapshot of that command (tests/golden/out/), in the same order ("..." marks cut lines).

When a change moves a figure, `python tests/golden/check.py --update` refreshes the snapshots and
this test names each README line that is now stale.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
SAME_WORKLOAD = "...same workload..."
WALL_TIME = re.compile(r"(in |, |build )\d+\.\d+ s\b")


def _golden_outputs() -> dict[str, list[str]]:
    """Command (without `llmopt`) -> its snapshot's stdout lines, wall times masked."""
    lines = (GOLDEN / "commands.txt").read_text(encoding="utf-8").splitlines()
    cmds = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    out: dict[str, list[str]] = {}
    for k, cmd in enumerate(cmds):
        text = (GOLDEN / "out" / f"{k:02d}.txt").read_text(encoding="utf-8").splitlines()
        out[cmd] = text[2:]  # drop the "$ llmopt ..." and "# exit N" header lines
    return out


def _readme_examples() -> list[tuple[str, list[str]]]:
    """(command, shown lines) for each `$ llmopt` example inside a README code block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    examples: list[tuple[str, list[str]]] = []
    in_block = False
    collecting = False  # inside a code block, after a `$ llmopt` line
    workload = ""
    for line in text:
        if line.startswith("```"):
            in_block = not in_block
            collecting = False
            continue
        if not in_block:
            continue
        if line.startswith("$ llmopt "):
            cmd = line.removeprefix("$ llmopt ").strip()
            if SAME_WORKLOAD in cmd:
                cmd = cmd.replace(SAME_WORKLOAD, workload)
            elif cmd.startswith("solve "):
                workload = cmd.removeprefix("solve ").split(" --engine")[0].split(" --emit")[0]
            examples.append((cmd, []))
            collecting = True
        elif collecting and line.strip() not in ("", "..."):
            examples[-1][1].append(line)
    return examples


def test_readme_shows_examples() -> None:
    assert len(_readme_examples()) >= 4


def test_every_readme_output_line_is_in_the_golden_snapshot() -> None:
    golden = _golden_outputs()
    stale: list[str] = []
    for cmd, shown in _readme_examples():
        assert cmd in golden, f"README shows `llmopt {cmd}`, which tests/golden/commands.txt lacks"
        snapshot = [WALL_TIME.sub(r"\1<t> s", ln) for ln in golden[cmd]]
        pos = 0
        for line in shown:
            want = WALL_TIME.sub(r"\1<t> s", line)
            try:
                pos = snapshot.index(want, pos) + 1
            except ValueError:
                stale.append(f"{cmd[:40]}...: {line!r}")
    assert not stale, "README lines not in the golden output (stale or reordered):\n" + "\n".join(stale)
