"""Facility designs: cooling (air, rear-door, direct-to-chip liquid, immersion) and the building around it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fivelayer.core.provenance import Record
from fivelayer.core.quantities import Fraction, LitresPerKwh, UsdPerWatt, Watts

__all__ = ["CoolingKind", "FacilityDesign"]

CoolingKind = Literal["air", "rear-door", "direct-to-chip", "immersion"]


class FacilityDesign(Record):
    """A data-centre design: its cooling, power chain, density limit and cost."""

    cooling: CoolingKind
    #: Annual design power usage effectiveness (facility energy / IT energy).
    pue: float = Field(ge=1.0, le=3.0)
    #: Best and worst PUE seen for this design across climates and loads.
    pue_min: float = Field(ge=1.0, le=3.0)
    pue_max: float = Field(ge=1.0, le=3.0)
    #: Site water usage effectiveness, litres of water per kWh of IT energy.
    wue_l_per_kwh: LitresPerKwh
    max_rack_power_w: Watts
    #: Efficiency of the power chain from the grid meter to the IT load (transformers, UPS, PDUs).
    power_chain_efficiency: Fraction
    #: Construction cost of the building, power and cooling per watt of critical IT capacity.
    build_cost_usd_per_w: UsdPerWatt
    lifetime_years: float = Field(gt=0, le=60)

    @model_validator(mode="after")
    def _ordered(self) -> FacilityDesign:
        if not self.pue_min <= self.pue <= self.pue_max:
            raise ValueError(f"need pue_min <= pue <= pue_max, got {self.pue_min}, {self.pue}, {self.pue_max}")
        return self
