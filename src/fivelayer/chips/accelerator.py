"""Accelerator records: datasheet numbers of one chip (one GPU, one TPU chip), each with its source."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fivelayer.core.provenance import Record, Source, Strict
from fivelayer.core.quantities import Bytes, BytesPerSecond, FlopPerSecond, Kilograms, SquareMillimetres, Usd, Watts

__all__ = ["PRECISIONS", "Accelerator", "Calibration", "Precision", "ScaleUp"]

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"]
#: Precisions in the order of the catalog's ``peak_flops`` tables, widest first.
PRECISIONS: tuple[Precision, ...] = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4")


class ScaleUp(Strict):
    """The chip's scale-up link (NVLink, Infinity Fabric, ICI...) as the vendor quotes it."""

    link: str
    #: Aggregate bandwidth per chip, both directions added, as datasheets quote it.
    bandwidth_bytes_per_s: BytesPerSecond
    #: Largest number of chips in one scale-up domain (all-to-all reachable over this link).
    domain_size: int = Field(ge=1)


class Calibration(Strict):
    """Empirical corrections fitted to measurements, kept apart from datasheet values."""

    sources: tuple[Source, ...] = Field(min_length=1)
    compute_efficiency: float | None = Field(default=None, gt=0, le=1)
    memory_efficiency: float | None = Field(default=None, gt=0, le=1)


class Accelerator(Record):
    """One accelerator chip. Throughputs are dense (no structured sparsity), per chip."""

    vendor: str
    family: str
    form_factor: str
    launch_year: int = Field(ge=2010, le=2035)
    peak_flops: dict[Precision, FlopPerSecond] = Field(min_length=1)
    #: Maximum achievable dense matrix FLOP/s: what a large, well-shaped matrix product sustains at the clock
    #: the chip holds under full matrix load (power-limited, often far below the boost clock that
    #: ``peak_flops`` assumes), as the vendor measured it. Where listed, the step model uses it in place of
    #: ``peak_flops`` (see :meth:`sustained`).
    sustained_flops: dict[Precision, FlopPerSecond] | None = None
    memory_type: str
    memory_bytes: Bytes
    memory_bandwidth_bytes_per_s: BytesPerSecond
    tdp_w: Watts
    idle_power_w: Watts
    scale_up: ScaleUp
    #: Scale-out (network) bandwidth per chip, one direction, as the reference system provisions it.
    scale_out_bandwidth_bytes_per_s: BytesPerSecond
    price_usd: Usd
    process_node: str | None = None
    die_area_mm2: SquareMillimetres | None = None
    transistors: float | None = Field(default=None, gt=0)
    #: Embodied (manufacturing) emissions of one chip with its memory and package, kg CO2e.
    embodied_kg_co2e: Kilograms | None = None
    calibration: Calibration | None = None

    @model_validator(mode="after")
    def _physical(self) -> Accelerator:
        if self.idle_power_w >= self.tdp_w:
            raise ValueError(f"idle_power_w ({self.idle_power_w:g} W) must be below tdp_w ({self.tdp_w:g} W)")
        for precision, flops in self.peak_flops.items():
            if not 1e11 <= flops <= 1e17:
                raise ValueError(f"peak_flops.{precision} = {flops:.3g} FLOP/s is outside 0.1 TFLOP/s..100 PFLOP/s")
        for precision, flops in (self.sustained_flops or {}).items():
            if precision not in self.peak_flops:
                raise ValueError(f"sustained_flops.{precision} is listed but peak_flops.{precision} is not")
            if not 0 < flops <= self.peak_flops[precision]:
                raise ValueError(
                    f"sustained_flops.{precision} = {flops:.3g} FLOP/s must be positive and at most "
                    f"peak_flops.{precision} ({self.peak_flops[precision]:.3g} FLOP/s)"
                )
        if not 1e9 <= self.memory_bytes <= 2e12:
            raise ValueError(f"memory_bytes = {self.memory_bytes:.3g} B is outside 1 GB..2 TB")
        if not 1e11 <= self.memory_bandwidth_bytes_per_s <= 5e13:
            raise ValueError("memory_bandwidth_bytes_per_s is outside 100 GB/s..50 TB/s")
        if not 50 <= self.tdp_w <= 3000:
            raise ValueError(f"tdp_w = {self.tdp_w:g} W is outside 50..3000 W")
        return self

    def peak(self, precision: str) -> float:
        """Dense peak FLOP/s at ``precision``; a precision the chip lacks runs at the nearest it has.

        Narrow formats fall back to wider ones (a chip without fp8 runs fp8 weights upcast at its 16-bit
        rate); ``tf32`` and ``fp64`` fall back to ``fp32`` only. Raises ``ValueError`` if none is listed.
        """
        return self.peak_flops[self.runs_at(precision)]  # type: ignore[index]

    def runs_at(self, precision: str) -> str:
        """The tensor format whose rate ``precision`` runs at: itself where the chip lists it, else the
        nearest wider one it lists (H100 has no fp4 rate: fp4 weights are computed at its fp8 rate)."""
        if precision in self.peak_flops:
            return precision
        if precision not in _FALLBACKS:
            raise ValueError(f"unknown precision {precision!r}")
        for candidate in _FALLBACKS[precision]:
            if candidate in self.peak_flops:
                return candidate
        raise ValueError(f"{self.id} lists no throughput for {precision} or a format that can stand in for it")

    def sustained(self, precision: str) -> float:
        """Dense matrix FLOP/s the chip sustains at ``precision``: ``sustained_flops`` where listed, else the
        peak. A precision without its own figure scales its peak by the sustained/peak ratio of the nearest
        listed precision (the ratio is mostly the sustained clock over the boost clock)."""
        peak = self.peak(precision)
        listed = self.sustained_flops
        if not listed:
            return peak
        if precision in listed:
            return listed[precision]
        order = PRECISIONS.index(precision) if precision in PRECISIONS else 0
        nearest = min(listed, key=lambda q: (abs(PRECISIONS.index(q) - order), PRECISIONS.index(q)))
        return peak * listed[nearest] / self.peak_flops[nearest]


_FALLBACKS: dict[str, tuple[str, ...]] = {
    "fp64": ("fp32",),
    "fp32": (),
    "tf32": ("fp32",),
    "bf16": ("fp16",),
    "fp16": ("bf16",),
    "fp8": ("bf16", "fp16"),
    "int8": ("fp8", "bf16", "fp16"),
    "fp6": ("fp8", "bf16", "fp16"),
    "fp4": ("fp6", "fp8", "bf16", "fp16"),
    "int4": ("int8", "fp8", "bf16", "fp16"),
}
