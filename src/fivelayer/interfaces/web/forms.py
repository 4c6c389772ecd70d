"""Scenario forms generated from the scenario schema (pydantic field types, bounds and descriptions).

A form edits a scenario's YAML: each field names a path (``applications[0].users``); submitted values
replace those paths in the YAML mapping, an empty value removes the key (the default applies). Catalog
ids become selects of the catalog's records; ``Literal`` types become selects of their choices; unit
quantities are text (``100 MW``); plain numbers are number inputs with the schema's bounds.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from fivelayer.catalog import CatalogSet
from fivelayer.core.errors import UnknownIdError, did_you_mean
from fivelayer.scenario import Application, Deployment, Economics, Facility, Site

__all__ = ["MAX_NUMBER", "FormField", "apply_form", "check_numbers", "error_fields", "scenario_fields"]

#: Largest magnitude of any number the app accepts. No quantity of this model comes near it (the world's
#: electricity is ~1e17 J/day only in joules, given with units); larger inputs are mistakes.
MAX_NUMBER = 1e15

#: Catalog kind of each id-valued field.
_CATALOG_FIELDS = {
    ("site", "region"): "grid-regions",
    ("facility", "design"): "facilities",
    ("deployment", "model"): "models",
    ("application", "id"): "applications",
}
#: Examples shown in the unit-quantity inputs.
_EXAMPLES = {
    "power_cap": "100 MW",
    "electricity_price": "0.07 USD/kWh",
    "ppa_price": "0.05 USD/kWh",
    "ttft_p99": "2 s",
    "tpot_p99": "50 ms",
}
_LABELS = {"design": "cooling (facility design)", "hardware": "accelerator or system", "id": "application"}


@dataclass
class FormField:
    """One input of the scenario form."""

    name: str  # the path, as error messages write it: "applications[0].users"
    label: str
    kind: str  # "select", "number", "text"
    value: str
    help: str = ""
    choices: list[tuple[str, str, str]] = field(default_factory=list)  # (group, value, label)
    minimum: float | None = None
    maximum: float | None = None
    placeholder: str = ""
    error: str = ""

    @property
    def dom_id(self) -> str:
        return "f-" + re.sub(r"[^a-zA-Z0-9]+", "-", self.name).strip("-")


def _is_quantity(annotation: Any) -> bool:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Annotated and any(
            type(m).__name__ == "BeforeValidator" for m in getattr(arg, "__metadata__", ())
        ):
            return True
    return False


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for m in info.metadata:
        low = getattr(m, "ge", getattr(m, "gt", low))
        high = getattr(m, "le", getattr(m, "lt", high))
    return low, high


def _literal_choices(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return []


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def _field(model: type[BaseModel], name: str, path: str, value: Any, catalog: CatalogSet, scope: str) -> FormField:
    info = model.model_fields[name]
    annotation = info.annotation
    label = _LABELS.get(name, name.replace("_", " "))
    help_text = info.description or ""
    kind = _CATALOG_FIELDS.get((scope, name))
    if kind is not None:
        records = catalog.kind(kind)
        choices = [("", r.id, f"{r.id} ({r.name})") for r in records]
        return FormField(path, label, "select", _show(value), help_text, choices)
    literal = _literal_choices(annotation)
    if literal:
        return FormField(path, label, "select", _show(value), help_text, [("", c, c) for c in literal])
    if _is_quantity(annotation):
        return FormField(path, label, "text", _show(value), help_text, placeholder=_EXAMPLES.get(name, ""))
    if name == "count":
        return FormField(path, "accelerators", "text", _show(value), help_text, placeholder="size-to-demand or 64")
    low, high = _bounds(info)
    return FormField(path, label, "number", _show(value), help_text, minimum=low, maximum=high)


def _hardware_field(path: str, dep: Mapping[str, Any], catalog: CatalogSet) -> FormField:
    value = dep.get("system") or dep.get("accelerator") or ""
    choices = [("systems", s.id, f"{s.id} ({s.name})") for s in catalog.systems]
    choices += [("accelerators", a.id, f"{a.id} ({a.name})") for a in catalog.accelerators]
    help_text = "a catalog system (whole server) or a single accelerator type"
    return FormField(path, "accelerator or system", "select", str(value), help_text, choices)


def scenario_fields(data: Mapping[str, Any], catalog: CatalogSet) -> list[tuple[str, list[FormField]]]:
    """The form's fields for a scenario mapping, grouped into sections: site, facility, deployments,
    applications, economics (prices)."""
    site = data.get("site") or {}
    facility = data.get("facility") or {}
    econ = data.get("economics") or {}
    sections: list[tuple[str, list[FormField]]] = [
        ("Site", [_field(Site, n, f"site.{n}", site.get(n), catalog, "site") for n in ("region", "power_cap")]),
        (
            "Cooling",
            [_field(Facility, n, f"facility.{n}", facility.get(n), catalog, "facility") for n in ("design", "pue")],
        ),
    ]
    for i, dep in enumerate(data.get("deployments") or []):
        if not isinstance(dep, Mapping):
            continue
        fields = [_hardware_field(f"deployments[{i}].hardware", dep, catalog)]
        fields += [
            _field(Deployment, n, f"deployments[{i}].{n}", dep.get(n), catalog, "deployment")
            for n in ("model", "precision", "count")
        ]
        sections.append((f"Deployment {i + 1}: {dep.get('name', '')}", fields))
    for k, app in enumerate(data.get("applications") or []):
        if not isinstance(app, Mapping):
            continue
        fields = [
            _field(Application, n, f"applications[{k}].{n}", app.get(n), catalog, "application")
            for n in ("id", "users")
        ]
        sections.append((f"Application {k + 1}", fields))
    sections.append(
        (
            "Prices and finance",
            [
                _field(Economics, n, f"economics.{n}", econ.get(n), catalog, "economics")
                for n in ("electricity_price", "ppa_price", "discount_rate")
            ],
        )
    )
    return sections


_PART = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")


def _parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.split("."):
        m = _PART.fullmatch(piece)
        if m is None:
            raise KeyError(path)
        parts.append(m.group(1))
        if m.group(2) is not None:
            parts.append(int(m.group(2)))
    return parts


def _number(text: str) -> float | int | str:
    try:
        number = float(text.replace("_", "").replace(",", ""))
    except ValueError:
        return text  # left to the schema, which names the field and the value
    if number.is_integer() and abs(number) < 2**53 and not re.search(r"[.eE]", text):
        return int(number)
    return number


def apply_form(data: dict[str, Any], form: Mapping[str, str], catalog: CatalogSet) -> dict[str, str]:
    """Write the form's values into the scenario mapping ``data`` (in place). Returns field errors found
    before validation (unknown hardware ids); the schema finds the rest."""
    errors: dict[str, str] = {}
    fields = {f.name: f for _, section in scenario_fields(data, catalog) for f in section}
    for name, raw in form.items():
        spec = fields.get(name)
        if spec is None:
            continue
        text = raw.strip()
        parts = _parse_path(name)
        node: Any = data
        for part in parts[:-1]:
            if isinstance(part, int):
                node = node[part]
            else:
                node = node.setdefault(part, {})
                if node is None:
                    node = {}
        last = parts[-1]
        assert isinstance(last, str) and isinstance(node, dict)
        if last == "hardware":
            node.pop("system", None)
            node.pop("accelerator", None)
            if text in {s.id for s in catalog.systems}:
                node["system"] = text
            else:
                try:
                    node["accelerator"] = catalog.accelerators.get(text).id
                except UnknownIdError as exc:
                    errors[name] = str(exc).replace("Unknown accelerator", "Unknown accelerator or system")
                    node["accelerator"] = text
            continue
        if text == "":
            node.pop(last, None)
            continue
        node[last] = _number(text) if spec.kind == "number" or last == "count" else text
    return errors


_NUMERIC = re.compile(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?|[-+]?(inf|infinity|nan)", re.IGNORECASE)


def check_numbers(data: Any, path: str = "") -> list[tuple[str, str]]:
    """Every number in ``data`` that is not finite or larger in magnitude than :data:`MAX_NUMBER`."""
    problems: list[tuple[str, str]] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            problems += check_numbers(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            problems += check_numbers(value, f"{path}[{i}]")
    elif isinstance(data, str) and _NUMERIC.fullmatch(data.strip()):
        problems += check_numbers(float(data.replace("_", "")), path)
    elif isinstance(data, int | float) and not isinstance(data, bool):
        if isinstance(data, float) and not math.isfinite(data):
            problems.append((path, f"{data} is not a finite number"))
        elif abs(data) > MAX_NUMBER:
            problems.append((path, f"{data:.3g} is out of range: the largest number accepted is {MAX_NUMBER:.0e}"))
    return problems


_WHERE = re.compile(r"\(([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*)\)")


def error_fields(message: str, names: set[str]) -> tuple[dict[str, str], list[str]]:
    """Split a scenario error message into per-field messages (by the ``(field.path)`` each line names)
    and the lines that name no field of the form."""
    by_field: dict[str, str] = {}
    rest: list[str] = []
    for line in message.splitlines():
        if not line.strip() or line.strip() == "Invalid scenario:":
            continue
        target = None
        for m in _WHERE.finditer(line):
            path = re.sub(r"\.(system|accelerator)$", ".hardware", m.group(1))
            if path in names:
                target = path
                break
        text = line.split("): ", 1)[1] if "): " in line else line
        if target is None:
            rest.append(line)
        else:
            by_field[target] = (by_field[target] + "; " + text) if target in by_field else text
    return by_field, rest


def suggest(kind_ids: list[str], wanted: str) -> str:
    """``Did you mean ...?`` for ``wanted`` among ``kind_ids``, or nothing."""
    hits = did_you_mean(wanted, kind_ids)
    return f" Did you mean {' or '.join(repr(h) for h in hits)}?" if hits else ""
