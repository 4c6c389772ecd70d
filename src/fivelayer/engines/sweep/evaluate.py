"""Evaluate many variants of a scenario: the vectorised fast path, and ``plan()`` itself where it must.

The expensive part of ``plan`` is each deployment's unit capacity at the latency targets (the inference
engine's layout search). It depends only on the deployment's hardware, model, precision, request lengths and
latency targets, so the fast path computes it once per distinct combination (:class:`UnitCache`) with
``stack.unit_for`` itself, and evaluates the cheap roll-up (demand -> units -> power -> energy -> cost ->
carbon) with NumPy over arrays of variants.

Exactness. With no on-site solar the year is 365 copies of one day (every application's demand is its daily
profile repeated), so the roll-up works on 24 hours and multiplies by 365: the same numbers as ``plan``
up to floating-point summation order (tests hold it to 1e-9 relative). Variants the fast path does not cover
go through ``plan()`` (the *exact* path): on-site solar (the battery's hour-by-hour state), training runs,
and parameters that change catalog records other than prices, intensities and facility figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fivelayer.core.errors import FivelayerError
from fivelayer.energy.carbon import relative_profile_hourly
from fivelayer.engines.analytic import plan
from fivelayer.engines.analytic.plan import STORAGE_TB_PER_ACCELERATOR, _components
from fivelayer.engines.analytic.stack import DeploymentUnit, demands_of, unit_for
from fivelayer.engines.sweep.paths import Path, apply, format_path, is_catalog_path
from fivelayer.engines.sweep.spec import OUTPUTS, Parameter, Study, StudyError
from fivelayer.infrastructure.sizing import (
    FIXED_OVERHEAD_FRACTION,
    MAX_SYSTEMS_PER_RACK,
    facility_capex_factor,
    hourly_temperature_c,
    redundancy_overhead_w,
)
from fivelayer.scenario import Scenario

__all__ = ["Evaluator", "UnitCache", "fast_path_problem"]

HOURS = 24
DAYS = 365
SECONDS_PER_YEAR = 8760 * 3600.0

#: Scenario fields the roll-up reads directly (the ``*`` stands for any index).
_ROLLUP = {
    ("site", "region"),
    ("site", "power_cap"),
    ("site", "ppa_share"),
    ("site", "onsite", "gas"),
    ("site", "onsite", "battery_energy"),
    ("site", "onsite", "battery_power"),
    ("facility", "design"),
    ("facility", "pue"),
    ("facility", "max_rack_power"),
    ("deployments", "*", "headroom"),
    ("deployments", "*", "count"),
    ("applications", "*", "users"),
    ("applications", "*", "requests_per_user_per_day"),
    ("applications", "*", "value_usd_per_request"),
    ("applications", "*", "growth_per_year"),
}
#: Scenario fields that change a deployment's unit (computed once per distinct value).
_UNIT = {
    ("deployments", "*", "accelerator"),
    ("deployments", "*", "system"),
    ("deployments", "*", "model"),
    ("deployments", "*", "precision"),
    ("applications", "*", "input_tokens"),
    ("applications", "*", "output_tokens"),
    ("applications", "*", "ttft_p99"),
    ("applications", "*", "tpot_p99"),
}
_CATALOG_ROLLUP = {
    "grid-regions": {"carbon_intensity_g_per_kwh", "electricity_price_usd_per_kwh", "latitude_deg"},
    "facilities": {"pue", "wue_l_per_kwh", "build_cost_usd_per_w", "lifetime_years", "max_rack_power_w",
                   "power_chain_efficiency", "pue_min", "pue_max"},
}  # fmt: skip
_CATALOG_UNIT = {"accelerators", "systems", "models"}


def _pattern(path: Path) -> tuple[str | int, ...]:
    return tuple("*" if isinstance(p, int) else p for p in path)


def fast_path_problem(study: Study) -> str | None:
    """Why the fast path cannot evaluate this study (``None`` when it can)."""
    base = study.base
    if base.trainings:
        return "the scenario has training runs"
    if base.site.onsite.solar > 0:
        return "the scenario has on-site solar (the battery is dispatched hour by hour)"
    for p in study.parameters:
        if is_catalog_path(p.path):
            kind, name = str(p.path[1]), str(p.path[3])
            if kind in _CATALOG_UNIT or name in _CATALOG_ROLLUP.get(kind, set()):
                continue
            return f"{p.name} changes a catalog record the fast path reads once per study"
        if p.path == ("economics", "building_life_years") or p.path[0] == "economics":
            continue
        pattern = _pattern(p.path)
        if pattern not in _ROLLUP and pattern not in _UNIT:
            return f"{p.name} is evaluated by plan() itself"
    return None


_UNIT_FIELDS = ("accelerators", "systems", "capacity_per_s", "busy_power_w", "idle_power_w", "max_power_w",
                "price_usd", "accelerator_price_usd", "racks_per_unit", "ttft_s", "tpot_s")  # fmt: skip


class UnitCache:
    """Deployment units by (deployment, the values of the parameters that shape it): ``unit_for`` once each."""

    def __init__(self) -> None:
        self._units: dict[tuple[Any, ...], DeploymentUnit | FivelayerError] = {}

    def __len__(self) -> int:
        return len(self._units)

    def get(self, scenario: Scenario, index: int, key: tuple[Any, ...]) -> DeploymentUnit | FivelayerError:
        full = (index, *key)
        if full not in self._units:
            try:
                self._units[full] = unit_for(scenario, index)
            except FivelayerError as exc:
                self._units[full] = exc
        return self._units[full]


@dataclass
class _Units:
    """One deployment's unit figures per variant (NaN where the unit is infeasible)."""

    fields: dict[str, np.ndarray]
    ok: np.ndarray


