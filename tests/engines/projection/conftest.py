"""Fixtures shared by the projection tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from fivelayer.interfaces.cli.app import app
from fivelayer.interfaces.cli.project import project_cmd
from tests.conftest import CliResult


@pytest.fixture
def run_cli(cli: Callable[..., CliResult]) -> Callable[..., CliResult]:
    """``fivelayer`` in-process, with the ``project`` command registered."""
    if not any(getattr(c, "name", None) == "project" for c in app.registered_commands):
        app.command("project")(project_cmd)
    return cli
