"""Energy supply options: on-site solar, batteries, gas generation, power purchase agreements, grid tariffs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fivelayer.core.provenance import Record
from fivelayer.core.quantities import Fraction, GramsPerKwh, UsdPerKwh

__all__ = ["SupplyOption"]


class SupplyOption(Record):
    """A way to supply electricity, with its cost and performance.

    ``capex_usd_per_kw`` is per kW of capacity (AC for solar, discharge power for batteries, electrical output
    for gas); batteries also give ``capex_usd_per_kwh`` of storage. ``energy_price_usd_per_kwh`` is for
    contracts (PPA) and fuel cost per kWh generated (gas).
    """

    kind: Literal["solar-pv", "battery", "gas-turbine", "gas-engine", "ppa", "grid-tariff"]
    capex_usd_per_kw: float = Field(default=0.0, ge=0)
    capex_usd_per_kwh: float = Field(default=0.0, ge=0)
    fixed_om_usd_per_kw_year: float = Field(default=0.0, ge=0)
    energy_price_usd_per_kwh: UsdPerKwh = 0.0
    #: Grid demand charge per kW of monthly peak (grid tariffs).
    demand_charge_usd_per_kw_month: float = Field(default=0.0, ge=0)
    #: Annual capacity factor (solar), round-trip efficiency (battery), electrical efficiency (gas).
    capacity_factor: Fraction | None = None
    round_trip_efficiency: Fraction | None = None
    #: Hours of storage at rated power (batteries).
    duration_hours: float | None = Field(default=None, gt=0)
    emissions_g_per_kwh: GramsPerKwh = 0.0
    lifetime_years: float = Field(gt=0, le=60)
