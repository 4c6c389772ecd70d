"""Per-deployment building blocks shared by ``plan`` and ``yield``: one serving unit's capacity and power.

A *unit* is what a deployment buys in: one catalog system (a DGX node, an NVL72 rack), or, for an
accelerator with no catalog system, a server of :data:`SERVER_ACCELERATORS` accelerators. Where one unit
cannot hold the model, units are ganged (2, 4, ... systems) until it fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fivelayer.applications import Application
from fivelayer.applications.demand import Demand, hourly_factors
from fivelayer.catalog import CatalogSet
from fivelayer.chips import Accelerator
from fivelayer.core.errors import InfeasibleConfiguration
from fivelayer.engines.calibration import fitted_efficiency
from fivelayer.engines.inference import InferenceCase, predict_inference
from fivelayer.infrastructure import System
from fivelayer.models import DomainModel, LanguageModel
from fivelayer.scenario import Application as ScenarioApplication
from fivelayer.scenario import Deployment, Scenario

__all__ = [
    "HOST_IDLE_FRACTION",
    "SERVER_ACCELERATORS",
    "SERVER_COST_OVERHEAD",
    "DeploymentUnit",
    "demands_of",
    "unit_for",
]

#: Accelerators per server where the catalog has no system for a chip. Assumption: the common 8-way board.
SERVER_ACCELERATORS = 8
#: Server cost beyond its accelerators (CPUs, memory, NICs, chassis, integration) as a fraction of the
#: accelerators' price, where the catalog has no system. Assumption: DGX H100 list price is about 1.4x
#: eight H100s at 25-30 kUSD; 0.4.
SERVER_COST_OVERHEAD = 0.4
#: Host power of a server with idle accelerators, as a fraction of its maximum host power. Assumption: 30 %.
HOST_IDLE_FRACTION = 0.3
#: Host power per accelerator where no catalog system exists, as a fraction of the accelerator's TDP.
HOST_POWER_FRACTION_OF_TDP = 0.8


@dataclass(frozen=True)
class DeploymentUnit:
    """One purchasable unit of a deployment and what it delivers."""

    deployment: str
    accelerator: Accelerator
    system: System | None
    model_id: str
    accelerators: int
    systems: int
    #: Output tokens/s (language models) or samples/s (domain models) the unit serves within the targets.
    capacity_per_s: float
    busy_power_w: float
    idle_power_w: float
    max_power_w: float
    price_usd: float
    accelerator_price_usd: float
    racks_per_unit: float | None
    ttft_s: float | None
    tpot_s: float | None
    notes: list[str] = field(default_factory=list)
    #: Parallel layout chosen by the inference engine (tp, pp, ep) for language models.
    parallelism: tuple[int, int, int] | None = None
    #: Running sequences per replica at the engine's operating point (language models).
    batch: int | None = None


def _scenario_app(scenario: Scenario, app_id: str) -> ScenarioApplication:
    for app in scenario.applications:
        if app.id == app_id:
            return app
    raise KeyError(app_id)


def demands_of(scenario: Scenario, deployment: Deployment, year: int = 0) -> list[tuple[Demand, Application]]:
    """The demand of every application a deployment serves, with scenario overrides applied."""
    cat = scenario.resolved_catalog
    out = []
    for app_id in deployment.serves:
        spec = _scenario_app(scenario, app_id)
        record: Application = cat.applications.get(app_id)
        reasoning = record.reasoning_tokens.mean if record.reasoning_tokens else 0.0
        if record.modality == "llm":
            assert record.input_tokens is not None and record.output_tokens is not None
            input_tokens = spec.input_tokens if spec.input_tokens is not None else record.input_tokens.mean
            output = spec.output_tokens if spec.output_tokens is not None else record.output_tokens.mean + reasoning
        else:
            input_tokens, output = 0.0, float(record.samples_per_request or 1.0)
        demand = Demand(
            application_id=app_id,
            users=spec.users * (1.0 + spec.growth_per_year) ** year,
            requests_per_user_per_day=spec.requests_per_user_per_day or record.requests_per_user_per_day,
            input_tokens=input_tokens,
            output_tokens=output,
            value_usd_per_request=(
                spec.value_usd_per_request if spec.value_usd_per_request is not None else record.value_usd_per_request
            ),
            hourly=hourly_factors(record),
        )
        out.append((demand, record))
    return out


def targets_of(scenario: Scenario, deployment: Deployment) -> tuple[float | None, float | None]:
    """The strictest p99 TTFT and TPOT targets of the applications a deployment serves (scenario overrides
    applied); ``None`` where none sets one."""
    ttfts, tpots = [], []
    for app_id in deployment.serves:
        spec = _scenario_app(scenario, app_id)
        record = scenario.resolved_catalog.applications.get(app_id)
        ttft = spec.ttft_p99 if spec.ttft_p99 is not None else record.latency.ttft_p99_s
        tpot = spec.tpot_p99 if spec.tpot_p99 is not None else record.latency.tpot_p99_s
        if ttft:
            ttfts.append(ttft)
        if tpot:
            tpots.append(tpot)
    return (min(ttfts) if ttfts else None, min(tpots) if tpots else None)


@dataclass(frozen=True)
class _Hardware:
    """A chip and the server it comes in (a catalog system, or an assumed 8-way server)."""

    chip: Accelerator
    system: System | None
    per_system: int
    host_max_w: float
    max_power_w: float
    price_usd: float
    racks: float | None


def _hardware(cat: CatalogSet, accelerator: str | None, system_id: str | None) -> _Hardware:
    if system_id is not None:
        system: System | None = cat.systems.get(system_id)
        assert system is not None
        chip = cat.accelerators.get(system.accelerator)
        return _Hardware(chip, system, system.accelerator_count, system.host_power_w, system.max_power_w,
                         system.price_usd, system.racks)  # fmt: skip
    assert accelerator is not None
    chip = cat.accelerators.get(accelerator)
    system = next((s for s in cat.systems if s.accelerator == chip.id), None)
    if system is not None:
        return _Hardware(chip, system, system.accelerator_count, system.host_power_w, system.max_power_w,
                         system.price_usd, system.racks)  # fmt: skip
    host = HOST_POWER_FRACTION_OF_TDP * chip.tdp_w * SERVER_ACCELERATORS
    return _Hardware(
        chip, None, SERVER_ACCELERATORS, host, chip.tdp_w * SERVER_ACCELERATORS + host,
        chip.price_usd * SERVER_ACCELERATORS * (1.0 + SERVER_COST_OVERHEAD), None,
    )  # fmt: skip


def unit_for(scenario: Scenario, index: int) -> DeploymentUnit:
    """The unit of deployment ``index`` and its capacity at the applications' latency targets."""
    cat: CatalogSet = scenario.resolved_catalog
    dep = scenario.deployments[index]
    hw = _hardware(cat, dep.accelerator, dep.system)
    chip, system, per_system = hw.chip, hw.system, hw.per_system
    host_max, max_power, price, racks = hw.host_max_w, hw.max_power_w, hw.price_usd, hw.racks
    model = cat.models.get(dep.model)
    demands = demands_of(scenario, dep)
    notes: list[str] = []
    if isinstance(model, DomainModel):
        eff = fitted_efficiency(chip.family, None)
        samples_per_s = per_system * eff.compute * chip.peak(dep.precision) / model.flops_per_sample
        busy = per_system * chip.tdp_w + host_max
        idle = per_system * chip.idle_power_w + HOST_IDLE_FRACTION * host_max
        notes.append(
            f"{model.id}: {model.flops_per_sample:.3g} FLOP per sample at {eff.compute:.0%} of the "
            f"{dep.precision} peak; accelerators at TDP while busy"
        )
        return DeploymentUnit(
            dep.name, chip, system, model.id, per_system, 1, samples_per_s, busy, idle, max_power, price,
            chip.price_usd * per_system, racks, None, None, notes,
        )  # fmt: skip
    assert isinstance(model, LanguageModel)
    requests = sum(d.requests_per_s for d, _ in demands) or 1.0
    input_tokens = sum(d.input_tokens * d.requests_per_s for d, _ in demands) / requests if demands else 1024.0
    output_tokens = sum(d.output_tokens * d.requests_per_s for d, _ in demands) / requests if demands else 256.0
    input_cv = _mixture_cv([(d.requests_per_s, d.input_tokens, r.input_tokens.cv if r.input_tokens else 0.0)
                            for d, r in demands], input_tokens)  # fmt: skip
    output_cv = _mixture_cv([(d.requests_per_s, d.output_tokens, r.output_tokens.cv if r.output_tokens else 0.0)
                             for d, r in demands], output_tokens)  # fmt: skip
    ttft, tpot = targets_of(scenario, dep)
    last_error: InfeasibleConfiguration | None = None
    for systems in (1, 2, 4, 8, 16, 32):
        count = per_system * systems
        case = InferenceCase(
            accelerator=chip.id, count=count, model=model.id, precision=dep.precision,
            input_tokens=max(1, round(input_tokens)), output_tokens=max(1, round(output_tokens)),
            mode="server" if (ttft or tpot) else "offline", ttft_slo=ttft, tpot_slo=tpot,
            input_cv=input_cv, output_cv=output_cv,
        )  # fmt: skip
        try:
            prediction = predict_inference(case, cat)
        except InfeasibleConfiguration as exc:
            last_error = exc
            if "does not fit" in str(exc) or "needs" in str(exc):
                continue
            raise InfeasibleConfiguration(f"deployment {dep.name!r}: {exc}") from None
        host_busy = prediction.system_power_w - prediction.gpu_power_w * count
        busy = prediction.gpu_power_w * count + max(host_busy, 0.0)
        idle = count * chip.idle_power_w + HOST_IDLE_FRACTION * host_max * systems
        if systems > 1:
            notes.append(f"{model.id} needs {systems} systems ganged to fit ({count} x {chip.id})")
        notes.extend(prediction.assumptions)
        return DeploymentUnit(
            dep.name, chip, system, model.id, count, systems, prediction.throughput_tokens_per_s, busy, idle,
            max_power * systems, price * systems, chip.price_usd * count,
            None if racks is None else racks * systems, prediction.ttft_s, prediction.tpot_s, notes,
            (prediction.tp, prediction.pp, prediction.ep), prediction.batch_size,
        )  # fmt: skip
    assert last_error is not None
    raise InfeasibleConfiguration(f"deployment {dep.name!r}: {last_error}")


