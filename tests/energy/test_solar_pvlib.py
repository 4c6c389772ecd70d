"""pvlib solar path: clear-sky irradiance against a hand value, the hourly AC series, and the missing extra."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from fivelayer.core.errors import FivelayerError
from fivelayer.energy.solar import INVERTER_EFFICIENCY, PV_SYSTEM_LOSSES, SolarExtraMissing, require_pvlib

pvlib = pytest.importorskip("pvlib")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pvlib's use of pandas APIs newer pandas deprecates
def test_clear_sky_ghi_at_equinox_noon_matches_haurwitz_by_hand() -> None:
    # 20 March 2023, 12:00 UTC at 40 N, 0 E (solar noon within ~8 minutes): zenith = latitude - declination
    # = 40.0 - (-0.2) ~ 40.2 deg. Haurwitz's clear-sky model (Haurwitz 1945; Reno, Hansen & Stein 2012,
    # SAND2012-2389, eq. 2): GHI = 1098 cos z exp(-0.057 / cos z) = 1098 x 0.7639 x exp(-0.0746) = 778 W/m2.
    # Ineichen-Perez with pvlib's bundled Linke turbidity (about 4 there in March) must agree within 10 %.
    import pandas as pd

    times = pd.DatetimeIndex([pd.Timestamp("2023-03-20 12:00", tz="UTC")])
    site = pvlib.location.Location(40.0, 0.0, altitude=0.0)
    zenith = float(site.get_solarposition(times)["apparent_zenith"].iloc[0])
    assert zenith == pytest.approx(40.2, abs=0.2)
    cos_z = math.cos(math.radians(40.2))
    hand = 1098.0 * cos_z * math.exp(-0.057 / cos_z)
    assert hand == pytest.approx(778.0, abs=1.0)
    ghi = float(site.get_clearsky(times, model="ineichen")["ghi"].iloc[0])
    assert ghi == pytest.approx(hand, rel=0.10)


def test_hourly_ac_series_shape_and_energy() -> None:
    from fivelayer.energy.solar import pvlib_clear_sky_ac

    ac = pvlib_clear_sky_ac(39.04, -77.47, -5.0)  # Ashburn, Virginia, local standard time
    assert ac.shape == (8760,)
    assert np.all(ac >= 0.0) and np.all(ac <= 1.0)
    days = ac.reshape(365, 24)
    assert np.all(days[:, 0] == 0.0) and np.all(days[:, 23] == 0.0)  # midnight is dark
    assert int(np.argmax(days.mean(axis=0))) in (11, 12)  # solar noon ~12:10 local standard time
    # Annual energy per W is the sum of the hours; the clear-sky capacity factor can never exceed the ceiling
    # of POA (at most ~1.1 kW/m2) x losses, and with the night and the winter it lands well below it.
    assert float(ac.sum()) == pytest.approx(8760 * float(ac.mean()))
    ceiling = (1.0 - PV_SYSTEM_LOSSES) * INVERTER_EFFICIENCY
    assert 0.15 < float(ac.mean()) < 0.3 < ceiling
    # Southern hemisphere: the array faces north and its summer is December.
    south = pvlib_clear_sky_ac(-33.87, 151.21, 10.0).reshape(365, 24)
    assert south[:31].sum() > south[151:181].sum()


def test_plan_with_pvlib_scales_to_the_catalog_capacity_factor() -> None:
    from fivelayer.engines.analytic import plan
    from fivelayer.scenario import default_scenario

    base = default_scenario()
    site = base.site.model_copy(
        update={"onsite": base.site.onsite.model_copy(update={"solar": 50e6, "solar_model": "pvlib"})}
    )
    result = plan(base.model_copy(update={"site": site}))
    energy = result.layers["energy"]
    assert energy["solar_model"] == "pvlib"
    assert 0.15 < energy["solar_clear_sky_capacity_factor"] < 0.3
    # The array produces the catalog's capacity factor (0.24, LBNL median): used plus curtailed over a year.
    produced = energy["solar_mwh"] + energy["solar_curtailed_mwh"]
    assert produced == pytest.approx(50.0 * 8760 * 0.24, rel=1e-9)


def test_missing_pvlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pvlib", None)  # import pvlib now raises ModuleNotFoundError
    with pytest.raises(SolarExtraMissing) as info:
        require_pvlib("scenario.yaml line 9 (site.onsite.solar_model)")
    message = str(info.value)
    assert "pip install 'fivelayer[solar]'" in message
    assert "scenario.yaml line 9" in message
    assert isinstance(info.value, FivelayerError)  # the CLI's exit code 2 path
    assert isinstance(info.value, ModuleNotFoundError) and info.value.name == "pvlib"


def test_missing_pvlib_exits_2_through_the_cli(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from fivelayer.energy import solar
    from fivelayer.interfaces.cli.app import main

    solar._clear_sky_ac.cache_clear()
    monkeypatch.setitem(sys.modules, "pvlib", None)
    scenario = Path(str(tmp_path)) / "solar.yaml"
    scenario.write_text(
        "name: pvlib solar\n"
        "site:\n  region: us-az\n  onsite:\n    solar: 20 MW\n    solar_model: pvlib\n"
        "deployments:\n  - {name: support, system: dgx-h200, model: llama-3.1-70b,\n"
        "     serves: [customer-service-assistant]}\n"
        "applications:\n  - {id: customer-service-assistant, users: 1_000_000}\n"
    )
    assert main(["plan", str(scenario), "--json"]) == 2
    err = capsys.readouterr().err
    assert "fivelayer[solar]" in err and "line 6" in err and "Traceback" not in err
