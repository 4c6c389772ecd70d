"""Strict tooling as tests: the layering contract (import-linter), ruff and mypy all pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} is not installed; install the test extra: pip install -e '.[test]'")
    return subprocess.run([str(exe), *args], cwd=REPO, capture_output=True, text=True, check=False)


def test_layers_import_only_downward() -> None:
    result = run("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    result = run("ruff", "check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_tests_and_benchmarks() -> None:
    result = run("mypy", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr
