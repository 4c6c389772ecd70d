"""PUE against outdoor temperature and power-chain redundancy, worked by hand, and through plan."""

from __future__ import annotations

import numpy as np
import pytest

from fivelayer import Scenario
from fivelayer.catalog import default_catalog
from fivelayer.engines.analytic import StackResult, plan
from fivelayer.infrastructure.sizing import (
    facility_capex_factor,
    facility_overhead_hourly_w,
    hourly_temperature_c,
    redundancy_capacity,
    redundancy_overhead_w,
    ups_efficiency,
)


def _pue(design_id: str, load: float, outdoor_c: float) -> float:
    """Hourly PUE of a catalog design at a load fraction and outdoor temperature, 1 MW design IT."""
    d = default_catalog().facilities.get(design_id)
    it = load * 1e6
    overhead = facility_overhead_hourly_w(it, 1e6, d.pue, outdoor_c, d.free_cooling_limit_c, d.pue_per_degree_c)
    return float((it + overhead) / it)


# --- the hourly temperature series ---------------------------------------------------------------------


def test_daily_cycle_around_a_constant_month() -> None:
    # 20 degC every month, +/-4 degC: 24 degC at 15:00, 16 degC at 03:00, the year's mean unchanged.
    t = hourly_temperature_c([20.0] * 12, amplitude_c=4.0)
    assert t.shape == (8760,)
    assert t.mean() == pytest.approx(20.0)
    assert t[15] == pytest.approx(24.0)
    assert t[3] == pytest.approx(16.0)
    assert t[24 * 200 + 15] == pytest.approx(24.0)


def test_seasons_follow_the_monthly_means() -> None:
    dubai = default_catalog().grid_regions.get("ae").monthly_mean_temperature_c
    assert dubai is not None
    t = hourly_temperature_c(dubai, amplitude_c=0.0)
    # Mid-July (181 days to 1 July + 15.5 days = hour 4,716) sits on July's mean; mid-January on January's.
    assert t[(181 * 24) + 372] == pytest.approx(dubai[6], abs=0.01)
    assert t[372] == pytest.approx(dubai[0], abs=0.01)
    # The annual mean matches the months' mean.
    assert t.mean() == pytest.approx(np.mean(dubai), abs=0.1)
    with pytest.raises(ValueError, match="12 monthly"):
        hourly_temperature_c([10.0] * 11)


# --- PUE against temperature -----------------------------------------------------------------------------


def test_hot_hour_by_hand() -> None:
    # PUE 1.2 at 100 MW design, free cooling to 24 degC, +0.005 per degC above it.
    # Full load at 30 degC: 20 MW + 0.005 x 6 x 100 MW = 23 MW -> PUE 1.23.
    assert facility_overhead_hourly_w(100e6, 100e6, 1.2, 30.0, 24.0, 0.005) == pytest.approx(23e6)
    # At or below the limit nothing changes: 20 MW, PUE 1.2.
    assert facility_overhead_hourly_w(100e6, 100e6, 1.2, 24.0, 24.0, 0.005) == pytest.approx(20e6)
    # Half load at 30 degC: 20 x (0.3 + 0.7 x 0.5) = 13 MW, plus 0.005 x 6 x 50 = 1.5 MW -> (50 + 14.5) / 50.
    half = facility_overhead_hourly_w(50e6, 100e6, 1.2, 30.0, 24.0, 0.005)
    assert (50e6 + half) / 50e6 == pytest.approx(1.29)


def test_air_cooling_pue_in_a_hot_hour_is_above_the_annual_design_pue() -> None:
    # Hyperscale air: 1.10, free cooling to 24 degC, 0.005 per degC: at 35 degC 1.10 + 0.005 x 11 = 1.155.
    assert _pue("air-cooled-hyperscale", 1.0, 35.0) == pytest.approx(1.155)
    # Legacy air: 1.58, limit 15 degC, 0.028 per degC: at 35 degC 1.58 + 0.028 x 20 = 2.14.
    assert _pue("air-cooled", 1.0, 35.0) == pytest.approx(2.14)
    assert _pue("air-cooled", 1.0, 5.0) == pytest.approx(1.58)


def test_liquid_cooling_is_less_sensitive_to_heat_than_air() -> None:
    # Rise of full-load PUE from 10 degC to 35 degC:
    #   legacy air 0.028 x 20 = 0.56; direct-to-chip 0.007 x 10 = 0.07;
    #   hyperscale air 0.005 x 11 = 0.055; immersion 0.0024 x 10 = 0.024.
    rise = {d: _pue(d, 1.0, 35.0) - _pue(d, 1.0, 10.0) for d in
            ("air-cooled", "air-cooled-hyperscale", "direct-to-chip", "immersion")}  # fmt: skip
    assert rise["air-cooled"] == pytest.approx(0.56)
    assert rise["direct-to-chip"] == pytest.approx(0.07)
    assert rise["immersion"] == pytest.approx(0.024)
    assert rise["direct-to-chip"] < rise["air-cooled"]
    assert rise["immersion"] < rise["air-cooled-hyperscale"] < rise["air-cooled"]


# --- redundancy --------------------------------------------------------------------------------------------


