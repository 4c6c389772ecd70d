"""The inputs of the industry projection: a strict, unit-checked YAML schema, and scenarios as overrides.

A projection file either stands alone or names a scenario it ``extends`` (a packaged one such as ``base``,
or a path relative to the file) and overrides some of its values. Mappings merge key by key; lists of
records with an ``id`` (sectors, regions, generations) merge record by record; anything else is replaced.

Every published number in the packaged files carries its source; every other number is a named
assumption whose basis is written next to it (``basis``), so ``fivelayer project`` can say where each
input came from.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.core.errors import CatalogError, FivelayerError, ScenarioError
from fivelayer.core.provenance import Source, Strict
from fivelayer.core.quantities import JoulesWithUnit, WattsWithUnit
from fivelayer.core.units import to_si
from fivelayer.core.validation import describe_validation_error, field_path
from fivelayer.core.yamlio import LocatedYaml, load_yaml, load_yaml_text

__all__ = [
    "SOURCE_KINDS",
    "ProjectionSpec",
    "Trend",
    "load_projection",
    "packaged_projection",
    "packaged_projection_names",
    "projection_from_text",
]

#: Electricity sources of a supply mix.
SOURCE_KINDS = ("coal", "gas", "nuclear", "renewables", "other")
_SHARE_TOLERANCE = 1e-6


def _with_unit(dimension: str, example: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected a quantity with a unit, such as {example}")
        if isinstance(value, int | float):
            if value == 0:
                return 0.0
            raise ValueError(f"{value!r} has no unit; write it with one, such as {example}")
        return to_si(value, dimension)

    return convert


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError(f"must not be negative (got {value:g})")
    return value


UsdPerWattWithUnit = Annotated[float, BeforeValidator(_with_unit("USD/W", "'12 USD/W'")), AfterValidator(_non_negative)]
UsdPerJouleWithUnit = Annotated[
    float, BeforeValidator(_with_unit("USD/J", "'0.08 USD/kWh'")), AfterValidator(_non_negative)
]
FlopWithUnit = Annotated[float, BeforeValidator(_with_unit("FLOP", "'5e25 FLOP'")), AfterValidator(_non_negative)]
#: A count that cannot be negative (wafers, accelerators).
NonNegative = Annotated[float, AfterValidator(_non_negative)]


class Trend(Strict):
    """A value over the years: one number (constant), ``{start: 0.3, end: 0.2}`` (linear from the first
    projected year to the last), or ``{points: {2024: 1.0, 2030: 0.2}}`` (linear between the years named,
    constant beyond them).
    """

    start: float
    end: float
    points: dict[int, float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"start": float(value), "end": float(value)}
        if isinstance(value, dict) and "points" in value and isinstance(value["points"], dict) and value["points"]:
            if "start" in value or "end" in value:
                raise ValueError("give either start and end, or points")
            pts = {int(k): float(v) for k, v in value["points"].items()}
            ordered = sorted(pts)
            return {"start": pts[ordered[0]], "end": pts[ordered[-1]], "points": pts}
        return value

    def values(self) -> list[float]:
        return list(self.points.values()) if self.points else [self.start, self.end]

    def over(self, years: np.ndarray) -> np.ndarray:
        """The value in each of ``years``."""
        result: np.ndarray
        if self.points:
            xs = sorted(self.points)
            result = np.interp(years, xs, [self.points[x] for x in xs])
        else:
            span = max(float(years[-1] - years[0]), 1.0)
            result = self.start + (self.end - self.start) * (np.asarray(years) - years[0]) / span
        return result


def _trend_at_least(low: float) -> Callable[[Trend], Trend]:
    def check(trend: Trend) -> Trend:
        for value in trend.values():
            if value < low:
                raise ValueError(f"must be at least {low:g} in every year (got {value:g})")
        return trend

    return check


#: A growth rate per year that cannot meaningfully be negative (a gain, a growth of compute).
Growth = Annotated[Trend, AfterValidator(_trend_at_least(0.0))]
#: A growth rate per year that may be negative, but not below -100 %.
SignedGrowth = Annotated[Trend, AfterValidator(_trend_at_least(-0.99))]
#: A share between 0 and 1 in every year.
ShareTrend = Annotated[Trend, AfterValidator(_trend_at_least(0.0))]


class Basis(Strict):
    """Where an input section's numbers come from: published sources, and the basis of each assumption."""

    sources: tuple[Source, ...] = ()
    assumptions: dict[str, str] = Field(default_factory=dict)


