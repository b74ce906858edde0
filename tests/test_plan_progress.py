"""`plan` shows a progress indicator on stderr only when stderr is a terminal, and not with --quiet."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmopt_solver.cli.plan import PROGRESS_AFTER_S

ROOT = Path(__file__).resolve().parents[1]
PLAN = str(ROOT / "examples" / "plan_quota.json")  # takes more than the 1 s before progress shows

pty = pytest.importorskip("pty")


def _stderr_on_pty(extra: list[str]) -> tuple[int, bytes, float]:
    """Runs `llmopt plan PLAN --json` with stderr on a pseudo-terminal; returns (exit code, stderr,
    planning s: the plan's build and solve times, or the whole wall time on failure)."""
    t0 = time.perf_counter()
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "llmopt_solver", "plan", PLAN, "--json", *extra],
                            stdout=subprocess.PIPE, stderr=slave, cwd=ROOT)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    stdout, _ = proc.communicate(timeout=300)
    os.close(master)
    if proc.returncode == 0:  # the planning time the spinner waits on: build (tables, model) and solve
        solver = json.loads(stdout)["solver"]
        return proc.returncode, out, float(solver["build_s"]) + float(solver["wall_s"])
    return proc.returncode, out, time.perf_counter() - t0


def test_progress_on_a_terminal_and_quiet_off():
    rc, err, wall_s = _stderr_on_pty([])
    assert rc == 0
    text = err.decode("utf-8", "replace")
    if wall_s > PROGRESS_AFTER_S + 0.5:  # planning alone (no python start-up); shown after PROGRESS_AFTER_S
        assert " s]" in text  # a phase (building tables, solving) and the elapsed time
    rc, err, _ = _stderr_on_pty(["--quiet"])
    assert rc == 0 and err == b""


def test_no_progress_when_stderr_is_not_a_terminal():
    proc = subprocess.run([sys.executable, "-m", "llmopt_solver", "plan", PLAN, "--json"], capture_output=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0 and proc.stderr == b""
