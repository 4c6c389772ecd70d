"""The examples in docstrings are executed: every ``>>>`` line in the package must hold."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import fivelayer

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(fivelayer.__path__, "fivelayer.")
    if not m.name.endswith("__main__") and ".interfaces.web" not in m.name
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
