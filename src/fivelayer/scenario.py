"""One typed scenario composing the five layers and the economics: what a user describes in a YAML file.

A scenario names a site (grid region, power cap, on-site supply), a facility design, deployments of
accelerators running models, the applications they serve, and the economics. Numbers not given in the
file come from the catalog or from named defaults; :meth:`Scenario.explain` says which, for every one.

Errors name the file, line, field and value, with a did-you-mean hint for unknown catalog ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PrivateAttr, ValidationError, model_validator

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.core.errors import CatalogError, FivelayerError, ScenarioError
from fivelayer.core.provenance import Record, Strict
from fivelayer.core.quantities import JoulesWithUnit as Joules
from fivelayer.core.quantities import SecondsWithUnit as Seconds
from fivelayer.core.quantities import UsdPerJouleWithUnit as UsdPerJoule
from fivelayer.core.quantities import WattsWithUnit as Watts
from fivelayer.core.units import parse_count
from fivelayer.core.validation import describe_validation_error, field_path
from fivelayer.core.yamlio import LocatedYaml, load_yaml, load_yaml_text

__all__ = [
    "Application",
    "Deployment",
    "Economics",
    "ExplainRow",
    "Facility",
    "OnSiteSupply",
    "Scenario",
    "Site",
    "Training",
    "default_scenario",
    "load_scenario",
]

PRECISION_CHOICES = ("fp32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4")
SIZE_TO_DEMAND = "size-to-demand"


class OnSiteSupply(Strict):
    """Generation and storage behind the meter."""

    solar: Watts = Field(default=0.0, description="default: no on-site solar")
    battery_energy: Joules = Field(default=0.0, description="default: no battery")
    battery_power: Watts = Field(default=0.0, description="default: no battery")
    gas: Watts = Field(default=0.0, description="default: no on-site gas generation")
    solar_model: Literal["geometric", "pvlib"] = Field(
        default="geometric",
        description="default: geometric clear-sky sun-elevation shape; 'pvlib' (optional extra 'solar') uses "
        "pvlib's clear-sky irradiance on a fixed, latitude-tilted array; both are scaled to the catalog's "
        "solar capacity factor",
    )


class Site(Strict):
    """Where the factory stands and how much power it may draw."""

    region: str = Field(description="catalog grid region")
    power_cap: Watts | None = Field(default=None, description="default: no cap on grid power")
    onsite: OnSiteSupply = Field(default_factory=OnSiteSupply, description="default: none")
    ppa_share: float = Field(
        default=0.0, ge=0, le=1, description="default: no power purchase agreement (share of grid energy matched)"
    )


class Facility(Strict):
    """The building: a catalog facility design, with optional overrides of its headline numbers."""

    design: str = Field(default="direct-to-chip", description="default: liquid cooling, as current AI racks need")
    pue: float | None = Field(default=None, ge=1.0, le=3.0, description="default: the design's catalog PUE")
    max_rack_power: Watts | None = Field(default=None, description="default: the design's catalog limit")
    redundancy: Literal["N", "N+1", "2N"] = Field(
        default="N+1", description="default: N+1 UPS and generators (Tier III), as the catalog costs assume"
    )


def _accelerator_or_system(model: Any) -> Any:
    """A deployment or training names exactly one of ``accelerator`` and ``system``."""
    if (model.accelerator is None) == (model.system is None):
        raise ValueError("give exactly one of 'accelerator' or 'system'")
    return model


class Deployment(Strict):
    """Accelerators (or whole systems) running one model for some applications."""

    name: str
    accelerator: str | None = Field(default=None, description="catalog accelerator (or give system)")
    system: str | None = Field(default=None, description="catalog system (or give accelerator)")
    count: Annotated[int, Field(ge=1)] | Literal["size-to-demand"] = Field(
        default="size-to-demand", description="default: as many accelerators as the demand needs"
    )
    model: str = Field(description="catalog model")
    precision: Literal["fp32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4"] = Field(
        default="fp8", description="default: fp8 weights and KV cache, as current serving stacks run"
    )
    serves: tuple[str, ...] = Field(default=(), description="application ids this deployment serves")
    headroom: float = Field(
        default=0.3, ge=0, le=5, description="default: 30 % capacity above the peak hour for bursts and failures"
    )

    _one_of = model_validator(mode="after")(_accelerator_or_system)


def _count(value: Any) -> Any:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return parse_count(value, "tokens")
    return value


TokenCount = Annotated[float, BeforeValidator(_count)]


class Training(Strict):
    """A training run the factory carries out, ``runs_per_year`` times a year, on its own cluster."""

    name: str
    model: str = Field(description="catalog language model")
    tokens: TokenCount = Field(description="training tokens, e.g. 15T")
    accelerator: str | None = Field(default=None, description="catalog accelerator (or give system)")
    system: str | None = Field(default=None, description="catalog system (or give accelerator)")
    count: int = Field(ge=1, description="accelerators in the training cluster")
    precision: Literal["bf16", "fp16", "fp8"] = Field(default="bf16", description="default: bf16 mixed precision")
    runs_per_year: float = Field(default=1.0, gt=0, le=365, description="default: one run a year")

    _one_of = model_validator(mode="after")(_accelerator_or_system)


class Application(Strict):
    """An application from the catalog, with its users and optional overrides of the catalog's demand."""

    id: str = Field(description="catalog application")
    users: float = Field(gt=0, description="daily active users (or agent seats, vehicles, robots)")
    growth_per_year: float = Field(default=0.0, ge=-0.99, le=100, description="default: no growth")
    requests_per_user_per_day: float | None = Field(default=None, gt=0, description="default: catalog value")
    input_tokens: float | None = Field(default=None, ge=0, description="default: catalog mean")
    output_tokens: float | None = Field(default=None, ge=0, description="default: catalog mean")
    ttft_p99: Seconds | None = Field(default=None, description="default: catalog latency target")
    tpot_p99: Seconds | None = Field(default=None, description="default: catalog latency target")
    value_usd_per_request: float | None = Field(default=None, ge=0, description="default: catalog value")


