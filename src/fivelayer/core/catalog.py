"""Catalog machinery shared by every kind of record: lazy loading, id lookup, aliases, overrides.

A :class:`Catalog` holds the records of one kind (accelerators, models, grid regions...). Records come
from YAML files shipped in ``fivelayer/data`` and, optionally, from the user's own files, which add new
records or replace shipped ones. A catalog is immutable: adding records returns a new catalog.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from fivelayer.core.errors import CatalogError, UnknownIdError, did_you_mean
from fivelayer.core.provenance import Record
from fivelayer.core.validation import describe_validation_error
from fivelayer.core.yamlio import LocatedYaml, load_yaml_text

__all__ = ["Catalog", "lookup_key", "packaged_yaml", "parse_records"]

R = TypeVar("R", bound=Record)


def lookup_key(text: str) -> str:
    """Normalise an id or alias for lookup: lower case, runs of other characters become one hyphen.

    >>> lookup_key("H100 SXM5 80GB")
    'h100-sxm5-80gb'
    >>> lookup_key("meta-llama/Llama-3.1-70B-Instruct")
    'meta-llama-llama-3.1-70b-instruct'
    """
    return re.sub(r"[^a-z0-9.]+", "-", text.strip().lower()).strip("-")


def packaged_yaml(relative: str) -> LocatedYaml:
    """Parse a YAML file shipped in ``fivelayer/data``."""
    ref = resources.files("fivelayer").joinpath("data")
    for part in relative.split("/"):
        ref = ref.joinpath(part)
    return load_yaml_text(ref.read_text(encoding="utf-8"), origin=f"fivelayer/data/{relative}")


def parse_records(model: Any, located: LocatedYaml, prefix: tuple[Any, ...] = ()) -> list[Any]:
    """Validate a YAML list of records (at ``prefix`` inside ``located``) into ``model`` instances.

    ``model`` is a record class or a discriminated union of record classes.
    """
    adapter: TypeAdapter[Any] = _adapter(model)
    raw: Any = located.data
    for part in prefix:
        raw = raw[part]
    if not isinstance(raw, list):
        raise CatalogError(f"{located.where(prefix)}: expected a list of records, got {type(raw).__name__}")
    records: list[Any] = []
    problems: list[str] = []
    for i, item in enumerate(raw):
        try:
            records.append(adapter.validate_python(item))
        except ValidationError as exc:
            problems.append(describe_validation_error(exc, located, (*prefix, i), model=model))
    if problems:
        raise CatalogError("Invalid catalog records:\n" + "\n".join(problems))
    return records


@functools.lru_cache(maxsize=64)
def _adapter(model: Any) -> TypeAdapter[Any]:
    return TypeAdapter(model)


@dataclass(frozen=True)
class Catalog(Generic[R]):
    """The records of one kind, looked up by id or alias, case-insensitively."""

    kind: str
    """Singular name used in messages, e.g. ``"accelerator"``."""
    model: Any
    """The record class, or a discriminated union of record classes."""
    loader: Callable[[], list[R]] = field(repr=False)
    extra: tuple[tuple[str, tuple[R, ...]], ...] = ()
    """User records added on top of the packaged ones, with the origin (file) they came from."""

    @functools.cached_property
    def _index(self) -> tuple[dict[str, R], dict[str, str], dict[str, str]]:
        records: dict[str, R] = {}
        origins: dict[str, str] = {}
        for record in self.loader():
            if record.id in records:
                raise CatalogError(f"duplicate {self.kind} id {record.id!r} in the packaged catalog")
            records[record.id] = record
            origins[record.id] = "catalog"
        for origin, batch in self.extra:
            seen: set[str] = set()
            for record in batch:
                if record.id in seen:
                    raise CatalogError(f"{origin}: duplicate {self.kind} id {record.id!r}")
                seen.add(record.id)
                records[record.id] = record  # a user record replaces a packaged one of the same id
                origins[record.id] = origin
        keys: dict[str, str] = {}
        for rid, record in records.items():
            for name in (rid, *record.aliases):
                key = lookup_key(name)
                owner = keys.get(key)
                if owner is not None and owner != rid:
                    raise CatalogError(
                        f"{self.kind} alias {name!r} of {rid!r} is already used by {owner!r} "
                        f"({origins[rid]}, {origins[owner]})"
                    )
                keys[key] = rid
        return records, keys, origins

    def __iter__(self) -> Iterator[R]:
        return iter(self._index[0].values())

    def __len__(self) -> int:
        return len(self._index[0])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and lookup_key(name) in self._index[1]

    def ids(self) -> list[str]:
        return list(self._index[0])

    def get(self, name: str) -> R:
        """The record whose id or alias is ``name``; :class:`UnknownIdError` with a hint otherwise."""
        records, keys, _ = self._index
        rid = keys.get(lookup_key(name)) if isinstance(name, str) else None
        if rid is None:
            raise UnknownIdError(self.kind, str(name), did_you_mean(lookup_key(str(name)), list(records)))
        return records[rid]

    def origin(self, name: str) -> str:
        """``"catalog"`` for a packaged record, else the user file that supplied it."""
        return self._index[2][self.get(name).id]

    def with_records(self, records: Sequence[R], origin: str) -> Catalog[R]:
        """A new catalog with ``records`` added (replacing packaged records of the same id)."""
        out = Catalog(self.kind, self.model, self.loader, (*self.extra, (origin, tuple(records))))
        _ = out._index  # validate now, so that a conflict is reported where it was made
        return out
