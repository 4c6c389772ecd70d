"""The chip manufacturing cap, how conventional and AI load share a constrained buildout, and the checks' roles.

Hand-worked numbers come from the base case's inputs (src/fivelayer/data/projection/base.yaml), whose
sources are cited there: DIGITIMES Research (June 2025) for 1.313 M packaging wafers in 2026 and +48 %
over 2025; 12 accelerators per wafer in 2024 (4.82 M shipped, DIGITIMES, over 400,000 wafers) and
12 x 16 / 29 = 6.6 in 2025 (B200 vs H100 packages per wafer); Tyler Norris (2025) for 50 % utilisation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fivelayer.core.errors import ScenarioError
from fivelayer.engines.projection import (
    ProjectionSpec,
    Trajectory,
    packaged_projection,
    packaged_projection_names,
    project,
    projection_from_text,
    simulate,
)
from fivelayer.engines.projection.model import SECONDS_PER_YEAR, supply_cap
from tests.conftest import CliResult

TWH = 3.6e15  # J
PRICES_OFF = "feedback: {price_elasticity: false, scarcity_pricing: false, chip_scarcity_pricing: false}\n"


def _spec(override: str = "") -> ProjectionSpec:
    return projection_from_text(f"extends: base\nname: test\n{override}", origin="test.yaml")


def _per_wafer(scale: float, wafers_2026: float | None = None) -> str:
    """The base case's accelerators per wafer, all multiplied by ``scale`` (a tighter or looser cap)."""
    text = (
        "manufacturing:\n  accelerators_per_wafer: "
        f"{{points: {{2024: {12.0 * scale}, 2025: {6.6 * scale}, 2035: {2.5 * scale}}}}}\n"
    )
    if wafers_2026 is not None:
        text += f"  packaging_wafers: {{2026: {wafers_2026}}}\n"
    return text


def _projected(t: Trajectory, spec: ProjectionSpec) -> np.ndarray:
    """Mask of the projected years that have no historical shipments (where the cap applies)."""
    return np.array([int(y) not in spec.accelerators.shipments for y in t.years])


def _world_unserved(t: Trajectory) -> np.ndarray:
    need = t.series["compute_demand_peak_flop_per_s"]
    served = (t.series["served_fraction"] * need).sum(axis=0)
    result: np.ndarray = 1.0 - served / need.sum(axis=0)
    return result


# --- the chip manufacturing cap ------------------------------------------------------------------------


def test_supply_cap_worked_by_hand() -> None:
    spec = packaged_projection("base")
    cap = supply_cap(spec, np.array([2025, 2026, 2027]))
    # 2025: 887,000 wafers (1.313 M / 1.48) x 6.6 accelerators per wafer
    assert cap[0] == pytest.approx(887_000 * 6.6)  # 5.85 M
    # 2026: 1.313 M wafers x (6.6 - (6.6 - 2.5) / 10) = 6.19 per wafer
    assert cap[1] == pytest.approx(1_313_000 * 6.19)  # 8.13 M
    # 2027: wafers grow 40 % after the last year given, 5.78 per wafer
    assert cap[2] == pytest.approx(1_313_000 * 1.4 * 5.78)  # 10.6 M
    result = project(spec)
    assert result.row(2025)["accelerator_supply_cap"] == pytest.approx(887_000 * 6.6)
    assert result.row(2024)["accelerator_supply_cap"] is None  # a history year: shipments are data


def test_no_manufacturing_section_means_no_cap() -> None:
    spec = _spec()
    bare = spec.model_copy(update={"manufacturing": None})
    assert np.isinf(supply_cap(bare, np.array([2030]))).all()
    off = _spec("feedback: {chip_supply_constraint: false}\n" + _per_wafer(0.01))
    s = simulate(off).series
    np.testing.assert_allclose(s["accelerators_shipped"], s["accelerators_power_feasible"])


def test_binding_cap_is_unserved_demand_not_an_error() -> None:
    tight = project(_spec(_per_wafer(0.25)))
    base = project(packaged_projection("base"))
    limited = [r for r in tight.years if r["chip_limited"]]
    assert limited
    for row in limited:
        assert row["accelerators_shipped"] == pytest.approx(row["accelerator_supply_cap"], rel=1e-9)
        assert row["accelerators_shipped"] < row["accelerators_demanded"]
    first = limited[0]["year"]
    assert tight.row(first)["unserved_demand_fraction"] > base.row(first)["unserved_demand_fraction"]
    # the open-model boom outgrows packaging capacity from 2029 in the packaged inputs
    boom = project(packaged_projection("open-model-boom"))
    assert boom.row(2030)["chip_limited"] and boom.row(2030)["unserved_demand_fraction"] > 0.05


