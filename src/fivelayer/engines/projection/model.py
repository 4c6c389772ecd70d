"""The industry year by year: demand, training, the accelerator fleet, buildout, energy, carbon, money.

One pass over the years (stocks need it); within a year every region is a NumPy row. The feedback loops:

- **price elasticity**: demand in year t is scaled by (price(t-1) / price(first year)) ** -elasticity;
- **power constraint**: data-centre capacity (AI and conventional) may grow only as fast as the buildout
  allows; conventional growth takes its share first (or both pro rata, ``buildout.sharing``); the AI fleet
  never draws more than the AI capacity, and compute demand beyond the fleet is *unserved*;
- **chip supply constraint**: world shipments never exceed the manufacturing cap (packaging wafers x
  accelerators per wafer); the cap is shared among regions in proportion to what their power allows them
  to install, and the shortfall is unserved;
- **chip scarcity pricing**: when the cap binds, accelerators cost (wanted / made) times more (buyers
  spend what they planned on fewer chips), capped;
- **scarcity pricing**: with unserved demand the price rises to the level at which the served quantity
  would clear the market, (demand / served) ** (1 / elasticity), capped.

Each switch lives in ``feedback``. Stock and flow: ``installed(t) = installed(t-1) + shipped(t) - retired(t)``
with retirement at the end of ``life_years``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.economics import capital_recovery_factor
from fivelayer.engines.projection.spec import SOURCE_KINDS, ProjectionSpec, Trend

__all__ = ["SECONDS_PER_YEAR", "Trajectory", "allocate_chips", "share_buildout", "simulate", "supply_cap"]

SECONDS_PER_YEAR = 365.0 * 86400.0
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class Trajectory:
    """Arrays over (region, year) for the projected years, plus the year axis and region ids."""

    years: np.ndarray
    regions: tuple[str, ...]
    series: dict[str, np.ndarray]
    capex: dict[str, np.ndarray]
    world: dict[str, np.ndarray] = field(default_factory=dict)  # series over years only (the chip supply cap)


def _clamped(trend: Trend, start: int, end: int) -> Callable[[np.ndarray], np.ndarray]:
    """The trend as a function of year, constant outside the projected range."""

    def at(years: np.ndarray) -> np.ndarray:
        if trend.points:
            return trend.over(np.asarray(years))
        result: np.ndarray
        if end == start:
            result = np.full(np.shape(years), trend.start, dtype=float)
        else:
            result = np.interp(years, [start, end], [trend.start, trend.end])
        return result

    return at


def compound(years: np.ndarray, rate: Callable[[np.ndarray], np.ndarray], anchor: int) -> np.ndarray:
    """Growth index with value 1 in ``anchor``: the product of (1 + rate(k)) over the years in between.

    >>> import numpy as np
    >>> [float(round(x, 9)) for x in compound(np.array([2023, 2024, 2026]), lambda y: np.full(np.shape(y), 1.0), 2024)]
    [0.5, 1.0, 4.0]
    """
    lo, hi = min(int(years.min()), anchor), max(int(years.max()), anchor)
    grid = np.arange(lo, hi + 1)
    logs = np.log1p(rate(grid))
    logs[0] = 0.0
    level = np.cumsum(logs)
    result: np.ndarray = np.exp(level[years - lo] - level[anchor - lo])
    return result


def _cohorts(spec: ProjectionSpec, sim: np.ndarray, catalog: CatalogSet) -> tuple[np.ndarray, ...]:
    """Peak FLOP/s, IT W (with host share) and cost (with server share) of one accelerator shipped each year."""
    acc = spec.accelerators
    start, end = spec.years.start, spec.years.end
    chips = [catalog.accelerators.get(g.id) for g in acc.generations]
    from_years = np.array([g.from_year for g in acc.generations])
    which = np.clip(np.searchsorted(from_years, sim, side="right") - 1, 0, len(chips) - 1)
    perf = np.array([chips[k].peak(acc.precision) for k in which], dtype=float)
    watt = np.array([chips[k].tdp_w for k in which], dtype=float)
    cost = np.array([chips[k].price_usd for k in which], dtype=float)
    last = int(from_years[-1])
    after = sim > last
    if after.any():
        anchor = last
        perf_f = compound(sim, _clamped(acc.performance_growth_per_year, start, end), anchor)
        ppw_f = compound(sim, _clamped(acc.performance_per_watt_growth_per_year, start, end), anchor)
        ppd_f = compound(sim, _clamped(acc.performance_per_dollar_growth_per_year, start, end), anchor)
        base = chips[-1]
        perf = np.where(after, base.peak(acc.precision) * perf_f, perf)
        watt = np.where(after, base.tdp_w * perf_f / ppw_f, watt)
        cost = np.where(after, base.price_usd * perf_f / ppd_f, cost)
    return perf, watt * (1.0 + acc.host_power_fraction), cost * (1.0 + acc.server_cost_fraction)


def supply_cap(spec: ProjectionSpec, years: np.ndarray) -> np.ndarray:
    """Accelerators that can be made in each of ``years`` (world); infinite without a cap.

    Wafers are the figures given, linear between given years and constant before the first; after the
    last they grow by ``packaging_wafers_growth_per_year``. The cap is wafers x accelerators per wafer.
    """
    man = spec.manufacturing
    if man is None or not spec.feedback.chip_supply_constraint:
        return np.full(np.shape(years), np.inf)
    start, end = spec.years.start, spec.years.end
    given = sorted(man.packaging_wafers)
    last = given[-1]
    wafers = np.interp(years, given, [man.packaging_wafers[y] for y in given])
    growth = compound(np.asarray(years), _clamped(man.packaging_wafers_growth_per_year, start, end), last)
    wafers = np.where(np.asarray(years) > last, man.packaging_wafers[last] * growth, wafers)
    result: np.ndarray = wafers * _clamped(man.accelerators_per_wafer, start, end)(np.asarray(years))
    return result


def simulate(spec: ProjectionSpec, catalog: CatalogSet | None = None) -> Trajectory:
    """Run the projection. Pure: the same spec gives the same arrays."""
    cat = catalog or default_catalog()
    acc, fb = spec.accelerators, spec.feedback
    start, end = spec.years.start, spec.years.end
    years = spec.year_array
    first = min([start, *acc.shipments])
    sim = np.arange(first, end + 1)
    n_years, n_regions, n_sim = len(years), len(spec.regions), len(sim)
    perf, watt, cost = _cohorts(spec, sim, cat)
    eff = perf  # capacity is counted in peak FLOP/s; demand is converted to peak FLOP/s needed
    inf_afp = spec.inference.achieved_fraction_of_peak
    train_afp = spec.training.achieved_fraction_of_peak

    # --- exogenous paths over the projected years (vectorised) ---------------------------------------
    base_tokens = np.array(
        [
            _users(s.users, s.users_saturation, s.adoption_rate_per_year, years - s.year)
            * s.tokens_per_user_per_day
            * 365.0
            * compound(years, _clamped(s.tokens_per_user_growth_per_year, start, end), s.year)
            for s in spec.sectors
        ]
    )  # (sector, year): tokens per year before elasticity
    alg = _clamped(spec.inference.algorithmic_efficiency_gain_per_year, start, end)
    flop_per_token = np.array([s.flop_per_token / compound(years, alg, s.year) for s in spec.sectors])
    elasticity = np.array([s.price_elasticity for s in spec.sectors])
    tr = spec.training
    frontier = tr.frontier_run * compound(years, _clamped(tr.frontier_compute_growth_per_year, start, end), tr.year)
    releases = _clamped(tr.open_model_releases_per_year, start, end)(years)
    training_flop = (tr.frontier_runs_per_year + releases * tr.open_model_compute_fraction) * frontier
    training_flop = training_flop * tr.research_multiplier

    share = np.array([_clamped(r.ai_share, start, end)(sim) for r in spec.regions])  # (region, sim year)
    design = cat.facilities.get(spec.facility.design)
    conv_design = cat.facilities.get(spec.facility.conventional_design)
    pue = (
        _clamped(spec.facility.pue, start, end)(years)
        if spec.facility.pue is not None
        else np.full(n_years, design.pue)
    )
    pue_sim = np.interp(sim, years, pue) if n_years > 1 else np.full(n_sim, pue[0])
    build_cost = spec.facility.build_cost if spec.facility.build_cost is not None else design.build_cost_usd_per_w
    price_per_j = np.array([cat.grid_regions.get(r.grid_region).electricity_price_usd_per_kwh for r in spec.regions])
    price_per_j = price_per_j / J_PER_KWH
    conventional = np.array(
        [
            r.conventional.electricity
            * compound(years, _clamped(r.conventional.growth_per_year, start, end), r.conventional.year)
            for r in spec.regions
        ]
    )
    limit = np.array(
        [
            r.buildout.max_additions
            * compound(years, _clamped(r.buildout.max_additions_growth_per_year, start, end), start)
            for r in spec.regions
        ]
    )
    for i, r in enumerate(spec.regions):
        lead = r.buildout.lead_time_years
        if lead > 0:
            limit[i, : min(lead, n_years)] = r.buildout.under_construction / lead
    utilisation = np.array([r.conventional.capacity_utilisation for r in spec.regions])
    sharing = [r.buildout.sharing for r in spec.regions]
    chip_cap = supply_cap(spec, years)
    factors = np.array([spec.carbon_g_per_kwh[k] for k in SOURCE_KINDS])
    frac = (years - start) / max(end - start, 1)
    mix_start = np.array([r.supply.start.vector() for r in spec.regions])
    mix_end = np.array([r.supply.end.vector() for r in spec.regions])
    carbon = (mix_start @ factors)[:, None] * (1 - frac) + (mix_end @ factors)[:, None] * frac  # g/kWh

    crf_chips = capital_recovery_factor(spec.economics.discount_rate, acc.life_years)
    crf_building = capital_recovery_factor(spec.economics.discount_rate, spec.facility.life_years)

    # --- the year loop over stocks -------------------------------------------------------------------------
    stock = np.zeros((n_regions, n_sim))  # accelerators alive, by region and cohort (year shipped)
    facility = np.zeros(n_regions)  # AI facility capacity, W
    conv_capacity = conventional[:, 0] / (SECONDS_PER_YEAR * utilisation)  # conventional facility capacity, W
    cost_paid = cost.copy()  # what each cohort cost, after chip scarcity pricing
    out = {k: np.zeros((n_regions, n_years)) for k in _SERIES}
    world = {k: np.zeros(n_years) for k in ("accelerator_supply_cap", "accelerator_price_multiplier", "chip_limited")}
    capex = {k: np.zeros((n_regions, n_years)) for k in ("energy", "chips", "infrastructure")}
    # elasticity is relative to the price in each sector's anchor year (or the first projected year)
    anchors = np.array([max(s.year, start) for s in spec.sectors])
    prices: dict[int, np.ndarray] = {}
    for i, year in enumerate(sim):
        retired = stock[:, i - acc.life_years].copy() if i >= acc.life_years else np.zeros(n_regions)
        if i >= acc.life_years:
            stock[:, i - acc.life_years] = 0.0
        installed_before = stock.sum(axis=1) + retired
        cap_alive = stock @ eff
        it_alive = stock @ watt
        history = acc.shipments.get(int(year))
        j = int(year - start)
        if j < 0:  # before the projection: only the historical fleet is built
            shipped = share[:, i] * (history or 0.0)
            facility = np.maximum(facility, (it_alive + shipped * watt[i]) * pue_sim[i])
            stock[:, i] = shipped
            continue
        mult = np.ones((len(spec.sectors), n_regions))
        if fb.price_elasticity:
            for k, anchor in enumerate(anchors):
                if year - 1 >= anchor and anchor in prices and year - 1 in prices:
                    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                        ratio = prices[int(year) - 1] / prices[int(anchor)]
                        mult[k] = np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0) ** -elasticity[k]
        tokens = base_tokens[:, j, None] * share[None, :, i] * mult  # (sector, region)
        inference_flop = (tokens * flop_per_token[:, j, None]).sum(axis=0)
        train = training_flop[j] * share[:, i]
        need_avg = (inference_flop / inf_afp + train / train_afp) / SECONDS_PER_YEAR
        need_peak = (inference_flop * spec.inference.peak_to_average / inf_afp + train / train_afp) / SECONDS_PER_YEAR
        conv_need = np.maximum(conventional[:, j] / (SECONDS_PER_YEAR * utilisation) - conv_capacity, 0.0)
        price_multiplier = 1.0
        if history is not None:  # observed shipments and load: no limits
            shipped = demanded = feasible = share[:, i] * history
            total_limit = allowed = np.full(n_regions, np.inf)
            conv_add = conv_need
        else:
            demanded = np.maximum(need_peak - cap_alive, 0.0) / eff[i]
            total_limit = limit[:, j] if fb.power_constraint else np.full(n_regions, np.inf)
            ai_need = np.maximum((it_alive + demanded * watt[i]) * pue[j] - facility, 0.0)
            conv_add, allowed = share_buildout(total_limit, conv_need, ai_need, sharing)
            room = np.maximum((facility + allowed) / pue[j] - it_alive, 0.0) / watt[i]
            feasible = np.minimum(demanded, room)
            shipped, price_multiplier = allocate_chips(
                feasible, float(chip_cap[j]), spec.economics.max_accelerator_price_multiplier
            )
            if not fb.chip_scarcity_pricing:
                price_multiplier = 1.0
        cost_paid[i] = cost[i] * price_multiplier
        additions = np.minimum(np.maximum((it_alive + shipped * watt[i]) * pue[j] - facility, 0.0), allowed)
        facility = facility + additions
        conv_capacity = conv_capacity + conv_add
        conv_served = np.minimum(conventional[:, j], conv_capacity * utilisation * SECONDS_PER_YEAR)
        chip_cut = shipped < feasible * (1.0 - 1e-12)
        world["accelerator_supply_cap"][j] = np.inf if history is not None else chip_cap[j]
        world["accelerator_price_multiplier"][j] = price_multiplier
        world["chip_limited"][j] = float(chip_cut.any())
        stock[:, i] = shipped
        installed = stock.sum(axis=1)
        capacity = cap_alive + shipped * eff[i]
        served = np.where(need_peak > 0, np.minimum(1.0, capacity / np.where(need_peak > 0, need_peak, 1.0)), 1.0)
        busy = np.where(capacity > 0, np.minimum(1.0, need_avg * served / np.where(capacity > 0, capacity, 1.0)), 0.0)
        it_max = stock @ watt
        # energy on the mean of the fleet at the start (before retirement) and at the end of the year
        it_mean = 0.5 * (it_alive + retired * watt[max(i - acc.life_years, 0)] + it_max)
        it_avg = it_mean * (acc.idle_power_fraction + (1.0 - acc.idle_power_fraction) * busy)
        ai_energy = it_avg * pue[j] * SECONDS_PER_YEAR
        annual_cost = (
            (stock @ cost_paid) * crf_chips + facility / pue[j] * build_cost * crf_building + ai_energy * price_per_j
        )
        token_total = tokens.sum(axis=0)
        mean_fpt = np.where(token_total > 0, inference_flop / np.where(token_total > 0, token_total, 1.0), 0.0)
        planned_flop = capacity * SECONDS_PER_YEAR * inf_afp / spec.inference.peak_to_average
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a vanishing fleet: cost -> inf
            unit_cost = np.where(planned_flop > 0, annual_cost / planned_flop * mean_fpt * 1e6, np.nan)
            mean_eps = (tokens * elasticity[:, None]).sum(axis=0) / np.where(token_total > 0, token_total, 1.0)
            scarcity = np.ones(n_regions)
            if fb.scarcity_pricing:
                raw = np.where(
                    mean_eps > 0, (1.0 / np.maximum(served, 1e-12)) ** (1.0 / np.maximum(mean_eps, 1e-12)), np.inf
                )
                scarcity = np.where(served < 1.0, np.minimum(raw, spec.economics.max_price_multiplier), 1.0)
            price = unit_cost * scarcity
        previous = prices.get(int(year) - 1, np.full(n_regions, np.nan))
        prices[int(year)] = np.where(np.isfinite(price), price, previous)

        values = {
            "accelerators_installed": installed,
            "accelerators_shipped": shipped,
            "accelerators_demanded": demanded,
            "accelerators_power_feasible": feasible,
            "chip_limited": chip_cut.astype(float),
            "power_limited": (
                (feasible < demanded * (1.0 - 1e-12)) | (conv_served < conventional[:, j] * (1.0 - 1e-12))
            ).astype(float),
            "accelerator_price_multiplier": np.full(n_regions, price_multiplier),
            "accelerators_retired": retired,
            "accelerators_installed_before": installed_before,
            "ai_it_power_w": it_max,
            "ai_it_average_power_w": it_avg,
            "facility_power_w": it_max * pue[j],
            "ai_facility_capacity_w": facility,
            "facility_additions_w": additions,
            "buildout_limit_w": total_limit,
            "ai_buildout_allowed_w": allowed,
            "conventional_capacity_w": conv_capacity,
            "conventional_additions_w": conv_add,
            "ai_energy_j": ai_energy,
            "conventional_energy_j": conv_served,
            "conventional_demand_j": conventional[:, j],
            "tokens_demanded": token_total,
            "tokens_served": token_total * served,
            "compute_demand_flop": (inference_flop + train),
            "compute_demand_peak_flop_per_s": need_peak,
            "compute_capacity_flop_per_s": capacity,
            "training_flop": train,
            "served_fraction": served,
            "fleet_busy_fraction": busy,
            "cost_usd_per_million_tokens": unit_cost,
            "usd_per_million_tokens": price,
            "carbon_g_per_kwh": carbon[:, j],
            "pue": np.full(n_regions, pue[j]),
        }
        for key, value in values.items():
            out[key][:, j] = value
        capex["chips"][:, j] = shipped * cost_paid[i]
        capex["infrastructure"][:, j] = additions / pue[j] * build_cost
        capex["energy"][:, j] = additions * spec.economics.energy_capex

    total_j = out["ai_energy_j"] + out["conventional_energy_j"]
    out["co2_g"] = total_j / J_PER_KWH * out["carbon_g_per_kwh"]
    water_l = out["ai_energy_j"] / J_PER_KWH / out["pue"] * design.wue_l_per_kwh
    water_l += out["conventional_energy_j"] / J_PER_KWH / conv_design.pue * conv_design.wue_l_per_kwh
    out["water_m3"] = water_l / 1000.0
    return Trajectory(years=years, regions=tuple(r.id for r in spec.regions), series=out, capex=capex, world=world)


def share_buildout(
    limit: np.ndarray, conventional_need: np.ndarray, ai_need: np.ndarray, sharing: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Split each region's yearly buildout limit (facility W) between conventional and AI data centres.

    ``conventional-first``: conventional growth is served first (existing contracted load and small
    expansions); AI gets what is left. ``pro-rata``: when the two needs exceed the limit, each gets the
    same fraction of its need; AI may also use what conventional does not. Returns (conventional
    additions, the most AI may add).

    >>> import numpy as np
    >>> c, a = share_buildout(np.array([10.0, 10.0]), np.array([4.0, 4.0]), np.array([12.0, 12.0]),
    ...                       ["conventional-first", "pro-rata"])
    >>> [float(x) for x in c], [float(x) for x in a]
    ([4.0, 2.5], [6.0, 7.5])
    """
    pro_rata = np.array([s == "pro-rata" for s in sharing])
    total = conventional_need + ai_need
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(total > limit, limit / np.where(total > 0, total, 1.0), 1.0)
    conv_add = np.where(pro_rata, conventional_need * fraction, np.minimum(conventional_need, limit))
    return conv_add, limit - conv_add


