"""Regenerates the pictures and reports shown in README.md (run from the repository root).

usage: python docs/make_pictures.py   (needs the plot extra: pip install ".[plot]")

Each file is the output of one llmopt command, listed below; nothing is drawn by hand.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORIG = "solve --model OPT-2.7B --batch-size 32 --input-len 128 --output-len 512 --safety-factor 0.87 --slo-tps 100"
COMMANDS = [
    f"{ORIG} --plot docs/solve_frontier.png",
    f"{ORIG} --num-requests 100000 --sweep-slo 0:5000:6 --report docs/solve_report.html",
    "plan examples/plan_quota.json --plot docs/plan_gantt.png --report docs/plan_report.html --no-progress",
    "validate tests/data/argonne_slice.csv --plot docs/validate_argonne.png",
]


def main() -> int:
    for cmd in COMMANDS:
        print(f"llmopt {cmd}")
        proc = subprocess.run([sys.executable, "-m", "llmopt_solver", *shlex.split(cmd)], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
        if proc.returncode:
            return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
