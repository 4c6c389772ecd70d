"""Results in Jupyter: ``view(result)`` shows the totals, deployments and applications as HTML tables and
the charts of a report, interactive and offline (plotly.js is embedded once per view). In a notebook cell::

    from fivelayer.engines.analytic import plan
    from fivelayer.interfaces.report import view
    view(plan(fivelayer.default_scenario()))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fivelayer.interfaces.report.charts import stack_charts
from fivelayer.interfaces.report.tables import html_table, key_value_table

__all__ = ["StackView", "view"]


@dataclass(frozen=True)
class StackView:
    """A ``plan`` / ``yield`` result (and optionally a simulation) as notebook HTML."""

    result: Any
    simulation: Any | None = None
    charts: bool = True

    def tables_html(self) -> str:
        from fivelayer.interfaces.report.html import APPLICATION_COLUMNS, DEPLOYMENT_COLUMNS

        r = self.result
        return (
            key_value_table(r.totals, caption=f"{r.kind}: {r.scenario}")
            + html_table(r.deployments, DEPLOYMENT_COLUMNS, caption="deployments")
            + html_table(r.applications, APPLICATION_COLUMNS, caption="applications")
        )

    def charts_html(self) -> str:
        parts = []
        for i, chart in enumerate(stack_charts(self.result, self.simulation)):
            parts.append(
                chart.figure.to_html(
                    full_html=False,
                    include_plotlyjs=(i == 0),
                    div_id=chart.id,
                    config={"displaylogo": False, "responsive": True},
                )
            )
        return "".join(parts)

    def _repr_html_(self) -> str:
        body = self.tables_html() + (self.charts_html() if self.charts else "")
        return f'<div class="fivelayer-view">{body}</div>'


def view(result: Any, simulation: Any | None = None, charts: bool = True) -> StackView:
    """Wrap a result for display in Jupyter (tables and, unless ``charts=False``, the report's charts)."""
    return StackView(result, simulation, charts)
