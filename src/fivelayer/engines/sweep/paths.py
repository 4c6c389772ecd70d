"""Field paths of a scenario (``applications[0].users``, ``catalog.accelerators.h200-sxm.price_usd``) and
how to set them on a :class:`~fivelayer.scenario.Scenario` without re-reading any file.

A path is a tuple of parts: field names (str) and list indices (int). Scenario paths start with a field of
:class:`Scenario`; catalog paths are ``("catalog", KIND, ID, FIELD)`` and change one number of one record
for the variant only.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from fivelayer.catalog import CatalogSet, resolve_kind
from fivelayer.core.validation import field_path
from fivelayer.scenario import Deployment, Scenario, Training

__all__ = ["Path", "apply", "format_path", "get_value", "is_catalog_path", "parse_path", "set_raw"]

Path = tuple[str | int, ...]

_PART = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def parse_path(text: str) -> tuple[str, ...]:
    """Split ``'deployments[0].precision'`` into raw parts ``('deployments', '[0]', 'precision')``.

    Index parts keep their brackets so that a name (``deployments[support]``) can be resolved later.

    >>> parse_path("deployments[0].precision")
    ('deployments', '[0]', 'precision')
    >>> parse_path("catalog.accelerators.h200-sxm.price_usd")
    ('catalog', 'accelerators', 'h200-sxm', 'price_usd')
    """
    text = text.strip()
    parts: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        match = _PART.match(text, pos)
        if match is None:
            raise ValueError(f"cannot read field path {text!r} at character {pos + 1}")
        parts.append(match.group(1) if match.group(1) is not None else f"[{match.group(2)}]")
        pos = match.end()
    if not parts:
        raise ValueError("empty field path")
    return tuple(parts)


def format_path(path: Path) -> str:
    """``('deployments', 0, 'precision')`` -> ``'deployments[0].precision'``; catalog paths with dots."""
    if is_catalog_path(path):
        return ".".join(str(p) for p in path)
    return field_path(path)


def is_catalog_path(path: Path) -> bool:
    return len(path) == 4 and path[0] == "catalog"


def get_value(obj: Any, path: Path) -> Any:
    """The value at ``path`` in a scenario (or any nested pydantic model / tuple)."""
    for part in path:
        obj = obj[part] if isinstance(part, int) else getattr(obj, part)
    return obj


def _set(obj: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(obj, tuple):
        assert isinstance(head, int)
        items = list(obj)
        items[head] = _set(items[head], rest, value)
        return tuple(items)
    assert isinstance(obj, BaseModel) and isinstance(head, str)
    update: dict[str, Any] = {head: _set(getattr(obj, head), rest, value)}
    if isinstance(obj, Deployment | Training) and not rest:
        # A deployment runs either a catalog system or bare accelerators: choosing one clears the other.
        if head == "accelerator":
            update["system"] = None
        elif head == "system":
            update["accelerator"] = None
    return obj.model_copy(update=update)


def apply(scenario: Scenario, assignments: dict[Path, Any]) -> Scenario:
    """A copy of ``scenario`` with each path set to its (already validated, SI) value.

    Catalog paths replace one record's field in a copy of the scenario's catalog; the original scenario
    and catalog are untouched.
    """
    out = scenario
    catalog_changes = {p: v for p, v in assignments.items() if is_catalog_path(p)}
    for path, value in assignments.items():
        if not is_catalog_path(path):
            out = _set(out, path, value)
    if catalog_changes or out is not scenario:
        catalog = scenario.resolved_catalog
        if catalog_changes:
            catalog = with_catalog_values(catalog, catalog_changes)
        if out is scenario:
            out = scenario.model_copy()
        out._catalog = catalog
    return out


def with_catalog_values(catalog: CatalogSet, changes: dict[Path, Any]) -> CatalogSet:
    """A catalog in which each ``("catalog", kind, id, field)`` has the given value."""
    by_record: dict[tuple[str, str], dict[str, Any]] = {}
    for path, value in changes.items():
        _, kind, record_id, name = path
        by_record.setdefault((resolve_kind(str(kind)), str(record_id)), {})[str(name)] = value
    updates: dict[str, Any] = {}
    for (kind, record_id), fields in by_record.items():
        attr = kind.replace("-", "_")
        current = updates.get(attr, catalog.kind(kind))
        record = current.get(record_id).model_copy(update=fields)
        updates[attr] = current.with_records([record], origin="<study variant>")
    return replace(catalog, **updates)


def set_raw(data: Any, path: Path, value: Any) -> Any:
    """A deep copy of raw YAML ``data`` (dicts and lists) with ``value`` written at ``path``."""
    out = copy.deepcopy(data)
    node = out
    for i, part in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(node, list):
            assert isinstance(part, int)
            node = node[part]
        else:
            if part not in node or node[part] is None:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    last = path[-1]
    if isinstance(node, list):
        assert isinstance(last, int)
        node[last] = value
    else:
        node[last] = value
        if len(path) >= 3 and path[0] in ("deployments", "trainings"):
            if last == "accelerator":
                node.pop("system", None)
            elif last == "system":
                node.pop("accelerator", None)
    return out
