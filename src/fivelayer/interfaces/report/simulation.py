"""A short serving simulation of one deployment unit, for the latency charts of a report."""

from __future__ import annotations

from typing import Any

from fivelayer.core.streams import RandomStreams
from fivelayer.scenario import Scenario

__all__ = ["SIMULATED_LOAD", "simulate_unit"]

#: Offered load of the simulated unit, as a fraction of the capacity ``plan`` gives it. Assumption: 70 %,
#: a unit sized with headroom runs below its capacity outside the peak hour.
SIMULATED_LOAD = 0.7


def simulate_unit(scenario: Scenario, index: int = 0, requests: int = 1000) -> Any:
    """Simulate one unit of deployment ``index`` at :data:`SIMULATED_LOAD` of its planned capacity.

    Returns the serving simulator's ``SimulationResult``. Poisson arrivals, the first served application's
    mean prompt and output lengths, the scenario's seed.
    """
    from fivelayer.applications.workload import synthetic_workload
    from fivelayer.engines.analytic.stack import demands_of, unit_for
    from fivelayer.engines.serving import ReplicaGroup, ServingConfig, simulate

    dep = scenario.deployments[index]
    unit = unit_for(scenario, index)
    demand = demands_of(scenario, dep)[0][0]
    output = max(round(demand.output_tokens), 1)
    rate = SIMULATED_LOAD * unit.capacity_per_s / output
    streams = RandomStreams(scenario.seed)
    workload = synthetic_workload(
        requests,
        streams.generator("report-arrivals"),
        streams.generator("report-lengths"),
        rate_per_s=rate,
        input_tokens=max(round(demand.input_tokens), 1),
        output_tokens=output,
    )
    config = ServingConfig(
        model=dep.model,
        groups=(ReplicaGroup(accelerator=unit.accelerator.id, count=unit.accelerators),),
        precision=dep.precision,
    )
    return simulate(workload, config, seed=scenario.seed, catalog=scenario.resolved_catalog)
