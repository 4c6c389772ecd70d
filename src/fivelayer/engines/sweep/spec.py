"""Study files: which scenario, which fields vary and how, and what to compute.

A study is YAML::

    name: demand and price uncertainty
    scenario: ../../../src/fivelayer/data/scenarios/default.yaml   # or a mapping, or omitted (the default)
    method: montecarlo          # grid | random | lhs | montecarlo | optimise | simulate
    samples: 2000
    seed: 7
    parameters:
      - path: applications[customer-service-assistant].users
        distribution: {kind: lognormal, median: 50e6, sigma: 0.3}
      - path: economics.discount_rate
        range: [0.06, 0.10]
      - path: deployments[support].precision
        values: [fp8, fp4]
      - path: catalog.accelerators.h200-sxm.price_usd
        distribution: {kind: triangular, low: 25000, mode: 31000, high: 40000}

Everything is checked before any work starts: each path against the scenario schema (or the catalog), every
value through the same validation as a scenario file (units, limits, catalog ids), and every distribution's
parameters (a normal with a negative spread, an empty range...). Errors name the study file, line and field.

``method: simulate`` varies the inputs of the serving simulator instead of a scenario's fields (a
``simulation:`` block holds the base inputs); see :mod:`fivelayer.engines.sweep.simulate`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path as FilePath
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, model_validator
from scipy import stats

from fivelayer.catalog import resolve_kind
from fivelayer.core.errors import FivelayerError, did_you_mean
from fivelayer.core.provenance import Strict
from fivelayer.core.validation import describe_validation_error, field_path
from fivelayer.core.yamlio import LocatedYaml, load_yaml, load_yaml_text
from fivelayer.engines.sweep.paths import Path, format_path, get_value, is_catalog_path, parse_path, set_raw
from fivelayer.scenario import Scenario

__all__ = [
    "OUTPUTS",
    "SIMULATE_OUTPUTS",
    "Parameter",
    "Study",
    "StudyError",
    "StudySpec",
    "load_study",
    "study_from_text",
]

#: Headline outputs a study can report: the totals of ``plan`` plus the worst latency and feasibility.
OUTPUTS: tuple[str, ...] = (
    "accelerators",
    "systems",
    "racks",
    "it_power_mw",
    "facility_power_mw",
    "average_facility_power_mw",
    "energy_mwh_per_year",
    "it_energy_mwh_per_year",
    "capex_usd",
    "annual_cost_usd",
    "usd_per_million_tokens",
    "joules_per_token",
    "tokens_per_s",
    "tokens_per_s_per_mw",
    "co2_t_per_year",
    "water_m3_per_year",
    "revenue_usd_per_year",
    "unserved_demand_fraction",
    "usd_per_gpu_hour",
    "ttft_s_max",
    "tpot_s_max",
)
#: Headline results of one serving simulation (``method: simulate``), one row per variant. Latencies are
#: percentiles over the variant's requests, in seconds; ``sustainable`` is the simulator's verdict that the
#: queues do not grow; energy is the accelerators' (busy and idle) over the simulated time.
SIMULATE_OUTPUTS: tuple[str, ...] = (
    "throughput_tokens_per_s",
    "throughput_requests_per_s",
    "offered_requests_per_s",
    "goodput_requests_per_s",
    "slo_attainment",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p90_s",
    "tpot_p99_s",
    "e2e_p50_s",
    "e2e_p90_s",
    "e2e_p99_s",
    "sustainable",
    "energy_j",
    "energy_per_output_token_j",
    "mean_power_w",
    "utilisation",
    "mean_batch",
    "preemptions",
    "finished",
    "dropped",
    "devices",
    "replicas",
    "simulated_s",
)
#: Variants per chunk of a simulate study that does not say ``chunk_size`` (each variant is a whole simulation).
SIMULATE_CHUNK_SIZE = 4
#: Objectives the optimiser minimises by name; any output may be used.
OBJECTIVES = {"cost": "annual_cost_usd", "energy": "energy_mwh_per_year", "carbon": "co2_t_per_year"}
#: Unbounded distributions are sampled between these quantiles, so every value stays within the limits the
#: scenario schema puts on its field (checked when the study is read). Assumption: 0.1 % tails cut.
TAIL = 1e-3

Method = Literal["grid", "random", "lhs", "montecarlo", "optimise", "simulate"]


class StudyError(FivelayerError):
    """A study file that is invalid; the message names file, line and field."""


class DistributionSpec(Strict):
    """An uncertain input. Parameters in the field's units (numbers in SI, or strings with a unit)."""

    kind: Literal["uniform", "loguniform", "normal", "lognormal", "triangular"]
    low: Any = None
    high: Any = None
    mode: Any = None
    mean: Any = None
    sd: Any = Field(default=None, description="a number in the field's SI unit, or a percentage of the mean: '10%'")
    median: Any = None
    sigma: float | None = Field(default=None, description="lognormal: standard deviation of the log")

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        # `distribution: uniform 1 10` reads naturally but is not the form; say which form is.
        if isinstance(data, str):
            raise ValueError(
                f"write a distribution as a mapping of its kind and parameters, such as {{kind: uniform, low: 1, "
                f"high: 10}}, {{kind: normal, mean: 0.08, sd: 10%}} or {{kind: lognormal, median: 50e6, sigma: 0.3}} "
                f"(got {data!r})"
            )
        return data


