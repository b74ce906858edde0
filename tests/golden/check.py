"""Runs every command of commands.txt and compares its output with the snapshot in out/.

usage: python tests/golden/check.py [--update]   (exit 1 and a diff on any difference)

Wall-clock figures (solver and build seconds) are masked, since they differ run to run; all
other bytes of stdout, and the exit code, must match.
"""

from __future__ import annotations

import difflib
import re
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MASKS = [
    (re.compile(r"(in |, |build )\d+\.\d+ s\b"), r"\1<t> s"),
    (re.compile(r'("(?:wall_s|build_s)": )[0-9.e-]+'), r"\1<t>"),
]


def commands() -> list[str]:
    lines = (HERE / "commands.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def run(cmd: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "llmopt_solver", *shlex.split(cmd)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout
    for pat, rep in MASKS:
        out = pat.sub(rep, out)
    return f"$ llmopt {cmd}\n# exit {proc.returncode}\n{out}"


def main() -> int:
    update = "--update" in sys.argv
    out_dir = HERE / "out"
    out_dir.mkdir(exist_ok=True)
    bad = 0
    for k, cmd in enumerate(commands()):
        got = run(cmd)
        path = out_dir / f"{k:02d}.txt"
        if update:
            path.write_text(got, encoding="utf-8")
            continue
        want = path.read_text(encoding="utf-8") if path.exists() else ""
        if got != want:
            bad += 1
            sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                                       f"snapshot {path.name}", "now", n=1))
    print(f"{len(commands()) - bad} same, {bad} different")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
