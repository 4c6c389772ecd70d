"""On-site solar output for each hour of a year from pvlib's clear-sky model (the optional ``solar`` extra).

:func:`pvlib_clear_sky_ac` returns the AC output per watt of array, hour by hour, for a fixed array tilted at
the site's latitude and facing the equator:

1. Sun position (``pvlib.solarposition``, NREL SPA) at the middle of each hour of a non-leap year, local
   standard time (the region's UTC offset; the hourly simulation's calendar).
2. Clear-sky irradiance from the Ineichen-Perez model with pvlib's bundled monthly Linke turbidity
   climatology (``LinkeTurbidities.h5``) and site altitude (``Altitude.h5``): both ship with pvlib, so
   nothing is downloaded.
3. Plane-of-array irradiance by isotropic-sky transposition (``pvlib.irradiance.get_total_irradiance``),
   ground albedo 0.2.
4. AC power per W of array: POA / 1000 W/m2 x (1 - system losses) x inverter efficiency, clipped at the AC
   rating (DC/AC ratio 1). Cell temperature is not modelled.

Clear sky means no clouds: the result is the *most* the array could give, and its annual capacity factor
overstates a real plant's. ``plan`` therefore uses it as the *shape* of the year (when in the day and the
season the energy comes) and scales it to the catalog's measured capacity factor; the unscaled clear-sky
capacity factor is reported beside it.
"""

from __future__ import annotations

import datetime as dt
import importlib
import warnings
from functools import lru_cache
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from fivelayer.core.errors import FivelayerError

__all__ = [
    "INVERTER_EFFICIENCY",
    "PV_SYSTEM_LOSSES",
    "SolarExtraMissing",
    "pvlib_clear_sky_ac",
    "require_pvlib",
]

FloatArray = NDArray[np.float64]
#: DC system losses (soiling, shading, mismatch, wiring, connections, light-induced degradation, nameplate,
#: availability): PVWatts version 5's default of 14 % (Dobos 2014, NREL/TP-6A20-62641, table 1).
PV_SYSTEM_LOSSES = 0.14
#: Nominal inverter efficiency: PVWatts version 5's default of 96 % (Dobos 2014, section 8).
INVERTER_EFFICIENCY = 0.96
#: Ground reflectance for the transposition: 0.2, the customary default for grass or bare soil (pvlib's own).
GROUND_ALBEDO = 0.2
#: Calendar year of the timestamps (non-leap, so 8,760 hours); clear-sky output barely changes between years.
SOLAR_YEAR = 2023


class SolarExtraMissing(FivelayerError, ModuleNotFoundError):
    """pvlib, the optional ``solar`` extra, is not installed but the scenario asks for it."""


def require_pvlib(where: str = "site.onsite.solar_model") -> ModuleType:
    """Import pvlib, or raise :class:`SolarExtraMissing` saying which extra installs it."""
    try:
        return importlib.import_module("pvlib")
    except ModuleNotFoundError as exc:
        if exc.name is not None and exc.name.split(".")[0] not in ("pvlib", "h5py"):
            raise
        raise SolarExtraMissing(
            f"{where}: solar_model 'pvlib' needs pvlib (and its h5py), part of the optional 'solar' extra; "
            "install it with: pip install 'fivelayer[solar]' (or pip install -e '.[solar]' in a clone), "
            "or use solar_model: geometric",
            name="pvlib",
        ) from None


def pvlib_clear_sky_ac(
    latitude_deg: float,
    longitude_deg: float,
    utc_offset_hours: float,
    tilt_deg: float | None = None,
    where: str = "site.onsite.solar_model",
) -> FloatArray:
    """Clear-sky AC output per W of a fixed, equator-facing array for each of the 8,760 hours of a year.

    ``tilt_deg`` defaults to the absolute latitude. Hour ``h`` covers local standard time ``h`` to ``h + 1``
    from 1 January 00:00 (sun position taken at the middle of the hour). The result is read-only (cached).
    """
    require_pvlib(where)
    tilt = abs(latitude_deg) if tilt_deg is None else tilt_deg
    return _clear_sky_ac(round(latitude_deg, 6), round(longitude_deg, 6), float(utc_offset_hours), float(tilt))


@lru_cache(maxsize=64)
def _clear_sky_ac(latitude_deg: float, longitude_deg: float, utc_offset_hours: float, tilt_deg: float) -> FloatArray:
    import pandas as pd

    pvlib = importlib.import_module("pvlib")
    tz = dt.timezone(dt.timedelta(hours=utc_offset_hours))
    times = pd.date_range(dt.datetime(SOLAR_YEAR, 1, 1, 0, 30, tzinfo=tz), periods=8760, freq="h")
    azimuth = 180.0 if latitude_deg >= 0 else 0.0  # face the equator
    with warnings.catch_warnings():
        # pvlib may call pandas APIs that newer pandas deprecates; that is pvlib's to fix, not the user's.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        site = pvlib.location.Location(latitude_deg, longitude_deg)  # altitude from pvlib's bundled Altitude.h5
        sky = site.get_clearsky(times, model="ineichen")  # Linke turbidity from pvlib's bundled climatology
        sun = site.get_solarposition(times)
        poa = pvlib.irradiance.get_total_irradiance(
            tilt_deg, azimuth, sun["apparent_zenith"], sun["azimuth"], sky["dni"], sky["ghi"], sky["dhi"],
            albedo=GROUND_ALBEDO,
        )  # fmt: skip
    poa_w_m2 = np.nan_to_num(np.asarray(poa["poa_global"], dtype=np.float64), nan=0.0)
    ac: FloatArray = np.clip(poa_w_m2 / 1000.0 * (1.0 - PV_SYSTEM_LOSSES) * INVERTER_EFFICIENCY, 0.0, 1.0)
    ac.setflags(write=False)
    return ac
