"""Vectorised closed-form evaluation through the stack: ``plan`` (size) and ``yield``."""

from fivelayer.engines.analytic.plan import StackResult, plan, yield_

__all__ = ["StackResult", "plan", "yield_"]
