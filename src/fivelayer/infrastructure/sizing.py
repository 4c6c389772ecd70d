"""Sizing the physical plant: racks, the scale-out network fabric, storage, and facility overheads.

Pure functions of counts and catalog numbers; NumPy-friendly where it matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FIXED_OVERHEAD_FRACTION",
    "MAX_SYSTEMS_PER_RACK",
    "Fabric",
    "fabric",
    "facility_overhead_w",
    "racks_for",
]

#: Most 8-GPU servers (8-10U) that fit one 42-48U rack with its switches and power shelves. Assumption.
MAX_SYSTEMS_PER_RACK = 4
#: Share of the facility overhead (cooling, power-chain losses) that does not fall with IT load: pumps,
#: fans at minimum speed, transformer no-load losses. Assumption: 30 %, so PUE rises at part load.
FIXED_OVERHEAD_FRACTION = 0.3


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
