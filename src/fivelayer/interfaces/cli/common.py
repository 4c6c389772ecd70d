"""Helpers shared by the command-line modules: the catalog with the user's files, JSON-ready values, the
``--efficiency`` override."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.core.errors import FivelayerError, did_you_mean
from fivelayer.models.step import Efficiency

__all__ = ["EFFICIENCY_HELP", "EFFICIENCY_RANGES", "catalog_with", "jsonable", "with_efficiency"]

#: The fields ``--efficiency`` may set, and the values each accepts (low, high, whether low itself is allowed).
EFFICIENCY_RANGES: dict[str, tuple[float, float, bool]] = {
    "compute": (0.0, 1.0, False),  # of the peak (or vendor-measured sustained) FLOP/s
    "memory": (0.0, 1.0, False),  # of the peak memory bandwidth
    "overhead_s": (0.0, 1.0, True),  # seconds per step
    "per_sequence_s": (0.0, 0.01, True),  # seconds per running sequence per step
    "serial": (0.0, 1.0, True),  # share of the shorter of compute and memory time not hidden
    "power_memory_weight": (0.0, 1.0, True),  # power while memory-bound, relative to compute-bound
}
EFFICIENCY_HELP = (
    "Override the fitted efficiency, e.g. compute=0.7,memory=0.85 (fields: " + ", ".join(EFFICIENCY_RANGES) + ")"
)


def catalog_with(files: list[Path] | None) -> CatalogSet:
    """The shipped catalog plus the user's ``--catalog`` files, in order."""
    catalog = default_catalog()
    for path in files or []:
        catalog = catalog.with_file(path)
    return catalog


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars made plain and non-finite floats made ``None`` (JSON has no inf/NaN).

    >>> jsonable({"a": float("inf"), "b": [1.5, (2, 3)]})
    {'a': None, 'b': [1.5, [2, 3]]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return jsonable(value.item())
    return value


def with_efficiency(text: str, base: Efficiency, option: str = "--efficiency") -> Efficiency:
    """``base`` (the fitted efficiency) with the fields ``text`` sets, as ``KEY=VALUE`` pairs joined by commas
    (or semicolons, which need no quoting in a CSV cell); a :class:`FivelayerError` naming the pair on an
    unknown field, a non-number or a value out of range.

    >>> with_efficiency("compute=0.7, serial=0", Efficiency(compute=0.5, memory=0.8, serial=0.5))
    Efficiency(compute=0.7, memory=0.8, overhead_s=0.002, per_sequence_s=0.0, power_memory_weight=0.6, serial=0.0)
    """
    changes: dict[str, float] = {}
    for pair in (p.strip() for p in text.replace(";", ",").split(",")):
        if not pair:
            continue
        key, sep, raw = (part.strip() for part in pair.partition("="))
        if not sep:
            raise FivelayerError(f"{option} {pair!r}: give KEY=VALUE pairs, e.g. compute=0.7,memory=0.85")
        if key not in EFFICIENCY_RANGES:
            near = did_you_mean(key, EFFICIENCY_RANGES, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise FivelayerError(
                f"{option} {pair!r}: unknown field {key!r}{hint}; the fields are " + ", ".join(EFFICIENCY_RANGES)
            )
        try:
            value = float(raw)
        except ValueError:
            raise FivelayerError(f"{option} {pair!r}: {raw!r} is not a number") from None
        low, high, closed = EFFICIENCY_RANGES[key]
        if not (low <= value <= high and (closed or value > low)):
            raise FivelayerError(f"{option} {pair!r}: {key} must be {'at least' if closed else 'above'} {low:g} and "
                                 f"at most {high:g}")  # fmt: skip
        changes[key] = value
    if not changes:
        raise FivelayerError(f"{option} is empty: give KEY=VALUE pairs, e.g. compute=0.7,memory=0.85")
    return replace(base, **changes)
