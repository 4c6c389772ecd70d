"""A short serving simulation of one deployment unit, for the latency charts of a report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fivelayer.core.errors import FivelayerError
from fivelayer.scenario import Scenario

if TYPE_CHECKING:
    from fivelayer.engines.serving.planned import PlannedUnitRun

__all__ = ["simulate_unit"]


def simulate_unit(
    scenario: Scenario, index: int | None = None, requests: int = 1000, result: Any | None = None
) -> PlannedUnitRun:
    """Simulate one unit of deployment ``index`` (default: the first that serves a language model and has
    units in the result) at its share of the peak hour, as ``fivelayer simulate SCENARIO`` does
    (``simulate_planned_unit``).

    ``result`` is the ``plan`` or ``yield`` result the report shows; it gives the number of units that share
    the peak hour (without it, ``plan`` runs). The scenario's seed.
    """
    from fivelayer.engines.analytic import plan
    from fivelayer.engines.serving.planned import simulate_planned_unit
    from fivelayer.models import LanguageModel

    rows = (result if result is not None else plan(scenario)).deployments
    if index is None:
        index = next(
            (
                i
                for i, dep in enumerate(scenario.deployments)
                if isinstance(scenario.resolved_catalog.models.get(dep.model), LanguageModel) and rows[i]["units"] >= 1
            ),
            -1,
        )
        if index < 0:
            raise FivelayerError(
                "no deployment of the scenario serves a language model with units in the result; nothing to simulate"
            )
    return simulate_planned_unit(scenario, index, int(rows[index]["units"]), requests=requests, seed=scenario.seed)