class Economics(Strict):
    """Finance. Every default is a named assumption that the file may override."""

    discount_rate: float = Field(
        default=0.08,
        ge=0,
        le=0.5,
        description="assumption: 8 % weighted average cost of capital, typical for data-centre project finance",
    )
    accelerator_life_years: float = Field(
        default=5.0,
        gt=0,
        le=20,
        description="assumption: 5-year depreciation of servers and accelerators (hyperscalers use 5-6 years)",
    )
    network_life_years: float = Field(default=5.0, gt=0, le=20, description="assumption: 5 years, as servers")
    building_life_years: float | None = Field(
        default=None, gt=0, le=60, description="default: the facility design's catalog lifetime"
    )
    electricity_price: UsdPerJoule | None = Field(
        default=None, description="default: the grid region's catalog industrial price"
    )
    ppa_price: UsdPerJoule | None = Field(
        default=None, description="default: the catalog's solar PPA price (supply option ppa-solar-us)"
    )
    demand_charge_usd_per_kw_month: float = Field(
        default=0.0,
        ge=0,
        description="default: none; catalog industrial prices are all-in averages that already include demand charges",
    )
    maintenance_fraction_per_year: float = Field(
        default=0.03,
        ge=0,
        le=0.5,
        description="assumption: 3 % of hardware capex per year for support contracts and spares",
    )
    staff_usd_per_mw_year: float = Field(
        default=150_000.0,
        ge=0,
        description="assumption: operations staff cost per MW of IT per year (a 100 MW site with ~100 staff)",
    )


