"""One self-contained HTML report of a scenario: charts (plotly.js embedded), numbers, assumptions, scenario.

The file needs no network: plotly.js is inlined, styles are inlined, nothing is fetched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

import fivelayer
from fivelayer.core.errors import FivelayerError
from fivelayer.core.files import check_output_file, head_contains
from fivelayer.interfaces.report.charts import Chart, simulation_result, stack_charts
from fivelayer.interfaces.report.tables import html_table, key_value_table
from fivelayer.scenario import Scenario

__all__ = [
    "APPLICATION_COLUMNS",
    "DEPLOYMENT_COLUMNS",
    "REPORT_MARK",
    "figures_json",
    "is_report",
    "plotly_js",
    "render_report",
    "write_report",
]

#: What marks a file as a fivelayer report (the page's generator tag): a new report may replace it.
REPORT_MARK = '<meta name="generator" content="fivelayer'


DEPLOYMENT_COLUMNS = (
    "name",
    "accelerator",
    "system",
    "model",
    "units",
    "accelerators",
    "capacity_per_s",
    "peak_demand_per_s",
    "ttft_s",
    "tpot_s",
)
APPLICATION_COLUMNS = (
    "id",
    "deployment",
    "users",
    "requests_per_s",
    "served_fraction",
    "usd_per_million_units",
    "usd_per_request",
    "revenue_usd_per_year",
)


@cache
def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly package (no CDN)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _template_text(name: str) -> str:
    return resources.files("fivelayer.interfaces.report").joinpath("templates").joinpath(name).read_text("utf-8")


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def figures_json(charts: list[Chart]) -> str:
    """The charts as one JSON object ``{id: {data, layout}}``, safe inside a ``<script>`` element."""
    figures = {c.id: json.loads(c.figure.to_json()) for c in charts}
    text = json.dumps(figures, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _scenario_yaml(scenario: Scenario, text: str | None) -> str:
    if text is not None:
        return text
    import yaml

    return str(yaml.safe_dump(scenario.to_yaml_dict(), sort_keys=False, allow_unicode=True))


def render_report(
    scenario: Scenario,
    result: Any,
    simulation: Any | None = None,
    scenario_text: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> str:
    """The report as one HTML string. ``result`` is a ``plan`` or ``yield`` result; ``simulation`` optional."""
    step = progress or (lambda _: None)
    step("charts")
    charts = stack_charts(result, simulation)
    step("tables")
    explain = [r.to_dict() for r in scenario.explain()]
    sim_table = ""
    sim_note = ""
    if simulation is not None:
        run = simulation_result(simulation)
        s = run.summary
        sim_rows = [
            {"metric": name, **{k: s[key].get(k) for k in ("p50", "p90", "p99", "mean")}}
            for key, name in (
                ("ttft_s", "time to first token (s)"),
                ("tpot_s", "time per output token (s)"),
                ("e2e_s", "end to end (s)"),
            )
        ]
        sim_table = html_table(sim_rows, ("metric", "p50", "p90", "p99", "mean"))
        unit = (
            f"Deployment {simulation.deployment}, one planned unit at {simulation.load}: {simulation.verdict()}. "
            if run is not simulation
            else ""
        )
        sim_note = (
            f"{unit}{s['requests']:,} requests, {s['workload']}, on {s['devices']} accelerators; "
            f"{'; '.join(run.assumptions)}"
        )
    step("page")
    template = _environment().from_string(_template_text("report.html.j2"))
    return template.render(
        title=f"fivelayer report: {scenario.name}",
        version=fivelayer.__version__,
        kind=result.kind,
        scenario_name=scenario.name,
        origin=scenario.origin,
        description=scenario.description or "",
        css=Markup(_template_text("report.css")),
        plotly_js=Markup(plotly_js()),
        charts=charts,
        has_simulation=simulation is not None,
        figures_json=Markup(figures_json(charts)),
        totals_table=Markup(key_value_table(result.totals)),
        deployments_table=Markup(html_table(result.deployments, DEPLOYMENT_COLUMNS)),
        applications_table=Markup(html_table(result.applications, APPLICATION_COLUMNS)),
        simulation_table=Markup(sim_table),
        simulation_note=sim_note,
        assumptions=result.assumptions,
        explain_table=Markup(html_table(explain, ("field", "value", "origin", "source"))),
        scenario_yaml=_scenario_yaml(scenario, scenario_text),
    )


def write_report(
    path: str | Path, scenario: Scenario, result: Any, simulation: Any | None = None, scenario_text: str | None = None
) -> Path:
    """Render the report and write it to ``path`` (UTF-8). Returns the path. An existing file is replaced only
    if it is a fivelayer report (:func:`is_report`)."""
    file = Path(path)
    check_output_file(file, is_report, example="report.html", what="report")
    html = render_report(scenario, result, simulation, scenario_text)
    try:
        file.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise FivelayerError(f"cannot write {file}: {exc.strerror or exc}") from None
    return file


def is_report(path: Path) -> bool:
    """Whether the file at ``path`` is a report fivelayer wrote (its generator tag)."""
    return head_contains(path, REPORT_MARK)
