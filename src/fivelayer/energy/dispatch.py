"""Hourly energy dispatch over a year: load against grid, on-site solar, battery and gas.

Everything is a NumPy array of 8,760 hourly values in watts (one hour each, so watts equal watt-hours).
Dispatch order each hour: solar serves the load; surplus solar charges the battery (the rest is
curtailed); a deficit is met by the battery, then the grid up to its connection cap, then gas, and what
remains is unserved. The battery loop is the only sequential part (8,760 float steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["HOURS_PER_YEAR", "Dispatch", "dispatch", "solar_profile"]

FloatArray = NDArray[np.float64]
HOURS_PER_YEAR = 8760


@dataclass(frozen=True)
class Dispatch:
    """Hourly flows in watts (= Wh per hour)."""

    load_w: FloatArray
    solar_used_w: FloatArray
    solar_curtailed_w: FloatArray
    battery_charge_w: FloatArray
    battery_discharge_w: FloatArray
    battery_soc_wh: FloatArray
    grid_w: FloatArray
    gas_w: FloatArray
    unserved_w: FloatArray

    @property
    def served_w(self) -> FloatArray:
        return self.load_w - self.unserved_w


def solar_profile(latitude_deg: float, hours: int = HOURS_PER_YEAR) -> FloatArray:
    """Relative output of a fixed solar array for each hour of a year: clear-sky sun elevation geometry.

    The cosine of the solar zenith angle from the day's declination and the hour angle (solar time), zero
    at night. The result is normalised to a maximum of 1; callers scale it to a capacity factor. Weather is
    not modelled (pvlib, an optional extra, gives real irradiance).
    """
    hour = np.arange(hours, dtype=np.float64)
    day = np.floor(hour / 24.0) + 1.0
    declination = math.radians(23.45) * np.sin(2.0 * math.pi * (284.0 + day) / 365.0)
    hour_angle = np.radians(15.0 * ((hour % 24.0) + 0.5 - 12.0))
    lat = math.radians(latitude_deg)
    cos_zenith = np.sin(lat) * np.sin(declination) + np.cos(lat) * np.cos(declination) * np.cos(hour_angle)
    profile: FloatArray = np.clip(cos_zenith, 0.0, None)
    peak = float(profile.max())
    return profile / peak if peak > 0 else profile


def dispatch(
    load_w: FloatArray,
    grid_cap_w: float,
    solar_w: FloatArray | None = None,
    battery_wh: float = 0.0,
    battery_w: float = 0.0,
    battery_round_trip: float = 0.9,
    gas_w: float = 0.0,
) -> Dispatch:
    """Dispatch one year (or any number of hours) of ``load_w``. ``grid_cap_w`` may be ``math.inf``."""
    load = np.asarray(load_w, dtype=np.float64)
    if np.any(load < 0):
        raise ValueError("load must not be negative")
    solar = np.zeros_like(load) if solar_w is None else np.asarray(solar_w, dtype=np.float64)
    solar_used = np.minimum(solar, load)
    surplus = solar - solar_used
    deficit = load - solar_used
    charge = np.zeros_like(load)
    discharge = np.zeros_like(load)
    soc = np.zeros_like(load)
    if battery_wh > 0 and battery_w > 0:
        eta = math.sqrt(battery_round_trip)  # half the losses charging, half discharging
        level = 0.0
        for h in range(load.size):
            if surplus[h] > 0:
                c = min(surplus[h], battery_w, (battery_wh - level) / eta)
                charge[h] = c
                level += c * eta
            elif deficit[h] > 0:
                d = min(deficit[h], battery_w, level * eta)
                discharge[h] = d
                level -= d / eta
            soc[h] = level
    curtailed = surplus - charge
    remaining = deficit - discharge
    grid = np.minimum(remaining, grid_cap_w)
    remaining = remaining - grid
    gas = np.minimum(remaining, gas_w)
    unserved = remaining - gas
    return Dispatch(load, solar_used, curtailed, charge, discharge, soc, grid, gas, unserved)
