"""``plan`` (top-down) and ``yield`` (bottom-up) through all five layers.

plan: applications' demand -> model work -> accelerators at the latency targets (with headroom for the
peak hour) -> systems, racks, network, storage -> IT and facility power -> hourly energy over a year ->
capex, annual cost, $ per million tokens, carbon, water.

yield: a site's power (and an optional capex budget) -> the systems that fit -> tokens per second of each
model -> users of each application served -> revenue.

Both produce a :class:`StackResult` with a section per layer, totals, the data of a Sankey diagram and the
assumptions used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fivelayer.catalog import CatalogSet
from fivelayer.core.errors import InfeasibleConfiguration
from fivelayer.economics import (
    annualised_capex,
    net_present_value,
    payback_years,
    tokens_per_s_per_mw,
    usd_per_million_tokens,
)
from fivelayer.energy.carbon import carbon_emissions_t, hourly_carbon_intensity
from fivelayer.energy.dispatch import HOURS_PER_YEAR, dispatch, solar_profile
from fivelayer.energy.solar import pvlib_clear_sky_ac
from fivelayer.engines.analytic.stack import DeploymentUnit, demands_of, training_unit, unit_for, units_needed
from fivelayer.infrastructure import FacilityDesign
from fivelayer.infrastructure.sizing import (
    DAILY_TEMPERATURE_AMPLITUDE_C,
    FIXED_OVERHEAD_FRACTION,
    fabric,
    facility_capex_factor,
    facility_overhead_hourly_w,
    hourly_temperature_c,
    racks_for,
    redundancy_overhead_w,
)
from fivelayer.scenario import Scenario

__all__ = ["STORAGE_TB_PER_ACCELERATOR", "StackResult", "plan", "yield_"]

#: Usable flash storage per accelerator for serving (weights, KV offload, logs). Assumption: 2 TB.
STORAGE_TB_PER_ACCELERATOR = 2.0
#: White space per rack including aisles and clearances. Assumption: 2.5 m2, the usual 0.6 x 1.2 m rack
#: footprint plus hot and cold aisles; support rooms (power, cooling plant) come on top.
FLOOR_AREA_M2_PER_RACK = 2.5
#: Solar capacity factor and latitude used when the catalog has no solar option or the region no latitude.
DEFAULT_SOLAR_CAPACITY_FACTOR = 0.24
DEFAULT_LATITUDE = 38.0
#: Fabric used when the catalog lacks components: 64-port 800G switches at 1.6 kW and 30 kUSD, 800G optics
#: at 16 W and 1 kUSD each, flash at 100 USD and 1 W per TB. Assumptions, used only as fall-backs.
FALLBACK_SWITCH = (64, 1600.0, 30_000.0)
FALLBACK_OPTIC = (16.0, 1000.0)
FALLBACK_STORAGE = (1.0, 100.0)


@dataclass
class StackResult:
    """The outcome of ``plan`` or ``yield``: per-layer sections, totals, Sankey data and assumptions."""

    kind: str
    scenario: str
    totals: dict[str, float]
    layers: dict[str, Any]
    deployments: list[dict[str, Any]]
    applications: list[dict[str, Any]]
    sankey: dict[str, Any]
    hourly: dict[str, np.ndarray] = field(repr=False)
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: totals, per-layer sections, deployments, applications, Sankey, assumptions."""
        return {
            "kind": self.kind,
            "scenario": self.scenario,
            "totals": self.totals,
            **self.layers,
            "deployments": self.deployments,
            "applications": self.applications,
            "sankey": self.sankey,
            "assumptions": self.assumptions,
        }

    def to_frame(self) -> Any:
        """The totals as a one-row pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([self.totals])

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th>{k}</th><td>{_fmt(v)}</td></tr>" for k, v in self.totals.items())
        return f"<table><caption>{self.kind}: {self.scenario}</caption>{rows}</table>"

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.kind}: {self.scenario}", show_header=False)
        table.add_column("total", style="bold")
        table.add_column("value", justify="right")
        for key, value in self.totals.items():
            table.add_row(key, _fmt(value))
        return table


def _fmt(value: float) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return f"{value:,.0f}"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


# --- shared pieces ---------------------------------------------------------------------------------------


def _components(cat: CatalogSet) -> tuple[tuple[int, float, float], tuple[float, float], tuple[float, float]]:
    switch = next((c for c in cat.components if c.kind == "network-switch" and "ethernet" in c.id), None)
    switch = switch or next((c for c in cat.components if c.kind == "network-switch"), None)
    optic = next((c for c in cat.components if c.kind == "transceiver" and "800" in c.id), None)
    optic = optic or next((c for c in cat.components if c.kind == "transceiver"), None)
    storage = next((c for c in cat.components if c.kind == "storage"), None)
    s = (switch.ports or 64, switch.power_w, switch.price_usd) if switch else FALLBACK_SWITCH
    o = (optic.power_w, optic.price_usd) if optic else FALLBACK_OPTIC
    t = (storage.power_w, storage.price_usd) if storage else FALLBACK_STORAGE
    return s, o, t


@dataclass
class _Build:
    unit: DeploymentUnit
    units: int
    capacity_hourly: np.ndarray  # units x capacity (per s), every hour
    demand_hourly: np.ndarray  # output tokens (or samples) per s demanded
    served_hourly: np.ndarray
    power_hourly: np.ndarray
    apps: list[Any]


def _build(scenario: Scenario, index: int, unit: DeploymentUnit, units: int) -> _Build:
    dep = scenario.deployments[index]
    demands = demands_of(scenario, dep)
    demand = np.zeros(HOURS_PER_YEAR)
    for d, _ in demands:
        demand = demand + d.hourly_output_tokens_per_s()
    capacity = units * unit.capacity_per_s
    served = np.minimum(demand, capacity)
    load = np.divide(served, capacity, out=np.zeros_like(served), where=capacity > 0)
    power = units * (unit.idle_power_w + (unit.busy_power_w - unit.idle_power_w) * load)
    return _Build(unit, units, np.full(HOURS_PER_YEAR, capacity), demand, served, power, demands)


def _training_builds(scenario: Scenario) -> tuple[list[_Build], list[dict[str, Any]]]:
    builds, summaries = [], []
    for t in range(len(scenario.trainings)):
        unit, summary = training_unit(scenario, t)
        zeros = np.zeros(HOURS_PER_YEAR)
        duty = summary["duty"]
        power = np.full(HOURS_PER_YEAR, unit.idle_power_w + (unit.busy_power_w - unit.idle_power_w) * duty)
        builds.append(_Build(unit, 1, zeros, zeros, zeros, power, []))
        summaries.append(summary)
    return builds, summaries


def _facility(scenario: Scenario) -> tuple[FacilityDesign, float, float]:
    design = scenario.resolved_catalog.facilities.get(scenario.facility.design)
    pue = scenario.facility.pue or design.pue
    rack = scenario.facility.max_rack_power or design.max_rack_power_w
    return design, pue, rack


def _assemble(scenario: Scenario, kind: str, serving: list[_Build], notes: list[str]) -> StackResult:
    cat = scenario.resolved_catalog
    training, training_summaries = _training_builds(scenario)
    builds = serving + training
    econ = scenario.economics
    region = cat.grid_regions.get(scenario.site.region)
    design, pue, max_rack = _facility(scenario)
    (radix, switch_w, switch_usd), (optic_w, optic_usd), (storage_w_tb, storage_usd_tb) = _components(cat)

    accelerators = sum(b.units * b.unit.accelerators for b in builds)
    systems = sum(b.units * b.unit.systems for b in builds)
    racks = 0
    for b in builds:
        per_system_power = b.unit.max_power_w / b.unit.systems
        per_system_racks = None if b.unit.racks_per_unit is None else b.unit.racks_per_unit / b.unit.systems
        racks += racks_for(b.units * b.unit.systems, per_system_power, per_system_racks, max_rack)
    net = fabric(accelerators, radix)
    network_w = net.power_w(switch_w, optic_w)
    storage_tb = STORAGE_TB_PER_ACCELERATOR * accelerators
    storage_w = storage_tb * storage_w_tb

    servers_max_w = sum(b.units * b.unit.max_power_w for b in builds)
    it_design_w = servers_max_w + network_w + storage_w
    it_hourly = sum((b.power_hourly for b in builds), np.zeros(HOURS_PER_YEAR)) + network_w + storage_w
    # Facility overhead: part load, the hour's outdoor temperature (monthly normals with a daily cycle) and
    # the UPS no-load loss of the chosen redundancy against the design's baseline.
    redundancy = scenario.facility.redundancy
    climate = f"{region.id} monthly normals with a +/-{DAILY_TEMPERATURE_AMPLITUDE_C:g} degC daily cycle"
    if region.monthly_mean_temperature_c is not None:
        outdoor_c = hourly_temperature_c(region.monthly_mean_temperature_c)
    elif region.mean_temperature_c is not None:
        outdoor_c = hourly_temperature_c([region.mean_temperature_c] * 12)
        climate = f"{region.id} annual mean all year with a +/-{DAILY_TEMPERATURE_AMPLITUDE_C:g} degC daily cycle"
    else:
        outdoor_c = np.full(HOURS_PER_YEAR, design.free_cooling_limit_c)
        climate = f"no temperatures for {region.id}, free cooling assumed all year"
    chain_w = redundancy_overhead_w(it_design_w, redundancy, design.baseline_redundancy, design.ups_no_load_loss)
    overhead_hourly = facility_overhead_hourly_w(
        it_hourly, it_design_w, pue, outdoor_c, design.free_cooling_limit_c, design.pue_per_degree_c
    )
    facility_hourly = it_hourly + np.maximum(overhead_hourly + chain_w, 0.0)
    pue_full_load = max(pue + chain_w / it_design_w, 1.0) if it_design_w > 0 else pue
    hottest_excess_c = max(float(outdoor_c.max()) - design.free_cooling_limit_c, 0.0)
    pue_peak = pue_full_load + design.pue_per_degree_c * hottest_excess_c
    facility_design_w = it_design_w * pue_peak  # full IT load in the hottest hour sizes the supply

    # Energy supply: grid up to the cap, on-site solar, battery, gas.
    onsite = scenario.site.onsite
    solar = None
    solar_option = next((s for s in cat.supply_options if s.kind == "solar-pv"), None)
    clear_sky_cf = None
    if onsite.solar > 0:
        cf = (solar_option.capacity_factor if solar_option and solar_option.capacity_factor else None) or (
            DEFAULT_SOLAR_CAPACITY_FACTOR
        )
        latitude = region.latitude_deg if region.latitude_deg is not None else DEFAULT_LATITUDE
        if onsite.solar_model == "pvlib":
            # Clear-sky pvlib output gives the shape of the year; its own capacity factor (no clouds) is reported.
            longitude = region.longitude_deg if region.longitude_deg is not None else 0.0
            offset = region.utc_offset_hours if region.utc_offset_hours is not None else round(longitude / 15.0)
            where = f"{scenario.where(('site', 'onsite', 'solar_model'))} (site.onsite.solar_model)"
            shape = pvlib_clear_sky_ac(latitude, longitude, offset, where=where)
            clear_sky_cf = float(shape.mean())
        else:
            shape = solar_profile(latitude)
        solar = onsite.solar * shape * (cf / shape.mean())
    battery_option = next((s for s in cat.supply_options if s.kind == "battery"), None)
    rte = battery_option.round_trip_efficiency if battery_option and battery_option.round_trip_efficiency else 0.85
    grid_cap = scenario.site.power_cap if scenario.site.power_cap is not None else math.inf
    flows = dispatch(facility_hourly, grid_cap, solar, onsite.battery_energy / 3600.0, onsite.battery_power, rte,
                     onsite.gas)  # fmt: skip

    # Energy totals (Wh per hour sums: W x 1 h).
    it_mwh = float(it_hourly.sum()) / 1e6
    facility_mwh = float(facility_hourly.sum()) / 1e6
    grid_mwh = float(flows.grid_w.sum()) / 1e6
    gas_mwh = float(flows.gas_w.sum()) / 1e6
    solar_mwh = float(flows.solar_used_w.sum()) / 1e6
    unserved_mwh = float(flows.unserved_w.sum()) / 1e6
    gas_option = next((s for s in cat.supply_options if s.kind.startswith("gas")), None)
    gas_g_per_kwh = gas_option.emissions_g_per_kwh if gas_option else 490.0
    # Location-based carbon: each hour's grid energy at that hour's intensity where the region has a profile
    # (scaled so its hourly mean is the annual value), else the annual average.
    carbon_hourly = hourly_carbon_intensity(region.carbon_intensity_g_per_kwh, region.carbon_intensity_profile)
    if region.carbon_intensity_profile is not None:
        grid_co2_t = carbon_emissions_t(flows.grid_w, carbon_hourly)
        co2_t = grid_co2_t + gas_mwh * gas_g_per_kwh / 1e3
    else:
        grid_co2_t = grid_mwh * region.carbon_intensity_g_per_kwh / 1e3
        co2_t = (grid_mwh * region.carbon_intensity_g_per_kwh + gas_mwh * gas_g_per_kwh) / 1e3
    water_m3 = it_mwh * 1e3 * design.wue_l_per_kwh / 1e3

    # Tokens.
    served_tokens = sum(float(b.served_hourly.sum()) for b in builds) * 3600.0
    demanded_tokens = sum(float(b.demand_hourly.sum()) for b in builds) * 3600.0
    # Hours the supply could not cover cut service in proportion.
    shortfall = np.divide(flows.unserved_w, facility_hourly, out=np.zeros(HOURS_PER_YEAR), where=facility_hourly > 0)
    if shortfall.any():
        served_tokens = sum(float((b.served_hourly * (1.0 - shortfall)).sum()) for b in builds) * 3600.0

    # Money.
    price_kwh = (
        (econ.electricity_price * 3.6e6)
        if econ.electricity_price is not None
        else (region.electricity_price_usd_per_kwh)
    )
    gas_price = gas_option.energy_price_usd_per_kwh if gas_option else 0.06
    chips_capex = sum(b.units * b.unit.accelerator_price_usd for b in builds)
    servers_capex = sum(b.units * b.unit.price_usd for b in builds) - chips_capex
    network_capex = net.capex_usd(switch_usd, optic_usd)
    storage_capex = storage_tb * storage_usd_tb
    facility_capex = (
        design.build_cost_usd_per_w
        * it_design_w
        * facility_capex_factor(redundancy, design.baseline_redundancy, design.electrical_cost_share)
    )
    solar_capex = onsite.solar / 1e3 * (solar_option.capex_usd_per_kw if solar_option else 1100.0)
    battery_capex = (onsite.battery_energy / 3.6e6) * (battery_option.capex_usd_per_kwh if battery_option else 300.0)
    battery_capex += (onsite.battery_power / 1e3) * (battery_option.capex_usd_per_kw if battery_option else 0.0)
    gas_capex = onsite.gas / 1e3 * (gas_option.capex_usd_per_kw if gas_option else 1000.0)
    energy_capex = solar_capex + battery_capex + gas_capex
    building_life = econ.building_life_years or design.lifetime_years
    rate = econ.discount_rate
    annual_capital = {
        "chips": annualised_capex(chips_capex, rate, econ.accelerator_life_years),
        "servers": annualised_capex(servers_capex, rate, econ.accelerator_life_years),
        "network": annualised_capex(network_capex, rate, econ.network_life_years),
        "storage": annualised_capex(storage_capex, rate, econ.network_life_years),
        "facility": annualised_capex(facility_capex, rate, building_life),
        "energy_supply": annualised_capex(energy_capex, rate, 25.0),
    }
    ppa_option = next((o for o in cat.supply_options if o.kind == "ppa"), None)
    ppa_price = (
        (econ.ppa_price * 3.6e6)
        if econ.ppa_price is not None
        else (ppa_option.energy_price_usd_per_kwh if ppa_option else price_kwh)
    )
    share = scenario.site.ppa_share
    electricity_usd = grid_mwh * 1e3 * ((1.0 - share) * price_kwh + share * ppa_price)
    monthly_peak_kw = flows.grid_w.reshape(12, -1).max(axis=1).sum() / 1e3 if flows.grid_w.size == 8760 else 0.0
    electricity_usd += econ.demand_charge_usd_per_kw_month * monthly_peak_kw
    co2_market_t = (
        grid_co2_t * (1.0 - share) + gas_mwh * gas_g_per_kwh / 1e3
        if region.carbon_intensity_profile is not None
        else (grid_mwh * (1.0 - share) * region.carbon_intensity_g_per_kwh + gas_mwh * gas_g_per_kwh) / 1e3
    )
    opex = {
        "electricity": electricity_usd,
        "gas_fuel": gas_mwh * 1e3 * gas_price,
        "maintenance": econ.maintenance_fraction_per_year
        * (chips_capex + servers_capex + network_capex + storage_capex),
        "staff": econ.staff_usd_per_mw_year * it_design_w / 1e6,
    }
    capex = chips_capex + servers_capex + network_capex + storage_capex + facility_capex + energy_capex
    annual_cost = sum(annual_capital.values()) + sum(opex.values())
    tokens_per_s = served_tokens / (HOURS_PER_YEAR * 3600.0)
    gpu_hour_usd = annual_cost / (accelerators * HOURS_PER_YEAR) if accelerators else math.inf

    applications = _applications(builds, annual_cost)
    all_energy = sum(float(b.power_hourly.sum()) for b in builds) or 1.0
    for summary, b in zip(training_summaries, training, strict=True):
        summary["annual_cost_usd"] = annual_cost * float(b.power_hourly.sum()) / all_energy
    revenue = sum(a["revenue_usd_per_year"] for a in applications)
    cashflows = [-capex] + [revenue - sum(opex.values())] * round(econ.accelerator_life_years)
    unserved_fraction = 1.0 - served_tokens / demanded_tokens if demanded_tokens > 0 else 0.0

    totals = {
        "accelerators": float(accelerators),
        "systems": float(systems),
        "racks": float(racks),
        "it_power_mw": it_design_w / 1e6,
        "facility_power_mw": facility_design_w / 1e6,
        "average_facility_power_mw": facility_mwh / HOURS_PER_YEAR,
        "energy_mwh_per_year": facility_mwh,
        "it_energy_mwh_per_year": it_mwh,
        "capex_usd": capex,
        "annual_cost_usd": annual_cost,
        "usd_per_million_tokens": usd_per_million_tokens(gpu_hour_usd, tokens_per_s / accelerators)
        if accelerators
        else math.inf,
        "joules_per_token": facility_mwh * 3.6e9 / served_tokens if served_tokens else math.inf,
        "tokens_per_s": tokens_per_s,
        "tokens_per_s_per_mw": tokens_per_s_per_mw(tokens_per_s / accelerators, facility_design_w / 1e3 / accelerators)
        if accelerators
        else 0.0,
        "co2_t_per_year": co2_t,
        "water_m3_per_year": water_m3,
        "revenue_usd_per_year": revenue,
        "unserved_demand_fraction": max(0.0, unserved_fraction),
        "usd_per_gpu_hour": gpu_hour_usd,
    }
    layers = {
        "energy": {
            "region": region.id,
            "grid_mwh": grid_mwh,
            "solar_mwh": solar_mwh,
            "solar_curtailed_mwh": float(flows.solar_curtailed_w.sum()) / 1e6,
            "battery_discharge_mwh": float(flows.battery_discharge_w.sum()) / 1e6,
            "gas_mwh": gas_mwh,
            "unserved_mwh": unserved_mwh,
            "peak_grid_mw": float(flows.grid_w.max()) / 1e6,
            "power_cap_mw": None if scenario.site.power_cap is None else scenario.site.power_cap / 1e6,
            "carbon_intensity_g_per_kwh": region.carbon_intensity_g_per_kwh,
            "electricity_price_usd_per_kwh": price_kwh,
            "carbon_intensity_hourly": region.carbon_intensity_profile is not None,
            "grid_carbon_intensity_effective_g_per_kwh": grid_co2_t * 1e3 / grid_mwh if grid_mwh else None,
            "solar_model": onsite.solar_model,
            "solar_clear_sky_capacity_factor": clear_sky_cf,
            "co2_t_location_based": co2_t,
            "co2_t_market_based": co2_market_t,
            "ppa_share": share,
            "ppa_price_usd_per_kwh": ppa_price,
        },
        "chips": {
            "accelerators": accelerators,
            "by_type": _count_by(builds, lambda b: b.unit.accelerator.id, lambda b: b.units * b.unit.accelerators),
        },
        "infrastructure": {
            "systems": systems,
            "racks": racks,
            "facility_design": design.id,
            "pue_design": pue_full_load,
            "pue_peak": pue_peak,
            "redundancy": redundancy,
            "pue_annual": facility_mwh / it_mwh if it_mwh else pue,
            "network": {
                "tiers": net.tiers,
                "switches": net.switches,
                "transceivers": net.transceivers,
                "power_w": network_w,
            },
            "storage_tb": storage_tb,
            "it_design_w": it_design_w,
            "floor_racks": racks,
            "floor_area_m2": racks * FLOOR_AREA_M2_PER_RACK,
        },
        "models": {
            "deployments": [{"name": b.unit.deployment, "model": b.unit.model_id} for b in serving],
            "trainings": training_summaries,
        },
        "economics": {
            "capex_usd": {
                "energy": energy_capex,
                "chips": chips_capex,
                "infrastructure": servers_capex + network_capex + storage_capex + facility_capex,
            },
            "capex_detail_usd": {
                "chips": chips_capex,
                "servers_excluding_chips": servers_capex,
                "network": network_capex,
                "storage": storage_capex,
                "facility": facility_capex,
                "solar": solar_capex,
                "battery": battery_capex,
                "gas": gas_capex,
            },
            "annualised_capex_usd": annual_capital,
            "opex_usd": opex,
            "annual_cost_usd": annual_cost,
            "revenue_usd_per_year": revenue,
            "npv_usd": net_present_value(rate, cashflows),
            "payback_years": payback_years(capex, revenue - sum(opex.values())),
        },
    }
    deployments = [
        {
            "name": b.unit.deployment,
            "accelerator": b.unit.accelerator.id,
            "system": b.unit.system.id if b.unit.system else None,
            "model": b.unit.model_id,
            "units": b.units,
            "accelerators": b.units * b.unit.accelerators,
            "capacity_per_s": b.units * b.unit.capacity_per_s,
            "peak_demand_per_s": float(b.demand_hourly.max()),
            "ttft_s": b.unit.ttft_s,
            "tpot_s": b.unit.tpot_s,
            "parallelism": None
            if b.unit.parallelism is None
            else dict(zip(("tp", "pp", "ep"), b.unit.parallelism, strict=True)),
            "busy_power_w_per_unit": b.unit.busy_power_w,
        }
        for b in serving
    ]
    hosts_mwh = 0.0
    acc_mwh = 0.0
    for b in builds:
        share = b.unit.busy_power_w
        host = max(share - b.unit.accelerators * b.unit.accelerator.tdp_w, 0.0)
        frac_host = host / share if share else 0.0
        mwh = float(b.power_hourly.sum()) / 1e6
        hosts_mwh += mwh * frac_host
        acc_mwh += mwh * (1 - frac_host)
    chain_loss = facility_mwh * (1.0 - design.power_chain_efficiency)
    cooling = max(facility_mwh - it_mwh - chain_loss, 0.0)
    sankey = {
        "nodes": [
            "grid",
            "solar",
            "battery",
            "gas",
            "meter",
            "power-chain losses",
            "cooling and other",
            "IT",
            "accelerators",
            "hosts",
            "network",
            "storage",
            "tokens",
        ],
        "links": [
            ["grid", "meter", grid_mwh],
            ["solar", "meter", solar_mwh],
            ["battery", "meter", float(flows.battery_discharge_w.sum()) / 1e6],
            ["gas", "meter", gas_mwh],
            ["meter", "power-chain losses", chain_loss],
            ["meter", "cooling and other", cooling],
            ["meter", "IT", it_mwh],
            ["IT", "accelerators", acc_mwh],
            ["IT", "hosts", hosts_mwh],
            ["IT", "network", network_w * HOURS_PER_YEAR / 1e6],
            ["IT", "storage", storage_w * HOURS_PER_YEAR / 1e6],
            ["accelerators", "tokens", acc_mwh],
        ],
        "unit": ["MWh per year"],
    }
    assumptions = list(notes)
    assumptions += [
        f"facility {design.id}: PUE {pue:g} at design load in free-cooling weather, {FIXED_OVERHEAD_FRACTION:.0%} "
        "of the overhead fixed (PUE rises at part load)",
        f"climate: {climate}; PUE rises {design.pue_per_degree_c:g} per degC above "
        f"{design.free_cooling_limit_c:g} degC (peak-hour PUE {pue_peak:.3f})",
        f"power chain: {redundancy} UPS and generators against the design's {design.baseline_redundancy} baseline "
        f"(electrical {design.electrical_cost_share:.0%} of build cost scales with installed capacity; UPS no-load "
        f"loss {design.ups_no_load_loss:.1%} of rating)",
        f"storage {STORAGE_TB_PER_ACCELERATOR:g} TB of flash per accelerator",
        f"network: non-blocking {net.tiers}-tier fabric of {radix}-port switches, one port per accelerator",
        f"carbon: location-based, {region.id} "
        + (
            f"month-by-hour profile scaled to its annual {region.carbon_intensity_g_per_kwh:g} g/kWh"
            if region.carbon_intensity_profile is not None
            else f"annual average ({region.carbon_intensity_g_per_kwh:g} g/kWh)"
        )
        + "; market-based subtracts the PPA-matched share",
        f"finance: {rate:.1%} cost of capital; accelerators and servers over {econ.accelerator_life_years:g} years, "
        f"network {econ.network_life_years:g}, building {building_life:g}",
    ]
    for b in builds:
        assumptions.extend(b.unit.notes)
    hourly = {
        "it_w": it_hourly,
        "facility_w": facility_hourly,
        "grid_w": flows.grid_w,
        "solar_w": flows.solar_used_w,
        "unserved_w": flows.unserved_w,
        "price_usd_per_kwh": np.full(HOURS_PER_YEAR, price_kwh),
        "carbon_g_per_kwh": carbon_hourly,
    }
    return StackResult(kind, scenario.name, totals, layers, deployments, applications, sankey, hourly,
                       list(dict.fromkeys(assumptions)))  # fmt: skip


def _count_by(builds: list[_Build], key: Any, value: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for b in builds:
        out[key(b)] = out.get(key(b), 0) + int(value(b))
    return out


def _applications(builds: list[_Build], annual_cost: float) -> list[dict[str, Any]]:
    """Per application: served share, tokens, revenue and $ per million tokens (cost shared by busy power)."""
    total_energy = sum(float(b.power_hourly.sum()) for b in builds) or 1.0
    out = []
    for b in builds:
        deployment_cost = annual_cost * float(b.power_hourly.sum()) / total_energy
        demand_total = float(b.demand_hourly.sum()) or 1.0
        served_fraction = float(b.served_hourly.sum()) / demand_total
        for demand, record in b.apps:
            share = float(demand.hourly_output_tokens_per_s().sum()) / demand_total
            tokens = float(b.served_hourly.sum()) * 3600.0 * share
            requests = demand.requests_per_s * HOURS_PER_YEAR * 3600.0 * served_fraction
            cost = deployment_cost * share
            out.append(
                {
                    "id": demand.application_id,
                    "deployment": b.unit.deployment,
                    "users": demand.users,
                    "requests_per_s": demand.requests_per_s,
                    "peak_output_per_s": demand.peak_output_tokens_per_s,
                    "served_fraction": served_fraction,
                    "units_per_year": tokens,
                    "unit": "tokens" if record.modality == "llm" else "samples",
                    "annual_cost_usd": cost,
                    "usd_per_million_units": cost / tokens * 1e6 if tokens else math.inf,
                    "usd_per_request": cost / requests if requests else math.inf,
                    "revenue_usd_per_year": requests * demand.value_usd_per_request,
                }
            )
    return out


# --- plan ------------------------------------------------------------------------------------------------


def plan(scenario: Scenario) -> StackResult:
    """Size the stack for the scenario's applications (top-down)."""
    _, pue, _ = _facility(scenario)
    units = [unit_for(scenario, i) for i in range(len(scenario.deployments))]
    counts = []
    for dep, unit in zip(scenario.deployments, units, strict=True):
        demands = demands_of(scenario, dep)
        peak = float(sum((d.hourly_output_tokens_per_s() for d, _ in demands), np.zeros(HOURS_PER_YEAR)).max())
        if dep.count == "size-to-demand":
            counts.append(units_needed(peak, dep.headroom, unit.capacity_per_s))
        else:
            counts.append(max(1, math.ceil(int(dep.count) / unit.accelerators)))
    notes: list[str] = []
    # Respect the site's firm supply (grid connection plus gas): scale size-to-demand deployments down.
    cap = scenario.site.power_cap
    if cap is not None:
        firm = cap + scenario.site.onsite.gas
        design_w = sum(c * u.max_power_w for c, u in zip(counts, units, strict=True)) * pue
        if design_w > firm:
            scale = firm / design_w * 0.98  # network and storage share of the power
            fixed = [d.count != "size-to-demand" for d in scenario.deployments]
            new = [c if f else max(0, math.floor(c * scale)) for c, f in zip(counts, fixed, strict=True)]
            notes.append(
                f"power-limited: the demand needs {design_w / 1e6:,.1f} MW of facility power but the site supplies "
                f"{firm / 1e6:,.1f} MW firm; deployments scaled to {scale:.0%} and the rest reported as unserved"
            )
            counts = new
            if sum(counts) == 0:
                raise InfeasibleConfiguration(
                    f"site power {firm / 1e6:,.3g} MW cannot run even one unit of any deployment "
                    f"({min(u.max_power_w for u in units) * pue / 1e3:,.0f} kW at the facility meter)"
                )
    builds = [_build(scenario, i, u, c) for i, (u, c) in enumerate(zip(units, counts, strict=True))]
    result = _assemble(scenario, "plan", builds, notes)
    # Network and storage add power too: shrink until the facility fits the firm supply.
    for _ in range(8):
        if cap is None:
            break
        firm = cap + scenario.site.onsite.gas
        over = result.totals["facility_power_mw"] * 1e6 / firm
        if over <= 1.0:
            break
        fixed = [d.count != "size-to-demand" for d in scenario.deployments]
        counts = [c if f else max(0, math.floor(c / over) - 1) for c, f in zip(counts, fixed, strict=True)]
        builds = [_build(scenario, i, u, c) for i, (u, c) in enumerate(zip(units, counts, strict=True))]
        result = _assemble(scenario, "plan", builds, notes)
    return result


