"""Shared fixtures: the built-in catalog (loaded once), a CLI runner, and the original example's
``solve --json`` output (run once per test process and shared by the tests that read it)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from llmopt_solver.catalog.loader import Catalog, load_catalog

# The original project's example: OPT-2.7B, batch 32, 128 in / 512 out, safety 0.87, SLO 100 tok/s.
ORIGINAL = ["solve", "--model", "OPT-2.7B", "--batch-size", "32", "--input-len", "128", "--output-len", "512",
            "--safety-factor", "0.87", "--slo-tps", "100"]


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def original_json_text() -> str:
    """stdout of ``llmopt solve <ORIGINAL> --json`` (exit 0 checked)."""
    from llmopt_solver.cli import cli

    r = CliRunner().invoke(cli, ORIGINAL + ["--json"])
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.fixture()
def original_json(original_json_text: str) -> dict[str, Any]:
    """The original example's ``--json`` document (a fresh dict per test, so tests may change it)."""
    doc: dict[str, Any] = json.loads(original_json_text)
    return doc
