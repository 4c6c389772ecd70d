"""Chip physics: the roofline of one accelerator and its power between idle and TDP.

Pure functions over NumPy arrays. ``chips`` knows nothing of language models: it takes FLOPs and bytes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fivelayer.chips.accelerator import Accelerator

__all__ = ["ChipSpec", "device_power_w", "roofline_time_s"]

FloatArray = NDArray[np.float64]


#: Largest board power limit accepted, W: the catalog's largest admissible TDP (a larger value is a typo).
MAX_POWER_LIMIT_W = 3000.0


@dataclass(frozen=True)
class ChipSpec:
    """The numbers of one accelerator that the step-cost model uses, in SI units."""

    accelerator_id: str
    family: str
    peak_flops: dict[str, float]
    #: Dense matrix FLOP/s sustained under full load (:meth:`Accelerator.sustained`); the peak where the
    #: catalog lists no measurement.
    sustained_flops: dict[str, float]
    memory_bytes: float
    memory_bandwidth_bytes_per_s: float
    tdp_w: float
    idle_power_w: float
    #: One direction of the scale-up link (datasheets quote both directions added).
    link_bytes_per_s: float
    scale_up_domain: int
    scale_out_bytes_per_s: float

    @classmethod
    def of(cls, chip: Accelerator) -> ChipSpec:
        peaks: dict[str, float] = {}
        sustained: dict[str, float] = {}
        for precision in ("fp32", "bf16", "fp8", "fp6", "fp4", "int8"):
            with contextlib.suppress(ValueError):  # e.g. Gaudi publishes no fp32 matrix rate
                peaks[precision] = chip.peak(precision)
                sustained[precision] = chip.sustained(precision)
        return cls(
            accelerator_id=chip.id,
            family=chip.family,
            peak_flops=peaks,
            sustained_flops=sustained,
            memory_bytes=chip.memory_bytes,
            memory_bandwidth_bytes_per_s=chip.memory_bandwidth_bytes_per_s,
            tdp_w=chip.tdp_w,
            idle_power_w=chip.idle_power_w,
            link_bytes_per_s=chip.scale_up.bandwidth_bytes_per_s / 2,
            scale_up_domain=chip.scale_up.domain_size,
            scale_out_bytes_per_s=chip.scale_out_bandwidth_bytes_per_s,
        )

    def peak(self, compute: str) -> float:
        """Peak FLOP/s of the tensor format ``compute``; a clear error if the chip lists none."""
        if compute not in self.peak_flops:
            from fivelayer.core.errors import InfeasibleConfiguration

            raise InfeasibleConfiguration(
                f"{self.accelerator_id} lists no {compute} throughput; choose a precision it supports "
                f"({', '.join(self.peak_flops)})"
            )
        return self.peak_flops[compute]

    def power_capped(self, limit_w: float | None) -> ChipSpec:
        """The chip under a board power limit (``nvidia-smi -pl``; MLPerf "MaxQ" submissions set one).

        The clocks drop until a compute-bound kernel draws the limit. With power linear in activity between
        idle and TDP (:func:`device_power_w`) and activity linear in the clock, the matrix rates scale by
        ``(limit - idle) / (TDP - idle)`` and the limit takes the TDP's place. Memory bandwidth is unchanged
        (HBM has its own clock). Dynamic power falls faster than the clock where the voltage drops with it, so
        this is the largest loss a limit can cause. A limit at or above the TDP changes nothing.

        >>> from fivelayer.catalog import default_catalog
        >>> h200 = ChipSpec.of(default_catalog().accelerators.get("h200-sxm"))
        >>> capped = h200.power_capped(500.0)
        >>> round(capped.rate("fp8") / h200.rate("fp8"), 4), capped.tdp_w   # (500 - 75) / (700 - 75)
        (0.68, 500.0)
        """
        from fivelayer.core.errors import FivelayerError, InfeasibleConfiguration

        if limit_w is None:
            return self
        if not 0 < limit_w <= MAX_POWER_LIMIT_W:  # also refuses NaN
            raise FivelayerError(
                f"power limit must be a number of watts above 0 and at most {MAX_POWER_LIMIT_W:,.0f} (got {limit_w:g})"
            )
        if limit_w >= self.tdp_w:
            return self
        if limit_w <= self.idle_power_w:
            raise InfeasibleConfiguration(
                f"a power limit of {limit_w:g} W is at or below {self.accelerator_id}'s idle power "
                f"({self.idle_power_w:g} W); give a limit between {self.idle_power_w:g} and {self.tdp_w:g} W"
            )
        scale = (limit_w - self.idle_power_w) / (self.tdp_w - self.idle_power_w)
        return replace(
            self, tdp_w=float(limit_w), sustained_flops={k: v * scale for k, v in self.sustained_flops.items()}
        )

    def rate(self, compute: str) -> float:
        """Dense matrix FLOP/s the chip sustains in tensor format ``compute`` (the peak where no measurement
        is listed); a clear error if the chip lists none."""
        self.peak(compute)
        return self.sustained_flops[compute]


def roofline_time_s(
    flops: ArrayLike, bytes_moved: ArrayLike, peak_flops: float, bandwidth: float
) -> tuple[FloatArray, FloatArray]:
    """Compute time and memory time of some work at the given (achievable) rates.

    >>> c, m = roofline_time_s(1e15, 1e12, 1e15, 2e12)
    >>> float(c), float(m)
    (1.0, 0.5)
    """
    return (
        np.asarray(flops, dtype=np.float64) / peak_flops,
        np.asarray(bytes_moved, dtype=np.float64) / bandwidth,
    )


def device_power_w(
    idle_w: float, tdp_w: float, compute_busy: ArrayLike, memory_busy: ArrayLike, memory_weight: float
) -> FloatArray:
    """Power of one accelerator: idle plus the dynamic range scaled by its activity, capped at TDP.

    ``compute_busy`` and ``memory_busy`` are the fractions of the time the chip spends on compute-bound and
    on memory-bound work. Activity is ``compute_busy + memory_weight * memory_busy``: a compute-bound step
    draws TDP, a memory-bound decode step a fraction set by ``memory_weight`` (calibrated on measured energy
    per token), time spent waiting on the host or the network only idle power.

    >>> float(device_power_w(100.0, 700.0, 0.0, 0.0, 0.5))
    100.0
    >>> round(float(device_power_w(100.0, 700.0, 0.2, 0.8, 0.5)), 6)
    460.0
    """
    activity = np.asarray(compute_busy, dtype=np.float64) + memory_weight * np.asarray(memory_busy, dtype=np.float64)
    return idle_w + (tdp_w - idle_w) * np.clip(activity, 0.0, 1.0)
