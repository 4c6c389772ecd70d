"""The industry projection: conservation, monotonicity, the power constraint, bad input, the CLI."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer

from fivelayer.core.errors import ScenarioError
from fivelayer.engines.projection import (
    ProjectionResult,
    ProjectionSpec,
    packaged_projection,
    packaged_projection_names,
    project,
    projection_from_text,
    simulate,
)
from fivelayer.interfaces.cli.app import app, main
from tests.conftest import CliResult

REQUIRED = (
    "year",
    "accelerators_installed",
    "ai_it_power_gw",
    "facility_power_gw",
    "ai_electricity_twh",
    "datacenter_electricity_twh",
    "co2_mt",
    "capex_usd",
    "usd_per_million_tokens",
    "unserved_demand_fraction",
)

NO_ELASTICITY = "feedback: {price_elasticity: false, power_constraint: false, scarcity_pricing: false}\n"


def _spec(override: str = "", name: str = "test") -> ProjectionSpec:
    return projection_from_text(f"extends: base\nname: {name}\n{override}", origin="test.yaml")


@pytest.fixture(scope="module")
def base_result() -> ProjectionResult:
    return project(packaged_projection("base"))


def test_base_case_matches_iea_and_lbnl(base_result: ProjectionResult) -> None:
    checks = {c["id"]: c for c in base_result.checks}
    for key in ("iea-world-2024", "iea-world-2030", "lbnl-us-2028"):
        assert checks[key]["status"] == "ok", checks[key]
    assert abs(base_result.row(2024)["datacenter_electricity_twh"] / 415 - 1) <= 0.15
    assert abs(base_result.row(2030)["datacenter_electricity_twh"] / 945 - 1) <= 0.15
    assert 325 <= base_result.row(2028, "us")["datacenter_electricity_twh"] <= 580


def test_lbnl_2023_when_the_projection_starts_in_2023() -> None:
    result = project(_spec("years: {start: 2023, end: 2030}\n"))
    assert abs(result.row(2023, "us")["datacenter_electricity_twh"] / 176 - 1) <= 0.15
    # inputs are anchored to years, so the range does not move later years
    base = project(packaged_projection("base"))
    assert result.row(2028, "us")["datacenter_electricity_twh"] == pytest.approx(
        base.row(2028, "us")["datacenter_electricity_twh"], rel=1e-9
    )


def test_json_fields(base_result: ProjectionResult) -> None:
    data = base_result.to_dict()
    assert [r["year"] for r in data["years"]] == list(range(2024, 2036))
    for row in data["years"]:
        for key in REQUIRED:
            assert key in row
        assert set(row["capex_usd"]) >= {"energy", "chips", "infrastructure"}
    assert "us" in data["regions"]
    for key in REQUIRED:
        assert key in data["regions"]["us"][0]


@pytest.mark.parametrize("name", packaged_projection_names())
def test_stock_flow_conservation(name: str) -> None:
    t = simulate(packaged_projection(name))
    s = t.series
    np.testing.assert_allclose(
        s["accelerators_installed"],
        s["accelerators_installed_before"] + s["accelerators_shipped"] - s["accelerators_retired"],
        rtol=1e-9,
    )
    # installed(t - 1) is the previous year's installed
    np.testing.assert_allclose(s["accelerators_installed_before"][:, 1:], s["accelerators_installed"][:, :-1])
    assert (s["accelerators_shipped"] >= 0).all()


@pytest.mark.parametrize("name", packaged_projection_names())
def test_power_constraint_every_year(name: str) -> None:
    spec = packaged_projection(name)
    t = simulate(spec)
    s = t.series
    # the fleet never draws more than the facility capacity built for it
    assert (s["facility_power_w"] <= s["ai_facility_capacity_w"] * (1 + 1e-9) + 1.0).all()
    # the capacity never grows faster than the buildout allows (history years have no limit)
    assert (s["facility_additions_w"] <= s["buildout_limit_w"] * (1 + 1e-9) + 1.0).all()


def test_power_constrained_scenario_reports_unserved_demand_not_an_error() -> None:
    result = project(packaged_projection("power-constrained"))
    unserved = [r["unserved_demand_fraction"] for r in result.years]
    assert max(unserved) > 0.05
    base = project(packaged_projection("base"))
    year = result.years[unserved.index(max(unserved))]["year"]
    assert result.row(year)["usd_per_million_tokens"] > base.row(year)["usd_per_million_tokens"]


def test_scarcity_pricing_switch() -> None:
    tight = "regions:\n  - {id: us, buildout: {max_additions: 0.5 GW, max_additions_growth_per_year: 0}}\n"
    with_scarcity = project(_spec(tight))
    without = project(_spec(tight + "feedback: {scarcity_pricing: false}\n"))
    shortfall = [r for r in with_scarcity.regions["us"] if r["unserved_demand_fraction"] > 0]
    assert shortfall
    year = shortfall[0]["year"]
    assert with_scarcity.row(year, "us")["usd_per_million_tokens"] > without.row(year, "us")["usd_per_million_tokens"]


@pytest.mark.parametrize(
    "field",
    [
        "inference: {algorithmic_efficiency_gain_per_year: %s}",
        "accelerators: {performance_per_watt_growth_per_year: %s}",
    ],
)
def test_higher_efficiency_growth_never_raises_energy_at_fixed_demand(field: str) -> None:
    energies = []
    for gain in (0.1, 0.3, 0.6):
        result = project(_spec(NO_ELASTICITY + field % gain))
        energies.append(np.array([r["ai_electricity_twh"] for r in result.years]))
    assert (energies[1] <= energies[0] + 1e-9).all()
    assert (energies[2] <= energies[1] + 1e-9).all()


def test_higher_elasticity_never_lowers_demand_when_prices_fall() -> None:
    demands = []
    for eps in (0.0, 0.5, 1.0):
        override = "feedback: {power_constraint: false, scarcity_pricing: false}\nsectors:\n"
        override += "".join(
            f"  - {{id: {s}, price_elasticity: {eps}}}\n" for s in ("consumer-chat", "enterprise", "agents", "other-ai")
        )
        result = project(_spec(override))
        prices = [r["usd_per_million_tokens"] for r in result.years]
        assert all(b < a for a, b in itertools.pairwise(prices))  # prices fall
        demands.append(np.array([r["tokens_demanded"] for r in result.years]))
    assert (demands[1] >= demands[0] * (1 - 1e-12)).all()
    assert (demands[2] >= demands[1] * (1 - 1e-12)).all()


def test_elasticity_switch_off_means_demand_ignores_price() -> None:
    a = project(_spec(NO_ELASTICITY))
    b = project(_spec(NO_ELASTICITY + "sectors:\n  - {id: agents, price_elasticity: 2.0}\n"))
    assert [r["tokens_demanded"] for r in a.years] == pytest.approx([r["tokens_demanded"] for r in b.years])


def test_deterministic() -> None:
    a = project(packaged_projection("base")).to_dict()
    b = project(packaged_projection("base")).to_dict()
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_every_published_input_has_a_source() -> None:
    spec = packaged_projection("base")
    sources = [s for b in spec.basis.values() for s in b.sources] + [s for r in spec.references for s in r.sources]
    assert sources
    assert {s.retrieved.isoformat() for s in sources} == {"2026-11-28"}
    assert spec.basis["accelerators"].assumptions  # named assumptions are written down


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("training: {frontier_compute_growth_per_year: -0.2}\n", "training.frontier_compute_growth_per_year"),
        ("years: {start: 2030, end: 2024}\n", "years"),
        ("regions:\n  - {id: us, ai_share: 0.9}\n", "ai_share"),
        (
            "regions:\n  - id: us\n    supply:\n"
            "      start: {coal: 0.5, gas: 0.5, nuclear: 0.5, renewables: 0, other: 0}\n",
            "regions[0].supply.start",
        ),
        (
            "inference: {algorithmic_efficiency_gain_per_year: {points: {2024: 0.3, 2030: -0.1}}}\n",
            "inference.algorithmic_efficiency_gain_per_year",
        ),
        ("accelerators: {generations: [{id: h100-sxn, from_year: 2026}]}\n", "accelerators.generations["),
        # A misspelt field names the nearest known field of the same record, also inside a list.
        ("training: {frontier_compute_growth_per_yr: 0.2}\n", "did you mean 'frontier_compute_growth_per_year'?"),
        ("regions:\n  - {id: us, ai_shar: 0.2}\n", "(regions[0].ai_shar): unknown field; did you mean 'ai_share'?"),
    ],
)
def test_bad_input_names_the_field(override: str, field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _spec(override)
    assert field in str(info.value)


# --- command line --------------------------------------------------------------------------------------


def test_cli_json(run_cli: Callable[..., CliResult]) -> None:
    res = run_cli("project", "--json")
    assert res.code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["years"][0]["year"] == 2024
    assert "us" in data["regions"]


def test_cli_table_and_compare(run_cli: Callable[..., CliResult]) -> None:
    res = run_cli("project", "power-constrained")
    assert res.code == 0, res.stderr
    assert "projection: power-constrained" in res.stdout
    res = run_cli("project", "--compare", "--json")
    assert res.code == 0, res.stderr
    assert set(json.loads(res.stdout)["scenarios"]) == set(packaged_projection_names())


def test_cli_bad_input_exit_2(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: base\nname: bad\nyears: {start: 2035, end: 2024}\n", encoding="utf-8")
    res = run_cli("project", str(bad))
    assert res.code == 2
    assert "years" in res.stderr and "bad.yaml line 3" in res.stderr
    bad.write_text("extends: base\nname: bad\nregions:\n  - {id: china, ai_share: 0.5}\n", encoding="utf-8")
    res = run_cli("project", str(bad))
    assert res.code == 2
    assert "ai_share" in res.stderr and "sum to 1" in res.stderr
    res = run_cli("project", str(tmp_path / "missing.yaml"))
    assert res.code == 2


def test_cli_standalone_file(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    path = tmp_path / "infeasible.yaml"
    path.write_text(
        "extends: base\nname: infeasible\nregions:\n"
        "  - {id: us, buildout: {max_additions: 0 W, under_construction: 0 W}}\n",
        encoding="utf-8",
    )
    res = run_cli("project", str(path), "--json")
    assert res.code == 0, res.stderr
    us = json.loads(res.stdout)["regions"]["us"]
    assert max(r["unserved_demand_fraction"] for r in us) > 0.3


def test_main_is_importable() -> None:
    assert callable(main) and isinstance(app, typer.Typer)
