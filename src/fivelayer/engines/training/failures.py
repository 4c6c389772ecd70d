"""Large-cluster effects: interruptions, checkpoints, restarts and stragglers, as a goodput fraction.

A synchronous training job stops whenever any of its ``n`` accelerators (or their hosts and links) fails.
With ``r`` interruptions per accelerator-day the job's mean time between interruptions is
``M = 86,400 / (r n)`` seconds. Writing a checkpoint takes ``delta`` seconds; after an interruption the job
loses the work since the last checkpoint (on average half an interval) and ``R`` seconds to restart. With
the checkpoint interval ``tau`` of Young (1974) and Daly (2006), ``tau = sqrt(2 delta M)``, the fraction of
wall-clock time lost is about ``delta / tau + (tau / 2 + R) / M``.

Worked example (tests/engines/training/test_failures.py): Meta's 54-day Llama 3 405B snapshot had 466
interruptions on 16,384 H100s, 466 / (16,384 x 54) = 5.27e-4 per GPU-day, so M = 86,400 / (5.27e-4 x
16,384) = 10,012 s (2.8 h). Stragglers: a step waits for the slowest of ``n`` devices; with a per-step
jitter of ``sigma`` the expected slowest is about ``1 + sigma sqrt(2 ln n)`` times the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "INTERRUPTIONS_PER_GPU_DAY",
    "RESTART_S",
    "STORAGE_WRITE_BYTES_PER_S",
    "STRAGGLER_SIGMA",
    "Goodput",
    "goodput",
]

#: Llama 3 405B pre-training: 466 job interruptions (47 planned, 419 unexpected) in a 54-day snapshot on
#: 16,384 H100 GPUs (Llama 3 paper, section 3.3.4, as reported by DatacenterDynamics; see training.yaml).
INTERRUPTIONS_PER_GPU_DAY = 466 / (16_384 * 54)
#: Time to detect an interruption, reschedule the job and reload the last checkpoint. Assumption: 10 minutes
#: (automated restarts; Meta reports most of the 466 interruptions were handled by automation).
RESTART_S = 600.0
#: Sustained write bandwidth of the checkpoint store for the whole job. Meta's Tectonic store for Llama 3
#: sustains 2 TB/s (peak 7 TB/s); taken as the default for a large training cluster.
STORAGE_WRITE_BYTES_PER_S = 2e12
#: Relative per-step jitter of one device (kernel timing, network contention, thermal throttling).
#: Assumption: 1 %, giving 4.4 % straggler overhead at 16,384 devices.
STRAGGLER_SIGMA = 0.01


@dataclass(frozen=True)
class Goodput:
    """Where the wall-clock time of a run goes, as fractions of the ideal (failure-free) time."""

    mtbf_s: float
    checkpoint_s: float
    checkpoint_interval_s: float
    interruptions: float
    checkpoint_overhead: float
    failure_overhead: float
    straggler_overhead: float

    @property
    def fraction(self) -> float:
        """Useful time / wall-clock time."""
        return 1.0 / ((1.0 + self.straggler_overhead) * (1.0 + self.checkpoint_overhead + self.failure_overhead))


def straggler_overhead(count: int, sigma: float = STRAGGLER_SIGMA) -> float:
    """Expected slowdown of a synchronous step over ``count`` devices: ``sigma sqrt(2 ln n)``.

    >>> round(straggler_overhead(16_384), 4)
    0.0441
    """
    return sigma * math.sqrt(2.0 * math.log(count)) if count > 1 else 0.0


def goodput(
    count: int,
    ideal_s: float,
    checkpoint_bytes: float,
    rate_per_gpu_day: float = INTERRUPTIONS_PER_GPU_DAY,
    restart_s: float = RESTART_S,
    storage_bytes_per_s: float = STORAGE_WRITE_BYTES_PER_S,
    sigma: float = STRAGGLER_SIGMA,
) -> Goodput:
    """Goodput of a run that needs ``ideal_s`` seconds of failure-free training on ``count`` devices.

    >>> g = goodput(16_384, 54 * 86_400, 405e9 * 14)
    >>> round(g.mtbf_s), round(g.checkpoint_interval_s)
    (10012, 238)
    """
    mtbf = 86_400.0 / (rate_per_gpu_day * count) if rate_per_gpu_day > 0 else math.inf
    delta = checkpoint_bytes / storage_bytes_per_s
    if math.isinf(mtbf):
        return Goodput(mtbf, delta, math.inf, 0.0, 0.0, 0.0, straggler_overhead(count, sigma))
    tau = math.sqrt(2.0 * delta * mtbf) if delta > 0 else 0.0
    ckpt = delta / tau if tau > 0 else 0.0
    fail = (tau / 2.0 + restart_s) / mtbf
    return Goodput(
        mtbf_s=mtbf,
        checkpoint_s=delta,
        checkpoint_interval_s=tau,
        interruptions=ideal_s * (1.0 + ckpt + fail) / mtbf,
        checkpoint_overhead=ckpt,
        failure_overhead=fail,
        straggler_overhead=straggler_overhead(count, sigma),
    )
