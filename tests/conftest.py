"""Shared fixtures. The real public data lives beside the project in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# In CI the property tests replay the same examples every run (a landing must not depend on
# the draw); run them without CI=true to explore new examples.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("COMPUTENET_SHARED_DATA", ROOT.parent / "shared" / "data"))

# Real engines the executor tests run against, each started once per test run.
pytest_plugins = ["tests.beds.ray", "tests.beds.slurm"]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of real public data (traces, carbon, prices, latency)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set COMPUTENET_SHARED_DATA")
    return SHARED_DATA
