"""Shared fixtures: the built-in catalog (loaded once) and a CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from llmopt_solver.catalog.loader import Catalog, load_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()