# --- yield -----------------------------------------------------------------------------------------------


def yield_(scenario: Scenario, budget_usd: float | None = None) -> StackResult:
    """What the scenario's site (power cap) and an optional capex budget produce (bottom-up).

    Site power is shared among the deployments in proportion to their demand in the scenario; each gets
    as many units as its share of the power (and of the budget) allows.
    """
    cap = scenario.site.power_cap
    if cap is None:
        raise InfeasibleConfiguration(
            f"{scenario.where(('site',))} (site.power_cap): yield needs the site's power cap, e.g. '100 MW'"
        )
    design, pue, _ = _facility(scenario)
    units = [unit_for(scenario, i) for i in range(len(scenario.deployments))]
    firm = cap + scenario.site.onsite.gas
    weights = []
    for dep, unit in zip(scenario.deployments, units, strict=True):
        demands = demands_of(scenario, dep)
        peak = sum(d.peak_output_tokens_per_s for d, _ in demands)
        weights.append(peak / unit.capacity_per_s * unit.max_power_w if unit.capacity_per_s else 0.0)
    total_weight = sum(weights) or float(len(weights))
    shares = [w / total_weight if sum(weights) else 1.0 / len(weights) for w in weights]
    budget = budget_usd if budget_usd is not None else math.inf
    counts = []
    for share, unit in zip(shares, units, strict=True):
        by_power = math.floor(firm * share * 0.98 / (unit.max_power_w * pue))
        per_unit_capex = unit.price_usd + design.build_cost_usd_per_w * unit.max_power_w
        by_budget = math.floor(budget * share / per_unit_capex) if math.isfinite(budget) else by_power
        counts.append(max(0, min(by_power, by_budget)))
    if sum(counts) == 0:
        cheapest = min(units, key=lambda u: u.max_power_w)
        raise InfeasibleConfiguration(
            f"{scenario.where(('site', 'power_cap'))} (site.power_cap): {firm / 1e6:,.3g} MW cannot run one "
            f"{cheapest.system.id if cheapest.system else cheapest.accelerator.id} "
            f"({cheapest.max_power_w * pue / 1e3:,.0f} kW at the meter) within the budget"
        )
    note = [f"site power {firm / 1e6:,.1f} MW firm shared among deployments by demand"]
    builds = [_build(scenario, i, u, c) for i, (u, c) in enumerate(zip(units, counts, strict=True))]
    result = _assemble(scenario, "yield", builds, note)
    for _ in range(12):
        over = max(result.totals["facility_power_mw"] * 1e6 / firm, result.totals["capex_usd"] / budget)
        if over <= 1.0:
            break
        counts = [max(0, math.floor(c / over) - 1) for c in counts]
        builds = [_build(scenario, i, u, c) for i, (u, c) in enumerate(zip(units, counts, strict=True))]
        result = _assemble(scenario, "yield", builds, note)
    # Users each deployment can serve at its capacity, split by the applications' demand shares.
    for app in result.applications:
        build = next(b for b in builds if b.unit.deployment == app["deployment"])
        capacity = build.units * build.unit.capacity_per_s
        demand_peak = float(build.demand_hourly.max()) or 1.0
        app["users_servable"] = app["users"] * capacity / (demand_peak * (1 + scenario.deployments[0].headroom))
    result.totals["users_servable"] = float(sum(a["users_servable"] for a in result.applications))
    return result
