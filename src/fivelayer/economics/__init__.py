"""Economics across every layer: finance (annuity, NPV), capex/opex roll-ups, TCO, unit costs."""
