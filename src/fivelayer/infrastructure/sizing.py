"""Sizing the physical plant: racks, the scale-out network fabric, storage, and facility overheads.

Pure functions of counts and catalog numbers; NumPy-friendly where it matters. Facility overhead depends on
IT load (part-load PUE), outdoor temperature (cooling) and power-chain redundancy (UPS no-load losses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DAILY_TEMPERATURE_AMPLITUDE_C",
    "FIXED_OVERHEAD_FRACTION",
    "MAX_SYSTEMS_PER_RACK",
    "N_PLUS_1_MODULES",
    "WARMEST_HOUR",
    "Fabric",
    "Redundancy",
    "fabric",
    "facility_capex_factor",
    "facility_overhead_hourly_w",
    "facility_overhead_w",
    "hourly_temperature_c",
    "racks_for",
    "redundancy_capacity",
    "redundancy_overhead_w",
    "ups_efficiency",
]

#: Power-chain redundancy: N (just enough UPS and generator capacity), N+1 (one spare module), 2N (two
#: complete systems, each able to carry the whole load).
Redundancy = Literal["N", "N+1", "2N"]

#: Most 8-GPU servers (8-10U) that fit one 42-48U rack with its switches and power shelves. Assumption.
MAX_SYSTEMS_PER_RACK = 4
#: Share of the facility overhead (cooling, power-chain losses) that does not fall with IT load: pumps,
#: fans at minimum speed, transformer no-load losses. Assumption: 30 %, so PUE rises at part load.
FIXED_OVERHEAD_FRACTION = 0.3
#: Half the daily swing of outdoor temperature about the day's mean, used to turn monthly means into hours.
#: Assumption: 4 degC (a diurnal range of 8 degC everywhere); the catalog holds monthly means only.
DAILY_TEMPERATURE_AMPLITUDE_C = 4.0
#: Hour of the day (local) at which the outdoor temperature peaks. Assumption: 15:00.
WARMEST_HOUR = 15.0
#: Active UPS/generator modules that an N+1 system backs with one spare. Assumption: 4, so N+1 installs
#: 1.25 W of capacity per watt of design IT load.
N_PLUS_1_MODULES = 4
_DAYS_PER_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_HOURS_PER_YEAR = 8760


def racks_for(systems: int, system_power_w: float, system_racks: float | None, max_rack_power_w: float) -> int:
    """Racks for ``systems`` systems: rack-scale systems (NVL72) bring their own racks; servers share racks
    up to the cooling design's power density and :data:`MAX_SYSTEMS_PER_RACK`.

    >>> racks_for(10, 10_200.0, None, 40_000.0)   # DGX H100 at 40 kW per rack: 3 per rack
    4
    >>> racks_for(10, 120_000.0, 1.0, 132_000.0)  # GB200 NVL72: one rack each
    10
    """
    if systems <= 0:
        return 0
    if system_racks is not None:
        return math.ceil(systems * system_racks)
    if system_power_w > max_rack_power_w:
        from fivelayer.core.errors import InfeasibleConfiguration

        raise InfeasibleConfiguration(
            f"one system draws {system_power_w / 1e3:,.1f} kW, above the {max_rack_power_w / 1e3:,.0f} kW a rack "
            "of this facility design can cool; choose a denser cooling design (direct-to-chip, immersion)"
        )
    per_rack = max(1, min(MAX_SYSTEMS_PER_RACK, math.floor(max_rack_power_w / system_power_w)))
    return math.ceil(systems / per_rack)


@dataclass(frozen=True)
class Fabric:
    """A non-blocking leaf/spine(/core) fabric for ``endpoints`` ports."""

    endpoints: int
    tiers: int
    switches: int
    transceivers: int

    def power_w(self, switch_w: float, transceiver_w: float) -> float:
        return self.switches * switch_w + self.transceivers * transceiver_w

    def capex_usd(self, switch_usd: float, transceiver_usd: float) -> float:
        return self.switches * switch_usd + self.transceivers * transceiver_usd


def fabric(endpoints: int, radix: int) -> Fabric:
    """Switches and optics of a non-blocking Clos fabric of switches with ``radix`` ports.

    Two tiers serve up to radix^2/2 endpoints: each leaf gives half its ports to endpoints and half to
    spines. Three tiers serve up to radix^3/4. Every link has an optic at each end: endpoints (NIC side and
    leaf side) and switch-to-switch links.

    >>> f = fabric(1024, 64)   # 32 leaves x 32 endpoints, 16 spines
    >>> (f.tiers, f.switches, f.transceivers)
    (2, 48, 4096)
    """
    if endpoints <= 0:
        return Fabric(0, 0, 0, 0)
    half = radix // 2
    if endpoints <= radix:
        return Fabric(endpoints, 1, 1, 2 * endpoints)
    leaves = math.ceil(endpoints / half)
    uplinks = leaves * half
    if endpoints <= radix * half:
        spines = math.ceil(uplinks / radix)
        return Fabric(endpoints, 2, leaves + spines, 2 * endpoints + 2 * uplinks)
    # Three tiers: pods of radix/2 leaves and radix/2 spines; core switches join the pods.
    spines = math.ceil(uplinks / half)
    core = math.ceil(spines * half / radix)
    links = uplinks + spines * half
    return Fabric(endpoints, 3, leaves + spines + core, 2 * endpoints + 2 * links)


def facility_overhead_w(it_w: Any, design_it_w: float, pue: float) -> Any:
    """Cooling and power-chain overhead at IT load ``it_w`` (a float or an array) for a facility built for
    ``design_it_w``.

    At design load the overhead is ``(pue - 1) x design``; a :data:`FIXED_OVERHEAD_FRACTION` of it stays at
    any load, the rest scales with the load.

    >>> round(facility_overhead_w(100.0, 100.0, 1.2), 9)
    20.0
    """
    base = (pue - 1.0) * design_it_w
    load = it_w / design_it_w if design_it_w > 0 else 0.0 * it_w
    return base * (FIXED_OVERHEAD_FRACTION + (1.0 - FIXED_OVERHEAD_FRACTION) * load)


def hourly_temperature_c(
    monthly_mean_c: Sequence[float],
    amplitude_c: float = DAILY_TEMPERATURE_AMPLITUDE_C,
    hours: int = _HOURS_PER_YEAR,
) -> NDArray[np.float64]:
    """Outdoor dry-bulb temperature for each hour of a (non-leap) year from 12 monthly means.

    Each monthly mean sits at the middle of its month; hours in between are interpolated linearly (wrapping
    from December to January), and a daily cycle ``amplitude_c x cos(2 pi (h - WARMEST_HOUR) / 24)`` is
    added, warmest at :data:`WARMEST_HOUR`. Weather (heat waves, cloudy days) is not modelled, so the
    hottest hour is about the warmest month's mean plus ``amplitude_c``.

    >>> t = hourly_temperature_c([10.0] * 12, amplitude_c=4.0)
    >>> (round(float(t.mean()), 6), round(float(t.max()), 6), round(float(t[15]), 6))
    (10.0, 14.0, 14.0)
    """
    means = np.asarray(monthly_mean_c, dtype=np.float64)
    if means.shape != (12,):
        raise ValueError(f"need 12 monthly mean temperatures, got {means.size}")
    month_hours = 24.0 * np.asarray(_DAYS_PER_MONTH, dtype=np.float64)
    middles = np.cumsum(month_hours) - month_hours / 2.0
    hour = np.arange(hours, dtype=np.float64)
    seasonal = np.interp(hour + 0.5, middles, means, period=float(_HOURS_PER_YEAR))
    daily = amplitude_c * np.cos(2.0 * math.pi * ((hour % 24.0) - WARMEST_HOUR) / 24.0)
    result: NDArray[np.float64] = seasonal + daily
    return result


def facility_overhead_hourly_w(
    it_w: Any,
    design_it_w: float,
    pue: float,
    outdoor_c: Any,
    free_cooling_limit_c: float,
    pue_per_degree_c: float,
) -> Any:
    """Cooling and power-chain overhead at IT load ``it_w`` and outdoor temperature ``outdoor_c`` (floats or
    arrays of the same shape, one value per hour).

    overhead = (pue - 1) x design x (f + (1 - f) x load) + k x max(T - T_free, 0) x IT

    with f = :data:`FIXED_OVERHEAD_FRACTION`, load = IT / design, T_free the design's free-cooling limit
    (outdoor temperature up to which economisers or dry coolers reject all the heat) and k its PUE rise per
    degree above that limit (compressors or evaporative trim, in proportion to the heat they remove). The
    design PUE is thus the PUE at full load in free-cooling weather; part load and hot hours only raise it,
    and facility energy is the sum over hours of IT energy x that hour's PUE.

    PUE 1.2 at 100 MW, full load, 30 degC against a 24 degC limit at 0.005 per degC:
    20 MW + 0.005 x 6 x 100 MW = 23 MW, an hourly PUE of 1.23.

    >>> round(float(facility_overhead_hourly_w(100.0, 100.0, 1.2, 30.0, 24.0, 0.005)), 9)
    23.0
    >>> round(float(facility_overhead_hourly_w(100.0, 100.0, 1.2, 10.0, 24.0, 0.005)), 9)  # free cooling
    20.0
    """
    excess = np.maximum(np.asarray(outdoor_c, dtype=np.float64) - free_cooling_limit_c, 0.0)
    return facility_overhead_w(it_w, design_it_w, pue) + pue_per_degree_c * excess * it_w


def redundancy_capacity(redundancy: Redundancy) -> float:
    """Installed UPS and generator capacity per watt of design IT load.

    N: 1; N+1: (m + 1) / m with m = :data:`N_PLUS_1_MODULES` active modules; 2N: 2.

    >>> [redundancy_capacity(r) for r in ("N", "N+1", "2N")]
    [1.0, 1.25, 2.0]
    """
    if redundancy == "N":
        return 1.0
    if redundancy == "N+1":
        return (N_PLUS_1_MODULES + 1) / N_PLUS_1_MODULES
    if redundancy == "2N":
        return 2.0
    raise ValueError(f"unknown redundancy {redundancy!r}; use 'N', 'N+1' or '2N'")


def ups_efficiency(load_fraction: Any, no_load_loss: float, proportional_loss: float) -> Any:
    """Efficiency of a UPS module at ``load_fraction`` of its rating, with losses = no-load loss (a fraction
    of the rating, drawn at any load) + proportional loss (a fraction of the load).

    efficiency = x / (x + a + b x). A 2N system carries at most half its rating, N+1 with 4 modules 80 %:

    >>> round(float(ups_efficiency(0.8, 0.01, 0.03)), 4), round(float(ups_efficiency(0.5, 0.01, 0.03)), 4)
    (0.9592, 0.9524)
    """
    x = np.asarray(load_fraction, dtype=np.float64)
    return x / (x + no_load_loss + proportional_loss * x)


def redundancy_overhead_w(
    design_it_w: float, redundancy: Redundancy, baseline: Redundancy, ups_no_load_loss: float
) -> float:
    """Extra (or, below the baseline, saved) constant power-chain loss of ``redundancy`` against the
    ``baseline`` redundancy that the design's PUE already includes: the UPS no-load loss scales with the
    installed capacity, whatever the load.

    overhead = a x design x (capacity(redundancy) - capacity(baseline))

    1 % no-load loss, 100 MW, 2N against N+1: 0.01 x 100 x (2 - 1.25) = 0.75 MW.

    >>> round(redundancy_overhead_w(100.0, "2N", "N+1", 0.01), 9)
    0.75
    """
    return ups_no_load_loss * design_it_w * (redundancy_capacity(redundancy) - redundancy_capacity(baseline))


def facility_capex_factor(redundancy: Redundancy, baseline: Redundancy, electrical_cost_share: float) -> float:
    """Multiplier on a design's build cost for ``redundancy`` instead of the ``baseline`` its cost assumes:
    the electrical share of the build cost scales with the installed UPS/generator capacity.

    factor = 1 + s x (capacity(redundancy) / capacity(baseline) - 1)

    Electrical share 0.4 against an N+1 baseline: 2N = 1 + 0.4 x (2 / 1.25 - 1) = 1.24; N = 0.92.

    >>> round(facility_capex_factor("2N", "N+1", 0.4), 9), round(facility_capex_factor("N", "N+1", 0.4), 9)
    (1.24, 0.92)
    """
    ratio = redundancy_capacity(redundancy) / redundancy_capacity(baseline)
    return 1.0 + electrical_cost_share * (ratio - 1.0)
