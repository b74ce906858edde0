"""Regenerates the pictures and reports shown in README.md.

usage: python docs/make_pictures.py [--out DIR]   (default DIR: docs/; needs the plot extra: pip install ".[plot]")

Each file is the output of one llmopt command, listed below; nothing is drawn by hand. The
commands run from the repository root, so ``examples/`` and ``tests/data/`` resolve wherever
DIR is.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORIG = "solve --model OPT-2.7B --batch-size 32 --input-len 128 --output-len 512 --safety-factor 0.87 --slo-tps 100"
# One command per file group; OUT/ stands for the output directory.
COMMANDS = [
    f"{ORIG} --plot OUT/solve_frontier.png",
    f"{ORIG} --num-requests 100000 --sweep-slo 0:5000:6 --report OUT/solve_report.html",
    "plan examples/plan_quota.json --plot OUT/plan_gantt.png --report OUT/plan_report.html --quiet",
    "validate tests/data/argonne_slice.csv --plot OUT/validate_argonne.png",
]


def commands(out: Path) -> list[str]:
    """Returns the llmopt commands (arguments after ``llmopt``) writing into ``out``."""
    return [" ".join(shlex.quote(str(out / a[4:])) if a.startswith("OUT/") else a for a in cmd.split())
            for cmd in COMMANDS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="directory for the files (default: docs/)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for cmd in commands(out):
        print(f"llmopt {cmd}")
        proc = subprocess.run([sys.executable, "-m", "llmopt_solver", *shlex.split(cmd)], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
        if proc.returncode:
            return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
