"""One planned unit of a scenario's deployment, simulated at its share of the peak-hour load.

``plan`` sizes each deployment analytically: the inference engine's steady state at the applications' mean
prompt and output lengths, with the mean step as the TPOT and one running step plus the prompt's prefill
steps as the TTFT (no queueing). This module runs the serving simulator on one of those units, with the
same model, precision, accelerators, parallel layout, length mix and latency targets, at the load the plan
gives it, and says whether the p99s it measures meet the targets the plan sized for. It is the check of the
analytic sizing under Poisson arrivals and spread lengths (``fivelayer simulate SCENARIO``, and the latency
charts of ``fivelayer report --simulate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fivelayer.core.errors import FivelayerError

if TYPE_CHECKING:
    from fivelayer.engines.serving.results import SimulationResult
    from fivelayer.scenario import Scenario

__all__ = ["PlannedUnitRun", "simulate_planned_unit"]


@dataclass(frozen=True)
class PlannedUnitRun:
    """The simulation of one planned unit, with what the plan estimated for it and the targets."""

    deployment: str
    #: Units of this deployment in the plan (the peak-hour load is shared among them).
    units: int
    #: What the load is, in words: the unit's share of the peak hour (capped at its planned capacity).
    load: str
    result: SimulationResult
    #: The plan's analytic estimates at its operating point (mean step; one step plus the prompt's prefill).
    plan_ttft_s: float | None
    plan_tpot_s: float | None
    #: The strictest p99 targets of the applications the deployment serves (scenario overrides applied);
    #: ``None`` where none is set (the simulator's defaults then judge goodput).
    ttft_target_s: float | None
    tpot_target_s: float | None

    def misses(self) -> list[str]:
        """The p99 targets the simulated unit misses, in words; empty when it meets them all."""
        out = []
        for name, key, target in (("TTFT", "ttft_s", self.ttft_target_s), ("TPOT", "tpot_s", self.tpot_target_s)):
            p99 = self.result.summary[key]["p99"]
            if target is not None and (p99 is None or p99 > target):
                shown = "none finished" if p99 is None else _seconds(p99)
                out.append(f"{name} p99 {shown} > {_seconds(target)}")
        if not self.result.summary["sustainable"]:
            out.append("queues grow")
        return out

    @property
    def meets_targets(self) -> bool | None:
        """Whether the simulated p99s meet the applications' targets (``None``: the applications set none)."""
        if self.ttft_target_s is None and self.tpot_target_s is None:
            return None
        return not self.misses()

    def verdict(self) -> str:
        """One sentence: the simulated p99s against the targets, and the plan's estimates beside them."""
        estimate = ", ".join(
            f"{name} {_seconds(value)}"
            for name, value in (("TTFT", self.plan_ttft_s), ("TPOT", self.plan_tpot_s))
            if value is not None
        )
        plan_said = f"; the plan's analytic estimate: {estimate} (mean step, mean prompt, no queueing)"
        if not estimate:
            plan_said = ""
        if self.meets_targets is None:
            return f"the applications set no latency targets{plan_said}"
        if self.meets_targets:
            targets = ", ".join(
                f"{name} p99 {_seconds(self.result.summary[key]['p99'])} <= {_seconds(target)}"
                for name, key, target in (
                    ("TTFT", "ttft_s", self.ttft_target_s),
                    ("TPOT", "tpot_s", self.tpot_target_s),
                )
                if target is not None
            )
            return f"meets the applications' latency targets at this load ({targets}){plan_said}"
        return (
            f"MISSES the applications' latency targets at this load ({'; '.join(self.misses())}){plan_said}: "
            "the plan sizes on the mean, so this deployment needs more units, more headroom or another layout"
        )

    def to_dict(self) -> dict[str, Any]:
        """The simulation's ``--json`` object, with the deployment, the plan's estimates and the verdict."""
        return {
            **self.result.to_dict(),
            "deployment": self.deployment,
            "units_planned": self.units,
            "load": self.load,
            "plan_estimate": {"ttft_s": self.plan_ttft_s, "tpot_s": self.plan_tpot_s},
            "meets_latency_targets": self.meets_targets,
            "verdict": self.verdict(),
        }


def _seconds(value: float) -> str:
    return f"{value * 1e3:,.1f} ms" if value < 1.0 else f"{value:,.2f} s"