class Scenario(Strict):
    """A whole scenario. Build it with :func:`load_scenario`, :meth:`from_yaml_text` or directly."""

    name: str
    description: str | None = None
    catalog: tuple[str, ...] = Field(default=(), description="user catalog files, relative to the scenario")
    site: Site
    facility: Facility = Field(default_factory=Facility, description="default: direct-to-chip liquid cooling")
    deployments: tuple[Deployment, ...] = Field(min_length=1)
    applications: tuple[Application, ...] = Field(min_length=1)
    trainings: tuple[Training, ...] = Field(default=(), description="default: no training runs")
    economics: Economics = Field(default_factory=Economics, description="default assumptions")
    seed: int = Field(default=0, ge=0, description="default: seed 0 for every random stream")

    _located: LocatedYaml | None = PrivateAttr(default=None)
    _catalog: CatalogSet | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _names_unique(self) -> Scenario:
        for what, names in (
            ("deployment or training name", [d.name for d in self.deployments] + [t.name for t in self.trainings]),
            ("application id", [a.id for a in self.applications]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"{what} {name!r} appears twice")
                seen.add(name)
        return self

    # --- construction -------------------------------------------------------------------------------

    @classmethod
    def from_located(cls, located: LocatedYaml, catalog: CatalogSet | None = None) -> Scenario:
        """Validate parsed YAML into a scenario, then check every catalog reference."""
        if not isinstance(located.data, dict):
            raise ScenarioError(f"{located.origin}: a scenario is a YAML mapping with site, deployments, applications")
        try:
            scenario = cls.model_validate(located.data)
        except ValidationError as exc:
            raise ScenarioError("Invalid scenario:\n" + describe_validation_error(exc, located, model=cls)) from None
        scenario._located = located
        base = catalog or default_catalog()
        for i, extra in enumerate(scenario.catalog):
            path = Path(extra)
            if not path.is_absolute() and Path(located.origin).parent.exists():
                path = Path(located.origin).parent / path
            try:
                base = base.with_file(path)
            except FivelayerError as exc:
                raise ScenarioError(f"{located.where(('catalog', i))} (catalog[{i}]): {exc}") from None
        scenario._catalog = base
        scenario._check_references()
        return scenario

    @classmethod
    def from_yaml_text(cls, text: str, origin: str = "<scenario>", catalog: CatalogSet | None = None) -> Scenario:
        try:
            located = load_yaml_text(text, origin)
        except FivelayerError as exc:
            raise ScenarioError(str(exc)) from None
        return cls.from_located(located, catalog)

    @property
    def origin(self) -> str:
        return self._located.origin if self._located is not None else "<python>"

    @property
    def resolved_catalog(self) -> CatalogSet:
        """The catalog this scenario's ids are looked up in (the shipped one plus its own files)."""
        if self._catalog is None:
            self._catalog = default_catalog()
        return self._catalog

    def where(self, loc: tuple[Any, ...]) -> str:
        return self._located.where(loc) if self._located is not None else self.origin

    # --- references ---------------------------------------------------------------------------------

    def _lookup(self, kind: str, name: str, loc: tuple[Any, ...]) -> Any:
        try:
            return self.resolved_catalog.kind(kind).get(name)
        except CatalogError as exc:
            raise ScenarioError(f"{self.where(loc)} ({field_path(loc)}): {exc}") from None

    def _check_references(self) -> None:
        self._lookup("grid-regions", self.site.region, ("site", "region"))
        design = self._lookup("facilities", self.facility.design, ("facility", "design"))
        app_ids = {a.id for a in self.applications}
        served: set[str] = set()
        for i, dep in enumerate(self.deployments):
            if dep.system is not None:
                self._lookup("systems", dep.system, ("deployments", i, "system"))
            else:
                assert dep.accelerator is not None
                self._lookup("accelerators", dep.accelerator, ("deployments", i, "accelerator"))
            self._lookup("models", dep.model, ("deployments", i, "model"))
            for j, served_id in enumerate(dep.serves):
                if served_id not in app_ids:
                    raise ScenarioError(
                        f"{self.where(('deployments', i, 'serves', j))} (deployments[{i}].serves[{j}]): "
                        f"application {served_id!r} is not in this scenario's applications "
                        f"({', '.join(sorted(app_ids))})"
                    )
                served.add(served_id)
        for t, run in enumerate(self.trainings):
            if run.system is not None:
                self._lookup("systems", run.system, ("trainings", t, "system"))
            else:
                assert run.accelerator is not None
                self._lookup("accelerators", run.accelerator, ("trainings", t, "accelerator"))
            model = self._lookup("models", run.model, ("trainings", t, "model"))
            if getattr(model, "kind", "llm") != "llm":
                raise ScenarioError(
                    f"{self.where(('trainings', t, 'model'))} (trainings[{t}].model): {model.id!r} is not a "
                    "language model; training runs are planned for language models"
                )
        for k, app in enumerate(self.applications):
            record = self._lookup("applications", app.id, ("applications", k, "id"))
            if record.id != app.id:
                raise ScenarioError(
                    f"{self.where(('applications', k, 'id'))} (applications[{k}].id): write the catalog id "
                    f"{record.id!r} rather than {app.id!r}"
                )
            if app.id not in served:
                raise ScenarioError(
                    f"{self.where(('applications', k, 'id'))} (applications[{k}].id): application {app.id!r} "
                    f"is served by no deployment; add it to a deployment's 'serves' list"
                )
        power_cap = self.site.power_cap
        max_rack = self.facility.max_rack_power or design.max_rack_power_w
        if power_cap is not None and power_cap < max_rack:
            raise ScenarioError(
                f"{self.where(('site', 'power_cap'))} (site.power_cap): {power_cap / 1e3:g} kW is below the "
                f"power of one {design.id} rack ({max_rack / 1e3:g} kW); did you mean MW?"
            )

    # --- explanation --------------------------------------------------------------------------------

    def explain(self) -> list[ExplainRow]:
        """Where every number of this scenario comes from: the file (with its line), a default, or the catalog."""
        rows: list[ExplainRow] = []
        self._explain_model(self, (), rows)
        cat = self.resolved_catalog
        refs: list[tuple[str, str, tuple[Any, ...]]] = [
            ("grid-regions", self.site.region, ("site", "region")),
            ("facilities", self.facility.design, ("facility", "design")),
        ]
        for i, dep in enumerate(self.deployments):
            if dep.system is not None:
                refs.append(("systems", dep.system, ("deployments", i, "system")))
                system = cat.systems.get(dep.system)
                refs.append(("accelerators", system.accelerator, ("deployments", i, "system")))
            elif dep.accelerator is not None:
                refs.append(("accelerators", dep.accelerator, ("deployments", i, "accelerator")))
            refs.append(("models", dep.model, ("deployments", i, "model")))
        for k, app in enumerate(self.applications):
            refs.append(("applications", app.id, ("applications", k, "id")))
        for kind, name, loc in refs:
            record = cat.kind(kind).get(name)
            rows.extend(_record_rows(record, kind, field_path(loc), cat.kind(kind).origin(name)))
        return rows

    def _explain_model(self, model: Strict, loc: tuple[Any, ...], rows: list[ExplainRow]) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            here = (*loc, name)
            if isinstance(value, Strict):
                if name not in model.model_fields_set:
                    rows.append(ExplainRow(field_path(here), "(defaults)", "default", info.description or ""))
                self._explain_model(value, here, rows)
                continue
            if isinstance(value, tuple) and value and all(isinstance(v, Strict) for v in value):
                for i, item in enumerate(value):
                    self._explain_model(item, (*here, i), rows)
                continue
            if name in model.model_fields_set:
                rows.append(ExplainRow(field_path(here), _show(value), "scenario", self.where(here)))
            else:
                rows.append(ExplainRow(field_path(here), _show(value), "default", info.description or ""))

    def to_yaml_dict(self) -> dict[str, Any]:
        """The scenario as plain data (SI numbers), for saving or sending."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class ExplainRow:
    """One number of a scenario and where it came from."""

    field: str
    value: str
    origin: str  # "scenario", "default" or "catalog"
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "value": self.value, "origin": self.origin, "source": self.source}


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _record_rows(record: Record, kind: str, used_by: str, origin: str) -> list[ExplainRow]:
    """A row per number of a catalog record, with the source that supports it."""
    rows = []
    skip = {"id", "name", "aliases", "sources", "as_of", "estimates", "notes", "calibration"}
    for name in type(record).model_fields:
        if name in skip:
            continue
        value = getattr(record, name)
        if value is None:
            continue
        bases = [b for key, b in record.estimates.items() if key == name or key.startswith(f"{name}.")]
        if bases:
            text = "; ".join(bases)
            source = text if text.lower().startswith("estimate") else f"estimate: {text}"
        else:
            supporting = [
                s
                for s in record.sources
                if not s.fields or any(f == name or f.startswith(f"{name}.") for f in s.fields)
            ] or list(record.sources)
            source = "; ".join(s.label() for s in supporting)
        if origin != "catalog":
            source = f"{origin}: {source}"
        shown = _show(value) if not isinstance(value, Strict | dict) else _compact(value)
        rows.append(ExplainRow(f"{used_by} -> {kind}/{record.id}.{name}", shown, "catalog", source))
    return rows


def _compact(value: Any) -> str:
    data = value.model_dump(mode="json", exclude_none=True) if isinstance(value, Strict) else value
    return ", ".join(f"{k}={_show(v)}" for k, v in data.items())


def load_scenario(path: str | Path, catalog: CatalogSet | None = None) -> Scenario:
    """Read, validate and check a scenario file. Raises :class:`ScenarioError` with file and line."""
    try:
        located = load_yaml(path)
    except FivelayerError as exc:
        raise ScenarioError(str(exc)) from None
    return Scenario.from_located(located, catalog)


def default_scenario() -> Scenario:
    """The embedded default: a 100 MW-class AI factory serving a customer-service and a coding assistant."""
    text = resources.files("fivelayer").joinpath("data").joinpath("scenarios").joinpath("default.yaml")
    return Scenario.from_yaml_text(text.read_text(encoding="utf-8"), origin="<default scenario>")
