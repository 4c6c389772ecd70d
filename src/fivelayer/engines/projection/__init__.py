"""``project``: the AI industry year by year, from adoption and efficiency to buildout, energy and capital.

>>> result = project(packaged_projection("base"))
>>> result.years[0]["year"]
2024
"""

from __future__ import annotations

from fivelayer.catalog import CatalogSet
from fivelayer.engines.projection.model import Trajectory, simulate
from fivelayer.engines.projection.result import ProjectionResult, build_result
from fivelayer.engines.projection.spec import (
    ProjectionSpec,
    Trend,
    load_projection,
    packaged_projection,
    packaged_projection_names,
    projection_from_text,
)

__all__ = [
    "ProjectionResult",
    "ProjectionSpec",
    "Trajectory",
    "Trend",
    "load_projection",
    "packaged_projection",
    "packaged_projection_names",
    "project",
    "projection_from_text",
    "simulate",
]


def project(spec: ProjectionSpec, catalog: CatalogSet | None = None) -> ProjectionResult:
    """Run a projection scenario and return its years, regions and checks against published figures."""
    return build_result(spec, simulate(spec, catalog))
