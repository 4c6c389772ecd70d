"""Hourly carbon intensity: profiles, the annual average kept, and plan's location-based CO2."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fivelayer.catalog import default_catalog
from fivelayer.energy.carbon import (
    DAYS_PER_MONTH,
    carbon_emissions_t,
    hourly_carbon_intensity,
    relative_profile_hourly,
)
from fivelayer.energy.grid import GridRegion


def test_flat_load_emissions_by_hand() -> None:
    # 10 MW flat for a year = 87,600 MWh; at 269 g/kWh (eGRID SRVC 2023): 87,600 x 269 / 1,000 = 23,564.4 t.
    assert carbon_emissions_t(np.full(8760, 10e6), 269.0) == pytest.approx(23_564.4)


def test_flat_profile_equals_annual_average() -> None:
    load = np.random.default_rng(7).uniform(0, 50e6, 8760)
    flat = hourly_carbon_intensity(300.0, [[0.97] * 24] * 12)  # any constant profile normalises to 1
    assert carbon_emissions_t(load, flat) == pytest.approx(carbon_emissions_t(load, 300.0), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (12, 24), elements=st.floats(0.2, 3.0)),
    st.floats(1e5, 1e8),
    st.floats(1.0, 1000.0),
)
def test_profile_keeps_the_annual_average(profile: np.ndarray, flat_w: float, annual: float) -> None:
    hourly = hourly_carbon_intensity(annual, profile.tolist())
    assert hourly.shape == (8760,)
    assert float(hourly.mean()) == pytest.approx(annual, rel=1e-12)
    # A flat load emits the annual average x energy whatever the shape.
    energy_mwh = flat_w * 8760 / 1e6
    assert carbon_emissions_t(np.full(8760, flat_w), hourly) == pytest.approx(energy_mwh * annual / 1e3, rel=1e-9)


def test_each_day_takes_its_months_row() -> None:
    table = [[float(m + 1)] * 24 for m in range(12)]
    hourly = relative_profile_hourly(table).reshape(365, 24)
    starts = np.cumsum((0, *DAYS_PER_MONTH[:-1]))
    ratios = hourly[starts, 0] / hourly[0, 0]
    np.testing.assert_allclose(ratios, np.arange(1, 13))
    assert hourly[30, 5] == hourly[0, 5] and hourly[31, 5] == 2 * hourly[0, 5]  # 31 January vs 1 February


def test_region_profile_must_be_relative() -> None:
    record = default_catalog().grid_regions.get("us-ca").model_dump()
    record["carbon_intensity_profile"] = [[199.0] * 24] * 12  # absolute g/kWh instead of relative
    with pytest.raises(ValueError, match="mean over the year must be 1"):
        GridRegion.model_validate(record)
    record["carbon_intensity_profile"] = [[1.0] * 23] * 12
    with pytest.raises(ValueError, match="expected 24"):
        GridRegion.model_validate(record)


def test_catalog_profiles_show_californias_solar_dip() -> None:
    # CAISO's midday solar makes its grid cleanest around noon and dirtiest in the evening (EIA-930, 2022).
    ca = default_catalog().grid_regions.get("us-ca")
    assert ca.carbon_intensity_profile is not None
    hourly = hourly_carbon_intensity(ca.carbon_intensity_g_per_kwh, ca.carbon_intensity_profile).reshape(365, 24)
    by_hour = hourly.mean(axis=0)
    assert by_hour[12] < 0.8 * ca.carbon_intensity_g_per_kwh < by_hour[20]
    regions = {r.id for r in default_catalog().grid_regions if r.carbon_intensity_profile is not None}
    assert {"us-va", "us-tx", "us-ca", "us-ga", "us-az", "us-oh"} <= regions


def test_every_region_has_sourced_coordinates_and_clock() -> None:
    for region in default_catalog().grid_regions:
        assert region.latitude_deg is not None and region.longitude_deg is not None, region.id
        assert region.utc_offset_hours is not None, region.id
        cited = {f for s in region.sources for f in s.fields}
        assert {"latitude_deg", "longitude_deg", "utc_offset_hours"} <= cited, region.id
        if region.carbon_intensity_profile is not None:
            assert "carbon_intensity_profile" in cited, region.id
