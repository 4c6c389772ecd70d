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
    #: Outdoor dry-bulb temperature up to which the design rejects all its heat without compressors (its PUE
    #: is then ``pue`` at full load); above it, PUE rises by ``pue_per_degree_c`` per degree. The defaults
    #: (no sensitivity) keep a design without climate data independent of the weather.
    free_cooling_limit_c: float = Field(default=20.0, ge=-30.0, le=60.0)
    pue_per_degree_c: float = Field(default=0.0, ge=0.0, le=0.2)
    #: Power-chain redundancy that ``pue`` and ``build_cost_usd_per_w`` already include.
    baseline_redundancy: Literal["N", "N+1", "2N"] = "N+1"
    #: Share of the build cost that is electrical plant (switchgear, UPS, generators, distribution), the part
    #: that grows with redundant capacity. Default 0.40: electrical distribution is 35-45 % of data-centre
    #: construction cost (cortexconstruct.com).
    electrical_cost_share: Fraction = 0.40
    #: UPS loss drawn at any load, as a fraction of installed UPS rating. Default 0.01: Socomec's efficiency
    #: of one UPS at 30-100 % load (vnpower.com.vn, "How availability affects efficiency") fits about 0.9 %.
    ups_no_load_loss: Fraction = 0.01

    @model_validator(mode="after")
    def _ordered(self) -> FacilityDesign:
        if not self.pue_min <= self.pue <= self.pue_max:
            raise ValueError(f"need pue_min <= pue <= pue_max, got {self.pue_min}, {self.pue}, {self.pue_max}")
        return self