class Years(Strict):
    start: int = Field(ge=1990, le=2200)
    end: int = Field(ge=1990, le=2200)

    @model_validator(mode="after")
    def _ordered(self) -> Years:
        if self.end < self.start:
            raise ValueError(f"the year range runs backwards: end {self.end} is before start {self.start}")
        return self


class Feedback(Strict):
    """The feedback loops, each switchable."""

    price_elasticity: bool = Field(default=True, description="cheaper tokens raise demand (lagged one year)")
    power_constraint: bool = Field(default=True, description="buildout limits cap the fleet; the rest is unserved")
    scarcity_pricing: bool = Field(default=True, description="unserved demand raises the price of tokens")
    chip_supply_constraint: bool = Field(
        default=True, description="shipments never exceed the manufacturing cap; the rest is unserved"
    )
    chip_scarcity_pricing: bool = Field(
        default=True, description="when the manufacturing cap binds, buyers bid up the price of accelerators"
    )


class Sector(Strict):
    """Demand of one application sector: users on a logistic adoption curve, tokens per user, elasticity."""

    id: str
    name: str = ""
    year: int = Field(description="the year the users and tokens per user are given for")
    users: float = Field(gt=0, description="active users (or seats, devices) in `year`")
    users_saturation: float = Field(gt=0, description="the ceiling of the logistic adoption curve")
    adoption_rate_per_year: float = Field(ge=0, le=5, description="logistic growth rate of users")
    tokens_per_user_per_day: float = Field(gt=0, description="tokens processed (input + output) per user per day")
    tokens_per_user_growth_per_year: Growth = Field(description="growth of usage intensity (reasoning, agents)")
    flop_per_token: float = Field(gt=0, description="inference FLOP per token in `year` (about 2 x active params)")
    price_elasticity: float = Field(ge=0, le=5, description="demand ~ (price / first-year price) ** -elasticity")

    @model_validator(mode="after")
    def _saturation(self) -> Sector:
        if self.users_saturation < self.users:
            raise ValueError(f"users_saturation ({self.users_saturation:g}) is below users ({self.users:g})")
        return self


class Inference(Strict):
    algorithmic_efficiency_gain_per_year: Growth = Field(
        description="yearly fall of FLOP per token at fixed quality: flop_per_token / (1 + gain) ** years"
    )
    peak_to_average: float = Field(ge=1, le=10, description="fleet capacity over average load")
    achieved_fraction_of_peak: float = Field(gt=0, le=1, description="delivered FLOP/s over peak when serving")


class Training(Strict):
    year: int
    frontier_run: FlopWithUnit = Field(description="training compute of one frontier run in `year`")
    frontier_compute_growth_per_year: Growth
    frontier_runs_per_year: float = Field(ge=0)
    open_model_releases_per_year: Trend = Field(description="open-weight releases of note per year")
    open_model_compute_fraction: float = Field(ge=0, le=1, description="an open release's compute / a frontier run")
    research_multiplier: float = Field(ge=1, le=100, description="all training compute / final runs")
    achieved_fraction_of_peak: float = Field(gt=0, le=1, description="model FLOP utilisation of training")

    @model_validator(mode="after")
    def _releases(self) -> Training:
        if min(self.open_model_releases_per_year.values()) < 0:
            raise ValueError("open_model_releases_per_year must not be negative")
        return self


