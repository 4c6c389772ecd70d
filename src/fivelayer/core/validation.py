"""Turn pydantic validation errors into messages for people: file, line, field and the bad value."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from fivelayer.core.errors import did_you_mean
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


def _members(annotation: Any) -> list[Any]:
    """The types an annotation may hold: unions and ``Optional`` split, ``Annotated`` unwrapped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [annotation]


def _field_names(model: Any, loc: Sequence[Any]) -> list[str]:
    """The field names a value at ``loc`` inside ``model`` (a pydantic model class, or a union of them)
    may have; empty where the path leads to no model. Parts of ``loc`` that name no field (union tags such
    as ``'llm'``) are passed over."""
    current = _members(model)
    for part in loc:
        following: list[Any] = []
        for ann in current:
            args = [a for a in typing.get_args(ann) if a is not Ellipsis]
            origin = typing.get_origin(ann)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                field = ann.model_fields.get(part) if isinstance(part, str) else None
                if field is not None:
                    following.extend(_members(field.annotation))
            elif isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
                following.extend(_members(args[1]))
            elif isinstance(origin, type) and issubclass(origin, Sequence | set | frozenset) and isinstance(part, int):
                following.extend(m for a in args for m in _members(a))
        if following:
            current = following
        elif not isinstance(part, str):
            return []
    names: list[str] = []
    for ann in current:
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names.extend(name for name in ann.model_fields if name not in names)
    return names


def _inside(loc: tuple[Any, ...], outer: tuple[Any, ...]) -> bool:
    """Whether ``loc`` lies strictly below ``outer``."""
    return len(loc) > len(outer) and loc[: len(outer)] == outer


def describe_validation_error(
    exc: ValidationError,
    located: LocatedYaml | None = None,
    prefix: tuple[Any, ...] = (),
    what: str = "",
    model: Any = None,
) -> str:
    """One line per problem: ``file line N (field): message (got value)``.

    With ``model`` (the pydantic model class validated, or a union of them), an unknown field names the
    nearest known field of the same record: ``unknown field; did you mean 'power_cap'?``.
    """
    lines = []
    errors = exc.errors()
    for err in errors:
        if err["type"] == "too_short" and any(_inside(other["loc"], err["loc"]) for other in errors):
            continue  # pydantic counts only the items that validated: the items' own errors say it all
        own = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = (*prefix, *own)
        if located is not None:
            loc = _data_path(located.data, loc)
        where = located.where(loc) if located is not None else (what or "input")
        name = field_path(loc) or "(top level)"
        msg = _clean_message(err["msg"])
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
            known = _field_names(model, own[:-1]) if model is not None and own else []
            hint = did_you_mean(str(own[-1]), known, n=1) if known else []
            if hint:
                msg += f"; did you mean {hint[0]!r}?"
        value = err.get("input")
        if isinstance(value, bool) and err["type"] == "string_type":
            msg += "; YAML reads unquoted no/yes/on/off as true/false, so quote the value (e.g. 'no' for Norway)"
        quiet = err["type"] in ("missing", "extra_forbidden") or isinstance(value, dict | list) or repr(value) in msg
        shown = "" if quiet else f" (got {value!r})"
        lines.append(f"{where} ({name}): {msg}{shown}")
    return "\n".join(lines)
