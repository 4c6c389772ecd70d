"""The catalog of the real stack: every kind of record, loaded lazily from ``fivelayer/data``.

>>> cat = default_catalog()
>>> cat.accelerators.get("H200-SXM").memory_bytes
141000000000.0
>>> cat.models.get("meta-llama/Llama-3.1-70B-Instruct").id
'llama-3.1-70b'

User files add records or replace shipped ones (same id): ``default_catalog().with_file("mine.yaml")``.
A user file is a mapping from kind to a list of records, exactly like the shipped files.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fivelayer.applications import Application
from fivelayer.chips import Accelerator
from fivelayer.core.catalog import Catalog, packaged_yaml, parse_records
from fivelayer.core.errors import CatalogError, FivelayerError, UnknownIdError, did_you_mean
from fivelayer.core.yamlio import LocatedYaml, load_yaml
from fivelayer.energy import GridRegion
from fivelayer.energy.supply import SupplyOption
from fivelayer.infrastructure import FacilityDesign, System
from fivelayer.infrastructure.components import Component
from fivelayer.models import LanguageModel, Model

__all__ = ["KINDS", "CatalogSet", "default_catalog", "record_summary", "record_to_dict", "resolve_kind"]


@dataclass(frozen=True)
class _Kind:
    name: str  # plural, as on the command line: "accelerators"
    singular: str
    model: Any
    files: tuple[str, ...]


KINDS: dict[str, _Kind] = {
    k.name: k
    for k in (
        _Kind(
            "accelerators",
            "accelerator",
            Accelerator,
            ("chips/nvidia.yaml", "chips/amd.yaml", "chips/intel.yaml", "chips/google.yaml"),
        ),
        _Kind("systems", "system", System, ("infrastructure/systems.yaml",)),
        _Kind("facilities", "facility design", FacilityDesign, ("infrastructure/facilities.yaml",)),
        _Kind("models", "model", Model, ("models/llama.yaml", "models/open_models.yaml", "models/domain.yaml")),
        _Kind("grid-regions", "grid region", GridRegion, ("energy/grid_regions.yaml",)),
        _Kind("applications", "application", Application, ("applications/applications.yaml",)),
        _Kind("components", "infrastructure component", Component, ("infrastructure/components.yaml",)),
        _Kind("supply-options", "energy supply option", SupplyOption, ("energy/supply_options.yaml",)),
    )
}
_KIND_ALIASES = {
    "accelerator": "accelerators",
    "chips": "accelerators",
    "gpus": "accelerators",
    "system": "systems",
    "facility": "facilities",
    "cooling": "facilities",
    "model": "models",
    "grid": "grid-regions",
    "regions": "grid-regions",
    "grid-region": "grid-regions",
    "region": "grid-regions",
    "grid_regions": "grid-regions",
    "application": "applications",
    "apps": "applications",
    "component": "components",
    "supply": "supply-options",
    "supply-option": "supply-options",
    "supply_options": "supply-options",
}


def _packaged_loader(kind: _Kind) -> Callable[[], list[Any]]:
    @functools.cache
    def load() -> list[Any]:
        records: list[Any] = []
        for relative in kind.files:
            located = packaged_yaml(relative)
            records.extend(_records_of(kind, located))
        return records

    return load


def _records_of(kind: _Kind, located: LocatedYaml) -> list[Any]:
    data = located.data
    if not isinstance(data, dict) or kind.name not in data:
        raise CatalogError(f"{located.origin}: expected a top-level '{kind.name}:' list")
    return parse_records(kind.model, located, (kind.name,))


def resolve_kind(name: str) -> str:
    """The canonical kind name for ``name`` (``"accelerator"`` -> ``"accelerators"``)."""
    key = name.strip().lower()
    key = _KIND_ALIASES.get(key, key)
    if key not in KINDS:
        prefixed = [k for k in KINDS if k.startswith(key)] if len(key) >= 3 else []
        suggestions = did_you_mean(key, list(KINDS)) or prefixed
        if suggestions:
            raise UnknownIdError("catalog kind", name, suggestions)
        raise CatalogError(f"Unknown catalog kind {name!r}. The kinds are: {', '.join(KINDS)}.")
    return key


@dataclass(frozen=True)
class CatalogSet:
    """One catalog of every kind. Immutable; ``with_file`` returns a new set with a user's records."""

    accelerators: Catalog[Accelerator]
    systems: Catalog[System]
    facilities: Catalog[FacilityDesign]
    models: Catalog[Any]
    grid_regions: Catalog[GridRegion]
    applications: Catalog[Application]
    components: Catalog[Component]
    supply_options: Catalog[SupplyOption]
    files: tuple[str, ...] = ()

    def kind(self, name: str) -> Catalog[Any]:
        """The catalog of kind ``name`` (plural or singular, e.g. ``"accelerators"``, ``"model"``)."""
        catalog: Catalog[Any] = getattr(self, resolve_kind(name).replace("-", "_"))
        return catalog

    def __iter__(self) -> Iterator[tuple[str, Catalog[Any]]]:
        for name in KINDS:
            yield name, self.kind(name)

    def with_file(self, path: str | Path) -> CatalogSet:
        """A new set with the records of a user's YAML file added (same id replaces a shipped record)."""
        try:
            located = load_yaml(path)
        except FivelayerError as exc:
            raise CatalogError(str(exc)) from None
        data = located.data
        if not isinstance(data, dict) or not data:
            raise CatalogError(f"{located.origin}: a catalog file maps kinds ({', '.join(KINDS)}) to lists of records")
        updates: dict[str, Catalog[Any]] = {}
        for key in data:
            try:
                name = resolve_kind(str(key))
            except CatalogError as exc:
                raise CatalogError(f"{located.where((key,))}: {exc}") from None
            if name != key:
                raise CatalogError(f"{located.where((key,))}: write the kind as '{name}:'")
            records = parse_records(KINDS[name].model, located, (key,))
            updates[name.replace("-", "_")] = self.kind(name).with_records(records, origin=located.origin)
        return replace(self, **updates, files=(*self.files, located.origin))

    def language_model(self, name: str) -> LanguageModel:
        """A language model by id or alias; a clear error if ``name`` is a model of another field."""
        record = self.models.get(name)
        if not isinstance(record, LanguageModel):
            raise CatalogError(f"model {record.id!r} is a {record.domain} model, not a language model")
        return record