class Generation(Strict):
    """The accelerator that dominates shipments from ``from_year`` (a catalog id)."""

    id: str = Field(description="catalog accelerator id")
    from_year: int


class Accelerators(Strict):
    generations: tuple[Generation, ...] = Field(min_length=1)
    precision: str = Field(default="bf16", description="the peak FLOP/s figure used as performance")
    performance_growth_per_year: Growth = Field(description="after the last generation: FLOP/s per accelerator")
    performance_per_watt_growth_per_year: Growth
    performance_per_dollar_growth_per_year: Growth
    host_power_fraction: float = Field(ge=0, le=3, description="server, network, storage W per accelerator W")
    server_cost_fraction: float = Field(ge=0, le=5, description="server and network cost per accelerator cost")
    idle_power_fraction: float = Field(ge=0, le=1)
    life_years: int = Field(ge=1, le=15, description="retired after this many years")
    shipments: dict[int, float] = Field(description="historical shipments per year (global, units)")

    @model_validator(mode="after")
    def _shipments(self) -> Accelerators:
        for year, count in self.shipments.items():
            if count < 0:
                raise ValueError(f"shipments in {year} must not be negative (got {count:g})")
        return self


class Manufacturing(Strict):
    """How many accelerators can be made in a year (world): advanced-packaging wafers x accelerators per wafer.

    Leading accelerators need 2.5D packaging (TSMC CoWoS and similar), the narrowest step of their supply
    chain; the cap in year t is ``packaging_wafers(t) * accelerators_per_wafer(t)``. It applies to the
    projected years without historical shipments.
    """

    packaging_wafers: dict[int, NonNegative] = Field(
        min_length=1, description="12-inch 2.5D packaging wafers per year (global capacity), by year"
    )
    packaging_wafers_growth_per_year: Growth = Field(description="growth of wafers after the last year given")
    accelerators_per_wafer: Annotated[Trend, AfterValidator(_trend_at_least(0.0))] = Field(
        description="accelerators (as counted in `shipments`) made per packaging wafer of capacity"
    )


class Facility(Strict):
    design: str = Field(description="catalog facility design of AI halls (PUE, WUE, build cost)")
    conventional_design: str = Field(description="catalog facility design for conventional water use")
    pue: Trend | None = Field(default=None, description="default: the design's catalog PUE")
    build_cost: UsdPerWattWithUnit | None = Field(default=None, description="default: the design's catalog cost")
    life_years: float = Field(default=20, gt=0, le=60)


class Economics(Strict):
    discount_rate: float = Field(ge=0, le=0.5)
    energy_capex: UsdPerWattWithUnit = Field(description="new supply capex per W of added facility load")
    max_price_multiplier: float = Field(ge=1, le=100, description="cap on scarcity pricing")
    max_accelerator_price_multiplier: float = Field(
        default=2.0, ge=1, le=100, description="cap on how far chip scarcity can raise accelerator prices"
    )


class SupplyMix(Strict):
    coal: float = Field(ge=0, le=1)
    gas: float = Field(ge=0, le=1)
    nuclear: float = Field(ge=0, le=1)
    renewables: float = Field(ge=0, le=1)
    other: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SupplyMix:
        total = sum(getattr(self, k) for k in SOURCE_KINDS)
        if abs(total - 1.0) > 1e-3:
            raise ValueError(f"shares must sum to 1 (they sum to {total:.4g})")
        return self

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in SOURCE_KINDS])


class Supply(Strict):
    start: SupplyMix
    end: SupplyMix


class Conventional(Strict):
    """Non-AI data-centre load, at the facility meter."""

    year: int
    electricity: JoulesWithUnit = Field(description="facility electricity in `year`, e.g. '300 TWh'")
    growth_per_year: SignedGrowth
    capacity_utilisation: float = Field(
        default=0.5, gt=0, le=1, description="average draw over the facility capacity it occupies"
    )