def allocate_chips(feasible: np.ndarray, cap: float, max_multiplier: float) -> tuple[np.ndarray, float]:
    """Ship what each region can install, scaled down pro rata when the world total exceeds the cap.

    Returns the shipments and the accelerator price multiplier: wanted / made when the cap binds
    (buyers spend the budget they planned on fewer chips), at most ``max_multiplier``.

    >>> import numpy as np
    >>> shipped, m = allocate_chips(np.array([3.0, 1.0]), 2.0, 5.0)
    >>> [float(x) for x in shipped], m
    ([1.5, 0.5], 2.0)
    """
    wanted = float(feasible.sum())
    if wanted <= cap:
        return feasible, 1.0
    if cap <= 0.0:
        return np.zeros_like(feasible), max_multiplier
    return feasible * (cap / wanted), min(wanted / cap, max_multiplier)


def _users(users: float, saturation: float, rate: float, dt: np.ndarray) -> np.ndarray:
    """Logistic adoption through ``users`` at dt = 0 towards ``saturation``.

    >>> float(_users(100.0, 200.0, 1.0, np.array([0.0]))[0])
    100.0
    """
    if saturation <= users:
        return np.full(np.shape(dt), users, dtype=float)
    result: np.ndarray = saturation / (1.0 + (saturation / users - 1.0) * np.exp(-rate * dt))
    return result


_SERIES = (
    "accelerators_installed",
    "accelerators_shipped",
    "accelerators_demanded",
    "accelerators_power_feasible",
    "chip_limited",
    "power_limited",
    "accelerator_price_multiplier",
    "accelerators_retired",
    "accelerators_installed_before",
    "ai_it_power_w",
    "ai_it_average_power_w",
    "facility_power_w",
    "ai_facility_capacity_w",
    "facility_additions_w",
    "buildout_limit_w",
    "ai_buildout_allowed_w",
    "conventional_capacity_w",
    "conventional_additions_w",
    "ai_energy_j",
    "conventional_energy_j",
    "conventional_demand_j",
    "tokens_demanded",
    "tokens_served",
    "compute_demand_flop",
    "compute_demand_peak_flop_per_s",
    "compute_capacity_flop_per_s",
    "training_flop",
    "served_fraction",
    "fleet_busy_fraction",
    "cost_usd_per_million_tokens",
    "usd_per_million_tokens",
    "carbon_g_per_kwh",
    "pue",
)