def test_chip_scarcity_pricing_raises_accelerator_cost_and_token_cost() -> None:
    tight = _per_wafer(0.25) + "feedback: {price_elasticity: false, scarcity_pricing: false"
    on = project(_spec(tight + "}\n"))
    off = project(_spec(tight + ", chip_scarcity_pricing: false}\n"))
    year = next(r["year"] for r in on.years if r["chip_limited"])
    row_on, row_off = on.row(year), off.row(year)
    # buyers spend what they planned on fewer chips: price x wanted / made, at most x2
    wanted = simulate(_spec(tight + "}\n")).series["accelerators_power_feasible"].sum(axis=0)[year - 2024]
    expected = min(wanted / row_on["accelerators_shipped"], 2.0)
    assert row_on["accelerator_price_multiplier"] == pytest.approx(expected)
    assert row_off["accelerator_price_multiplier"] == 1.0
    assert row_on["capex_usd"]["chips"] == pytest.approx(row_off["capex_usd"]["chips"] * expected)
    assert row_on["cost_usd_per_million_tokens"] > row_off["cost_usd_per_million_tokens"]
    assert row_on["accelerators_shipped"] == pytest.approx(row_off["accelerators_shipped"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scale=st.floats(0.0, 2.0), wafers_2026=st.floats(0.0, 3e6), scenario=st.sampled_from(["base", "open-model-boom"])
)
def test_supply_cap_never_exceeded_and_stock_flow_holds(scale: float, wafers_2026: float, scenario: str) -> None:
    override = f"extends: {scenario}\nname: t\n" + _per_wafer(scale, wafers_2026)
    spec = projection_from_text(override, origin="t.yaml")
    t = simulate(spec)
    s = t.series
    mask = _projected(t, spec)
    cap = supply_cap(spec, t.years)
    shipped = s["accelerators_shipped"].sum(axis=0)
    assert (shipped[mask] <= cap[mask] * (1 + 1e-9) + 1e-6).all()
    assert (s["accelerators_shipped"] <= s["accelerators_power_feasible"] * (1 + 1e-12) + 1e-9).all()
    assert (s["accelerators_power_feasible"] <= s["accelerators_demanded"] * (1 + 1e-12) + 1e-9).all()
    np.testing.assert_allclose(
        s["accelerators_installed"],
        s["accelerators_installed_before"] + s["accelerators_shipped"] - s["accelerators_retired"],
        rtol=1e-9,
        atol=1e-3,  # a thousandth of an accelerator: rounding when a tiny fleet is left after big retirements
    )
    np.testing.assert_allclose(
        s["accelerators_installed_before"][:, 1:], s["accelerators_installed"][:, :-1], rtol=1e-9, atol=1e-3
    )
    assert (s["accelerators_shipped"] >= 0).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tight=st.floats(0.05, 1.5), looser_by=st.floats(1.0, 3.0))
def test_tighter_cap_never_lowers_unserved_demand(tight: float, looser_by: float) -> None:
    """Exactly true in every year when no price feeds back into demand and no cohort shipped under the cap
    retires within the horizon (life 15 years): the fleet is then monotone in the cap. With all the loops
    on, it holds up to and including the first year the two runs differ (later, price feedback and the
    retirement echo of a smaller cohort can reverse it; see docs/methodology/projection.md)."""
    frozen = PRICES_OFF + "accelerators: {life_years: 15}\n"
    a = simulate(_spec(frozen + _per_wafer(tight)))
    b = simulate(_spec(frozen + _per_wafer(tight * looser_by)))
    assert (_world_unserved(a) >= _world_unserved(b) - 1e-9).all()
    a = simulate(_spec(_per_wafer(tight)))
    b = simulate(_spec(_per_wafer(tight * looser_by)))
    ua, ub = _world_unserved(a), _world_unserved(b)
    differ = np.flatnonzero(
        ~np.isclose(
            a.series["accelerators_shipped"].sum(axis=0), b.series["accelerators_shipped"].sum(axis=0), rtol=1e-12
        )
    )
    upto = int(differ[0]) + 1 if differ.size else len(ua)
    assert (ua[:upto] >= ub[:upto] - 1e-9).all()


# --- the power constraint covers conventional load -----------------------------------------------------


@pytest.mark.parametrize("name", packaged_projection_names())
def test_power_constraint_every_year_including_conventional(name: str) -> None:
    t = simulate(packaged_projection(name))
    s = t.series
    added = s["facility_additions_w"] + s["conventional_additions_w"]
    assert (added <= s["buildout_limit_w"] * (1 + 1e-9) + 1.0).all()
    assert (s["facility_power_w"] <= s["ai_facility_capacity_w"] * (1 + 1e-9) + 1.0).all()
    utilisation = np.array([r.conventional.capacity_utilisation for r in packaged_projection(name).regions])
    conv_limit = s["conventional_capacity_w"] * utilisation[:, None] * SECONDS_PER_YEAR
    assert (s["conventional_energy_j"] <= conv_limit * (1 + 1e-9)).all()
    assert (s["conventional_energy_j"] <= s["conventional_demand_j"] * (1 + 1e-12)).all()


US_TIGHT = (
    "regions:\n  - {id: us, buildout: {max_additions: 2 GW, max_additions_growth_per_year: 0, lead_time_years: 0}}\n"
)