def units_needed(peak_per_s: float, headroom: float, capacity_per_unit: float) -> int:
    """Units that serve the peak hour with ``headroom`` to spare; at least one."""
    if capacity_per_unit <= 0:
        return 0
    return max(1, math.ceil(peak_per_s * (1.0 + headroom) / capacity_per_unit - 1e-9))


def served(demand_per_s: np.ndarray, capacity_per_s: float) -> np.ndarray:
    """Hourly demand actually served by ``capacity_per_s``."""
    result: np.ndarray = np.minimum(demand_per_s, capacity_per_s)
    return result


def training_unit(scenario: Scenario, index: int) -> tuple[DeploymentUnit, dict[str, Any]]:
    """The cluster of training run ``index`` as a unit (all its systems), with the run's prediction.

    The cluster draws the run's average IT power while training (``runs_per_year`` runs a year) and idle
    power the rest of the year; it serves no tokens.
    """
    from fivelayer.engines.training import TrainingCase, predict_training

    cat = scenario.resolved_catalog
    run = scenario.trainings[index]
    hw = _hardware(cat, run.accelerator, run.system)
    chip, system = hw.chip, hw.system
    facility = cat.facilities.get(scenario.facility.design)
    case = TrainingCase(
        accelerator=chip.id, count=run.count, model=run.model, tokens=run.tokens, precision=run.precision,
        region=scenario.site.region, pue=scenario.facility.pue or facility.pue,
    )  # fmt: skip
    try:
        prediction = predict_training(case, cat)
    except InfeasibleConfiguration as exc:
        raise InfeasibleConfiguration(f"training {run.name!r}: {exc}") from None
    days_per_year = prediction.days * run.runs_per_year
    if days_per_year > 365.0:
        raise InfeasibleConfiguration(
            f"training {run.name!r}: {run.runs_per_year:g} runs of {prediction.days:,.1f} days do not fit in a year "
            f"on {run.count} x {chip.id}; use more accelerators or fewer runs"
        )
    systems = math.ceil(run.count / hw.per_system)
    host_max = hw.host_max_w
    max_power = hw.max_power_w * systems
    price = hw.price_usd * systems
    busy = prediction.costs.it_energy_j / (prediction.days * 86400.0)
    idle = run.count * chip.idle_power_w + HOST_IDLE_FRACTION * host_max * systems
    unit = DeploymentUnit(
        run.name, chip, system, prediction.model_id, run.count, systems, 0.0, busy, idle, max_power, price,
        chip.price_usd * run.count, None if hw.racks is None else hw.racks * systems,
        None, None, [f"training {run.name}: {a}" for a in prediction.assumptions[:3]],
    )  # fmt: skip
    summary = {
        "name": run.name,
        "model": prediction.model_id,
        "accelerator": chip.id,
        "accelerators": run.count,
        "tokens": run.tokens,
        "runs_per_year": run.runs_per_year,
        "days_per_run": prediction.days,
        "gpu_hours_per_run": prediction.gpu_hours,
        "mfu": prediction.mfu,
        "duty": days_per_year / 365.0,
        "it_energy_mwh_per_run": prediction.costs.it_energy_j / 3.6e9,
    }
    return unit, summary


def _mixture_cv(parts: list[tuple[float, float, float]], mean: float) -> float:
    """Coefficient of variation of a mixture of length distributions given as (weight, mean, cv): from the
    mixture's second moment, sum w (m^2 (1 + cv^2)) / sum w, around its mean ``mean``."""
    weight = sum(w for w, _, _ in parts)
    if weight <= 0 or mean <= 0:
        return 0.0
    second = sum(w * m * m * (1.0 + cv * cv) for w, m, cv in parts) / weight
    return math.sqrt(max(second / (mean * mean) - 1.0, 0.0))
