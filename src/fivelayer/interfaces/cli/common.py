"""Helpers shared by the command-line modules: the catalog with the user's files, JSON-ready values."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fivelayer.catalog import CatalogSet, default_catalog

__all__ = ["catalog_with", "jsonable"]


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
