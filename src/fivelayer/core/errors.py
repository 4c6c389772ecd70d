"""The error hierarchy. Every error fivelayer raises on bad input is a :class:`FivelayerError`.

The command line turns these into a one-paragraph message and exit code 2; anything else is a bug
(exit code 1).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CatalogError",
    "FivelayerError",
    "InfeasibleConfiguration",
    "ScenarioError",
    "UnitError",
    "UnknownIdError",
    "did_you_mean",
]


class FivelayerError(Exception):
    """Bad input or an impossible request: the user can fix it. Exit code 2 on the command line."""


class UnitError(FivelayerError, ValueError):
    """A quantity that cannot be parsed or has the wrong dimension."""


class CatalogError(FivelayerError):
    """A catalog file or record that is invalid (missing source, wrong unit, duplicate id...)."""


class UnknownIdError(CatalogError, KeyError):
    """An id that is not in the catalog; carries the nearest ids as suggestions."""

    def __init__(self, kind: str, wanted: str, suggestions: list[str]) -> None:
        self.kind = kind
        self.wanted = wanted
        self.suggestions = suggestions
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(f"Unknown {kind} {wanted!r}.{hint}")

    def __str__(self) -> str:  # KeyError would quote the message otherwise
        return str(self.args[0])


class ScenarioError(FivelayerError):
    """A scenario file that is invalid; the message names file, line, field and value."""


class InfeasibleConfiguration(FivelayerError):
    """A configuration that cannot run: a model that does not fit in memory, a power cap below one rack."""


def did_you_mean(wanted: str, choices: Iterable[str], n: int = 2) -> list[str]:
    """The nearest ``n`` of ``choices`` to ``wanted`` (case-insensitive), best first.

    >>> did_you_mean("h200-sx", ["h100-sxm", "h200-sxm", "b200"])
    ['h200-sxm', 'h100-sxm']
    """
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(wanted.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]
