"""Application records: who uses AI for what, how often, with how many tokens, and how fast it must be."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fivelayer.core.provenance import Record, Strict
from fivelayer.core.quantities import Seconds

__all__ = ["MAX_LENGTH_CV", "Application", "LatencyTargets", "TokenLengths", "check_length_cv"]


#: The largest coefficient of variation of one distribution of token lengths that a user may give (catalog
#: and scenario records, studies, the command line): beyond it a value is more likely a typo (96 for 0.96)
#: than a spread. A mixture of applications' lengths may spread more (``plan`` mixes them).
MAX_LENGTH_CV = 10.0


def check_length_cv(value: float, what: str) -> float:
    """``value`` if it is a coefficient of variation a user may give (0 to :data:`MAX_LENGTH_CV`), else a
    ``FivelayerError`` naming ``what`` (an option or a field)."""
    from fivelayer.core.errors import FivelayerError

    if not 0 <= value <= MAX_LENGTH_CV:  # also refuses NaN
        raise FivelayerError(f"{what} must be between 0 and {MAX_LENGTH_CV:g} (got {value})")
    return value


class TokenLengths(Strict):
    """A distribution of token counts per request: ``fixed`` or ``lognormal`` with mean and spread.

    ``cv`` is the coefficient of variation (standard deviation / mean); 0 means every request has ``mean``.
    """

    distribution: Literal["fixed", "lognormal"] = "lognormal"
    mean: float = Field(ge=0)
    cv: float = Field(default=0.0, ge=0, le=MAX_LENGTH_CV)

    @model_validator(mode="after")
    def _fixed_has_no_spread(self) -> TokenLengths:
        if self.distribution == "fixed" and self.cv != 0:
            raise ValueError("a fixed distribution has cv 0")
        return self


class LatencyTargets(Strict):
    """Service-level objectives at the 99th percentile."""

    ttft_p99_s: Seconds | None = None
    tpot_p99_s: Seconds | None = None
    e2e_p99_s: Seconds | None = None


class Application(Record):
    """An application of AI and its demand per user.

    Language applications give tokens per request; ``sample`` applications (drug discovery, driving,
    robotics) give ``samples_per_request`` of a domain model's work.
    """

    sector: str
    modality: Literal["llm", "sample"]
    #: Catalog id of the model this application is typically served with.
    default_model: str
    #: The unit of use for ``requests_per_user_per_day`` (a user, an agent seat, a vehicle, a robot).
    user: str = "user"
    requests_per_user_per_day: float = Field(gt=0)
    input_tokens: TokenLengths | None = None
    output_tokens: TokenLengths | None = None
    #: Hidden reasoning tokens per request, generated like output tokens.
    reasoning_tokens: TokenLengths | None = None
    samples_per_request: float | None = Field(default=None, gt=0)
    latency: LatencyTargets = LatencyTargets()
    #: Hourly load relative to the daily mean (24 values whose mean is 1), local time.
    daily_profile: tuple[float, ...] | None = None
    #: Price charged or value created per request.
    value_usd_per_request: float = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Application:
        if self.modality == "llm" and (self.input_tokens is None or self.output_tokens is None):
            raise ValueError("an llm application needs input_tokens and output_tokens")
        if self.modality == "sample" and self.samples_per_request is None:
            raise ValueError("a sample application needs samples_per_request")
        if self.daily_profile is not None:
            profile = self.daily_profile
            if len(profile) != 24 or min(profile) < 0:
                raise ValueError("daily_profile needs 24 non-negative values, one per hour")
            mean = sum(profile) / 24
            if abs(mean - 1) > 0.01:
                raise ValueError(f"daily_profile must average 1 (it averages {mean:.3f})")
        return self
