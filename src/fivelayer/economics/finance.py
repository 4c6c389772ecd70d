"""Finance: capital recovery, annualised cost, net present value, payback.

>>> round(capital_recovery_factor(0.08, 5), 6)
0.250456
>>> capital_recovery_factor(0.0, 4)
0.25
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["annualised_capex", "capital_recovery_factor", "net_present_value", "payback_years"]


def capital_recovery_factor(rate: float, years: float) -> float:
    """The fraction of a capital cost paid each year to repay it with interest over ``years``.

    ``rate * (1 + rate)**years / ((1 + rate)**years - 1)``; ``1 / years`` at a zero rate.
    """
    if years <= 0:
        raise ValueError(f"years must be positive (got {years})")
    if rate < 0:
        raise ValueError(f"rate must not be negative (got {rate})")
    excess = math.expm1(years * math.log1p(rate))  # (1 + rate)**years - 1, accurate for tiny rates
    if excess == 0.0:
        return 1.0 / years
    return rate * (1.0 + excess) / excess


def annualised_capex(capex_usd: float, rate: float, years: float) -> float:
    """Equivalent annual cost of ``capex_usd`` spread over ``years`` at cost of capital ``rate``.

    >>> round(annualised_capex(1000.0, 0.08, 5), 2)
    250.46
    """
    return capex_usd * capital_recovery_factor(rate, years)


def net_present_value(rate: float, cashflows: Sequence[float]) -> float:
    """NPV of yearly ``cashflows``, the first at year 0 (undiscounted).

    >>> round(net_present_value(0.1, [-100.0, 60.0, 60.0]), 4)
    4.1322
    """
    return sum(cf / (1.0 + rate) ** t for t, cf in enumerate(cashflows))


def payback_years(capex_usd: float, annual_net_usd: float) -> float:
    """Years until cumulative (undiscounted) net income repays ``capex_usd``; infinity if it never does.

    >>> payback_years(100.0, 25.0)
    4.0
    """
    if annual_net_usd <= 0:
        return math.inf
    return capex_usd / annual_net_usd


def usd_per_million_tokens(usd_per_gpu_hour: float, tokens_per_s_per_gpu: float) -> float:
    """Cost per million tokens from an hourly accelerator cost and a per-accelerator throughput.

    The definition SemiAnalysis InferenceMAX uses: cost rate / (tokens/s x 3600 / 1e6).

    >>> round(usd_per_million_tokens(1.30, 1000.0), 4)   # H100 at 1,000 tok/s and 1.30 USD/GPU-hour
    0.3611
    """
    if tokens_per_s_per_gpu <= 0:
        return math.inf
    return usd_per_gpu_hour / (tokens_per_s_per_gpu * 3600.0 / 1e6)


def tokens_per_s_per_mw(tokens_per_s_per_gpu: float, kw_per_gpu: float) -> float:
    """Tokens per second per MW of all-in power (accelerator, host share, network, cooling).

    >>> round(tokens_per_s_per_mw(1000.0, 1.73))   # H100 at 1.73 kW all-in
    578035
    """
    return tokens_per_s_per_gpu * 1000.0 / kw_per_gpu
