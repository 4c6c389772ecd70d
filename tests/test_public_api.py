"""The public surface of ``fivelayer`` is pinned: a change here is a deliberate API change."""

from __future__ import annotations

import fivelayer

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(fivelayer.__all__) == EXPECTED


def test_every_name_in_all_exists() -> None:
    for name in fivelayer.__all__:
        assert hasattr(fivelayer, name), name


def test_error_hierarchy() -> None:
    for name in ("CatalogError", "ScenarioError", "UnitError", "InfeasibleConfiguration", "UnknownIdError"):
        assert issubclass(getattr(fivelayer, name), fivelayer.FivelayerError)
