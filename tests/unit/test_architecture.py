"""The structure is held by tools, not by review: the package layers (import-linter contracts in
pyproject.toml, drawn in docs/ARCHITECTURE.md), ruff's lint rules and format, and mypy on the public API
of the feature store, the model's contract and the registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the tools of this environment, whatever PATH says


def test_packages_depend_only_downward():
    run = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_ruff_finds_nothing():
    run = subprocess.run(
        [str(BIN / "ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout[-4000:]


def test_ruff_format_leaves_every_file_as_it_is():
    run = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:]


def test_public_api_of_features_model_and_registry_type_checks():
    """mypy over the packages pyproject.toml's [tool.mypy] names (every function typed)."""
    run = subprocess.run([str(BIN / "mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:]
    assert "Success" in run.stdout
