"""The catalog and scenario commands: tables, JSON for scripts, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from tests.test_catalog_integrity import REQUIRED

Cli = Callable[..., Any]


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == "fivelayer 0.1.0"


def test_list_accelerators_json_has_every_required_id_with_sources_and_si_numbers(cli: Cli) -> None:
    result = cli("catalog", "list", "accelerators", "--json")
    assert result.code == 0
    records = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(REQUIRED["accelerators"]) <= set(records)
    for record in records.values():
        assert record["sources"] and record["name"]
        assert {"peak_flops", "memory_bytes", "memory_bandwidth_bytes_per_s", "tdp_w"} <= set(record)
    h200 = records["h200-sxm"]
    assert h200["memory_bytes"] == 141e9
    assert h200["peak_flops"]["bf16"] == 989.5e12


def test_list_models_json_has_every_required_id_and_parameter_counts(cli: Cli) -> None:
    result = cli("catalog", "list", "models", "--json")
    assert result.code == 0
    records = {r["id"]: r for r in json.loads(result.stdout)}
    assert set(REQUIRED["models"]) <= set(records)
    assert records["llama-3.1-70b"]["params_total"] == 70_553_706_496
    assert all(r["sources"] for r in records.values())


def test_list_table(cli: Cli) -> None:
    result = cli("catalog", "list", "grid-regions")
    assert result.code == 0
    assert "us-va" in result.stdout and "gCO2/kWh" in result.stdout


def test_show_by_alias(cli: Cli) -> None:
    result = cli("catalog", "show", "models", "meta-llama/Llama-3.1-70B-Instruct", "--json")
    assert result.code == 0
    assert json.loads(result.stdout)["id"] == "llama-3.1-70b"


def test_unknown_id_exit_2_with_suggestion(cli: Cli) -> None:
    result = cli("catalog", "show", "accelerators", "h200-sx")
    assert result.code == 2
    assert result.stderr.startswith("error: Unknown accelerator 'h200-sx'. Did you mean 'h200-sxm'")


def test_unknown_kind_exit_2(cli: Cli) -> None:
    result = cli("catalog", "list", "acelerators")
    assert result.code == 2
    assert "Did you mean 'accelerators'" in result.stderr


def test_usage_error_exit_2(cli: Cli) -> None:
    assert cli("catalog", "list").code == 2
    assert cli("no-such-command").code == 2


def test_user_catalog_option(cli: Cli, tmp_path: Any) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("accelerators:\n  - id: x\n")
    result = cli("catalog", "list", "accelerators", "--catalog", str(path))
    assert result.code == 2
    assert f"{path} line 2" in result.stderr and "Field required" in result.stderr


def test_installed_entry_point_runs() -> None:
    """The console script and ``python -m fivelayer`` both work (exit codes pass through)."""
    ok = subprocess.run([sys.executable, "-m", "fivelayer", "--version"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "fivelayer" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "fivelayer", "catalog", "show", "models", "lama-3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_missing_optional_extra_is_exit_2_with_the_install_hint(monkeypatch: Any, capsys: Any) -> None:
    """A command whose optional dependency is absent (e.g. dask without the sweep extra) says what to install."""
    import importlib

    cli_app = importlib.import_module("fivelayer.interfaces.cli.app")  # the module, not the Typer it exports

    def without_dask(**_: Any) -> None:
        raise ModuleNotFoundError("No module named 'dask'", name="dask")

    monkeypatch.setattr(cli_app, "app", without_dask)
    assert cli_app.main(["sweep", "study.yaml"]) == 2
    assert "pip install 'fivelayer[sweep]'" in capsys.readouterr().err
