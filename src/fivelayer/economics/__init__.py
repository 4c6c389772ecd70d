"""Economics across every layer: finance (annuity, NPV), capex/opex roll-ups, TCO, unit costs."""

from fivelayer.economics.finance import (
    annualised_capex,
    capital_recovery_factor,
    net_present_value,
    payback_years,
    tokens_per_s_per_mw,
    usd_per_million_tokens,
)

__all__ = [
    "annualised_capex",
    "capital_recovery_factor",
    "net_present_value",
    "payback_years",
    "tokens_per_s_per_mw",
    "usd_per_million_tokens",
]
