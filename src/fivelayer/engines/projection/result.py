"""The outcome of a projection: per-year rows (world and per region), checks against published figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fivelayer.engines.projection.model import J_PER_KWH, Trajectory
from fivelayer.engines.projection.spec import ProjectionSpec

__all__ = ["ProjectionResult", "build_result"]

_SUMMED = (
    "accelerators_installed",
    "accelerators_shipped",
    "accelerators_demanded",
    "accelerators_power_feasible",
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
    "co2_g",
    "water_m3",
)


def _rows(years: np.ndarray, s: dict[str, np.ndarray], capex: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """JSON rows from 1-D arrays over years (one region, or the world)."""
    cumulative = np.cumsum(capex["energy"] + capex["chips"] + capex["infrastructure"])
    rows = []
    for j, year in enumerate(years):
        ai_twh = s["ai_energy_j"][j] / J_PER_KWH / 1e9
        conv_twh = s["conventional_energy_j"][j] / J_PER_KWH / 1e9
        conv_demand_twh = s["conventional_demand_j"][j] / J_PER_KWH / 1e9
        supply: dict[str, Any] = {}
        if "accelerator_supply_cap" in s:
            supply["accelerator_supply_cap"] = _num(s["accelerator_supply_cap"][j])
        rows.append(
            {
                "year": int(year),
                "accelerators_installed": float(s["accelerators_installed"][j]),
                "accelerators_shipped": float(s["accelerators_shipped"][j]),
                "accelerators_demanded": float(s["accelerators_demanded"][j]),
                **supply,
                "chip_limited": bool(s["chip_limited"][j] > 0),
                "power_limited": bool(s["power_limited"][j] > 0),
                "accelerator_price_multiplier": float(s["accelerator_price_multiplier"][j]),
                "accelerators_retired": float(s["accelerators_retired"][j]),
                "ai_it_power_gw": float(s["ai_it_power_w"][j] / 1e9),
                "ai_it_average_power_gw": float(s["ai_it_average_power_w"][j] / 1e9),
                "facility_power_gw": float(s["facility_power_w"][j] / 1e9),
                "ai_facility_capacity_gw": float(s["ai_facility_capacity_w"][j] / 1e9),
                "ai_facility_additions_gw": float(s["facility_additions_w"][j] / 1e9),
                "datacenter_average_power_gw": float(
                    (s["ai_energy_j"][j] + s["conventional_energy_j"][j]) / (365.0 * 86400.0) / 1e9
                ),
                "ai_electricity_twh": float(ai_twh),
                "conventional_electricity_twh": float(conv_twh),
                "conventional_demanded_twh": float(conv_demand_twh),
                "conventional_unserved_twh": float(max(conv_demand_twh - conv_twh, 0.0)),
                "conventional_capacity_gw": float(s["conventional_capacity_w"][j] / 1e9),
                "datacenter_additions_gw": float(
                    (s["facility_additions_w"][j] + s["conventional_additions_w"][j]) / 1e9
                ),
                "datacenter_electricity_twh": float(ai_twh + conv_twh),
                "co2_mt": float(s["co2_g"][j] / 1e12),
                "carbon_g_per_kwh": _num(s["carbon_g_per_kwh"][j]),
                "water_m3": float(s["water_m3"][j]),
                "capex_usd": {
                    "energy": float(capex["energy"][j]),
                    "chips": float(capex["chips"][j]),
                    "infrastructure": float(capex["infrastructure"][j]),
                    "total": float(capex["energy"][j] + capex["chips"][j] + capex["infrastructure"][j]),
                },
                "cumulative_capex_usd_trillion": float(cumulative[j] / 1e12),
                "usd_per_million_tokens": _num(s["usd_per_million_tokens"][j]),
                "cost_usd_per_million_tokens": _num(s["cost_usd_per_million_tokens"][j]),
                "tokens_demanded": float(s["tokens_demanded"][j]),
                "tokens_served": float(s["tokens_served"][j]),
                "training_flop": float(s["training_flop"][j]),
                "compute_demand_flop": float(s["compute_demand_flop"][j]),
                "fleet_busy_fraction": _num(s["fleet_busy_fraction"][j]),
                "unserved_demand_fraction": float(1.0 - s["served_fraction"][j]),
            }
        )
    return rows


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _world(t: Trajectory) -> dict[str, np.ndarray]:
    s = {k: t.series[k].sum(axis=0) for k in _SUMMED}
    s["power_limited"] = t.series["power_limited"].max(axis=0)
    s["chip_limited"] = t.series["chip_limited"].max(axis=0)
    s["accelerator_price_multiplier"] = t.series["accelerator_price_multiplier"].max(axis=0)
    if "accelerator_supply_cap" in t.world:
        s["accelerator_supply_cap"] = t.world["accelerator_supply_cap"]
    ai = t.series["ai_energy_j"] + t.series["conventional_energy_j"]
    total = ai.sum(axis=0)
    s["carbon_g_per_kwh"] = np.where(total > 0, s["co2_g"] / np.where(total > 0, total, 1) * J_PER_KWH, np.nan)
    served_tokens = t.series["tokens_served"]
    weight = served_tokens.sum(axis=0)
    for key in ("usd_per_million_tokens", "cost_usd_per_million_tokens"):
        values = np.nan_to_num(t.series[key], nan=0.0, posinf=0.0)
        s[key] = np.where(weight > 0, (values * served_tokens).sum(axis=0) / np.where(weight > 0, weight, 1), np.nan)
    need = t.series["compute_demand_peak_flop_per_s"]
    need_total = need.sum(axis=0)
    served = (t.series["served_fraction"] * need).sum(axis=0)
    s["served_fraction"] = np.where(need_total > 0, served / np.where(need_total > 0, need_total, 1), 1.0)
    cap = s["compute_capacity_flop_per_s"]
    busy = (t.series["fleet_busy_fraction"] * t.series["compute_capacity_flop_per_s"]).sum(axis=0)
    s["fleet_busy_fraction"] = np.where(cap > 0, busy / np.where(cap > 0, cap, 1), 0.0)
    return s


@dataclass
class ProjectionResult:
    """Years of the whole industry (and of each region), with checks against published figures."""

    scenario: str
    description: str
    years: list[dict[str, Any]]
    regions: dict[str, list[dict[str, Any]]]
    checks: list[dict[str, Any]]
    feedback: dict[str, bool]
    assumptions: list[str] = field(default_factory=list)
    trajectory: Trajectory | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scenario": self.scenario,
            "description": self.description,
            "feedback": self.feedback,
            "years": self.years,
        }
        if self.regions:
            data["regions"] = self.regions
        data["checks"] = self.checks
        data["assumptions"] = self.assumptions
        return data

    def to_frame(self) -> Any:
        """The world's years as a pandas DataFrame (capex flattened to capex_<layer>_usd)."""
        import pandas as pd

        flat = []
        for row in self.years:
            r = {k: v for k, v in row.items() if k != "capex_usd"}
            r |= {f"capex_{k}_usd": v for k, v in row["capex_usd"].items()}
            flat.append(r)
        return pd.DataFrame(flat).set_index("year")

    def row(self, year: int, region: str = "world") -> dict[str, Any]:
        rows = self.years if region == "world" else self.regions[region]
        for r in rows:
            if r["year"] == year:
                return r
        raise KeyError(year)

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=f"projection: {self.scenario}")
        for column in ("year", "accel. installed M", "wanted M", "shipped M", "AI IT GW", "AI TWh", "all DC TWh",
                       "MtCO2", "capex $B", "cum. $T", "$/M tok", "unserved", "limit"):  # fmt: skip
            table.add_column(column, justify="right")
        for r in self.years:
            price = r["usd_per_million_tokens"]
            limits = "+".join(k for k, on in (("chips", r["chip_limited"]), ("power", r["power_limited"])) if on)
            table.add_row(
                str(r["year"]), f"{r['accelerators_installed'] / 1e6:,.1f}", f"{r['accelerators_demanded'] / 1e6:,.1f}",
                f"{r['accelerators_shipped'] / 1e6:,.1f}",
                f"{r['ai_it_power_gw']:,.1f}", f"{r['ai_electricity_twh']:,.0f}",
                f"{r['datacenter_electricity_twh']:,.0f}", f"{r['co2_mt']:,.0f}",
                f"{r['capex_usd']['total'] / 1e9:,.0f}", f"{r['cumulative_capex_usd_trillion']:,.2f}",
                "-" if price is None else f"{price:,.3f}", f"{100 * r['unserved_demand_fraction']:.1f} %",
                limits or "-",
            )  # fmt: skip
        return table


