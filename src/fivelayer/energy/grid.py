"""Grid regions: carbon intensity and industrial electricity price of a place, for a year."""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from fivelayer.core.provenance import Record
from fivelayer.core.quantities import GramsPerKwh, UsdPerKwh

__all__ = ["GridRegion"]

#: How far a relative carbon profile's year-mean may stray from 1 (values are rounded to 3 decimals).
PROFILE_MEAN_TOLERANCE = 0.01


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
    #: East positive, for the sun's position (pvlib solar model).
    longitude_deg: float | None = Field(default=None, ge=-180, le=180)
    #: Offset of local standard time from UTC (no daylight saving), the clock of every hourly profile.
    utc_offset_hours: float | None = Field(default=None, ge=-12, le=14)
    #: Mean dry-bulb temperature of each calendar month, January first (12 values), for hourly cooling.
    monthly_mean_temperature_c: tuple[float, ...] | None = Field(default=None, min_length=12, max_length=12)
    #: Carbon intensity of each hour of the day (24 columns, local standard time) in each calendar month
    #: (12 rows, January first), relative to the annual average: the mean over a year's 8,760 hours is 1.
    carbon_intensity_profile: tuple[tuple[float, ...], ...] | None = Field(default=None, min_length=12, max_length=12)

    @field_validator("carbon_intensity_profile")
    @classmethod
    def _profile_is_relative(cls, value: tuple[tuple[float, ...], ...] | None) -> tuple[tuple[float, ...], ...] | None:
        if value is None:
            return value
        for month, row in enumerate(value, start=1):
            if len(row) != 24:
                raise ValueError(f"month {month} has {len(row)} hourly values, expected 24")
            if any(not np.isfinite(v) or v < 0 for v in row):
                raise ValueError(f"month {month} has a negative or non-finite value")
        days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
        mean = float((np.asarray(value, dtype=np.float64).mean(axis=1) * days).sum() / days.sum())
        if abs(mean - 1.0) > PROFILE_MEAN_TOLERANCE:
            raise ValueError(
                f"the profile is relative to the annual average, so its mean over the year must be 1; it is "
                f"{mean:.4g} (give g/kWh values divided by their annual mean)"
            )
        return value