def test_conventional_first_worked_by_hand() -> None:
    result = project(_spec(US_TIGHT))
    us = result.row(2025, "us")
    # 2024: 138 TWh at 50 % utilisation occupies 138e12 Wh / 8,760 h / 0.5 = 31.507 GW
    # 2025: growth 0.087 - 0.057 / 11 = 8.182 %: 149.291 TWh wants 34.085 GW, 2.578 GW more than the 2 GW limit
    # conventional takes all 2 GW, AI none; served 33.507 GW x 0.5 x 8,760 h = 146.760 TWh
    assert us["conventional_demanded_twh"] == pytest.approx(138 * (1 + 0.087 - 0.057 / 11), rel=1e-9)
    assert us["conventional_capacity_gw"] == pytest.approx(138e3 / 8760 / 0.5 + 2.0, rel=1e-9)
    assert us["conventional_electricity_twh"] == pytest.approx((138e3 / 8760 / 0.5 + 2.0) * 0.5 * 8.76, rel=1e-9)
    assert us["conventional_unserved_twh"] == pytest.approx(2.531, abs=2e-3)
    assert us["ai_facility_additions_gw"] == pytest.approx(0.0, abs=1e-9)
    assert us["datacenter_additions_gw"] == pytest.approx(2.0, rel=1e-9)
    assert us["power_limited"] and us["unserved_demand_fraction"] > 0
    assert us["datacenter_electricity_twh"] == pytest.approx(
        us["ai_electricity_twh"] + us["conventional_electricity_twh"], rel=1e-12
    )


def test_pro_rata_sharing_gives_both_the_same_fraction() -> None:
    t = simulate(_spec(US_TIGHT + "  - {id: us, buildout: {sharing: pro-rata}}\n"))
    s, j = t.series, 1  # the US in 2025
    conv_need = s["conventional_demand_j"][0, j] / (SECONDS_PER_YEAR * 0.5) - s["conventional_capacity_w"][0, j - 1]
    fraction = s["conventional_additions_w"][0, j] / conv_need
    assert 0 < fraction < 1
    assert s["conventional_additions_w"][0, j] + s["ai_buildout_allowed_w"][0, j] == pytest.approx(2e9)
    first = project(_spec(US_TIGHT)).row(2025, "us")
    pro = project(_spec(US_TIGHT + "  - {id: us, buildout: {sharing: pro-rata}}\n")).row(2025, "us")
    assert pro["conventional_unserved_twh"] > first["conventional_unserved_twh"]
    assert pro["ai_facility_additions_gw"] > first["ai_facility_additions_gw"]


def test_without_the_power_constraint_conventional_is_all_served() -> None:
    result = project(_spec(US_TIGHT + "feedback: {power_constraint: false}\n"))
    assert all(r["conventional_unserved_twh"] == pytest.approx(0.0, abs=1e-9) for r in result.regions["us"])


# --- which references are calibration targets and which are checks -------------------------------------


def test_reference_roles() -> None:
    checks = {c["id"]: c for c in project(packaged_projection("base")).checks}
    assert checks["iea-world-2030"]["role"] == "calibration"
    assert checks["iea-world-2024"]["role"] == "calibration"
    assert checks["lbnl-us-2028"]["role"] == "check"
    assert checks["lbnl-us-2028"]["status"] == "ok"
    assert 325 <= checks["lbnl-us-2028"]["model"] <= 580


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("manufacturing: {packaging_wafers: {2026: -5}}\n", "manufacturing.packaging_wafers[2026]"),
        ("manufacturing: {accelerators_per_wafer: -1}\n", "manufacturing.accelerators_per_wafer"),
        ("manufacturing: {packaging_wafers_growth_per_year: -0.1}\n", "manufacturing.packaging_wafers_growth_per_year"),
        ("regions:\n  - {id: us, buildout: {sharing: first-come}}\n", "regions[0].buildout.sharing"),
        ("regions:\n  - {id: us, conventional: {capacity_utilisation: 0}}\n", "capacity_utilisation"),
    ],
)
def test_bad_supply_input_names_the_field(override: str, field: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _spec(override)
    assert field in str(info.value)


def test_cli_negative_cap_exit_2(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: base\nname: bad\nmanufacturing:\n  packaging_wafers: {2026: -1000}\n", encoding="utf-8")
    res = run_cli("project", str(bad))
    assert res.code == 2
    assert "manufacturing.packaging_wafers" in res.stderr and "bad.yaml line 4" in res.stderr


def test_cli_no_chips_at_all_is_reported_not_an_error(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    path = tmp_path / "nochips.yaml"
    path.write_text("extends: base\nname: nochips\nmanufacturing: {accelerators_per_wafer: 0}\n", encoding="utf-8")
    res = run_cli("project", str(path), "--json")
    assert res.code == 0, res.stderr
    years = json.loads(res.stdout)["years"]
    assert all(r["accelerators_shipped"] == 0 for r in years[1:])
    assert all(r["chip_limited"] for r in years[1:] if r["accelerators_demanded"] > 0)
    assert max(r["unserved_demand_fraction"] for r in years) > 0.3
