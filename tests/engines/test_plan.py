"""plan and yield through the five layers: published figures, invariants, bad and power-limited scenarios."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fivelayer import Scenario, default_scenario
from fivelayer.engines.analytic import plan, yield_

Cli = Callable[..., Any]

SMALL = """\
name: small
site: {{region: us-va, power_cap: {cap}}}
facility: {{design: direct-to-chip}}
deployments:
  - {{name: chat, system: dgx-h200, model: llama-3.1-70b, precision: fp8, serves: [customer-service-assistant]}}
applications:
  - {{id: customer-service-assistant, users: {users}}}
"""


def small(users: float = 2_000_000, cap: str = "50 MW") -> Scenario:
    return Scenario.from_yaml_text(SMALL.format(users=users, cap=cap), "small.yaml")


def test_default_plan_fits_its_100_mw_site_and_serves_everything() -> None:
    result = plan(default_scenario())
    totals = result.totals
    assert totals["facility_power_mw"] <= 100.0
    assert totals["unserved_demand_fraction"] == 0.0
    assert totals["accelerators"] > 1000
    for key in ("accelerators", "it_power_mw", "facility_power_mw", "energy_mwh_per_year", "capex_usd",
                "annual_cost_usd", "usd_per_million_tokens", "joules_per_token", "tokens_per_s_per_mw",
                "co2_t_per_year", "water_m3_per_year"):  # fmt: skip
        assert np.isfinite(totals[key]) and totals[key] > 0, key


def test_facility_energy_is_it_energy_times_pue_hour_by_hour() -> None:
    result = plan(small())
    it, facility = result.hourly["it_w"], result.hourly["facility_w"]
    pue_hourly = facility / it
    assert facility.sum() == pytest.approx((it * pue_hourly).sum())
    assert result.totals["energy_mwh_per_year"] == pytest.approx(facility.sum() / 1e6)
    design_pue = result.layers["infrastructure"]["pue_design"]
    assert np.all(pue_hourly >= design_pue - 1e-9)  # part load never improves PUE in this model


def test_money_and_energy_add_up_across_layers() -> None:
    result = plan(default_scenario())
    econ = result.layers["economics"]
    assert sum(econ["capex_usd"].values()) == pytest.approx(result.totals["capex_usd"])
    assert sum(econ["capex_detail_usd"].values()) == pytest.approx(result.totals["capex_usd"])
    annual = sum(econ["annualised_capex_usd"].values()) + sum(econ["opex_usd"].values())
    assert annual == pytest.approx(result.totals["annual_cost_usd"])
    assert sum(a["annual_cost_usd"] for a in result.applications) == pytest.approx(annual)
    energy = result.layers["energy"]
    supplied = energy["grid_mwh"] + energy["solar_mwh"] + energy["battery_discharge_mwh"] + energy["gas_mwh"]
    assert supplied + energy["unserved_mwh"] == pytest.approx(result.totals["energy_mwh_per_year"], rel=1e-9)


@settings(max_examples=8, deadline=None)
@given(st.floats(1e5, 2e7), st.floats(1.05, 4.0))
def test_more_demand_never_needs_fewer_accelerators(users: float, factor: float) -> None:
    base = plan(small(users, "1000 MW")).totals["accelerators"]
    more = plan(small(users * factor, "1000 MW")).totals["accelerators"]
    assert more >= base


@settings(max_examples=6, deadline=None)
@given(st.sampled_from(["2 MW", "5 MW", "20 MW"]), st.floats(1e6, 1e8))
def test_power_cap_is_never_exceeded(cap: str, users: float) -> None:
    result = plan(small(users, cap))
    cap_mw = float(cap.split()[0])
    assert result.totals["facility_power_mw"] <= cap_mw + 1e-9
    assert result.layers["energy"]["peak_grid_mw"] <= cap_mw + 1e-9


def test_power_limited_scenario_reports_unserved_demand() -> None:
    result = plan(small(1_000_000_000, "5 MW"))
    assert result.totals["unserved_demand_fraction"] > 0.5
    assert any("power-limited" in a for a in result.assumptions)
    assert result.applications[0]["served_fraction"] < 0.5


def test_epoch_ai_1_gw_gb200_nvl72_cost_breakdown() -> None:
    """Epoch AI data insight (2026-05-14, epoch.ai/data-insights/ai-datacenter-cost-breakdown): a 1 GW IT
    GB200 NVL72 data centre costs ~38 B USD to build, ~8.5 B USD a year in total, servers ~60 % of it; IT over
    5 years, facility over 14. Their servers figure (5 B USD/yr, about 25 B USD of servers / 5 years) implies
    straight-line annualisation, so the cost of capital is 0 here. Prices come from fivelayer's catalog;
    the demand is set high enough to keep the servers busy, as Epoch's energy cost (0.6 B USD/yr) implies."""
    text = """\
name: Epoch AI 1 GW GB200 NVL72
site: {region: us}
facility: {design: direct-to-chip}
deployments:
  - {name: gb200, system: gb200-nvl72, count: 540000, model: llama-3.1-70b, precision: fp8, serves: [general-chat]}
applications:
  - {id: general-chat, users: 5_000_000_000}
economics: {discount_rate: 0.0, accelerator_life_years: 5, network_life_years: 5, building_life_years: 14}
"""
    result = plan(Scenario.from_yaml_text(text, "epoch.yaml"))
    totals = result.totals
    econ = result.layers["economics"]
    assert totals["it_power_mw"] == pytest.approx(1000, rel=0.05)
    assert totals["capex_usd"] == pytest.approx(38e9, rel=0.10)
    assert totals["annual_cost_usd"] == pytest.approx(8.5e9, rel=0.10)
    servers = econ["annualised_capex_usd"]["chips"] + econ["annualised_capex_usd"]["servers"]
    assert servers / totals["annual_cost_usd"] == pytest.approx(0.60, rel=0.10)


