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

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fivelayer.core.errors import FivelayerError

if TYPE_CHECKING:
    from fivelayer.engines.serving.results import SimulationResult
    from fivelayer.scenario import Scenario

__all__ = ["PlannedUnitRun", "UnitSearch", "p99_interval", "simulate_planned_unit", "units_meeting_targets"]


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

    def checks(self) -> list[tuple[str, float, float, float, float, str]]:
        """Each p99 target against the simulation: (metric, target, p99, low, high, status).

        ``low``-``high`` is the 95 % confidence interval of the p99 from the simulated requests (the
        distribution-free interval between order statistics, :func:`p99_interval`); the status is ``misses``
        when the whole interval lies above the target, ``meets`` when it lies at or below it, else ``close``:
        too few requests to tell.
        """
        out = []
        for name, key, target in (("TTFT", "ttft_s", self.ttft_target_s), ("TPOT", "tpot_s", self.tpot_target_s)):
            if target is None:
                continue
            p99 = self.result.summary[key]["p99"]
            low, high = p99_interval(np.asarray(self.result.records[key], dtype=np.float64))
            if p99 is None:  # nothing finished: every request misses
                out.append((name, target, math.inf, math.inf, math.inf, "misses"))
                continue
            status = "misses" if low > target else "meets" if high <= target else "close"
            out.append((name, target, p99, low, high, status))
        return out

    @property
    def meets_targets(self) -> bool | None:
        """Whether the simulated unit meets the applications' p99 targets: ``False`` when it misses one (or its
        queues grow), ``True`` when it meets all, ``None`` when the applications set none or a p99 is too close
        to its target to tell from the requests simulated."""
        checks = self.checks()
        if not self.result.summary["sustainable"] or any(c[-1] == "misses" for c in checks):
            return False
        if not checks or any(c[-1] == "close" for c in checks):
            return None
        return True

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
        checks = self.checks()
        if not checks:
            return f"the applications set no latency targets{plan_said}"
        sign = {"misses": ">", "meets": "<=", "close": "vs"}
        parts = [
            f"{name} p99 {'none finished' if p99 == math.inf else _seconds(p99)} {sign[status]} {_seconds(target)}"
            + (f" (95 % interval {_seconds(low)} to {_seconds(high)})" if status == "close" else "")
            for name, target, p99, low, high, status in checks
        ]
        if not self.result.summary["sustainable"]:
            parts.append("queues grow")
        said = "; ".join(parts)
        if self.meets_targets is False:
            return (
                f"MISSES the applications' latency targets at this load ({said}){plan_said}: the plan sizes on the "
                "mean, so this deployment needs more units, more headroom or another layout"
            )
        if self.meets_targets is None:
            n = self.result.summary["requests"]
            return (
                f"too close to the applications' latency targets to tell from {n:,} requests ({said}); simulate "
                f"more requests (--requests){plan_said}"
            )
        return f"meets the applications' latency targets at this load ({said}){plan_said}"

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


