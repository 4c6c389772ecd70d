"""Racks, fabric and facility overhead, worked by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fivelayer import InfeasibleConfiguration
from fivelayer.infrastructure.sizing import fabric, facility_overhead_w, racks_for


def test_racks() -> None:
    assert racks_for(10, 10_200.0, None, 40_000.0) == 4  # 3 DGX H100 per 40 kW rack
    assert racks_for(10, 10_200.0, None, 132_000.0) == 3  # density allows 12, space 4 per rack
    assert racks_for(7, 120_000.0, 1.0, 132_000.0) == 7  # NVL72: a rack each
    with pytest.raises(InfeasibleConfiguration, match="denser cooling"):
        racks_for(1, 120_000.0, None, 20_000.0)


def test_two_tier_fabric_by_hand() -> None:
    # 2,048 endpoints on 64-port switches: 64 leaves (32 down, 32 up), 2,048 uplinks / 64 = 32 spines.
    f = fabric(2048, 64)
    assert (f.tiers, f.switches) == (2, 96)
    assert f.transceivers == 2 * 2048 + 2 * 2048


@given(st.integers(1, 200_000), st.sampled_from([32, 64, 128]))
def test_fabric_grows_with_endpoints(n: int, radix: int) -> None:
    assert fabric(n + 1, radix).switches >= fabric(n, radix).switches
    assert fabric(n, radix).transceivers >= 2 * n


def test_pue_at_design_and_part_load() -> None:
    # PUE 1.2 at 100 MW design: 20 MW overhead at full load; at half load 30 % stays fixed:
    # 20 x (0.3 + 0.7 x 0.5) = 13 MW, so PUE at half load = (50 + 13) / 50 = 1.26.
    assert facility_overhead_w(100e6, 100e6, 1.2) == pytest.approx(20e6)
    assert (50e6 + facility_overhead_w(50e6, 100e6, 1.2)) / 50e6 == pytest.approx(1.26)