def test_yield_fills_the_site_and_counts_users() -> None:
    result = yield_(default_scenario())
    assert 90.0 <= result.totals["facility_power_mw"] <= 100.0
    assert result.totals["users_servable"] > 0
    assert result.totals["revenue_usd_per_year"] > 0
    budget = yield_(default_scenario(), budget_usd=1e9)
    assert budget.totals["capex_usd"] <= 1e9 * 1.05
    assert budget.totals["accelerators"] < result.totals["accelerators"]


def test_cli_plan_json_contract(cli: Cli) -> None:
    result = cli("plan", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("accelerators", "it_power_mw", "facility_power_mw", "energy_mwh_per_year", "capex_usd",
                "annual_cost_usd", "usd_per_million_tokens", "joules_per_token", "tokens_per_s_per_mw",
                "co2_t_per_year", "water_m3_per_year"):  # fmt: skip
        assert key in data["totals"]
    for layer in ("energy", "chips", "infrastructure", "models", "economics"):
        assert layer in data
    assert data["sankey"]["links"]


def test_cli_plan_and_yield_tables(cli: Cli) -> None:
    assert "facility_power_mw" in cli("plan").stdout
    assert "users_servable" in cli("yield").stdout


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("us-va", "atlantis"), "Unknown grid region 'atlantis'"),
        (("power_cap: 50 MW", "power_cap: 30 kW"), "below the power of one"),
        (("users: 2000000", "users: -3"), "greater than 0"),
    ],
)
def test_cli_plan_bad_scenario_exit_2(cli: Cli, tmp_path: Path, change: tuple[str, str], words: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.format(users=2000000, cap="50 MW").replace(*change))
    result = cli("plan", str(path))
    assert result.code == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_yield_needs_a_power_cap(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.format(users=1000, cap="50 MW").replace(", power_cap: 50 MW", ""))
    result = cli("yield", str(path))
    assert result.code == 2
    assert "power_cap" in result.stderr


