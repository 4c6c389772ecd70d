"""Infrastructure components priced and powered per unit: switches, optics, NICs, storage, power chain."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fivelayer.core.provenance import Record
from fivelayer.core.quantities import BytesPerSecond, Fraction, Usd, Watts

__all__ = ["Component"]


class Component(Record):
    """One kind of infrastructure equipment. Prices and power are per ``unit`` (a switch, a port, a TB...)."""

    kind: Literal["network-switch", "transceiver", "nic", "storage", "ups", "transformer", "cabling", "other"]
    #: What one unit is, e.g. "switch", "transceiver", "TB of usable flash", "kW of UPS capacity".
    unit: str
    price_usd: Usd
    power_w: Watts = 0.0
    #: Switch radix (ports per switch) and port speed, for network sizing.
    ports: int | None = Field(default=None, ge=1)
    port_bandwidth_bytes_per_s: BytesPerSecond | None = None
    #: Energy efficiency of power-chain equipment (UPS, transformer) at typical load.
    efficiency: Fraction | None = None
    lifetime_years: float = Field(gt=0, le=40)
