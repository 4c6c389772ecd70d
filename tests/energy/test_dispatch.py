"""Hourly dispatch: conservation, the grid cap, solar geometry and a bill worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fivelayer.energy.dispatch import dispatch, solar_profile


def test_flat_load_bill_by_hand() -> None:
    # 50 MW flat for a year at 0.08 USD/kWh: 50,000 kW x 8,760 h = 438,000 MWh -> 35.04 million USD.
    flows = dispatch(np.full(8760, 50e6), grid_cap_w=math.inf)
    energy_kwh = flows.grid_w.sum() / 1e3
    assert energy_kwh == pytest.approx(438_000_000)
    assert energy_kwh * 0.08 == pytest.approx(35.04e6)


@settings(max_examples=30, deadline=None)
@given(
    st.floats(1e6, 1e8),
    st.floats(0.0, 2e8),
    st.floats(0.0, 4e8),
    st.floats(0.0, 1e8),
    st.floats(0.0, 5e7),
)
def test_energy_balance_and_cap(peak: float, cap: float, battery_wh: float, solar_peak: float, gas: float) -> None:
    rng = np.random.default_rng(1)
    load = peak * rng.random(24 * 14)
    solar = solar_peak * solar_profile(40.0, hours=load.size)
    flows = dispatch(load, cap, solar, battery_wh, battery_wh / 4, 0.9, gas)
    supplied = flows.solar_used_w + flows.battery_discharge_w + flows.grid_w + flows.gas_w + flows.unserved_w
    np.testing.assert_allclose(supplied, load, rtol=1e-9, atol=1e-3)
    assert np.all(flows.grid_w <= cap + 1e-6)
    assert np.all(flows.battery_soc_wh <= battery_wh + 1e-6)
    assert np.all(flows.unserved_w >= -1e-9)


def test_battery_shifts_solar_to_night() -> None:
    load = np.full(48, 10e6)
    solar = 40e6 * solar_profile(35.0, hours=48)
    no_battery = dispatch(load, 0.0, solar)
    battery = dispatch(load, 0.0, solar, battery_wh=100e6, battery_w=20e6)
    assert battery.unserved_w.sum() < no_battery.unserved_w.sum()


def test_solar_is_zero_at_night_and_peaks_at_noon() -> None:
    day = solar_profile(0.0, hours=24)
    assert day[0] == 0.0 and day[23] == 0.0
    assert int(np.argmax(day)) in (11, 12)
