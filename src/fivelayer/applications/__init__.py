"""Layer 5, applications: workloads, arrival processes, token-length distributions, SLOs, value."""

from fivelayer.applications.application import Application, LatencyTargets, TokenLengths

__all__ = ["Application", "LatencyTargets", "TokenLengths"]
