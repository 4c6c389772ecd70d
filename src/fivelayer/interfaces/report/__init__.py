"""HTML reports and notebook views of results: charts (plotly, embedded), tables, assumptions, the scenario.

>>> from fivelayer.interfaces.report import render_report  # doctest: +SKIP
>>> html = render_report(scenario, plan(scenario))           # doctest: +SKIP
"""

from fivelayer.interfaces.report.charts import Chart, stack_charts
from fivelayer.interfaces.report.html import render_report, write_report
from fivelayer.interfaces.report.notebook import StackView, view
from fivelayer.interfaces.report.simulation import simulate_unit

__all__ = ["Chart", "StackView", "render_report", "simulate_unit", "stack_charts", "view", "write_report"]