def test_redundancy_capacity_cost_and_losses_by_hand() -> None:
    assert [redundancy_capacity(r) for r in ("N", "N+1", "2N")] == [1.0, 1.25, 2.0]
    # Electrical share 0.4 of build cost, baseline N+1: N 1 + 0.4 x (0.8 - 1) = 0.92; 2N 1 + 0.4 x 0.6 = 1.24.
    factors = [facility_capex_factor(r, "N+1", 0.4) for r in ("N", "N+1", "2N")]
    assert factors == pytest.approx([0.92, 1.0, 1.24])
    assert factors[2] > factors[1] > factors[0]
    # UPS no-load loss 1 % of rating on 100 MW: 2N installs 0.75 W more per W than N+1 -> +0.75 MW; N saves 0.25.
    assert redundancy_overhead_w(100e6, "2N", "N+1", 0.01) == pytest.approx(0.75e6)
    assert redundancy_overhead_w(100e6, "N", "N+1", 0.01) == pytest.approx(-0.25e6)


def test_ups_efficiency_falls_at_the_lower_load_2n_implies() -> None:
    # At design load a module of N carries 100 %, of N+1 (4 + 1) 80 %, of 2N 50 % of its rating.
    # x / (x + 0.01 + 0.03 x): 1 / 1.04 = 0.9615; 0.8 / 0.834 = 0.9592; 0.5 / 0.525 = 0.9524.
    eff = [float(ups_efficiency(x, 0.01, 0.03)) for x in (1.0, 0.8, 0.5)]
    assert eff == pytest.approx([1 / 1.04, 0.8 / 0.834, 0.5 / 0.525])
    assert eff[0] > eff[1] > eff[2]


# --- through plan ----------------------------------------------------------------------------------------

SCENARIO = """\
name: climate
site: {{region: "{region}"}}
facility: {{design: {design}, redundancy: "{redundancy}"}}
deployments:
  - {{name: chat, system: dgx-h200, model: llama-3.1-70b, precision: fp8, serves: [customer-service-assistant]}}
applications:
  - {{id: customer-service-assistant, users: 2000000}}
"""


def _plan(region: str = "us-va", design: str = "air-cooled-hyperscale", redundancy: str = "N+1") -> StackResult:
    text = SCENARIO.format(region=region, design=design, redundancy=redundancy)
    return plan(Scenario.from_yaml_text(text, "climate.yaml"))


def test_plan_pue_is_higher_in_a_hot_region() -> None:
    dublin, singapore = _plan("ie"), _plan("sg")
    assert singapore.layers["infrastructure"]["pue_annual"] > dublin.layers["infrastructure"]["pue_annual"]
    assert singapore.totals["energy_mwh_per_year"] > dublin.totals["energy_mwh_per_year"]
    # The same IT load, so the difference is all facility overhead.
    assert singapore.totals["it_energy_mwh_per_year"] == pytest.approx(dublin.totals["it_energy_mwh_per_year"])


def test_plan_redundancy_raises_cost_and_energy() -> None:
    results = {r: _plan(redundancy=r) for r in ("N", "N+1", "2N")}
    capex = {r: res.layers["economics"]["capex_detail_usd"]["facility"] for r, res in results.items()}
    energy = {r: res.totals["energy_mwh_per_year"] for r, res in results.items()}
    assert capex["2N"] > capex["N+1"] > capex["N"]
    assert capex["2N"] / capex["N+1"] == pytest.approx(1.24)
    assert energy["2N"] > energy["N+1"] > energy["N"]


CASES = [("ae", "air-cooled", "2N"), ("sg", "direct-to-chip", "N"), ("no", "immersion", "N+1")]


@pytest.mark.parametrize(("region", "design", "redundancy"), CASES)
def test_plan_keeps_energy_equal_to_it_times_hourly_pue(region: str, design: str, redundancy: str) -> None:
    result = _plan(region, design, redundancy)
    it, facility = result.hourly["it_w"], result.hourly["facility_w"]
    pue_hourly = facility / it
    assert facility.sum() == pytest.approx((it * pue_hourly).sum())
    assert result.totals["energy_mwh_per_year"] == pytest.approx(facility.sum() / 1e6)
    infra = result.layers["infrastructure"]
    assert np.all(pue_hourly >= infra["pue_design"] - 1e-9)
    assert facility.max() <= result.totals["facility_power_mw"] * 1e6 * (1 + 1e-9)
    assert infra["pue_peak"] >= infra["pue_design"]


def test_every_region_has_a_sourced_climate() -> None:
    for region in default_catalog().grid_regions:
        months = region.monthly_mean_temperature_c
        assert months is not None and len(months) == 12, region.id
        assert region.latitude_deg is not None and region.mean_temperature_c is not None, region.id
        assert -15.0 < min(months) <= max(months) < 40.0, region.id
        # The listed annual mean agrees with its months (Singapore's months are rounded to whole degrees).
        assert region.mean_temperature_c == pytest.approx(np.mean(months), abs=0.5), region.id
        cited = {f for s in region.sources for f in s.fields}
        assert {"mean_temperature_c", "monthly_mean_temperature_c", "latitude_deg"} <= cited, region.id
        # Seasons: the warmest month is in the northern summer north of the equator, and vice versa.
        warmest = int(np.argmax(months))
        if region.latitude_deg > 10:
            assert 4 <= warmest <= 8, region.id
        elif region.latitude_deg < -10:
            assert warmest in (0, 1, 11), region.id
