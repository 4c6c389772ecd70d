"""``fivelayer project [SCENARIO.yaml] [--json]``: the AI industry year by year.

The lead registers the command with ``app.command("project")(project_cmd)``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fivelayer.catalog import CatalogSet
from fivelayer.interfaces.cli.common import catalog_with, jsonable

__all__ = ["project_cmd", "run_projection"]


def run_projection(scenario: str | None, catalog: CatalogSet) -> Any:
    """The result of one scenario: a file path, or the name of a packaged scenario (default ``base``)."""
    from fivelayer.engines.projection import (
        load_projection,
        packaged_projection,
        packaged_projection_names,
        project,
    )

    if scenario is None:
        spec = packaged_projection("base", catalog)
    elif Path(scenario).exists() or Path(scenario).suffix in (".yaml", ".yml"):
        spec = load_projection(scenario, catalog)
    elif scenario in packaged_projection_names():
        spec = packaged_projection(scenario, catalog)
    else:
        spec = load_projection(scenario, catalog)  # reports the missing file
    return project(spec, catalog)


def project_cmd(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="[SCENARIO.yaml]",
            help="Projection scenario file, or a packaged scenario name (base, efficiency-breakthrough, "
            "open-model-boom, power-constrained); default: base.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="Run every packaged scenario (and FILE) and compare key years.")
    ] = False,
    catalog: Annotated[
        list[Path] | None,
        typer.Option("--catalog", help="A YAML file of your own catalog records.", show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """The AI industry year by year: adoption, efficiency, buildout, energy, carbon and investment per layer."""
    from contextlib import nullcontext

    from rich.console import Console

    from fivelayer.engines.projection import packaged_projection_names

    console = Console(stderr=True)
    spinner = (
        nullcontext() if quiet or as_json or not console.is_terminal else console.status("projecting year by year...")
    )
    with spinner:
        _project(file, as_json, compare, catalog_with(catalog), packaged_projection_names())


def _project(file: str | None, as_json: bool, compare: bool, cat: Any, packaged: Any) -> None:
    if compare:
        names: list[str] = list(packaged)
        if file is not None and file not in names:
            names.append(file)
        results = [run_projection(n, cat) for n in names]
        if as_json:
            data = {"scenarios": {r.scenario: r.to_dict() for r in results}}
            sys.stdout.write(json.dumps(jsonable(data), indent=2, ensure_ascii=False) + "\n")
            return
        _print_comparison(results)
        return
    result = run_projection(file, cat)
    if as_json:
        sys.stdout.write(json.dumps(jsonable(result.to_dict()), indent=2, ensure_ascii=False) + "\n")
        return
    out = Console(soft_wrap=True)
    out.print(result)
    if result.regions:
        table = Table(title="data-centre electricity by region, TWh")
        table.add_column("year", justify="right")
        for rid in result.regions:
            table.add_column(rid, justify="right")
        for j, row in enumerate(result.years):
            table.add_row(str(row["year"]), *(f"{rows[j]['datacenter_electricity_twh']:,.0f}"
                                              for rows in result.regions.values()))  # fmt: skip
        out.print(table)
    checks = Table(title="against published figures")
    for column in ("reference", "role", "year", "model", "published", "status"):
        checks.add_column(column)
    for c in result.checks:
        published = f"{c['published']:,.0f}" if "published" in c else f"{c.get('low')}-{c.get('high')}"
        model = "-" if c["model"] is None else f"{c['model']:,.0f}"
        checks.add_row(escape(c["id"]), c.get("role", "check"), str(c["year"]), model, published, c["status"])
    out.print(checks)


def _print_comparison(results: list[Any]) -> None:
    out = Console(soft_wrap=True)
    table = Table(title="scenarios compared")
    for column in ("scenario", "year", "DC TWh", "AI TWh", "AI IT GW", "MtCO2", "cum. capex $T", "$/M tok",
                   "unserved"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in results:
        years = [row["year"] for row in r.years]
        picks = sorted({years[0], *(y for y in (2030,) if y in years), years[-1]})
        for y in picks:
            row = r.row(y)
            price = row["usd_per_million_tokens"]
            table.add_row(
                escape(r.scenario), str(y), f"{row['datacenter_electricity_twh']:,.0f}",
                f"{row['ai_electricity_twh']:,.0f}", f"{row['ai_it_power_gw']:,.1f}", f"{row['co2_mt']:,.0f}",
                f"{row['cumulative_capex_usd_trillion']:,.2f}", "-" if price is None else f"{price:,.3f}",
                f"{100 * row['unserved_demand_fraction']:.1f} %",
            )  # fmt: skip
    out.print(table)
