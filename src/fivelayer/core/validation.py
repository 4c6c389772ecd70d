"""Turn pydantic validation errors into messages for people: file, line, field and the bad value."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from fivelayer.core.yamlio import LocatedYaml

__all__ = ["describe_validation_error", "field_path"]


def field_path(loc: tuple[Any, ...]) -> str:
    """``('deployments', 0, 'accelerator')`` -> ``'deployments[0].accelerator'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop parts of a pydantic ``loc`` that are not in the data (union tags such as ``'llm'``)."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if i > 0 and not isinstance(node, dict | list):
            break  # past a scalar: the rest names a union branch ('int', "literal['x']")
        last = i == len(loc) - 1
        if isinstance(node, dict) and part not in node and not last:
            continue
        if isinstance(node, list) and not (isinstance(part, int) and 0 <= part < len(node)) and not last:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def describe_validation_error(
    exc: ValidationError,
    located: LocatedYaml | None = None,
    prefix: tuple[Any, ...] = (),
    what: str = "",
) -> str:
    """One line per problem: ``file line N (field): message (got value)``."""
    lines = []
    for err in exc.errors():
        loc = (*prefix, *(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        if located is not None:
            loc = _data_path(located.data, loc)
        where = located.where(loc) if located is not None else (what or "input")
        name = field_path(loc) or "(top level)"
        msg = _clean_message(err["msg"])
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        value = err.get("input")
        if isinstance(value, bool) and err["type"] == "string_type":
            msg += "; YAML reads unquoted no/yes/on/off as true/false, so quote the value (e.g. 'no' for Norway)"
        quiet = err["type"] in ("missing", "extra_forbidden") or isinstance(value, dict | list) or repr(value) in msg
        shown = "" if quiet else f" (got {value!r})"
        lines.append(f"{where} ({name}): {msg}{shown}")
    return "\n".join(lines)