def simulate_planned_unit(
    scenario: Scenario,
    index: int,
    units: int,
    *,
    requests: int = 1000,
    seed: int | None = None,
) -> PlannedUnitRun:
    """Simulate one unit of language-model deployment ``index`` of ``scenario``, one of ``units``.

    The load is the unit's share of the peak hour: the output tokens per second the plan sizes for (the
    busiest hour of the served applications together) divided by ``units``, as Poisson arrivals of requests
    with the unit's mean prompt and output lengths and their spread (the applications' mix, as ``plan``
    takes it), at most the unit's planned capacity (a site short of power serves less than the demand, and
    the plan reports the rest as unserved). The unit runs the plan's accelerators and parallel layout, with
    at least the plan's batch as its running sequences, and is judged against the applications' strictest
    p99 targets.
    """
    import numpy as np

    from fivelayer.applications.application import MAX_LENGTH_CV
    from fivelayer.applications.workload import synthetic_workload, token_lengths
    from fivelayer.core.streams import RandomStreams
    from fivelayer.engines.analytic.stack import demands_of, targets_of, unit_for
    from fivelayer.engines.serving.config import (
        DEFAULT_TPOT_SLO_S,
        DEFAULT_TTFT_SLO_S,
        EngineOptions,
        ReplicaGroup,
        ServingConfig,
    )
    from fivelayer.engines.serving.simulator import DEFAULT_MAX_SEQS, simulate
    from fivelayer.models import LanguageModel

    dep = scenario.deployments[index]
    model = scenario.resolved_catalog.models.get(dep.model)
    if not isinstance(model, LanguageModel):
        raise FivelayerError(f"deployment {dep.name!r} serves {dep.model}, not a language model; nothing to simulate")
    if units < 1:
        raise FivelayerError(
            f"deployment {dep.name!r} has no units in the plan (the site's power is spent elsewhere); "
            "nothing to simulate"
        )
    unit = unit_for(scenario, index)
    assert unit.lengths is not None and unit.parallelism is not None
    input_mean, output_mean, input_cv, output_cv = unit.lengths
    output_mean = max(1.0, output_mean)
    hourly = [d.hourly_output_tokens_per_s() for d, _ in demands_of(scenario, dep)]
    share = float(np.sum(hourly, axis=0).max()) / units
    tokens_per_s = min(share, unit.capacity_per_s)
    load = f"its share of the peak hour (one of {units:,} units)" if units > 1 else "the peak hour (the only unit)"
    if share > unit.capacity_per_s:
        load += (
            f", capped at its planned capacity ({unit.capacity_per_s:,.0f} output tokens/s; the plan reports the "
            f"{share / unit.capacity_per_s - 1:.0%} above it as unserved)"
        )
    streams = RandomStreams(scenario.seed if seed is None else seed)
    workload = synthetic_workload(
        requests, streams.generator("arrivals"), streams.generator("lengths"),
        rate_per_s=tokens_per_s / output_mean,
        input_tokens=token_lengths(max(1, round(input_mean)), min(input_cv, MAX_LENGTH_CV)),
        output_tokens=token_lengths(max(1, round(output_mean)), min(output_cv, MAX_LENGTH_CV)),
        max_context=model.max_context_tokens, model=model.id,
    )  # fmt: skip
    ttft, tpot = targets_of(scenario, dep)
    tp, pp, ep = unit.parallelism
    # The simulator's default of running sequences, unless the plan's operating point runs more.
    big = unit.batch is not None and unit.batch > DEFAULT_MAX_SEQS
    engine = EngineOptions(max_num_seqs=unit.batch) if big else EngineOptions()
    config = ServingConfig(
        model=model.id, precision=dep.precision, engine=engine,
        groups=(ReplicaGroup(unit.accelerator.id, unit.accelerators, "mixed", tp, pp, ep),),
        ttft_slo_s=ttft or DEFAULT_TTFT_SLO_S, tpot_slo_s=tpot or DEFAULT_TPOT_SLO_S,
    )  # fmt: skip
    result = simulate(workload, config, seed=streams.seed, catalog=scenario.resolved_catalog)
    return PlannedUnitRun(dep.name, units, load, result, unit.ttft_s, unit.tpot_s, ttft, tpot)
