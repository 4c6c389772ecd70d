"""Demand of an application: requests and tokens per second, hour by hour over a year."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fivelayer.applications.application import Application

__all__ = ["DEFAULT_PEAK_TO_MEAN", "Demand", "hourly_factors"]

FloatArray = NDArray[np.float64]
HOURS_PER_YEAR = 8760
#: Peak-hour load relative to the daily mean where an application gives no daily profile. Assumption:
#: interactive services commonly peak at 1.5-2x their mean; 1.6.
DEFAULT_PEAK_TO_MEAN = 1.6


def hourly_factors(app: Application) -> FloatArray:
    """Load relative to the mean for each hour of a year (the daily profile repeated; mean 1)."""
    if app.daily_profile is None:
        day = 1.0 + (DEFAULT_PEAK_TO_MEAN - 1.0) * np.sin(np.linspace(0, np.pi, 24, endpoint=False)) ** 2
        day = day / day.mean()
    else:
        day = np.asarray(app.daily_profile, dtype=np.float64)
        day = day / day.mean()
    return np.tile(day, HOURS_PER_YEAR // 24)


@dataclass(frozen=True)
class Demand:
    """What one application asks of its deployment."""

    application_id: str
    users: float
    requests_per_user_per_day: float
    input_tokens: float
    output_tokens: float
    value_usd_per_request: float
    hourly: FloatArray  # relative load, mean 1

    @property
    def requests_per_s(self) -> float:
        return self.users * self.requests_per_user_per_day / 86400.0

    @property
    def output_tokens_per_s(self) -> float:
        """Mean generated tokens per second (output plus hidden reasoning tokens)."""
        return self.requests_per_s * self.output_tokens

    @property
    def peak_output_tokens_per_s(self) -> float:
        return self.output_tokens_per_s * float(self.hourly.max())

    def hourly_output_tokens_per_s(self) -> FloatArray:
        return self.output_tokens_per_s * self.hourly
