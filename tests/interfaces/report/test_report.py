"""The HTML report: one self-contained file, every chart rendered in Chromium with the network off."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fivelayer.engines.analytic import plan
from fivelayer.interfaces.cli.report import report_cmd
from fivelayer.interfaces.report import render_report, view
from fivelayer.scenario import default_scenario
from tests.interfaces.web.browser import ARTIFACTS, chromium

CHARTS = ("chart-sankey", "chart-capex", "chart-annual-cost", "chart-unit-cost", "chart-hourly")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = typer.Typer()
    app.command("report")(report_cmd)
    app.command("other")(lambda: None)  # two commands, so "report" is a subcommand as in fivelayer
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(app, ["report", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["charts"] == list(CHARTS)
    return out


def test_report_refuses_to_replace_a_file_it_did_not_write(report_file: Path, tmp_path: Path) -> None:
    from fivelayer.interfaces.report.html import is_report

    assert is_report(report_file)  # so rerunning the same command replaces it
    app = typer.Typer()
    app.command("report")(report_cmd)
    app.command("other")(lambda: None)
    page = tmp_path / "index.html"
    page.write_text("<html>my page</html>")
    result = CliRunner().invoke(app, ["report", "-o", str(page), "--json"])
    assert result.exit_code != 0 and "index.html exists and is not a fivelayer report" in str(result.exception)
    assert page.read_text() == "<html>my page</html>"


def test_report_is_self_contained(report_file: Path) -> None:
    from fivelayer.interfaces.report.html import plotly_js

    full = report_file.read_text(encoding="utf-8")
    assert plotly_js() in full  # plotly.js embedded
    html = full.replace(plotly_js(), "")
    assert "<script src=" not in html and "<link " not in html  # nothing loaded from elsewhere
    assert not re.search(r"(src|href)=\"https?:", html)
    assert "Plotly.newPlot" in html
    for chart in CHARTS:
        assert f'id="{chart}"' in html
    assert "Every number and its source" in html
    assert "name: 100 MW AI factory (default)" in html  # the scenario itself


def test_report_opens_offline_with_every_chart(report_file: Path) -> None:
    with chromium() as browser:
        context = browser.new_context(offline=True, viewport={"width": 1300, "height": 1000})
        requests: list[str] = []
        context.on("request", lambda req: requests.append(req.url))
        page = context.new_page()
        page.goto(report_file.as_uri())
        for chart in CHARTS:
            page.wait_for_selector(f"#{chart}[data-rendered=true]", timeout=30_000)
            assert page.locator(f"#{chart} svg.main-svg").count() >= 1
            title = page.locator(f"#{chart} .gtitle").first.text_content()
            assert title
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-top.png"))
        context.close()
    assert [r for r in requests if not r.startswith("file:")] == []


def test_report_with_a_simulation_has_latency_charts() -> None:
    from fivelayer.interfaces.report.simulation import simulate_unit

    scenario = default_scenario()
    result = plan(scenario)
    html = render_report(scenario, result, simulate_unit(scenario, None, 200, result))
    assert 'id="chart-latency"' in html and 'id="chart-latency-cdf"' in html
    assert "Latency CDF" in html
    # The unit the CLI's ``simulate SCENARIO`` runs: the first deployment's share of the peak hour, judged
    # against its applications' targets, with the plan's estimates beside them.
    units = result.deployments[0]["units"]
    assert f"Deployment support, one planned unit at its share of the peak hour (one of {units:,} units)" in html
    assert "the plan&#39;s analytic estimate" in html


def test_bad_input_exit_code(tmp_path: Path) -> None:
    from fivelayer.core.errors import FivelayerError

    with pytest.raises(FivelayerError, match="cannot read"):
        report_cmd(tmp_path / "missing.yaml", tmp_path / "r.html", quiet=True)
    with pytest.raises(FivelayerError, match="plan or yield"):
        report_cmd(None, tmp_path / "r.html", kind="size", quiet=True)


def test_notebook_view_renders_tables_and_charts() -> None:
    html = view(plan(default_scenario()))._repr_html_()
    assert "<table" in html and "accelerators" in html
    assert len(re.findall(r'id="chart-[a-z-]+"', html)) == len(CHARTS)