class ParameterSpec(Strict):
    """One varied field: ``values`` (a list), ``range`` ([low, high]) or a ``distribution``."""

    path: str = Field(description="a scenario field, e.g. applications[0].users, or catalog.KIND.ID.FIELD")
    values: list[Any] | None = None
    range: list[Any] | None = None
    steps: int | None = Field(default=None, ge=2, le=10_000, description="grid points across a range; default 5")
    distribution: DistributionSpec | None = None


class StudySpec(Strict):
    """The study file as written."""

    name: str
    description: str | None = None
    scenario: str | dict[str, Any] | None = Field(
        default=None, description="a scenario file (relative to the study), an inline scenario, or the default"
    )
    method: Method = "grid"
    sampling: Literal["grid", "random", "lhs"] = Field(
        default="grid", description="simulate: every combination (grid), independent draws (random) or an LHS"
    )
    simulation: dict[str, Any] | None = Field(
        default=None, description="simulate: the base inputs of every simulation, named as fivelayer simulate's options"
    )
    samples: int | None = Field(default=None, ge=1, le=100_000_000, description="random/lhs/montecarlo: default 1000")
    seed: int = Field(default=0, ge=0)
    chunk_size: int = Field(
        default=10_000, ge=1, le=10_000_000, description=f"variants per chunk of work (simulate: {SIMULATE_CHUNK_SIZE})"
    )
    engine: Literal["auto", "fast", "exact"] = Field(
        default="auto", description="fast: vectorised roll-up; exact: plan() per variant; auto: fast where it applies"
    )
    outputs: list[str] | None = Field(default=None, description="default: every headline output")
    objective: str | None = Field(default=None, description="optimise: cost, energy, carbon or an output name")
    max_unserved: float = Field(default=0.0, ge=0, le=1, description="optimise: largest unserved demand share")
    parameters: list[ParameterSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Parameter:
    """A validated varied field. Categorical values are stored as codes 0..len(values)-1 in the design."""

    name: str  # the path as written back: deployments[0].precision
    path: Path
    kind: Literal["categorical", "numeric"]
    values: tuple[Any, ...] = ()  # categorical values or grid points (SI)
    low: float = math.nan
    high: float = math.nan
    distribution: str = "uniform"
    args: tuple[float, ...] = ()
    integer: bool = False

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Values for uniform draws ``u`` in [0, 1): the inverse CDF of the parameter's distribution."""
        if self.kind == "categorical" or self.distribution == "choice":
            n = len(self.values)
            codes: np.ndarray = np.minimum(np.floor(u * n), n - 1).astype(np.int64)
            if self.kind == "categorical":
                as_float: np.ndarray = codes.astype(np.float64)
                return as_float
            chosen: np.ndarray = np.asarray(self.values, dtype=np.float64)[codes]
            return chosen
        d, a = self.distribution, self.args
        if d == "uniform":
            x = self.low + u * (self.high - self.low)
        elif d == "loguniform":
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        elif d == "normal":
            x = stats.norm.ppf(np.clip(u, TAIL, 1 - TAIL), loc=a[0], scale=a[1])
        elif d == "lognormal":
            x = stats.lognorm.ppf(np.clip(u, TAIL, 1 - TAIL), s=a[1], scale=a[0])
        else:  # triangular
            c = (a[0] - self.low) / (self.high - self.low)
            x = stats.triang.ppf(u, c, loc=self.low, scale=self.high - self.low)
        x = np.asarray(x, dtype=np.float64)
        return np.round(x) if self.integer else x

    def value(self, code_or_value: float) -> Any:
        """The scenario value of one design entry."""
        if self.kind == "categorical":
            return self.values[int(code_or_value)]
        return round(code_or_value) if self.integer else float(code_or_value)

    @property
    def grid(self) -> np.ndarray:
        if self.kind == "categorical":
            return np.arange(len(self.values), dtype=np.float64)
        return np.asarray(self.values, dtype=np.float64)


@dataclass(frozen=True)
class Study:
    """A validated study: its spec, the base scenario and the varied parameters."""

    spec: StudySpec
    origin: str
    base: Scenario
    base_raw: LocatedYaml
    parameters: tuple[Parameter, ...]
    text: str  # the study file's text (with the base scenario's text), for the fingerprint
    simulation: Any = None  # method simulate: the validated base inputs (simulate.SimulationInputs)

    @property
    def simulate(self) -> bool:
        """Whether the variants are serving simulations (``method: simulate``)."""
        return self.spec.method == "simulate"

    @property
    def outputs(self) -> tuple[str, ...]:
        if self.spec.outputs:
            return tuple(self.spec.outputs)
        return SIMULATE_OUTPUTS if self.simulate else OUTPUTS

    @property
    def chunk_size(self) -> int:
        """Variants per chunk: as written, else the method's default."""
        if self.simulate and "chunk_size" not in self.spec.model_fields_set:
            return SIMULATE_CHUNK_SIZE
        return self.spec.chunk_size

    @property
    def objective(self) -> str:
        name = self.spec.objective or "cost"
        return OBJECTIVES.get(name, name)

    @property
    def fingerprint(self) -> str:
        """A hash of everything that decides the results: a store made by another study is never resumed."""
        payload = json.dumps({"text": self.text, "version": 1}, sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# --- loading ---------------------------------------------------------------------------------------------


def load_study(path: str | FilePath) -> Study:
    """Read and check a study file. Raises :class:`StudyError` naming file, line and field."""
    try:
        located = load_yaml(path)
    except FivelayerError as exc:
        raise StudyError(str(exc)) from None
    return _from_located(located, FilePath(path).read_text(encoding="utf-8"))


def study_from_text(text: str, origin: str = "<study>") -> Study:
    """A study from YAML text (relative scenario paths are taken from the working directory)."""
    try:
        located = load_yaml_text(text, origin)
    except FivelayerError as exc:
        raise StudyError(str(exc)) from None
    return _from_located(located, text)


def _from_located(located: LocatedYaml, text: str) -> Study:
    if not isinstance(located.data, dict):
        raise StudyError(f"{located.origin}: a study is a YAML mapping with name, method and parameters")
    try:
        spec = StudySpec.model_validate(located.data)
    except ValidationError as exc:
        raise StudyError("Invalid study:\n" + describe_validation_error(exc, located, model=StudySpec)) from None
    base_raw, scenario_text = _base_raw(spec, located)
    try:
        base = Scenario.from_located(base_raw)
    except FivelayerError as exc:
        raise StudyError(f"{located.where(('scenario',))} (scenario): {exc}") from None
    simulation: Any = None
    if spec.method == "simulate":
        from fivelayer.engines.sweep.simulate import check_simulation

        simulation, parameters, extra = check_simulation(spec, located, base, base_raw)
        scenario_text += extra
    else:
        for key in ("simulation", "sampling"):
            if key in spec.model_fields_set:
                raise StudyError(f"{located.where((key,))} ({key}): {key} is for method: simulate studies")
        checker = _Checker(located, base, base_raw)
        parameters = tuple(checker.parameter(i, p) for i, p in enumerate(spec.parameters))
    names = [p.name for p in parameters]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise StudyError(
                f"{located.where(('parameters', i, 'path'))} (parameters[{i}].path): {name} is varied twice"
            )
    _check_method(spec, located, parameters)
    return Study(spec, located.origin, base, base_raw, parameters, text + "\n---\n" + scenario_text, simulation)


def _base_raw(spec: StudySpec, located: LocatedYaml) -> tuple[LocatedYaml, str]:
    if spec.scenario is None:
        ref = resources.files("fivelayer").joinpath("data").joinpath("scenarios").joinpath("default.yaml")
        text = ref.read_text(encoding="utf-8")
        return load_yaml_text(text, "<default scenario>"), text
    if isinstance(spec.scenario, dict):
        sub = {k[1:]: v for k, v in located.lines.items() if k[:1] == ("scenario",)}
        return LocatedYaml(spec.scenario, located.origin, sub), json.dumps(spec.scenario, sort_keys=True)
    path = FilePath(spec.scenario)
    if not path.is_absolute() and FilePath(located.origin).parent.exists():
        path = FilePath(located.origin).parent / path
    try:
        return load_yaml(path), path.read_text(encoding="utf-8")
    except (FivelayerError, OSError) as exc:
        raise StudyError(f"{located.where(('scenario',))} (scenario): {exc}") from None


def _check_method(spec: StudySpec, located: LocatedYaml, parameters: tuple[Parameter, ...]) -> None:
    grid = spec.method in ("grid", "optimise") or (spec.method == "simulate" and spec.sampling == "grid")
    if grid:
        for i, (_p, raw) in enumerate(zip(parameters, spec.parameters, strict=True)):
            if raw.distribution is not None:
                raise StudyError(
                    f"{located.where(('parameters', i, 'distribution'))} (parameters[{i}].distribution): "
                    f"a {'simulate grid' if spec.method == 'simulate' else spec.method} needs values or a range "
                    "with steps; distributions are for random, lhs and montecarlo studies (simulate: sampling: "
                    "random or lhs)"
                )
        size = math.prod(len(p.values) for p in parameters)
        if size > 100_000_000:
            how = "sampling" if spec.method == "simulate" else "method"
            raise StudyError(f"{located.where(('parameters',))} (parameters): the grid has {size:,} points; "
                             f"use fewer values or {how}: lhs")  # fmt: skip
    if spec.method == "optimise" and spec.objective is not None:
        objective = OBJECTIVES.get(spec.objective, spec.objective)
        if objective not in OUTPUTS:
            hint = did_you_mean(spec.objective, [*OBJECTIVES, *OUTPUTS])
            raise StudyError(
                f"{located.where(('objective',))} (objective): unknown objective {spec.objective!r}"
                + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
            )
    known = SIMULATE_OUTPUTS if spec.method == "simulate" else OUTPUTS
    for i, name in enumerate(spec.outputs or []):
        if name not in known:
            hint = did_you_mean(name, known)
            raise StudyError(
                f"{located.where(('outputs', i))} (outputs[{i}]): unknown output {name!r}"
                + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
            )


class _Checker:
    """Checks each parameter against the scenario schema and the catalog, with study file locations."""

    def __init__(self, located: LocatedYaml, base: Scenario, base_raw: LocatedYaml) -> None:
        self.located = located
        self.base = base
        self.base_raw = base_raw

    def fail(self, loc: tuple[Any, ...], message: str) -> StudyError:
        return StudyError(f"{self.located.where(loc)} ({field_path(loc)}): {message}")

    # paths

    def resolve_path(self, i: int, text: str) -> Path:
        loc = ("parameters", i, "path")
        try:
            raw = parse_path(text)
        except ValueError as exc:
            raise self.fail(loc, str(exc)) from None
        if raw[0] == "catalog" and len(raw) > 1 and not raw[1].startswith("["):
            return self._catalog_path(loc, raw)
        path: list[str | int] = []
        node: Any = self.base
        for part in raw:
            if part.startswith("["):
                if not isinstance(node, tuple):
                    raise self.fail(loc, f"{format_path(tuple(path))} is not a list; {part} cannot index it")
                index = self._index(loc, tuple(path), node, part[1:-1])
                path.append(index)
                node = node[index]
                continue
            if not isinstance(node, BaseModel):
                where = format_path(tuple(path)) or "the scenario"
                raise self.fail(loc, f"unknown field path {text!r}: {where} has no field {part!r}")
            fields = type(node).model_fields
            if part not in fields:
                hint = did_you_mean(part, list(fields))
                where = format_path(tuple(path)) or "the scenario"
                raise self.fail(
                    loc,
                    f"unknown field path {text!r}: {where} has no field {part!r}"
                    + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
                    + f" (fields: {', '.join(fields)})",
                )
            path.append(part)
            node = getattr(node, part)
        if isinstance(node, BaseModel) or (isinstance(node, tuple) and node and isinstance(node[0], BaseModel)):
            raise self.fail(loc, f"{text!r} is a section, not a value; name one of its fields")
        if path[0] in ("name", "description", "catalog", "seed"):
            raise self.fail(loc, f"{path[0]!r} cannot be varied by a study")
        return tuple(path)

    def _index(self, loc: tuple[Any, ...], where: Path, items: tuple[Any, ...], key: str) -> int:
        if key.lstrip("-").isdigit():
            index = int(key)
            if not 0 <= index < len(items):
                raise self.fail(loc, f"{format_path(where)} has {len(items)} entries; index {index} is out of range")
            return index
        names = [getattr(item, "name", None) or getattr(item, "id", None) for item in items]
        if key in names:
            return names.index(key)
        hint = did_you_mean(key, [n for n in names if n])
        raise self.fail(
            loc,
            f"{format_path(where)} has no entry named {key!r}"
            + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
            + f" (entries: {', '.join(str(n) for n in names)})",
        )

    def _catalog_path(self, loc: tuple[Any, ...], raw: tuple[str, ...]) -> Path:
        if len(raw) != 4:
            raise self.fail(
                loc, "a catalog path is catalog.KIND.ID.FIELD, e.g. catalog.accelerators.h200-sxm.price_usd"
            )
        _, kind_text, record_id, name = raw
        cat = self.base.resolved_catalog
        try:
            kind = resolve_kind(kind_text)
            record = cat.kind(kind).get(record_id)
        except FivelayerError as exc:
            raise self.fail(loc, str(exc)) from None
        fields = type(record).model_fields
        if name not in fields:
            hint = did_you_mean(name, list(fields))
            raise self.fail(
                loc,
                f"{kind}/{record.id} has no field {name!r}"
                + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""),
            )
        value = getattr(record, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(loc, f"{kind}/{record.id}.{name} is not a number; a study varies numeric catalog fields")
        return ("catalog", kind, record.id, name)

    # values

    def value(self, loc: tuple[Any, ...], path: Path, raw: Any) -> Any:
        """``raw`` validated as the field at ``path``, in SI (or the catalog id as written)."""
        if is_catalog_path(path):
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) or raw < 0:
                raise self.fail(loc, f"{format_path(path)} needs a non-negative number in its SI unit (got {raw!r})")
            return float(raw)
        patched = set_raw(self.base_raw.data, path, raw)
        try:
            scenario = Scenario.from_located(LocatedYaml(patched, self.base_raw.origin, self.base_raw.lines))
        except FivelayerError as exc:
            message = str(exc).replace("Invalid scenario:\n", "")
            raise self.fail(loc, f"value {raw!r} for {format_path(path)} is not valid: {message}") from None
        return get_value(scenario, path)

    def parameter(self, i: int, p: ParameterSpec) -> Parameter:
        path = self.resolve_path(i, p.path)
        name = format_path(path)
        given = [k for k in ("values", "range", "distribution") if getattr(p, k) is not None]
        if len(given) != 1:
            raise self.fail(("parameters", i), f"give exactly one of values, range or distribution for {name}")
        if p.values is not None:
            if not p.values:
                raise self.fail(("parameters", i, "values"), f"empty list of values for {name}")
            values = tuple(self.value(("parameters", i, "values", j), path, v) for j, v in enumerate(p.values))
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if len(set(map(repr, values))) != len(values):
                raise self.fail(("parameters", i, "values"), f"{name} lists a value twice")
            if numeric:
                return Parameter(name, path, "numeric", values, float(min(values)), float(max(values)),
                                 "choice", (), all(isinstance(v, int) for v in values))  # fmt: skip
            return Parameter(name, path, "categorical", values)
        if p.range is not None:
            loc = ("parameters", i, "range")
            if len(p.range) != 2:
                raise self.fail(loc, f"a range is [low, high]; got {len(p.range)} item(s) for {name}")
            low, high = (self.value((*loc, j), path, v) for j, v in enumerate(p.range))
            self._numeric(loc, name, low, high)
            if not low < high:
                raise self.fail(loc, f"empty range for {name}: low {low!r} is not below high {high!r}")
            integer = isinstance(low, int) and isinstance(high, int)
            grid = np.linspace(low, high, p.steps or 5)
            points = tuple(round(x) for x in grid) if integer else tuple(float(x) for x in grid)
            return Parameter(name, path, "numeric", tuple(dict.fromkeys(points)), float(low), float(high),
                             "uniform", (), integer)  # fmt: skip
        assert p.distribution is not None
        return self._distribution(i, path, name, p.distribution)

    def _integer(self, path: Path) -> bool:
        """Whether the field holds whole numbers (its draws are rounded)."""
        return isinstance(get_value(self.base, path), int) if not is_catalog_path(path) else False

    def _bound_raw(self, path: Path, value: float) -> Any:
        """A distribution's bound as the field would be written (checked against the field's limits)."""
        return value if is_catalog_path(path) else _raw_si(self.base_raw, path, value)

    def _numeric(self, loc: tuple[Any, ...], name: str, *values: Any) -> None:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise self.fail(loc, f"{name} is not a number ({v!r}); list its choices under values")

    def _distribution(self, i: int, path: Path, name: str, d: DistributionSpec) -> Parameter:
        loc = ("parameters", i, "distribution")
        needs = {
            "uniform": ("low", "high"),
            "loguniform": ("low", "high"),
            "normal": ("mean", "sd"),
            "lognormal": ("median", "sigma"),
            "triangular": ("low", "mode", "high"),
        }[d.kind]
        given = {k for k in ("low", "high", "mode", "mean", "sd", "median", "sigma") if getattr(d, k) is not None}
        missing = [k for k in needs if k not in given]
        extra = sorted(given - set(needs))
        if missing or extra:
            raise self.fail(loc, f"a {d.kind} distribution takes {', '.join(needs)}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; {', '.join(extra)} not used" if extra else ""))  # fmt: skip

        def val(key: str) -> float:
            v = self.value((*loc, key), path, getattr(d, key))
            self._numeric((*loc, key), name, v)
            return float(v)

        integer = self._integer(path)
        if d.kind in ("uniform", "loguniform", "triangular"):
            low, high = val("low"), val("high")
            if not low < high:
                raise self.fail(loc, f"impossible {d.kind} distribution for {name}: low {low:g} is not below high "
                                     f"{high:g}")  # fmt: skip
            if d.kind == "loguniform" and low <= 0:
                raise self.fail(loc, f"impossible loguniform distribution for {name}: low must be positive")
            args: tuple[float, ...] = ()
            if d.kind == "triangular":
                mode = val("mode")
                if not low <= mode <= high:
                    raise self.fail(loc, f"impossible triangular distribution for {name}: mode {mode:g} is not "
                                         f"between low {low:g} and high {high:g}")  # fmt: skip
                args = (mode,)
            param = Parameter(name, path, "numeric", (), low, high, d.kind, args, integer)
        elif d.kind == "normal":
            mean = val("mean")
            sd = _spread(d.sd, mean)
            if sd is None or not (math.isfinite(sd) and sd > 0):
                raise self.fail((*loc, "sd"), f"impossible normal distribution for {name}: sd must be a positive "
                                              f"number or percentage (got {d.sd!r})")  # fmt: skip
            lo, hi = (float(stats.norm.ppf(q, mean, sd)) for q in (TAIL, 1 - TAIL))
            param = Parameter(name, path, "numeric", (), lo, hi, "normal", (mean, sd), integer)
        else:
            median = val("median")
            sigma = d.sigma
            if median <= 0 or sigma is None or not (math.isfinite(sigma) and sigma > 0):
                raise self.fail(loc, f"impossible lognormal distribution for {name}: median and sigma must be "
                                     f"positive (got median {median:g}, sigma {sigma!r})")  # fmt: skip
            lo, hi = (float(stats.lognorm.ppf(q, sigma, scale=median)) for q in (TAIL, 1 - TAIL))
            param = Parameter(name, path, "numeric", (), lo, hi, "lognormal", (median, sigma), integer)
        # The sampled range must be valid for the field: a normal number of users must not reach below zero.
        for bound in (param.low, param.high):
            sample = round(bound) if integer else bound
            try:
                self.value(loc, path, self._bound_raw(path, sample))
            except StudyError as exc:
                raise self.fail(loc, f"impossible {d.kind} distribution for {name}: its range "
                                     f"{param.low:.6g} to {param.high:.6g} leaves the field's limits "
                                     f"({str(exc).split(': ', 1)[-1]})") from None  # fmt: skip
        return param