class Evaluator:
    """Evaluates chunks of a study's design: vectorised where possible, else ``plan()`` per variant."""

    #: Columns a row has besides the parameters, outputs and ``feasible`` (none; see SimulationEvaluator).
    extra_columns: tuple[str, ...] = ()

    def __init__(self, study: Study, engine: str | None = None) -> None:
        self.study = study
        self.base = study.base
        self.params = {p.name: p for p in study.parameters}
        self.units = UnitCache()
        problem = fast_path_problem(study)
        engine = engine or study.spec.engine
        if engine == "fast" and problem is not None:
            raise StudyError(f"{study.origin}: engine: fast cannot evaluate this study: {problem}")
        self.engine = "exact" if engine == "exact" or problem is not None else "fast"
        self.reason = problem

    # --- public ---------------------------------------------------------------------------------------

    def evaluate(self, design: dict[str, np.ndarray], first_variant: int = 0) -> dict[str, np.ndarray]:
        """Outputs (every name of :data:`OUTPUTS`, plus ``feasible``) for each row of ``design``.

        ``first_variant`` (the variant number of the first row) does not change a plan's results."""
        n = len(next(iter(design.values()))) if design else 1
        if self.engine == "fast":
            return self._fast(design, n)
        return self._exact(design, n)

    def scenario(self, design: dict[str, np.ndarray], row: int) -> Scenario:
        """The scenario of one variant."""
        return apply(self.base, {p.path: p.value(design[p.name][row]) for p in self.params.values()})

    # --- exact ----------------------------------------------------------------------------------------

    def _exact(self, design: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        out = {k: np.full(n, np.nan) for k in OUTPUTS}
        feasible = np.zeros(n, dtype=bool)
        for row in range(n):
            try:
                result = plan(self.scenario(design, row))
            except FivelayerError:
                continue
            for k in OUTPUTS:
                if k in result.totals:
                    out[k][row] = float(result.totals[k])
            ttfts = [d["ttft_s"] for d in result.deployments if d["ttft_s"] is not None]
            tpots = [d["tpot_s"] for d in result.deployments if d["tpot_s"] is not None]
            out["ttft_s_max"][row] = max(ttfts) if ttfts else np.nan
            out["tpot_s_max"][row] = max(tpots) if tpots else np.nan
            feasible[row] = True
        return {**out, "feasible": feasible}

    # --- fast -----------------------------------------------------------------------------------------

    def _col(self, design: dict[str, np.ndarray], path: Path, default: Any, n: int) -> np.ndarray:
        """The per-variant value of a numeric scenario field (the base value where it is not varied)."""
        name = format_path(path)
        if name in self.params:
            return np.asarray(design[name], dtype=np.float64)
        return np.full(n, np.nan if default is None else float(default))

    def _varied(self, path: Path) -> Parameter | None:
        return self.params.get(format_path(path))

    def _unit_params(self, index: int) -> list[Parameter]:
        dep = self.base.deployments[index]
        app_index = {a.id: k for k, a in enumerate(self.base.applications)}
        served = {app_index[a] for a in dep.serves}
        out = []
        for p in self.params.values():
            path = p.path
            if is_catalog_path(path):
                if str(path[1]) in _CATALOG_UNIT and path[2] in self._records_used(index):
                    out.append(p)
            elif path[0] == "deployments" and path[1] == index and _pattern(path) in _UNIT:
                out.append(p)
            elif path[0] == "applications" and path[1] in served:
                shapes_unit = _pattern(path) in _UNIT
                mixes = len(served) > 1 and path[2] in ("users", "requests_per_user_per_day")
                if shapes_unit or mixes:
                    out.append(p)
        return out

    def _records_used(self, index: int) -> set[str]:
        """Catalog ids of every accelerator, system and model deployment ``index`` may use in this study."""
        cat = self.base.resolved_catalog
        dep = self.base.deployments[index]
        choices: dict[str, list[Any]] = {"accelerator": [dep.accelerator], "system": [dep.system], "model": [dep.model]}
        for name in choices:
            param = self._varied(("deployments", index, name))
            if param is not None:
                choices[name] += list(param.values)
        used: set[str] = set()
        for system_id in filter(None, choices["system"]):
            system = cat.systems.get(system_id)
            used |= {system.id, system.accelerator}
        for chip_id in filter(None, choices["accelerator"]):
            chip = cat.accelerators.get(chip_id)
            used.add(chip.id)
            used |= {s.id for s in cat.systems if s.accelerator == chip.id}
        used |= {cat.models.get(m).id for m in choices["model"] if m}
        return used

    def _units(self, design: dict[str, np.ndarray], n: int, index: int) -> _Units:
        params = self._unit_params(index)
        if params:
            keys = np.stack([np.asarray(design[p.name], dtype=np.float64) for p in params], axis=1)
            uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
            inverse = inverse.reshape(-1)
        else:
            uniq, inverse = np.zeros((1, 0)), np.zeros(n, dtype=np.int64)
        table = np.full((len(uniq), len(_UNIT_FIELDS)), np.nan)
        ok = np.zeros(len(uniq), dtype=bool)
        for r, row in enumerate(uniq):
            key = tuple(float(x) for x in row)
            scenario = apply(self.base, {p.path: p.value(x) for p, x in zip(params, key, strict=True)})
            unit = self.units.get(scenario, index, key)
            if isinstance(unit, FivelayerError):
                continue
            ok[r] = True
            for c, name in enumerate(_UNIT_FIELDS):
                value = getattr(unit, name)
                table[r, c] = np.nan if value is None else float(value)
        return _Units({name: table[inverse, c] for c, name in enumerate(_UNIT_FIELDS)}, ok[inverse])

    def _records(self, design: dict[str, np.ndarray], n: int, kind: str, path: Path, base_id: str,
                 fields: tuple[str, ...]) -> dict[str, np.ndarray]:  # fmt: skip
        """Per-variant numeric fields of the grid region or facility design each variant uses."""
        catalog = self.base.resolved_catalog.kind(kind)
        param = self._varied(path)
        ids = list(param.values) if param is not None else [base_id]
        codes = np.asarray(design[param.name], dtype=np.int64) if param is not None else np.zeros(n, dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        for name in fields:
            per_id = np.array([float(getattr(catalog.get(i), name)) for i in ids])
            values = per_id[codes]
            for p in self.params.values():
                if is_catalog_path(p.path) and p.path[1] == kind and p.path[3] == name:
                    hit = np.array([catalog.get(i).id == p.path[2] for i in ids])[codes]
                    values = np.where(hit, np.asarray(design[p.name], dtype=np.float64), values)
            out[name] = values
        return out

    def _climate(self, design: dict[str, np.ndarray], n: int) -> dict[str, Any]:
        """Per variant, what plan()'s climate and redundancy terms need, from its region and facility design.

        ``excess_sum`` and ``excess_max`` are, for each hour of the day, the sum and the maximum over the year's
        days of the outdoor temperature above the design's free-cooling limit; ``excess`` keeps the whole
        (365, 24) array per (region, design) pair for variants whose power cap binds.
        """
        cat = self.base.resolved_catalog
        codes = []
        ids = []
        for _kind, path, default in (("grid-regions", ("site", "region"), self.base.site.region),
                                    ("facilities", ("facility", "design"), self.base.facility.design)):  # fmt: skip
            param = self._varied(path)
            ids.append(list(param.values) if param is not None else [default])
            codes.append(np.asarray(design[param.name], dtype=np.int64) if param is not None else np.zeros(n, int))
        pairs, inverse = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        out: dict[str, Any] = {name: np.zeros((n, HOURS)) for name in ("excess_sum", "excess_max")}
        out |= {name: np.zeros(n) for name in ("k", "hottest", "chain", "capex_factor")}
        # The region's relative carbon profile (1 everywhere without one): per hour of the day, its sum over the
        # year's days and its sum weighted by the climate excess, so hourly carbon needs no 8,760-hour arrays.
        out |= {name: np.zeros((n, HOURS)) for name in ("ci_sum", "ci_excess_sum")}
        out["profiled"] = np.zeros(n, dtype=bool)
        out["excess"] = {}
        out["ci"] = {}
        out["pair"] = inverse
        redundancy = self.base.facility.redundancy
        for index, (r, f) in enumerate(pairs):
            region = cat.grid_regions.get(ids[0][int(r)])
            facility = cat.facilities.get(ids[1][int(f)])
            if region.monthly_mean_temperature_c is not None:
                outdoor = hourly_temperature_c(region.monthly_mean_temperature_c)
            elif region.mean_temperature_c is not None:
                outdoor = hourly_temperature_c([region.mean_temperature_c] * 12)
            else:
                outdoor = np.full(DAYS * HOURS, facility.free_cooling_limit_c)
            excess = np.maximum(outdoor - facility.free_cooling_limit_c, 0.0).reshape(DAYS, HOURS)
            rows = inverse == index
            out["excess"][index] = excess
            profile = region.carbon_intensity_profile
            ci = np.ones((DAYS, HOURS)) if profile is None else relative_profile_hourly(profile).reshape(DAYS, HOURS)
            out["ci"][index] = ci
            out["ci_sum"][rows] = ci.sum(axis=0)
            out["ci_excess_sum"][rows] = (excess * ci).sum(axis=0)
            out["profiled"][rows] = profile is not None
            out["excess_sum"][rows] = excess.sum(axis=0)
            out["excess_max"][rows] = excess.max(axis=0)
            out["hottest"][rows] = float(excess.max())
            out["k"][rows] = facility.pue_per_degree_c
            out["chain"][rows] = redundancy_overhead_w(
                1.0, redundancy, facility.baseline_redundancy, facility.ups_no_load_loss
            )
            out["capex_factor"][rows] = facility_capex_factor(
                redundancy, facility.baseline_redundancy, facility.electrical_cost_share
            )
        return out

    def _fast(self, design: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        base = self.base
        cat = base.resolved_catalog

        def col(path: Path, default: Any) -> np.ndarray:
            return self._col(design, path, default, n)

        region = self._records(design, n, "grid-regions", ("site", "region"), base.site.region,
                               ("carbon_intensity_g_per_kwh", "electricity_price_usd_per_kwh"))  # fmt: skip
        facility = self._records(design, n, "facilities", ("facility", "design"), base.facility.design,
                                 ("pue", "max_rack_power_w", "wue_l_per_kwh", "build_cost_usd_per_w",
                                  "lifetime_years"))  # fmt: skip
        pue = col(("facility", "pue"), base.facility.pue)
        pue = np.where(np.isnan(pue), facility["pue"], pue)
        max_rack = col(("facility", "max_rack_power"), base.facility.max_rack_power)
        max_rack = np.where(np.isnan(max_rack), facility["max_rack_power_w"], max_rack)
        cap = col(("site", "power_cap"), base.site.power_cap)
        cap = np.where(np.isnan(cap), np.inf, cap)
        gas_w = col(("site", "onsite", "gas"), base.site.onsite.gas)
        firm = cap + gas_w

        # Demand and units per deployment.
        feasible = np.ones(n, dtype=bool)
        deps: list[dict[str, Any]] = []
        for i, dep in enumerate(base.deployments):
            units = self._units(design, n, i)
            feasible &= units.ok
            demand = np.zeros((n, HOURS))
            apps = []
            for dem, record in demands_of(base, dep):
                k = next(j for j, a in enumerate(base.applications) if a.id == dem.application_id)
                users = col(("applications", k, "users"), dem.users)
                rpud = col(("applications", k, "requests_per_user_per_day"), dem.requests_per_user_per_day)
                output = col(("applications", k, "output_tokens"), dem.output_tokens)
                value = col(("applications", k, "value_usd_per_request"), dem.value_usd_per_request)
                if record.modality != "llm":
                    output = np.full(n, dem.output_tokens)
                rps = users * rpud / 86400.0
                demand = demand + (rps * output)[:, None] * dem.hourly[None, :HOURS]
                apps.append((rps, value))
            headroom = col(("deployments", i, "headroom"), dep.headroom)
            count_param = self._varied(("deployments", i, "count"))
            if count_param is not None:
                fixed_count = np.array([np.nan if v == "size-to-demand" else float(v) for v in count_param.values]
                                       )[np.asarray(design[count_param.name], dtype=np.int64)]  # fmt: skip
                if count_param.kind == "numeric":
                    fixed_count = np.asarray(design[count_param.name], dtype=np.float64)
            else:
                fixed_count = np.full(n, np.nan if dep.count == "size-to-demand" else float(dep.count))
            deps.append({"u": units.fields, "demand": demand, "apps": apps, "headroom": headroom,
                         "fixed": fixed_count})  # fmt: skip

        # Units of each deployment: size to the peak hour (stack.units_needed), or the fixed count.
        counts = []
        for d in deps:
            u = d["u"]
            peak = d["demand"].max(axis=1)
            cap_u = u["capacity_per_s"]
            with np.errstate(divide="ignore", invalid="ignore"):
                sized = np.maximum(1.0, np.ceil(peak * (1.0 + d["headroom"]) / cap_u - 1e-9))
            sized = np.where(cap_u > 0, sized, 0.0)
            fixed = np.maximum(1.0, np.ceil(d["fixed"] / u["accelerators"]))
            counts.append(np.where(np.isnan(d["fixed"]), sized, fixed))
        sizable = [np.isnan(d["fixed"]) for d in deps]

        # The site's firm supply caps size-to-demand deployments (as plan() does).
        design_w = sum((c * d["u"]["max_power_w"] for c, d in zip(counts, deps, strict=True)), np.zeros(n)) * pue
        over = design_w > firm
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = firm / design_w * 0.98
        counts = [np.where(over & s, np.maximum(0.0, np.floor(c * scale)), c) for c, s in zip(counts, sizable,
                                                                                             strict=True)]  # fmt: skip
        feasible &= ~(over & (sum(counts, np.zeros(n)) == 0))
        radix, switch_w, _switch_usd = (float(x) for x in _components(cat)[0])
        climate = self._climate(design, n)
        pue_peak = np.maximum(pue + climate["chain"], 1.0) + climate["k"] * climate["hottest"]
        for _ in range(8):
            facility_w = self._it_design_w(counts, deps, radix, switch_w, cat)[0] * pue_peak
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = facility_w / firm
            shrink = ratio > 1.0
            if not shrink.any():
                break
            counts = [np.where(shrink & s, np.maximum(0.0, np.floor(c / ratio) - 1.0), c)
                      for c, s in zip(counts, sizable, strict=True)]  # fmt: skip
        out = self._rollup(design, n, counts, deps, pue, max_rack, cap, gas_w, region, facility, climate)
        feasible &= out.pop("_feasible")
        for name in OUTPUTS:
            out[name] = np.where(feasible, out[name], np.nan)
        out["feasible"] = feasible
        return out

    def _it_design_w(self, counts: list[np.ndarray], deps: list[dict[str, Any]], radix: float, switch_w: float,
                     cat: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
        """IT design power and the network/storage figures for the counts (plan's ``_assemble``)."""
        (_, _, _), (optic_w, _), (storage_w_tb, _) = _components(cat)
        accelerators = sum((c * d["u"]["accelerators"] for c, d in zip(counts, deps, strict=True)),
                           np.zeros_like(counts[0]))  # fmt: skip
        switches, transceivers, _tiers = _fabric(accelerators, int(radix))
        network_w = switches * switch_w + transceivers * optic_w
        storage_tb = STORAGE_TB_PER_ACCELERATOR * accelerators
        storage_w = storage_tb * storage_w_tb
        servers_max = sum((c * d["u"]["max_power_w"] for c, d in zip(counts, deps, strict=True)),
                          np.zeros_like(accelerators))  # fmt: skip
        it_design = servers_max + network_w + storage_w
        return it_design, {"accelerators": accelerators, "switches": switches, "transceivers": transceivers,
                           "network_w": network_w, "storage_tb": storage_tb, "storage_w": storage_w}  # fmt: skip

    def _rollup(self, design: dict[str, np.ndarray], n: int, counts: list[np.ndarray], deps: list[dict[str, Any]],
                pue: np.ndarray, max_rack: np.ndarray, cap: np.ndarray, gas_cap: np.ndarray,
                region: dict[str, np.ndarray], facility: dict[str, np.ndarray],
                climate: dict[str, Any]) -> dict[str, np.ndarray]:  # fmt: skip
        base = self.base
        cat = base.resolved_catalog
        econ = base.economics

        def col(path: Path, default: Any) -> np.ndarray:
            return self._col(design, path, default, n)

        (radix, switch_w, switch_usd), (_optic_w, optic_usd), (_, storage_usd_tb) = _components(cat)
        it_design, net = self._it_design_w(counts, deps, radix, switch_w, cat)
        accelerators = net["accelerators"]
        systems = sum((c * d["u"]["systems"] for c, d in zip(counts, deps, strict=True)), np.zeros(n))
        racks = np.zeros(n)
        feasible = np.ones(n, dtype=bool)
        for c, d in zip(counts, deps, strict=True):
            r, ok = _racks(c * d["u"]["systems"], d["u"]["max_power_w"] / d["u"]["systems"],
                           d["u"]["racks_per_unit"] / d["u"]["systems"], max_rack)  # fmt: skip
            racks += r
            feasible &= ok

        # Hourly power over one representative day.
        it_h = np.zeros((n, HOURS))
        served, demanded = [], []
        for c, d in zip(counts, deps, strict=True):
            u = d["u"]
            capacity = (c * u["capacity_per_s"])[:, None]
            s = np.minimum(d["demand"], capacity)
            load = np.divide(s, capacity, out=np.zeros_like(s), where=capacity > 0)
            it_h += c[:, None] * (u["idle_power_w"][:, None] + (u["busy_power_w"] - u["idle_power_w"])[:, None] * load)
            served.append(s)
            demanded.append(d["demand"])
        it_h += (net["network_w"] + net["storage_w"])[:, None]
        base_overhead = ((pue - 1.0) * it_design)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(it_design[:, None] > 0, it_h / it_design[:, None], 0.0)
        # plan(): overhead = part-load term + k x (T - T_free)+ x IT + the redundancy's constant UPS loss. The
        # daily IT profile repeats, so the climate term sums exactly per hour of the day over the year's days.
        facility_h = it_h + base_overhead * (FIXED_OVERHEAD_FRACTION + (1.0 - FIXED_OVERHEAD_FRACTION) * rel)
        facility_h = facility_h + (climate["chain"] * it_design)[:, None]
        warm = climate["k"][:, None] * it_h
        facility_mwh = (DAYS * facility_h.sum(axis=1) + (warm * climate["excess_sum"]).sum(axis=1)) / 1e6
        peak_h = (facility_h + warm * climate["excess_max"]).max(axis=1)
        binds = peak_h > cap
        grid_mwh = facility_mwh.copy()
        # Grid energy weighted by the hour's relative carbon intensity (plan's sum of grid x hourly intensity).
        grid_ci_mwh = (
            (facility_h * climate["ci_sum"]).sum(axis=1) + (warm * climate["ci_excess_sum"]).sum(axis=1)
        ) / 1e6
        gas_mwh = np.zeros(n)
        grid_peak = peak_h.copy()
        kept = np.full((n, HOURS), float(DAYS))  # per hour of the day: days' worth of service kept
        # Where the supply cap binds in some hours, dispatch the whole year (vectorised, in batches).
        rows_all = np.flatnonzero(binds)
        for pair in np.unique(climate["pair"][rows_all]) if rows_all.size else []:
            pair_rows = rows_all[climate["pair"][rows_all] == pair]
            excess = climate["excess"][int(pair)][None, :, :]
            for start in range(0, pair_rows.size, 2048):
                rows = pair_rows[start : start + 2048]
                year = facility_h[rows][:, None, :] + warm[rows][:, None, :] * excess
                grid_y = np.minimum(year, cap[rows][:, None, None])
                gas_y = np.minimum(year - grid_y, gas_cap[rows][:, None, None])
                unserved_y = year - grid_y - gas_y
                grid_mwh[rows] = grid_y.sum(axis=(1, 2)) / 1e6
                grid_ci_mwh[rows] = (grid_y * climate["ci"][int(pair)][None, :, :]).sum(axis=(1, 2)) / 1e6
                gas_mwh[rows] = gas_y.sum(axis=(1, 2)) / 1e6
                grid_peak[rows] = grid_y.max(axis=(1, 2))
                short = np.divide(unserved_y, year, out=np.zeros_like(year), where=year > 0)
                kept[rows] = (1.0 - short).sum(axis=1)

        it_mwh = DAYS * it_h.sum(axis=1) / 1e6
        supply = cat.supply_options
        gas_option = next((s for s in supply if s.kind.startswith("gas")), None)
        gas_g = gas_option.emissions_g_per_kwh if gas_option else 490.0
        grid_co2 = np.where(climate["profiled"], grid_ci_mwh, grid_mwh) * region["carbon_intensity_g_per_kwh"] / 1e3
        co2 = grid_co2 + gas_mwh * gas_g / 1e3
        water = it_mwh * 1e3 * facility["wue_l_per_kwh"] / 1e3
        served_tokens = sum(((s * kept).sum(axis=1) for s in served), np.zeros(n)) * 3600.0
        demanded_tokens = sum((x.sum(axis=1) for x in demanded), np.zeros(n)) * DAYS * 3600.0

        elec = col(("economics", "electricity_price"), econ.electricity_price)
        price_kwh = np.where(np.isnan(elec), region["electricity_price_usd_per_kwh"], elec * 3.6e6)
        gas_price = gas_option.energy_price_usd_per_kwh if gas_option else 0.06
        chips_capex = sum((c * d["u"]["accelerator_price_usd"] for c, d in zip(counts, deps, strict=True)), np.zeros(n))
        servers_capex = sum((c * d["u"]["price_usd"] for c, d in zip(counts, deps, strict=True)), np.zeros(n))
        servers_capex = servers_capex - chips_capex
        network_capex = net["switches"] * switch_usd + net["transceivers"] * optic_usd
        storage_capex = net["storage_tb"] * storage_usd_tb
        facility_capex = facility["build_cost_usd_per_w"] * it_design * climate["capex_factor"]
        solar_option = next((s for s in supply if s.kind == "solar-pv"), None)
        battery_option = next((s for s in supply if s.kind == "battery"), None)
        onsite = base.site.onsite
        solar_capex = onsite.solar / 1e3 * (solar_option.capex_usd_per_kw if solar_option else 1100.0)
        battery_e = col(("site", "onsite", "battery_energy"), onsite.battery_energy)
        battery_p = col(("site", "onsite", "battery_power"), onsite.battery_power)
        battery_capex = (battery_e / 3.6e6) * (battery_option.capex_usd_per_kwh if battery_option else 300.0)
        battery_capex = battery_capex + (battery_p / 1e3) * (battery_option.capex_usd_per_kw if battery_option else 0.0)
        gas_capex = gas_cap / 1e3 * (gas_option.capex_usd_per_kw if gas_option else 1000.0)
        energy_capex = solar_capex + battery_capex + gas_capex
        rate = col(("economics", "discount_rate"), econ.discount_rate)
        acc_life = col(("economics", "accelerator_life_years"), econ.accelerator_life_years)
        net_life = col(("economics", "network_life_years"), econ.network_life_years)
        building = col(("economics", "building_life_years"), econ.building_life_years)
        building = np.where(np.isnan(building), facility["lifetime_years"], building)
        annual_capital = (
            (chips_capex + servers_capex) * _crf(rate, acc_life)
            + (network_capex + storage_capex) * _crf(rate, net_life)
            + facility_capex * _crf(rate, building)
            + energy_capex * _crf(rate, np.full(n, 25.0))
        )
        ppa_option = next((o for o in supply if o.kind == "ppa"), None)
        ppa = col(("economics", "ppa_price"), econ.ppa_price)
        ppa_default = np.full(n, ppa_option.energy_price_usd_per_kwh) if ppa_option else price_kwh
        ppa_price = np.where(np.isnan(ppa), ppa_default, ppa * 3.6e6)
        share = col(("site", "ppa_share"), base.site.ppa_share)
        electricity = grid_mwh * 1e3 * ((1.0 - share) * price_kwh + share * ppa_price)
        monthly_peak_kw = 12.0 * grid_peak / 1e3
        electricity = electricity + col(("economics", "demand_charge_usd_per_kw_month"),
                                        econ.demand_charge_usd_per_kw_month) * monthly_peak_kw  # fmt: skip
        maintenance = col(("economics", "maintenance_fraction_per_year"), econ.maintenance_fraction_per_year) * (
            chips_capex + servers_capex + network_capex + storage_capex
        )
        staff = col(("economics", "staff_usd_per_mw_year"), econ.staff_usd_per_mw_year) * it_design / 1e6
        opex = electricity + gas_mwh * 1e3 * gas_price + maintenance + staff
        capex = chips_capex + servers_capex + network_capex + storage_capex + facility_capex + energy_capex
        annual_cost = annual_capital + opex
        tokens_per_s = served_tokens / SECONDS_PER_YEAR
        facility_design_w = it_design * (np.maximum(pue + climate["chain"], 1.0) + climate["k"] * climate["hottest"])
        has = accelerators > 0
        safe_acc = np.where(has, accelerators, 1.0)
        gpu_hour = np.where(has, annual_cost / (safe_acc * 8760), np.inf)
        per_gpu = tokens_per_s / safe_acc
        with np.errstate(divide="ignore", invalid="ignore"):
            usd_per_m = np.where(has & (per_gpu > 0), gpu_hour / (per_gpu * 3600.0 / 1e6), np.inf)
            jpt = np.where(served_tokens > 0, facility_mwh * 3.6e9 / served_tokens, np.inf)
            tps_mw = np.where(has, per_gpu * 1000.0 / (facility_design_w / 1e3 / safe_acc), 0.0)
            unserved = np.where(demanded_tokens > 0, 1.0 - served_tokens / demanded_tokens, 0.0)
        revenue = np.zeros(n)
        for s, d in zip(served, deps, strict=True):
            total = d["demand"].sum(axis=1)
            fraction = s.sum(axis=1) / np.where(total > 0, total, 1.0)
            for rps, value in d["apps"]:
                revenue = revenue + rps * SECONDS_PER_YEAR * fraction * value
        ttft = np.stack([d["u"]["ttft_s"] for d in deps], axis=1)
        tpot = np.stack([d["u"]["tpot_s"] for d in deps], axis=1)
        return {
            "accelerators": accelerators,
            "systems": systems,
            "racks": racks,
            "it_power_mw": it_design / 1e6,
            "facility_power_mw": facility_design_w / 1e6,
            "average_facility_power_mw": facility_mwh / 8760,
            "energy_mwh_per_year": facility_mwh,
            "it_energy_mwh_per_year": it_mwh,
            "capex_usd": capex,
            "annual_cost_usd": annual_cost,
            "usd_per_million_tokens": usd_per_m,
            "joules_per_token": jpt,
            "tokens_per_s": tokens_per_s,
            "tokens_per_s_per_mw": tps_mw,
            "co2_t_per_year": co2,
            "water_m3_per_year": water,
            "revenue_usd_per_year": revenue,
            "unserved_demand_fraction": np.maximum(0.0, unserved),
            "usd_per_gpu_hour": gpu_hour,
            "ttft_s_max": _nanmax(ttft),
            "tpot_s_max": _nanmax(tpot),
            "_feasible": feasible,
        }


def _nanmax(values: np.ndarray) -> np.ndarray:
    finite = np.where(np.isnan(values), -np.inf, values).max(axis=1)
    return np.where(np.isinf(finite), np.nan, finite)


def _crf(rate: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Vectorised :func:`fivelayer.economics.finance.capital_recovery_factor`."""
    excess = np.expm1(years * np.log1p(rate))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(excess == 0.0, 1.0 / years, rate * (1.0 + excess) / excess)


def _fabric(endpoints: np.ndarray, radix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`fivelayer.infrastructure.sizing.fabric`: switches, transceivers, tiers."""
    e = endpoints
    half = radix // 2
    leaves = np.ceil(e / half)
    uplinks = leaves * half
    spines2 = np.ceil(uplinks / radix)
    spines3 = np.ceil(uplinks / half)
    core = np.ceil(spines3 * half / radix)
    links3 = uplinks + spines3 * half
    one, two = e <= radix, e <= radix * half
    switches = np.where(one, 1.0, np.where(two, leaves + spines2, leaves + spines3 + core))
    transceivers = np.where(one, 2 * e, np.where(two, 2 * e + 2 * uplinks, 2 * e + 2 * links3))
    tiers = np.where(one, 1.0, np.where(two, 2.0, 3.0))
    zero = e <= 0
    return np.where(zero, 0.0, switches), np.where(zero, 0.0, transceivers), np.where(zero, 0.0, tiers)


def _racks(systems: np.ndarray, system_power_w: np.ndarray, system_racks: np.ndarray,
           max_rack_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Vectorised :func:`fivelayer.infrastructure.sizing.racks_for`, with feasibility instead of an error."""
    rack_scale = ~np.isnan(system_racks)
    too_hot = ~rack_scale & (system_power_w > max_rack_w) & (systems > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_rack = np.maximum(1.0, np.minimum(MAX_SYSTEMS_PER_RACK, np.floor(max_rack_w / system_power_w)))
        racks = np.where(rack_scale, np.ceil(systems * system_racks), np.ceil(systems / per_rack))
    racks = np.where(systems <= 0, 0.0, racks)
    return np.where(too_hot, 0.0, racks), ~too_hot