def test_ppa_halves_market_based_emissions_and_reprices_energy() -> None:
    text = SMALL.format(users=2_000_000, cap="50 MW").replace(
        "site: {region: us-va, power_cap: 50 MW}", "site: {region: us-va, power_cap: 50 MW, ppa_share: 0.5}"
    )
    text += "economics: {ppa_price: 0.05 USD/kWh}\n"
    result = plan(Scenario.from_yaml_text(text, "ppa.yaml"))
    energy = result.layers["energy"]
    assert energy["co2_t_market_based"] == pytest.approx(0.5 * energy["co2_t_location_based"])
    price = energy["electricity_price_usd_per_kwh"]
    expected = energy["grid_mwh"] * 1e3 * (0.5 * price + 0.5 * 0.05)
    assert result.layers["economics"]["opex_usd"]["electricity"] == pytest.approx(expected)


def test_a_factory_that_also_trains() -> None:
    """A training run adds its cluster, energy and cost; the serving side is unchanged."""
    base = small(2_000_000, "200 MW")
    text = SMALL.format(users=2_000_000, cap="200 MW") + (
        "trainings:\n"
        "  - {name: pretrain, model: llama-3.1-8b, tokens: 15T, system: dgx-h100, count: 1024, runs_per_year: 2}\n"
    )
    trains = Scenario.from_yaml_text(text, "train.yaml")
    a, b = plan(base), plan(trains)
    run = b.layers["models"]["trainings"][0]
    assert b.totals["accelerators"] == a.totals["accelerators"] + 1024
    assert b.totals["tokens_per_s"] == pytest.approx(a.totals["tokens_per_s"])
    assert b.totals["it_energy_mwh_per_year"] > a.totals["it_energy_mwh_per_year"]
    assert 0 < run["duty"] <= 1
    assert run["days_per_run"] * 2 == pytest.approx(run["duty"] * 365)
    assert sum(x["annual_cost_usd"] for x in b.applications) + run["annual_cost_usd"] == pytest.approx(
        b.totals["annual_cost_usd"]
    )


def test_training_that_cannot_fit_a_year_is_an_error(tmp_path: Path, cli: Cli) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        SMALL.format(users=1000, cap="200 MW")
        + "trainings:\n  - {name: big, model: llama-3.1-405b, tokens: 15T, system: dgx-h100, count: 1024}\n"
    )
    result = cli("plan", str(path))
    assert result.code == 2
    assert "do not fit in a year" in result.stderr


def test_hourly_carbon_profile_weights_grid_energy_hour_by_hour() -> None:
    # us-va carries PJM's 2022 month-by-hour carbon shape (EIA-930 via SustainDC), scaled to eGRID SRVC's 269
    # g/kWh: location-based CO2 is the sum over the hours of grid energy x that hour's intensity.
    result = plan(small())
    grid_w, carbon = result.hourly["grid_w"], result.hourly["carbon_g_per_kwh"]
    assert float(carbon.mean()) == pytest.approx(269.0, rel=1e-12)
    assert carbon.std() > 0
    by_hand_t = float((grid_w * carbon).sum()) / 1e3 / 1e6  # Wh x g/kWh -> g -> t
    energy = result.layers["energy"]
    assert energy["carbon_intensity_hourly"] is True
    assert result.totals["co2_t_per_year"] == pytest.approx(by_hand_t, rel=1e-12)
    # The load follows the daily demand, so the effective intensity differs from the annual average, but
    # only by the covariance of load and intensity: a few per cent at most.
    assert energy["grid_carbon_intensity_effective_g_per_kwh"] == pytest.approx(269.0, rel=0.03)


def test_region_without_profile_uses_the_annual_average() -> None:
    # Sweden has no hourly profile: CO2 = grid MWh x annual g/kWh / 1,000 exactly.
    scenario = Scenario.from_yaml_text(SMALL.format(users=2_000_000, cap="50 MW").replace("us-va", "se"), "se.yaml")
    result = plan(scenario)
    energy = result.layers["energy"]
    assert energy["carbon_intensity_hourly"] is False
    expected = energy["grid_mwh"] * energy["carbon_intensity_g_per_kwh"] / 1e3
    assert result.totals["co2_t_per_year"] == expected
    assert np.all(result.hourly["carbon_g_per_kwh"] == energy["carbon_intensity_g_per_kwh"])
