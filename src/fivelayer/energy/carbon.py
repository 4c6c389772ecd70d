"""Location-based carbon accounting: a grid region's carbon intensity for each hour of a year.

A region gives its annual average intensity and, where a public hourly dataset exists, a 12 x 24 profile
(calendar month x hour of the day, local standard time) relative to that average. The hourly intensity is
the profile expanded over a non-leap year (each day takes its month's row) and scaled so that its mean over
the 8,760 hours equals the annual catalog value. So a flat load emits exactly the annual average times its
energy, and only a load that leans toward cleaner or dirtier hours changes its emissions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["DAYS_PER_MONTH", "carbon_emissions_t", "hourly_carbon_intensity", "relative_profile_hourly"]

FloatArray = NDArray[np.float64]
#: Days of each month of a non-leap year, January first (the hourly simulation's calendar).
DAYS_PER_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def relative_profile_hourly(profile: Sequence[Sequence[float]]) -> FloatArray:
    """A 12 x 24 month-by-hour profile expanded to 8,760 hours and normalised to a mean of exactly 1.

    >>> flat = relative_profile_hourly([[2.0] * 24] * 12)
    >>> flat.shape, float(flat.min()), float(flat.max())
    ((8760,), 1.0, 1.0)
    >>> steps = relative_profile_hourly([[1.0] * 12 + [3.0] * 12] * 12)
    >>> float(steps[0]), float(steps[12]), float(steps.mean())
    (0.5, 1.5, 1.0)
    """
    table = np.asarray(profile, dtype=np.float64)
    if table.shape != (12, 24):
        raise ValueError(f"a carbon-intensity profile is 12 months x 24 hours, got shape {table.shape}")
    if not np.all(np.isfinite(table)) or np.any(table < 0) or not np.any(table > 0):
        raise ValueError("a carbon-intensity profile needs finite, non-negative values, not all zero")
    days = np.repeat(table, DAYS_PER_MONTH, axis=0)  # (365, 24): each day takes its month's row
    hourly: FloatArray = days.reshape(-1)
    normalised: FloatArray = hourly / float(hourly.mean())
    return normalised


def hourly_carbon_intensity(
    annual_g_per_kwh: float, profile: Sequence[Sequence[float]] | None = None, hours: int = 8760
) -> FloatArray:
    """Carbon intensity (g/kWh) of each hour: the annual average, shaped by the region's profile if it has one.

    >>> float(hourly_carbon_intensity(300.0).mean())
    300.0
    >>> h = hourly_carbon_intensity(300.0, [[1.0] * 12 + [3.0] * 12] * 12)
    >>> float(h[0]), float(h[12]), round(float(h.mean()), 9)
    (150.0, 450.0, 300.0)
    """
    if profile is None:
        return np.full(hours, float(annual_g_per_kwh))
    if hours != 8760:
        raise ValueError(f"an hourly carbon profile covers a 8,760-hour year, not {hours} hours")
    return float(annual_g_per_kwh) * relative_profile_hourly(profile)


def carbon_emissions_t(energy_w: FloatArray, intensity_g_per_kwh: FloatArray | float) -> float:
    """Tonnes of CO2 from hourly energy (W for one hour each, i.e. Wh) at each hour's intensity (g/kWh).

    >>> carbon_emissions_t(np.full(8760, 1e6), 400.0)  # 1 MW for a year, 8,760 MWh at 400 g/kWh
    3504.0
    """
    grams = np.sum(np.asarray(energy_w, dtype=np.float64) * intensity_g_per_kwh) / 1e3  # Wh -> kWh
    return float(grams) / 1e6
