"""Runs of plan / yield / predict for the web app: parsing, bounds, a time limit, JSON-ready results."""

from __future__ import annotations

import concurrent.futures
import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import yaml

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.core.errors import FivelayerError, ScenarioError
from fivelayer.interfaces.web.forms import check_numbers
from fivelayer.scenario import Scenario

__all__ = ["RunTimeout", "Runner", "default_scenario_text", "jsonable", "parse_scenario", "result_csv"]

T = TypeVar("T")


class RunTimeout(FivelayerError):
    """A run that took longer than the app allows."""


def default_scenario_text() -> str:
    from importlib import resources

    ref = resources.files("fivelayer").joinpath("data").joinpath("scenarios").joinpath("default.yaml")
    return ref.read_text(encoding="utf-8")


def jsonable(value: Any) -> Any:
    """Plain JSON types: NumPy scalars to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def parse_scenario_data(text: str, origin: str = "<web scenario>") -> dict[str, Any]:
    """The YAML mapping of a scenario text, or a :class:`ScenarioError`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{origin}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: a scenario is a YAML mapping with site, deployments, applications")
    return data


def parse_scenario(data: dict[str, Any], catalog: CatalogSet | None = None) -> tuple[Scenario, str]:
    """Validate a scenario mapping (after the number bounds); returns the scenario and its YAML text."""
    problems = check_numbers(data)
    if problems:
        raise ScenarioError("\n".join(f"<web scenario> ({path}): {msg}" for path, msg in problems))
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return Scenario.from_yaml_text(text, "<web scenario>", catalog or default_catalog()), text


@dataclass
class Runner:
    """Runs engine calls in worker threads with a time limit (a run past it answers 503; the thread finishes
    in the background, which is why the pool is small)."""

    timeout_s: float = 60.0
    workers: int = 2

    def __post_init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fl-run")

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        future = self._pool.submit(fn, *args)
        try:
            return future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise RunTimeout(
                f"the run took longer than {self.timeout_s:g} s, the limit of this app; make the scenario smaller"
            ) from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def result_csv(result: dict[str, Any]) -> str:
    """A plan / yield result as CSV rows ``section,item,field,value``: totals, deployments, applications."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "item", "field", "value"])
    for key, value in result.get("totals", {}).items():
        writer.writerow(["totals", "", key, value])
    for section, name_key in (("deployments", "name"), ("applications", "id")):
        for row in result.get(section, []):
            for key, value in row.items():
                if key != name_key:
                    writer.writerow([section, row.get(name_key, ""), key, value])
    return buffer.getvalue()
