"""Energy, cost and carbon of a training run, from its wall-clock time and the power it draws.

- Accelerator power: idle + (TDP - idle) x activity (:func:`fivelayer.chips.device_power_w`), activity =
  busy fraction + ``comm_power_weight`` x the rest of the step.
- IT energy = (accelerators + host) x wall-clock time; host = the catalog system's non-accelerator power x
  its load fraction (as the inference engine counts it).
- Facility energy = IT energy x PUE. Carbon = facility energy x the grid region's carbon intensity.
- Cost: rented (``price_usd_per_gpu_hour`` x GPU-hours, electricity included) or owned (hardware amortised
  linearly over its life, per hour held, plus facility electricity at the region's price).

Worked example (tests/engines/training/test_costs.py): GPT-3 in LLMCarbon's table, 10,000 V100 at 330 W
for 14.8 days, PUE 1.1, 0.429 kg/kWh: 10,000 x 0.33 kW x 355.2 h x 1.1 x 0.429 = 553 t CO2e.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fivelayer.catalog import CatalogSet
from fivelayer.chips.performance import device_power_w

__all__ = ["ACCELERATOR_LIFE_YEARS", "DEFAULT_PUE", "RunCosts", "carbon_t", "facility_energy_j", "run_costs"]

#: Assumption: 5-year depreciation of accelerators and servers (the scenario's default economics).
ACCELERATOR_LIFE_YEARS = 5.0
#: Default PUE of a modern liquid-cooled AI hall (the inference engine's default). Assumption.
DEFAULT_PUE = 1.2
#: Host power while training, as a fraction of its maximum. Assumption: 60 %, as the inference engine.
HOST_LOAD_FRACTION = 0.6
#: Host power per accelerator where no catalog system holds the accelerator: 80 % of its TDP (assumption,
#: as the inference engine).
HOST_POWER_FRACTION_OF_TDP = 0.8


@dataclass(frozen=True)
class RunCosts:
    """Energy, money and carbon of one run."""

    gpu_power_w: float
    it_energy_j: float
    facility_energy_j: float
    pue: float
    region: str
    co2_t: float
    total_usd: float
    breakdown_usd: dict[str, float]
    basis: str
    assumptions: list[str] = field(default_factory=list)


def facility_energy_j(it_power_w: float, seconds: float, pue: float) -> float:
    """Facility energy of an IT load drawn for ``seconds``: power x time x PUE.

    >>> facility_energy_j(1000.0, 3600.0, 1.5) / 3.6e6  # kWh
    1.5
    """
    return it_power_w * seconds * pue


def carbon_t(energy_j: float, intensity_g_per_kwh: float) -> float:
    """Tonnes of CO2e of ``energy_j`` joules at a grid intensity in g/kWh.

    >>> round(carbon_t(3.6e9, 429.0), 3)  # 1 MWh at 429 g/kWh
    0.429
    """
    return energy_j / 3.6e6 * intensity_g_per_kwh / 1e6


def run_costs(
    cat: CatalogSet,
    accelerator: str,
    count: int,
    wall_s: float,
    busy_fraction: float,
    comm_power_weight: float,
    region: str = "us",
    pue: float | None = None,
    price_usd_per_gpu_hour: float | None = None,
    idle_devices: int = 0,
) -> RunCosts:
    """Energy, cost and carbon of ``count`` accelerators held for ``wall_s`` seconds."""
    chip = cat.accelerators.get(accelerator)
    grid = cat.grid_regions.get(region)
    power = float(device_power_w(chip.idle_power_w, chip.tdp_w, busy_fraction, 1.0 - busy_fraction, comm_power_weight))
    gpus_w = power * (count - idle_devices) + chip.idle_power_w * idle_devices
    system = next((s for s in cat.systems if s.accelerator == chip.id), None)
    if system is not None:
        host_w = system.host_power_w / system.accelerator_count
        capex = system.price_usd / system.accelerator_count
        basis_host = f"host power and price per accelerator from system {system.id}"
    else:
        host_w = HOST_POWER_FRACTION_OF_TDP * chip.tdp_w
        capex = chip.price_usd
        basis_host = f"no catalog system for {chip.id}: host {HOST_POWER_FRACTION_OF_TDP:.0%} of TDP, chip price only"
    it_w = gpus_w + host_w * HOST_LOAD_FRACTION * count
    p = pue if pue is not None else DEFAULT_PUE
    it_j = it_w * wall_s
    fac_j = facility_energy_j(it_w, wall_s, p)
    co2 = carbon_t(fac_j, grid.carbon_intensity_g_per_kwh)
    gpu_hours = count * wall_s / 3600.0
    electricity = fac_j / 3.6e6 * grid.electricity_price_usd_per_kwh
    if price_usd_per_gpu_hour is not None:
        breakdown = {"rental": price_usd_per_gpu_hour * gpu_hours}
        basis = f"rented at {price_usd_per_gpu_hour:g} USD per GPU-hour, electricity included"
    else:
        hardware = capex * count * wall_s / (ACCELERATOR_LIFE_YEARS * 365.25 * 86_400)
        breakdown = {"hardware_amortised": hardware, "electricity": electricity}
        basis = (
            f"owned cluster: {capex:,.0f} USD per accelerator amortised over {ACCELERATOR_LIFE_YEARS:g} years, "
            f"plus facility electricity at {grid.electricity_price_usd_per_kwh:.3f} USD/kWh ({grid.id})"
        )
    assumptions = [
        f"accelerator power {power:,.0f} W (busy {busy_fraction:.0%} of each step), {basis_host}, host at "
        f"{HOST_LOAD_FRACTION:.0%} load",
        f"facility = IT x PUE {p:g}; carbon at {grid.carbon_intensity_g_per_kwh:g} g/kWh ({grid.id}, {grid.year})",
    ]
    return RunCosts(
        gpu_power_w=power,
        it_energy_j=it_j,
        facility_energy_j=fac_j,
        pue=p,
        region=grid.id,
        co2_t=co2,
        total_usd=float(np.sum(list(breakdown.values()))),
        breakdown_usd=breakdown,
        basis=basis,
        assumptions=assumptions,
    )
