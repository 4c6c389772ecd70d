"""Units: catalog and user strings parse to SI floats of the right dimension."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fivelayer.core.errors import UnitError
from fivelayer.core.units import to_si


@pytest.mark.parametrize(
    ("text", "dimension", "expected"),
    [
        ("141 GB", "byte", 141e9),  # H200 datasheet capacity, decimal GB
        ("80 GiB", "byte", 80 * 2**30),
        ("4.8 TB/s", "byte/s", 4.8e12),
        ("900 GB/s", "byte/s", 9e11),
        ("400 Gbps", "byte/s", 50e9),  # one ConnectX-7 port: 400 Gb/s = 50 GB/s
        ("800 Gb/s", "byte/s", 100e9),  # lower-case b is bits, never pint's gilbert
        ("100 MW", "W", 1e8),
        ("700 W", "W", 700.0),
        ("989.5 TFLOP/s", "FLOP/s", 989.5e12),
        ("989.5 TFLOPS", "FLOP/s", 989.5e12),
        ("3.8e25 FLOP", "FLOP", 3.8e25),
        ("1 MWh", "J", 3.6e9),
        ("200 ms", "s", 0.2),
        ("25,000 USD", "USD", 25000.0),
    ],
)
def test_strings_parse_to_si(text: str, dimension: str, expected: float) -> None:
    assert to_si(text, dimension) == pytest.approx(expected, rel=1e-12)


def test_price_per_kwh_is_usd_per_joule() -> None:
    # 0.07 USD/kWh over 3.6e6 J/kWh
    assert to_si("0.07 USD/kWh", "USD/J") == pytest.approx(0.07 / 3.6e6)


def test_carbon_intensity_in_grams_per_joule() -> None:
    assert to_si("360 g/kWh", "g/J") == pytest.approx(1e-4)


def test_bare_number_is_si() -> None:
    assert to_si(700, "W") == 700.0


@pytest.mark.parametrize(("text", "dimension"), [("141 GB", "W"), ("100 MW", "byte/s"), ("3 s", "FLOP/s")])
def test_wrong_dimension_is_refused_with_an_example(text: str, dimension: str) -> None:
    with pytest.raises(UnitError, match="is not a"):
        to_si(text, dimension)


@pytest.mark.parametrize("text", ["141 gigabananas", "", "fast", "10 MW MW"])
def test_garbage_is_a_unit_error(text: str) -> None:
    with pytest.raises(UnitError):
        to_si(text, "W")


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_prefix_round_trip(x: float) -> None:
    """x kW == 1000 x W and x MWh == 3.6e9 x J, to float precision."""
    assert math.isclose(to_si(f"{x!r} kW", "W"), 1e3 * x, rel_tol=1e-12)
    assert math.isclose(to_si(f"{x!r} MWh", "J"), 3.6e9 * x, rel_tol=1e-12)
