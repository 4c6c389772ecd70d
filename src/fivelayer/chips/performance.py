"""Chip physics: the roofline of one accelerator and its power between idle and TDP.

Pure functions over NumPy arrays. ``chips`` knows nothing of language models: it takes FLOPs and bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fivelayer.chips.accelerator import Accelerator

__all__ = ["ChipSpec", "device_power_w", "roofline_time_s"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ChipSpec:
    """The numbers of one accelerator that the step-cost model uses, in SI units."""

    accelerator_id: str
    family: str
    peak_flops: dict[str, float]
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
        precisions = ("fp32", "bf16", "fp8", "fp6", "fp4", "int8")
        return cls(
            accelerator_id=chip.id,
            family=chip.family,
            peak_flops={p: chip.peak(p) for p in precisions},
            memory_bytes=chip.memory_bytes,
            memory_bandwidth_bytes_per_s=chip.memory_bandwidth_bytes_per_s,
            tdp_w=chip.tdp_w,
            idle_power_w=chip.idle_power_w,
            link_bytes_per_s=chip.scale_up.bandwidth_bytes_per_s / 2,
            scale_up_domain=chip.scale_up.domain_size,
            scale_out_bytes_per_s=chip.scale_out_bandwidth_bytes_per_s,
        )


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
    idle_w: float, tdp_w: float, compute_util: ArrayLike, memory_util: ArrayLike, memory_weight: float
) -> FloatArray:
    """Power of one accelerator: idle plus the dynamic range scaled by its activity, capped at TDP.

    Activity is ``compute_util + memory_weight * memory_util`` (each a fraction of the datasheet peak), so a
    compute-bound kernel near peak draws TDP and a memory-bound decode step draws a fraction set by
    ``memory_weight`` (calibrated on measured energy per token).

    >>> float(device_power_w(100.0, 700.0, 0.0, 0.0, 0.5))
    100.0
    >>> float(device_power_w(100.0, 700.0, 0.2, 0.8, 0.5))
    460.0
    """
    activity = np.asarray(compute_util, dtype=np.float64) + memory_weight * np.asarray(memory_util, dtype=np.float64)
    return idle_w + (tdp_w - idle_w) * np.clip(activity, 0.0, 1.0)
