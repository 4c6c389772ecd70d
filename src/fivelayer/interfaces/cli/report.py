"""``fivelayer report`` (one self-contained HTML file) and ``fivelayer serve`` (the local web app).

The lead registers them on the main app: ``app.command("report")(report_cmd)``, ``app.command("serve")(serve_cmd)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fivelayer.core.errors import FivelayerError
from fivelayer.scenario import Scenario

__all__ = ["report_cmd", "serve_cmd"]


def _load(file: Path | None, catalog: list[Path] | None) -> tuple[Scenario, str]:
    from fivelayer.catalog import default_catalog
    from fivelayer.interfaces.web.runner import default_scenario_text
    from fivelayer.scenario import load_scenario

    base = default_catalog()
    for path in catalog or []:
        base = base.with_file(path)
    if file is None:
        text = default_scenario_text()
        return Scenario.from_yaml_text(text, "<default scenario>", base), text
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise FivelayerError(f"cannot read {file}: {exc.strerror}") from None
    return load_scenario(file, base), text


def report_cmd(
    file: Annotated[
        Path | None,
        typer.Argument(help="Scenario YAML file; without it, the embedded default scenario.", show_default=False),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write")] = Path("report.html"),
    kind: Annotated[
        str, typer.Option("--kind", help="plan (size for the demand) or yield (what the site produces)")
    ] = ("plan"),
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Also simulate one unit of the first language-model deployment at its share of the peak hour, "
            "for latency charts",
        ),
    ] = False,
    requests: Annotated[int, typer.Option(help="Requests in the simulation (with --simulate)", min=10, max=200_000)] = (
        1000
    ),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or message")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of a progress bar")] = False,
    catalog: Annotated[
        list[Path] | None,
        typer.Option("--catalog", help="A YAML file of your own records, added to the catalog's.", show_default=False),
    ] = None,
) -> None:
    """Write one self-contained HTML report (works offline): Sankey, cost waterfalls, $/M tokens, hourly
    power/price/carbon, latency (with --simulate), assumptions with sources, and the scenario."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fivelayer.core.files import check_output_file
    from fivelayer.interfaces.report.charts import stack_charts
    from fivelayer.interfaces.report.html import is_report, render_report

    if kind not in ("plan", "yield"):
        raise FivelayerError(f"--kind must be plan or yield (got {kind!r})")
    check_output_file(output, is_report, example="report.html", what="report")  # before minutes of work
    show = not (quiet or as_json)
    steps = ["scenario", "engine", *(["simulation"] if simulate else []), "charts", "tables", "page", "write"]
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task("report", total=len(steps))

        def step(name: str) -> None:
            progress.update(task, description=f"report: {name}", advance=1)

        progress.update(task, description="report: scenario")
        scenario, text = _load(file, catalog)
        step("engine")
        from fivelayer.engines.analytic import plan, yield_

        result = plan(scenario) if kind == "plan" else yield_(scenario)
        simulation = None
        if simulate:
            step("simulation")
            from fivelayer.interfaces.report.simulation import simulate_unit

            simulation = simulate_unit(scenario, None, requests, result)
        step("charts")
        html = render_report(
            scenario, result, simulation, text, progress=lambda name: step(name) if name != "charts" else None
        )
        step("write")
        try:
            output.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise FivelayerError(f"cannot write {output}: {exc.strerror}") from None
        progress.update(task, completed=len(steps))
    charts = [c.id for c in stack_charts(result, simulation)] if as_json else []
    if as_json:
        sys.stdout.write(json.dumps({"report": str(output), "bytes": len(html.encode()), "charts": charts}) + "\n")
    elif not quiet:
        sys.stdout.write(f"wrote {output} ({len(html.encode()) / 1e6:.1f} MB, opens offline)\n")


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on; keep 127.0.0.1 unless you mean to share it")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
) -> None:
    """Run the local web app: edit a scenario, run plan / yield / predict, see charts, download YAML/JSON/CSV."""
    try:
        import uvicorn

        from fivelayer.interfaces.web import create_app
    except ImportError as exc:
        raise FivelayerError(f"the web app needs the 'web' extra: pip install 'fivelayer[web]' ({exc.name})") from None
    sys.stdout.write(f"fivelayer web app on http://{host}:{port}/ (Ctrl-C to stop)\n")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