class Buildout(Strict):
    """How fast data-centre capacity (facility W, AI and conventional together) can be connected and built."""

    max_additions: WattsWithUnit = Field(description="facility power that can be energised per year, first year")
    max_additions_growth_per_year: Growth
    lead_time_years: int = Field(ge=0, le=10)
    under_construction: WattsWithUnit = Field(description="capacity in the pipeline at the start, online within lead")
    sharing: Literal["conventional-first", "pro-rata"] = Field(
        default="conventional-first",
        description="who gets the limited additions: conventional growth first, or both in proportion to need",
    )


class Region(Strict):
    id: str
    name: str = ""
    grid_region: str = Field(description="catalog grid region: electricity price")
    ai_share: ShareTrend = Field(description="share of the world's AI demand and shipments served here")
    conventional: Conventional
    buildout: Buildout
    supply: Supply


class Reference(Strict):
    """A published figure the projection is checked against."""

    id: str
    region: str = Field(default="world")
    year: int
    quantity: str = Field(default="datacenter_electricity_twh")
    value: float | None = None
    low: float | None = None
    high: float | None = None
    tolerance: float = Field(default=0.15, ge=0, le=1)
    role: Literal["calibration", "check"] = Field(
        default="check",
        description="calibration: an input was set from this figure, so agreement holds by construction; "
        "check: no input was set from it",
    )
    sources: tuple[Source, ...] = Field(min_length=1)


class ProjectionSpec(Strict):
    """A whole projection scenario."""

    name: str
    description: str = ""
    extends: str | None = None
    years: Years = Field(default_factory=lambda: Years(start=2024, end=2035))
    feedback: Feedback = Field(default_factory=Feedback)
    sectors: tuple[Sector, ...] = Field(min_length=1)
    inference: Inference
    training: Training
    accelerators: Accelerators
    facility: Facility
    economics: Economics
    manufacturing: Manufacturing | None = Field(default=None, description="no cap on shipments when absent")
    carbon_g_per_kwh: dict[str, float] = Field(description="lifecycle gCO2e/kWh of each supply source")
    regions: tuple[Region, ...] = Field(min_length=1)
    references: tuple[Reference, ...] = ()
    basis: dict[str, Basis] = Field(default_factory=dict, description="sources and assumptions per section")

    @model_validator(mode="after")
    def _consistent(self) -> ProjectionSpec:
        for what, ids in (("sector", [s.id for s in self.sectors]), ("region", [r.id for r in self.regions])):
            if len(set(ids)) != len(ids):
                raise ValueError(f"a {what} id appears twice")
        missing = [k for k in SOURCE_KINDS if k not in self.carbon_g_per_kwh]
        if missing:
            raise ValueError(f"carbon_g_per_kwh lacks {', '.join(missing)}")
        for key, value in self.carbon_g_per_kwh.items():
            if value < 0:
                raise ValueError(f"carbon_g_per_kwh.{key} must not be negative")
        return self

    @property
    def year_array(self) -> np.ndarray:
        return np.arange(self.years.start, self.years.end + 1)

    @property
    def regional(self) -> bool:
        return len(self.regions) > 1 or self.regions[0].id != "world"


# --- loading -----------------------------------------------------------------------------------------


