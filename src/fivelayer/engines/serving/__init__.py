"""Discrete-event serving simulator: continuous batching, paged KV cache, routing, disaggregated prefill.

See docs/methodology/serving.md. ``simulate(workload, config)`` runs a cluster;
``simulate_planned_unit(scenario, i, units)`` one unit of a scenario's plan at its share of the peak hour;
``validate_serving()`` checks the simulator against the MLPerf server rows of the reference set.
"""

from fivelayer.engines.serving.config import EngineOptions, ReplicaGroup, ServingConfig
from fivelayer.engines.serving.kernel import EventLoop
from fivelayer.engines.serving.planned import PlannedUnitRun, simulate_planned_unit
from fivelayer.engines.serving.results import SimulationResult
from fivelayer.engines.serving.simulator import build_replicas, simulate
from fivelayer.engines.serving.steptime import StepTimer
from fivelayer.engines.serving.validation import validate_serving

__all__ = [
    "EngineOptions",
    "EventLoop",
    "PlannedUnitRun",
    "ReplicaGroup",
    "ServingConfig",
    "SimulationResult",
    "StepTimer",
    "build_replicas",
    "simulate",
    "simulate_planned_unit",
    "validate_serving",
]
