"""fivelayer: the AI industry as a five-layer stack (energy, chips, infrastructure, models, applications).

The public surface is small and pinned by ``tests/test_public_api.py``::

    import fivelayer
    cat = fivelayer.default_catalog()
    chip = cat.accelerators.get("h200-sxm")
    scenario = fivelayer.load_scenario("scenario.yaml")   # or fivelayer.default_scenario()
    for row in scenario.explain(): ...
"""

from fivelayer.catalog import CatalogSet, default_catalog, record_summary, record_to_dict
from fivelayer.core.errors import (
    CatalogError,
    FivelayerError,
    InfeasibleConfiguration,
    ScenarioError,
    UnitError,
    UnknownIdError,
)
from fivelayer.core.provenance import Source
from fivelayer.core.streams import RandomStreams
from fivelayer.core.units import to_si, ureg
from fivelayer.scenario import Scenario, default_scenario, load_scenario

__version__ = "0.1.0"

__all__ = [
    "CatalogError",
    "CatalogSet",
    "FivelayerError",
    "InfeasibleConfiguration",
    "RandomStreams",
    "Scenario",
    "ScenarioError",
    "Source",
    "UnitError",
    "UnknownIdError",
    "__version__",
    "default_catalog",
    "default_scenario",
    "load_scenario",
    "record_summary",
    "record_to_dict",
    "to_si",
    "ureg",
]