def _merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings key by key, lists of records with ``id`` record by record, else replace."""
    if isinstance(base, dict) and isinstance(override, dict):
        if "points" in override or {"start", "end"} <= override.keys():
            return override  # a whole trend replaces the trend it overrides
        out = dict(base)
        for key, value in override.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    if (
        isinstance(base, list)
        and isinstance(override, list)
        and all(isinstance(x, dict) and "id" in x for x in (*base, *override))
    ):
        merged = [dict(x) for x in base]
        index = {x["id"]: i for i, x in enumerate(merged)}
        for item in override:
            if item["id"] in index:
                merged[index[item["id"]]] = _merge(merged[index[item["id"]]], item)
            else:
                merged.append(item)
        return merged
    return override


def _remap_lines(base: Any, override: LocatedYaml) -> dict[tuple[Any, ...], int]:
    """Lines of the override file, with list indices moved to where merged records landed."""
    lines: dict[tuple[Any, ...], int] = {}
    data = override.data

    def walk(node: Any, base_node: Any, src: tuple[Any, ...], dst: tuple[Any, ...]) -> None:
        if src in override.lines:
            lines[dst] = override.lines[src]
        if isinstance(node, dict):
            for key, value in node.items():
                child = base_node.get(key) if isinstance(base_node, dict) else None
                walk(value, child, (*src, key), (*dst, key))
        elif isinstance(node, list):
            ids = [x.get("id") for x in base_node] if isinstance(base_node, list) else []
            ids = [i for i in ids if i is not None] if all(isinstance(x, dict) for x in base_node or []) else []
            extra = 0
            for i, item in enumerate(node):
                target = i
                child = None
                if ids and isinstance(item, dict) and "id" in item:
                    if item["id"] in ids:
                        target = ids.index(item["id"])
                        child = base_node[target]
                    else:
                        target = len(ids) + extra
                        extra += 1
                walk(item, child, (*src, i), (*dst, target))

    walk(data, base, (), ())
    return lines


@functools.cache
def packaged_projection_names() -> tuple[str, ...]:
    """The projection scenarios shipped with fivelayer (``base`` first)."""
    folder = resources.files("fivelayer").joinpath("data").joinpath("projection")
    names = sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names, key=lambda n: (n != "base", n)))


def _packaged_located(name: str) -> LocatedYaml:
    ref = resources.files("fivelayer").joinpath("data").joinpath("projection").joinpath(f"{name}.yaml")
    return load_yaml_text(ref.read_text(encoding="utf-8"), origin=f"fivelayer/data/projection/{name}.yaml")


def _resolve(located: LocatedYaml, depth: int = 0) -> LocatedYaml:
    """Follow ``extends`` and return one located document with the overrides applied."""
    data = located.data
    if not isinstance(data, dict):
        raise ScenarioError(f"{located.origin}: a projection scenario is a YAML mapping (name, years, sectors...)")
    parent = data.get("extends")
    if parent is None:
        return located
    if depth > 8:
        raise ScenarioError(f"{located.where(('extends',))} (extends): scenarios extend each other in a loop")
    if not isinstance(parent, str):
        raise ScenarioError(f"{located.where(('extends',))} (extends): give a scenario name or a file path")
    try:
        path = Path(parent)
        if not path.is_absolute() and Path(located.origin).parent.exists():
            path = Path(located.origin).parent / path
        if parent in packaged_projection_names():
            base = _packaged_located(parent)
        elif path.suffix in (".yaml", ".yml") and path.exists():
            base = load_yaml(path)
        else:
            names = ", ".join(packaged_projection_names())
            raise ScenarioError(
                f"{located.where(('extends',))} (extends): {parent!r} is neither a packaged scenario ({names}) "
                "nor a YAML file"
            )
    except FivelayerError as exc:
        raise ScenarioError(str(exc)) from None
    base = _resolve(base, depth + 1)
    override = {k: v for k, v in data.items() if k != "extends"}
    merged = _merge(base.data, override)
    merged["extends"] = parent
    lines = _remap_lines(base.data, located)
    return LocatedYaml(data=merged, origin=located.origin, lines=lines)


def _validate(located: LocatedYaml, catalog: CatalogSet) -> ProjectionSpec:
    located = _resolve(located)
    try:
        spec = ProjectionSpec.model_validate(located.data)
    except ValidationError as exc:
        message = describe_validation_error(exc, located, model=ProjectionSpec)
        raise ScenarioError("Invalid projection scenario:\n" + message) from None
    _check(spec, located, catalog)
    return spec


def _fail(located: LocatedYaml, loc: tuple[Any, ...], message: str) -> ScenarioError:
    return ScenarioError(f"{located.where(loc)} ({field_path(loc)}): {message}")


def _check(spec: ProjectionSpec, located: LocatedYaml, catalog: CatalogSet) -> None:
    """Checks across records: shares summing to 1 every year, catalog ids, generations in order."""
    years = spec.year_array
    shares = np.array([r.ai_share.over(years) for r in spec.regions])
    totals = shares.sum(axis=0)
    bad = np.flatnonzero(np.abs(totals - 1.0) > 1e-3)
    if bad.size:
        year = int(years[bad[0]])
        raise _fail(
            located,
            ("regions", 0, "ai_share"),
            f"the regions' ai_share must sum to 1 in every year; in {year} they sum to {totals[bad[0]]:.4g} "
            f"({', '.join(f'{r.id} {s:.3g}' for r, s in zip(spec.regions, shares[:, bad[0]], strict=True))})",
        )
    if np.any(shares > 1.0 + _SHARE_TOLERANCE):
        raise _fail(located, ("regions", 0, "ai_share"), "an ai_share is above 1")
    for i, region in enumerate(spec.regions):
        try:
            catalog.grid_regions.get(region.grid_region)
        except CatalogError as exc:
            raise _fail(located, ("regions", i, "grid_region"), str(exc)) from None
    previous = None
    for i, gen in enumerate(spec.accelerators.generations):
        try:
            chip = catalog.accelerators.get(gen.id)
        except CatalogError as exc:
            raise _fail(located, ("accelerators", "generations", i, "id"), str(exc)) from None
        if spec.accelerators.precision not in chip.peak_flops:
            raise _fail(
                located,
                ("accelerators", "generations", i, "id"),
                f"{chip.id} has no {spec.accelerators.precision} peak FLOP/s in the catalog",
            )
        if previous is not None and gen.from_year <= previous:
            raise _fail(located, ("accelerators", "generations", i, "from_year"), "generations must be in year order")
        previous = gen.from_year
    for key in ("design", "conventional_design"):
        try:
            catalog.facilities.get(getattr(spec.facility, key))
        except CatalogError as exc:
            raise _fail(located, ("facility", key), str(exc)) from None
    region_ids = {"world", *(r.id for r in spec.regions)}
    for i, ref in enumerate(spec.references):
        if ref.region not in region_ids:
            raise _fail(located, ("references", i, "region"), f"unknown region {ref.region!r}")


def load_projection(path: str | Path, catalog: CatalogSet | None = None) -> ProjectionSpec:
    """Read and validate a projection scenario file (following ``extends``). Raises :class:`ScenarioError`."""
    try:
        located = load_yaml(path)
    except FivelayerError as exc:
        raise ScenarioError(str(exc)) from None
    return _validate(located, catalog or default_catalog())


def packaged_projection(name: str = "base", catalog: CatalogSet | None = None) -> ProjectionSpec:
    """A packaged scenario by name: ``base``, ``efficiency-breakthrough``, ``open-model-boom``..."""
    if name not in packaged_projection_names():
        from fivelayer.core.errors import UnknownIdError, did_you_mean

        raise UnknownIdError("projection scenario", name, did_you_mean(name, packaged_projection_names()))
    return _validate(_packaged_located(name), catalog or default_catalog())


def projection_from_text(text: str, origin: str = "<projection>", catalog: CatalogSet | None = None) -> ProjectionSpec:
    """Validate a projection scenario given as YAML text (``extends`` resolves packaged names)."""
    try:
        located = load_yaml_text(text, origin)
    except FivelayerError as exc:
        raise ScenarioError(str(exc)) from None
    return _validate(located, catalog or default_catalog())


def retrieved_dates(spec: ProjectionSpec) -> set[dt.date]:
    """Every retrieval date named by the spec's sources (a test checks they are set)."""
    dates = {s.retrieved for b in spec.basis.values() for s in b.sources}
    dates |= {s.retrieved for r in spec.references for s in r.sources}
    return dates