def p99_interval(values: np.ndarray, confidence_z: float = 1.96) -> tuple[float, float]:
    """The 95 % confidence interval (``confidence_z`` = 1.96) of the 99th percentile of the finite ``values``,
    distribution-free: the order statistics at ranks ``n q -/+ z sqrt(n q (1 - q))`` (the binomial count of
    values below the true quantile), clipped to the sample. ``(nan, nan)`` for no finite value.

    >>> p99_interval(np.arange(1.0, 1001.0))
    (983.0, 997.0)
    """
    v = np.sort(values[np.isfinite(values)])
    n = v.size
    if n == 0:
        return math.nan, math.nan
    half = confidence_z * math.sqrt(n * 0.99 * 0.01)
    low = min(max(math.floor(n * 0.99 - half), 1), n)
    high = min(max(math.ceil(n * 0.99 + half), 1), n)
    return float(v[low - 1]), float(v[high - 1])


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
    busiest hour of the served applications together) divided by ``units``, as Poisson arrivals of that
    hour's mix of requests, each application's with its own prompt and output lengths (a
    :class:`~fivelayer.applications.workload.LengthMix`), at most the unit's planned capacity (a site short
    of power serves less than the demand, and the plan reports the rest as unserved). The unit runs the
    plan's accelerators and parallel layout, with at least the plan's batch as its running sequences, and is
    judged against the applications' strictest p99 targets.
    """
    from fivelayer.applications.workload import LengthMix, synthetic_workload, token_lengths
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
    assert unit.parallelism is not None
    # The busiest hour of the applications together, in output tokens/s, as plan sizes for; the mix of
    # requests in that hour, each application with its own lengths.
    demands = demands_of(scenario, dep)
    hourly = np.sum([d.hourly_output_tokens_per_s() for d, _ in demands], axis=0)
    peak = int(np.argmax(hourly))
    weights = tuple(d.requests_per_s * float(d.hourly[peak]) for d, _ in demands)
    mix = LengthMix(
        weights,
        tuple(token_lengths(max(1, round(d.input_tokens)), r.input_tokens.cv if r.input_tokens else 0.0)
              for d, r in demands),
        tuple(token_lengths(max(1, round(d.output_tokens)), r.output_tokens.cv if r.output_tokens else 0.0)
              for d, r in demands),
    )  # fmt: skip
    share = float(hourly[peak]) / units
    requests_per_s = sum(weights) / units
    load = f"its share of the peak hour (one of {units:,} units)" if units > 1 else "the peak hour (the only unit)"
    if share > unit.capacity_per_s:
        requests_per_s *= unit.capacity_per_s / share
        load += (
            f", capped at its planned capacity ({unit.capacity_per_s:,.0f} output tokens/s; the plan reports the "
            f"{share / unit.capacity_per_s - 1:.0%} above it as unserved)"
        )
    streams = RandomStreams(scenario.seed if seed is None else seed)
    workload = synthetic_workload(
        requests, streams.generator("arrivals"), streams.generator("lengths"), rate_per_s=requests_per_s,
        lengths=mix, max_context=model.max_context_tokens, model=model.id,
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


@dataclass(frozen=True)
class UnitSearch:
    """The fewest units of a deployment whose simulated unit meets the applications' p99 targets."""

    deployment: str
    #: Units in the plan.
    planned: int
    #: The fewest units found to meet the targets (``None``: none up to ``max_factor`` times the plan's).
    units: int | None
    #: The most units found to miss them (0: none tried missed), so the answer lies in (``missing``, ``units``].
    missing: int
    #: Every count simulated, and whether its unit met the targets (a p99 too close to call counts as not).
    tried: dict[int, bool]

    def to_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "units": self.units,
            "missing": self.missing,
            "tried": {str(n): ok for n, ok in sorted(self.tried.items())},
        }

    def sentence(self) -> str:
        """The answer in words."""
        if self.units is None:
            return (
                f"no count up to {max(self.tried):,} units meets the targets: the layout's own latency (the longest "
                "prompts' prefill, the decodes stalled by it) is above them at any load; change the layout, the "
                "engine's token budget or the targets, or serve prefill separately"
            )
        spread = f" (between {self.missing + 1:,} and {self.units:,})" if self.units - self.missing > 1 else ""
        change = (
            "the plan's count"
            if self.units == self.planned
            else f"{self.units / self.planned:.2f} x the plan's {self.planned:,}"
        )
        return f"{self.units:,} units meet the targets at the peak hour{spread}: {change}"


def units_meeting_targets(
    scenario: Scenario,
    index: int,
    units: int,
    *,
    requests: int = 1000,
    seed: int | None = None,
    max_factor: int = 64,
    tolerance: float = 0.05,
) -> UnitSearch:
    """Search the fewest units of deployment ``index`` whose one unit, simulated at its share of the peak hour
    (:func:`simulate_planned_unit`, the same requests for every count), meets the applications' p99 targets.

    Doubling from the plan's ``units`` (or halving, where they already meet the targets) brackets the answer,
    then bisection narrows it to ``tolerance`` of the count. A p99 too close to its target to call counts as a
    miss (the answer errs on the side of more units). More units means less load on each, so fewer never meet
    the targets where more miss them, up to the noise of the requests simulated.
    """
    if units < 1:
        raise FivelayerError("the plan gives this deployment no units; nothing to search from")
    tried: dict[int, bool] = {}

    def meets(n: int) -> bool:
        if n not in tried:
            run = simulate_planned_unit(scenario, index, n, requests=requests, seed=seed)
            tried[n] = run.meets_targets is True
        return tried[n]

    deployment = scenario.deployments[index].name
    if meets(units):
        good, bad = units, 0
        while good > 1:
            half = max(1, good // 2)
            if not meets(half):
                bad = half
                break
            good = half
    else:
        bad, good = units, 0
        while not good:
            if 2 * bad > units * max_factor:
                return UnitSearch(deployment, units, None, bad, tried)
            if meets(2 * bad):
                good = 2 * bad
            else:
                bad = 2 * bad
    while good - bad > max(1.0, tolerance * good):
        mid = (good + bad) // 2
        if meets(mid):
            good = mid
        else:
            bad = mid
    return UnitSearch(deployment, units, good, bad, tried)