@functools.cache
def default_catalog() -> CatalogSet:
    """The shipped catalog. Cached; records are read from disk on first use of each kind."""
    catalogs = {name: Catalog(kind.singular, kind.model, _packaged_loader(kind)) for name, kind in KINDS.items()}
    return CatalogSet(
        accelerators=catalogs["accelerators"],
        systems=catalogs["systems"],
        facilities=catalogs["facilities"],
        models=catalogs["models"],
        grid_regions=catalogs["grid-regions"],
        applications=catalogs["applications"],
        components=catalogs["components"],
        supply_options=catalogs["supply-options"],
    )


def record_to_dict(record: Any) -> dict[str, Any]:
    """JSON-ready dict of a record: its fields in SI units, plus derived figures (a model's parameters)."""
    data: dict[str, Any] = record.to_dict()
    if isinstance(record, LanguageModel):
        data["params_total"] = record.params_total()
        data["params_active"] = record.params_active()
    return data


def record_summary(record: Any) -> dict[str, str]:
    """A short row of a record's headline numbers, for tables."""
    row = {"id": record.id, "name": record.name}
    if isinstance(record, Accelerator):
        row |= {
            "bf16 TFLOP/s": f"{record.peak_flops.get('bf16', 0) / 1e12:,.0f}",
            "fp8 TFLOP/s": f"{record.peak_flops['fp8'] / 1e12:,.0f}" if "fp8" in record.peak_flops else "-",
            "memory GB": f"{record.memory_bytes / 1e9:,.0f}",
            "TB/s": f"{record.memory_bandwidth_bytes_per_s / 1e12:.2f}",
            "TDP W": f"{record.tdp_w:,.0f}",
        }
    elif isinstance(record, System):
        row |= {
            "accelerators": f"{record.accelerator_count} x {record.accelerator}",
            "max kW": f"{record.max_power_w / 1e3:,.1f}",
            "price USD": f"{record.price_usd:,.0f}",
        }
    elif isinstance(record, LanguageModel):
        active = record.params_active()
        row |= {
            "params B": f"{record.params_total() / 1e9:,.1f}",
            "active B": f"{active / 1e9:,.1f}",
            "attention": record.attention.kind,
            "context": f"{record.max_context_tokens:,}",
        }
    elif isinstance(record, GridRegion):
        row |= {
            "gCO2/kWh": f"{record.carbon_intensity_g_per_kwh:,.0f}",
            "USD/kWh": f"{record.electricity_price_usd_per_kwh:.3f}",
            "year": str(record.year),
        }
    elif isinstance(record, FacilityDesign):
        row |= {
            "cooling": record.cooling,
            "PUE": f"{record.pue:.2f}",
            "WUE L/kWh": f"{record.wue_l_per_kwh:.2f}",
            "rack kW": f"{record.max_rack_power_w / 1e3:,.0f}",
        }
    elif isinstance(record, Application):
        row |= {
            "sector": record.sector,
            "model": record.default_model,
            "requests/user/day": f"{record.requests_per_user_per_day:g}",
        }
    else:
        row |= {"domain": getattr(record, "domain", ""), "params M": f"{getattr(record, 'params', 0) / 1e6:,.1f}"}
    return row