def _spread(value: Any, mean: float) -> float | None:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return abs(mean) * float(value.strip()[:-1]) / 100.0
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _raw_si(base_raw: LocatedYaml, path: Path, value: float) -> Any:
    """An SI number as the scenario file must write it: with the unit where the field carries one."""
    unit = _si_unit_of(path)
    return f"{value!r} {unit}" if unit else value


def _si_unit_of(path: Path) -> str | None:
    """The SI unit string of a unit-bearing scenario field (``None`` for plain numbers)."""
    import typing

    from fivelayer.core import quantities as q

    validators = {
        typing.get_args(annotation)[1].func: unit
        for annotation, unit in (
            (q.WattsWithUnit, "W"),
            (q.JoulesWithUnit, "J"),
            (q.SecondsWithUnit, "s"),
            (q.UsdPerJouleWithUnit, "USD/J"),
        )
    }
    model: Any = Scenario
    for part in path:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = _model_in(annotation)
        if inner is not None:
            model = inner
            continue
        for candidate in [annotation, *typing.get_args(annotation)]:
            for meta in getattr(candidate, "__metadata__", ()):
                unit = validators.get(getattr(meta, "func", None))
                if unit is not None:
                    return unit
        return None
    return None


def _model_in(annotation: Any) -> Any:
    import typing

    candidates = [annotation, *typing.get_args(annotation)]
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
        for inner in typing.get_args(c):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None
