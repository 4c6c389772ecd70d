"""Where a number comes from: :class:`Source` and the :class:`Record` base of every catalog entry."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["ID_PATTERN", "Record", "Source", "Strict"]

#: Catalog ids: lower-case words and digits joined by hyphens (dots allowed inside version numbers).
ID_PATTERN = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)*$")


class Strict(BaseModel):
    """Base of every validated structure: unknown fields are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class Source(Strict):
    """A public source for one or more numbers: a URL or a citation, and the date it was read.

    ``fields`` optionally names the fields of the record that this source supports; a source without
    ``fields`` supports the whole record.
    """

    url: str | None = None
    citation: str | None = None
    retrieved: dt.date
    fields: tuple[str, ...] = ()
    note: str | None = None

    @model_validator(mode="after")
    def _has_reference(self) -> Source:
        if not (self.url or self.citation):
            raise ValueError("a source needs a url or a citation")
        if self.url is not None and not re.match(r"^https?://\S+$", self.url):
            raise ValueError(f"source url {self.url!r} is not an http(s) URL")
        return self

    def label(self) -> str:
        """A one-line human-readable reference."""
        ref = self.url or self.citation or ""
        return f"{ref} (retrieved {self.retrieved.isoformat()})"


class Record(Strict):
    """Fields shared by every catalog record."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    sources: tuple[Source, ...] = Field(min_length=1)
    as_of: dt.date
    #: Fields whose values are estimates rather than published figures, mapped to the basis of the estimate.
    estimates: dict[str, str] = Field(default_factory=dict)
    notes: str | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError(f"id {value!r} must be lower-case words and digits joined by hyphens, e.g. 'h200-sxm'")
        return value

    @model_validator(mode="after")
    def _estimates_name_fields(self) -> Record:
        names = set(type(self).model_fields)
        for key in self.estimates:
            head = key.split(".")[0]
            if head not in names:
                raise ValueError(f"estimates names {key!r}, which is not a field of {type(self).__name__}")
        for source in self.sources:
            for key in source.fields:
                head = key.split(".")[0]
                if head not in names:
                    raise ValueError(f"a source names field {key!r}, which is not a field of {type(self).__name__}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: numbers in SI units under the field names, dates as ISO strings."""
        return self.model_dump(mode="json", exclude_none=True)
