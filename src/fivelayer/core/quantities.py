"""Annotated float types for catalog and scenario fields that carry units.

A field typed ``Bytes`` accepts ``"141 GB"`` or a bare number of bytes and stores a float in bytes. The
dimension is checked; a value in the wrong unit is a validation error naming the expected unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from fivelayer.core.units import to_si

__all__ = [
    "Bytes",
    "BytesPerSecond",
    "CubicMetersPerJoule",
    "Flop",
    "FlopPerSecond",
    "Fraction",
    "GramsPerJoule",
    "Joules",
    "Meters",
    "NonNegative",
    "Positive",
    "Seconds",
    "Usd",
    "UsdPerJoule",
    "UsdPerWatt",
    "Watts",
]


def _si(dimension: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return to_si(value, dimension)
        return value

    return convert


def _non_negative(value: float) -> float:
    if value < 0:
        raise ValueError(f"must not be negative (got {value:g})")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise ValueError(f"must be greater than zero (got {value:g})")
    return value


def _fraction(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"must be a fraction between 0 and 1 (got {value:g})")
    return value


NonNegative = AfterValidator(_non_negative)
Positive = AfterValidator(_positive)

Bytes = Annotated[float, BeforeValidator(_si("byte")), NonNegative]
BytesPerSecond = Annotated[float, BeforeValidator(_si("byte/s")), NonNegative]
Flop = Annotated[float, BeforeValidator(_si("FLOP")), NonNegative]
FlopPerSecond = Annotated[float, BeforeValidator(_si("FLOP/s")), NonNegative]
Watts = Annotated[float, BeforeValidator(_si("W")), NonNegative]
Joules = Annotated[float, BeforeValidator(_si("J")), NonNegative]
Seconds = Annotated[float, BeforeValidator(_si("s")), NonNegative]
Meters = Annotated[float, BeforeValidator(_si("m")), NonNegative]
Usd = Annotated[float, BeforeValidator(_si("USD")), NonNegative]
UsdPerJoule = Annotated[float, BeforeValidator(_si("USD/J")), NonNegative]
UsdPerWatt = Annotated[float, BeforeValidator(_si("USD/W")), NonNegative]
GramsPerJoule = Annotated[float, BeforeValidator(_si("g/J")), NonNegative]
CubicMetersPerJoule = Annotated[float, BeforeValidator(_si("m^3/J")), NonNegative]
Fraction = Annotated[float, BeforeValidator(_si("dimensionless")), AfterValidator(_fraction)]


def _in(unit: str) -> Callable[[Any], Any]:
    from fivelayer.core.errors import UnitError
    from fivelayer.core.units import parse_quantity

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            quantity = parse_quantity(value)
            try:
                return float(quantity.to(unit).magnitude)
            except Exception:
                raise UnitError(f"{value!r} cannot be converted to {unit}") from None
        return value

    return convert


# Fields whose names say a conventional non-SI unit: a string is converted to it, a bare number is taken as it.
GramsPerKwh = Annotated[float, BeforeValidator(_in("g/kWh")), NonNegative]
UsdPerKwh = Annotated[float, BeforeValidator(_in("USD/kWh")), NonNegative]
LitresPerKwh = Annotated[float, BeforeValidator(_in("L/kWh")), NonNegative]
SquareMillimetres = Annotated[float, BeforeValidator(_in("mm**2")), NonNegative]
Kilograms = Annotated[float, BeforeValidator(_in("kg")), NonNegative]


def _with_unit(dimension: str) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected a quantity with a unit, such as {_EXAMPLES.get(dimension, dimension)}")
        if isinstance(value, int | float):
            if value == 0:
                return 0.0
            raise ValueError(f"{value!r} has no unit; write it with one, such as {_EXAMPLES.get(dimension, dimension)}")
        return to_si(value, dimension)

    return convert


_EXAMPLES = {
    "W": "'100 MW'",
    "J": "'200 MWh'",
    "USD": "'2e9 USD'",
    "USD/J": "'0.07 USD/kWh'",
    "s": "'2 s' or '200 ms'",
    "byte": "'80 GB'",
    "USD/W": "'10 USD/W'",
}


# User input (scenario files) must carry a unit: "100 MW", not 100. Zero may be written bare.
WattsWithUnit = Annotated[float, BeforeValidator(_with_unit("W")), NonNegative]
JoulesWithUnit = Annotated[float, BeforeValidator(_with_unit("J")), NonNegative]
SecondsWithUnit = Annotated[float, BeforeValidator(_with_unit("s")), NonNegative]
UsdPerJouleWithUnit = Annotated[float, BeforeValidator(_with_unit("USD/J")), NonNegative]
