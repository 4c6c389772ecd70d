"""One unit registry for fivelayer, and parsing of quantities written by people.

Quantities live at the edges: catalog strings such as ``"141 GB"`` or ``"4.8 TB/s"`` and user input such
as ``"100 MW"``. Inside the engines everything is a plain SI float (or a NumPy array of them). This
module turns the first into the second, checking the dimension on the way.

``GB`` is 10^9 bytes and ``GiB`` is 2^30 bytes; the two are never confused.

>>> to_si("141 GB", "byte")
141000000000.0
>>> to_si("4.8 TB/s", "byte/s")
4800000000000.0
>>> to_si("0.07 USD/kWh", "USD/J") * 3.6e6
0.07
"""

from __future__ import annotations

import functools
import re
from typing import Any

import pint

from fivelayer.core.errors import UnitError

__all__ = ["SI_UNITS", "parse_count", "parse_quantity", "to_si", "ureg"]


def _build_registry() -> Any:
    registry: Any = pint.UnitRegistry(autoconvert_offset_to_baseunit=True, cache_folder=None)
    # Counted things get dimensions of their own so that "FLOP/s" can never be mistaken for "1/s".
    registry.define("FLOP = [compute] = flop = FLOPS_unit")
    registry.define("token = [token] = tok = tokens")
    registry.define("request = [request] = req = requests")
    registry.define("USD = [currency] = usd = dollar = US_dollar")
    registry.define("gCO2 = gram = gco2")
    registry.define("tCO2 = 1e6 * gram = tco2")
    return registry


ureg: Any = _build_registry()

#: The SI unit that each dimension name used in the catalog is stored in.
SI_UNITS: dict[str, str] = {
    "byte": "byte",
    "byte/s": "byte/second",
    "FLOP": "FLOP",
    "FLOP/s": "FLOP/second",
    "W": "watt",
    "J": "joule",
    "s": "second",
    "m": "meter",
    "kg": "kilogram",
    "g/J": "gram/joule",
    "USD": "USD",
    "USD/J": "USD/joule",
    "USD/W": "USD/watt",
    "m^3/J": "meter**3/joule",
    "dimensionless": "dimensionless",
    "token": "token",
    "1/s": "1/second",
}

_ALIASES = {
    # Industry shorthand that pint does not know, rewritten before parsing.
    "TFLOPS": "TFLOP/s",
    "PFLOPS": "PFLOP/s",
    "GFLOPS": "GFLOP/s",
    "EFLOPS": "EFLOP/s",
    "TOPS": "TFLOP/s",
    "POPS": "PFLOP/s",
    "Gbps": "Gbit/s",
    "Tbps": "Tbit/s",
    "Mb/s": "Mbit/s",
    "Gb/s": "Gbit/s",
    "Tb/s": "Tbit/s",
    "gCO2/kWh": "g/kWh",
    "gCO2e/kWh": "g/kWh",
    "$": "USD",
}
_ALIAS_RE = re.compile(
    r"(?<![A-Za-z])(" + "|".join(re.escape(k) for k in sorted(_ALIASES, key=len, reverse=True)) + r")(?![A-Za-z0-9])"
)


def _normalise(text: str) -> str:
    text = text.strip().replace(",", "").replace("µ", "u")
    return _ALIAS_RE.sub(lambda m: _ALIASES[m.group(1)], text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> Any:
    return ureg.Quantity(_normalise(text))


def parse_quantity(value: str | float | int) -> Any:
    """Parse ``value`` into a pint Quantity; a bare number is dimensionless."""
    if isinstance(value, bool):
        raise UnitError(f"expected a quantity, got the boolean {value!r}")
    if isinstance(value, int | float):
        return ureg.Quantity(float(value))
    if not isinstance(value, str):
        raise UnitError(f"expected a quantity such as '141 GB', got {value!r}")
    try:
        return _parse_cached(value)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError, AssertionError) as exc:
        raise UnitError(f"cannot read {value!r} as a quantity ({exc})") from None


def to_si(value: str | float | int, dimension: str) -> float:
    """Return ``value`` as a float in the SI unit of ``dimension`` (a key of :data:`SI_UNITS`).

    A bare number is taken to be in SI already. A string must carry a unit of the right dimension.

    >>> to_si("700 W", "W")
    700.0
    >>> to_si(3.5, "W")
    3.5
    >>> to_si("989.4 TFLOP/s", "FLOP/s")
    989400000000000.0
    """
    target = SI_UNITS[dimension]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    quantity = parse_quantity(value)
    try:
        magnitude = quantity.to(target).magnitude
    except pint.errors.DimensionalityError:
        raise UnitError(
            f"{value!r} is not a {dimension} quantity (it is in {quantity.units}); "
            f"write it in units such as {_example(dimension)}"
        ) from None
    return float(magnitude)


def _example(dimension: str) -> str:
    return {
        "byte": "'80 GB' or '141 GB'",
        "byte/s": "'3.35 TB/s' or '900 GB/s'",
        "FLOP/s": "'989 TFLOP/s'",
        "FLOP": "'3.1e23 FLOP'",
        "W": "'700 W' or '100 MW'",
        "J": "'1 kWh' or '3.6 MJ'",
        "USD/J": "'0.07 USD/kWh'",
        "USD": "'25000 USD'",
        "USD/W": "'10 USD/W'",
        "g/J": "'400 g/kWh'",
        "m^3/J": "'1.8 L/kWh'",
        "s": "'3 s' or '200 ms'",
    }.get(dimension, repr(SI_UNITS[dimension]))


_COUNT_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_count(value: str | float | int, what: str = "count") -> float:
    """A large count as people write it: ``15T``, ``366B``, ``1.5e13``, ``2,000,000`` (tokens, users...).

    >>> parse_count("15T"), parse_count("366b"), parse_count("1.5e13"), parse_count(2000)
    (15000000000000.0, 366000000000.0, 15000000000000.0, 2000.0)
    """
    if isinstance(value, bool):
        raise UnitError(f"{what} must be a number, got {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = re.fullmatch(
            r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmbgtp]?)\s*(?:tokens?)?\s*", value.replace(",", "").lower()
        )
        if not match:
            raise UnitError(f"{what} {value!r} is not a count; write e.g. 15T, 366B or 1.5e13")
        number = float(match.group(1)) * _COUNT_SUFFIX[match.group(2)]
    if not number > 0:
        raise UnitError(f"{what} must be positive (got {value!r})")
    return number
