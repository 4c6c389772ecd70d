"""Grid regions: carbon intensity and industrial electricity price of a place, for a year."""

from __future__ import annotations

from pydantic import Field

from fivelayer.core.provenance import Record
from fivelayer.core.quantities import GramsPerKwh, UsdPerKwh

__all__ = ["GridRegion"]


class GridRegion(Record):
    """An electricity grid (country, state, ISO or province) and its annual averages."""

    country: str
    #: Annual average location-based carbon intensity of consumed (or generated) electricity.
    carbon_intensity_g_per_kwh: GramsPerKwh
    #: Average industrial (large-customer) electricity price, taxes as the source reports them.
    electricity_price_usd_per_kwh: UsdPerKwh
    year: int = Field(ge=2015, le=2035)
    #: Typical annual mean dry-bulb temperature, for cooling (free-cooling hours).
    mean_temperature_c: float | None = None
    latitude_deg: float | None = Field(default=None, ge=-90, le=90)
    #: Mean dry-bulb temperature of each calendar month, January first (12 values), for hourly cooling.
    monthly_mean_temperature_c: tuple[float, ...] | None = Field(default=None, min_length=12, max_length=12)