def build_result(spec: ProjectionSpec, t: Trajectory) -> ProjectionResult:
    world = _rows(t.years, _world(t), {k: v.sum(axis=0) for k, v in t.capex.items()})
    regions: dict[str, list[dict[str, Any]]] = {}
    if spec.regional:
        for i, rid in enumerate(t.regions):
            regions[rid] = _rows(t.years, {k: v[i] for k, v in t.series.items()}, {k: v[i] for k, v in t.capex.items()})
    checks = []
    for ref in spec.references:
        rows = world if ref.region == "world" else regions.get(ref.region, [])
        got = next((r.get(ref.quantity) for r in rows if r["year"] == ref.year), None)
        check: dict[str, Any] = {"id": ref.id, "region": ref.region, "year": ref.year, "quantity": ref.quantity}
        check["role"] = ref.role
        check["model"] = got
        if ref.value is not None:
            check |= {"published": ref.value, "tolerance": ref.tolerance}
        else:
            check |= {"low": ref.low, "high": ref.high}
        if got is None:
            check["status"] = "not projected"
        elif ref.value is not None:
            check["error"] = got / ref.value - 1.0
            check["status"] = "ok" if abs(got / ref.value - 1.0) <= ref.tolerance else "outside tolerance"
        else:
            low = ref.low if ref.low is not None else -math.inf
            high = ref.high if ref.high is not None else math.inf
            check["status"] = "ok" if low <= got <= high else "outside range"
        check["source"] = "; ".join(s.label() for s in ref.sources)
        checks.append(check)
    assumptions = [
        f"{section}.{name}: {basis}" for section, b in spec.basis.items() for name, basis in b.assumptions.items()
    ]
    return ProjectionResult(
        scenario=spec.name,
        description=spec.description,
        years=world,
        regions=regions,
        checks=checks,
        feedback=spec.feedback.model_dump(),
        assumptions=assumptions,
        trajectory=t,
    )
