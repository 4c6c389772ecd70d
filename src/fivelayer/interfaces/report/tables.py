"""HTML tables of results (for reports, the web app and notebooks). Every value is escaped."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["fmt", "html_table", "key_value_table"]


def fmt(value: Any) -> str:
    """A number for people: thousands separators, four significant digits below 10,000."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:,.0f}"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def _cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="num">{escape(fmt(value))}</td>' if numeric else f"<td>{escape(fmt(value))}</td>"


def html_table(rows: Sequence[Mapping[str, Any]], columns: Iterable[str] | None = None, caption: str = "") -> str:
    """A table with one row per mapping; ``columns`` picks and orders the keys."""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{escape(c.replace('_', ' '))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_cell(r.get(c)) for c in cols) + "</tr>" for r in rows)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<table class="fl">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def key_value_table(data: Mapping[str, Any], caption: str = "") -> str:
    """A two-column table of names (with units where the key says them) and values."""
    rows = []
    for key, value in data.items():
        label = key.replace("_", " ")
        rows.append(f"<tr><th>{escape(label)}</th>{_cell(value)}</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<table class="fl">{cap}<tbody>{"".join(rows)}</tbody></table>'
