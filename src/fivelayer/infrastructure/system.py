"""Systems: accelerators as sold and racked (a DGX node, an NVL72 rack, a TPU slice)."""

from __future__ import annotations

from pydantic import Field, model_validator

from fivelayer.core.provenance import Record
from fivelayer.core.quantities import Usd, Watts

__all__ = ["System"]


class System(Record):
    """A unit of accelerators with its host: one server, one rack-scale system or one pod slice."""

    vendor: str
    accelerator: str
    accelerator_count: int = Field(ge=1)
    nodes: int = Field(default=1, ge=1)
    #: Accelerators in one scale-up (NVLink/xGMI/ICI) domain inside the system.
    scale_up_domain_size: int = Field(ge=1)
    #: Maximum power of the whole system at the wall (accelerators and host).
    max_power_w: Watts
    #: Power of everything but the accelerators at full load: CPUs, memory, NICs, switches, fans, drives.
    host_power_w: Watts
    rack_units: int | None = Field(default=None, ge=1)
    racks: float | None = Field(default=None, gt=0)
    price_usd: Usd
    cpu: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> System:
        if self.scale_up_domain_size > self.accelerator_count:
            raise ValueError("scale_up_domain_size cannot exceed accelerator_count")
        if self.host_power_w >= self.max_power_w:
            raise ValueError("host_power_w must be below max_power_w")
        return self
