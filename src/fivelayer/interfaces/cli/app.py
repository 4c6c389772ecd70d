"""The ``fivelayer`` command line (typer + rich).

Exit codes: 0 success, 2 bad input (one paragraph, no traceback), 1 internal error.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import fivelayer
from fivelayer.catalog import CatalogSet, default_catalog, resolve_kind
from fivelayer.core.errors import FivelayerError
from fivelayer.scenario import Scenario, default_scenario, load_scenario

app = typer.Typer(
    name="fivelayer",
    help="The AI industry as a five-layer stack: energy, chips, infrastructure, models, applications.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(
    help="Browse the catalog of real components, each number with its source.", no_args_is_help=True
)
scenario_app = typer.Typer(help="Check and explain scenario files.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(scenario_app, name="scenario")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

CatalogOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog", help="A YAML file of your own records, added to (or replacing) the catalog's.", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]


def _version(value: bool) -> None:
    if value:
        out.print(f"fivelayer {fivelayer.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """fivelayer: size, yield, train and project the AI stack, with every number sourced."""


def _catalog(files: list[Path] | None) -> CatalogSet:
    catalog = default_catalog()
    for path in files or []:
        catalog = catalog.with_file(path)
    return catalog


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


# --- catalog ---------------------------------------------------------------------------------------


@catalog_app.command("list")
def catalog_list(
    kind: Annotated[
        str, typer.Argument(help="accelerators, systems, facilities, models, grid-regions or applications")
    ],
    as_json: JsonOption = False,
    catalog: CatalogOption = None,
) -> None:
    """List every record of one kind."""
    name = resolve_kind(kind)
    records = list(_catalog(catalog).kind(name))
    if as_json:
        _print_json([fivelayer.record_to_dict(r) for r in records])
        return
    rows = [fivelayer.record_summary(r) for r in records]
    table = Table(title=f"{name} ({len(rows)})", show_lines=False)
    for column in rows[0] if rows else ["id"]:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(v) for v in row.values()))
    out.print(table)


@catalog_app.command("show")
def catalog_show(
    kind: Annotated[str, typer.Argument(help="The kind of record, e.g. accelerators")],
    record_id: Annotated[str, typer.Argument(metavar="ID", help="Id or alias, e.g. h200-sxm")],
    as_json: JsonOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Show one record with every number and its source."""
    record = _catalog(catalog).kind(resolve_kind(kind)).get(record_id)
    data = fivelayer.record_to_dict(record)
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{record.name} ({record.id})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if key == "sources":
            value = "\n".join(
                f"{s.get('url') or s.get('citation')} (retrieved {s['retrieved']})"
                + (f" [{', '.join(s['fields'])}]" if s.get("fields") else "")
                for s in value
            )
        elif isinstance(value, dict):
            value = "\n".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        table.add_row(key, escape(str(value)))
    out.print(table)


# --- scenario --------------------------------------------------------------------------------------


def _scenario(path: Path | None, catalog: list[Path] | None) -> Scenario:
    base = _catalog(catalog)
    if path is None:
        return (
            default_scenario() if not catalog else Scenario.from_yaml_text(_default_text(), "<default scenario>", base)
        )
    return load_scenario(path, base)


def _default_text() -> str:
    from importlib import resources

    ref = resources.files("fivelayer").joinpath("data").joinpath("scenarios").joinpath("default.yaml")
    return ref.read_text(encoding="utf-8")


ScenarioArg = Annotated[
    Path | None,
    typer.Argument(help="Scenario YAML file; without it, the embedded default scenario.", show_default=False),
]


@scenario_app.command("check")
def scenario_check(file: ScenarioArg = None, catalog: CatalogOption = None) -> None:
    """Validate a scenario file: schema, units and every catalog reference."""
    scenario = _scenario(file, catalog)
    out.print(
        f"[green]OK[/green] {scenario.origin}: {scenario.name!r}, {len(scenario.deployments)} deployment(s), "
        f"{len(scenario.applications)} application(s)"
    )


@scenario_app.command("explain")
def scenario_explain(file: ScenarioArg = None, as_json: JsonOption = False, catalog: CatalogOption = None) -> None:
    """Say where every number of a scenario comes from: the file, a default, or a catalog source."""
    scenario = _scenario(file, catalog)
    rows = scenario.explain()
    if as_json:
        _print_json({"scenario": scenario.name, "origin": scenario.origin, "rows": [r.to_dict() for r in rows]})
        return
    table = Table(title=f"{scenario.name} ({scenario.origin})")
    table.add_column("field", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_column("from")
    table.add_column("source / basis", overflow="fold")
    for row in rows:
        table.add_row(escape(row.field), escape(row.value), row.origin, escape(row.source))
    out.print(table)


# --- entry point -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the command line; turn fivelayer errors into exit code 2 and anything else into 1."""
    try:
        rc = app(args=argv, prog_name="fivelayer", standalone_mode=False)
    except FivelayerError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err.print("aborted")
        return 1
    except Exception as exc:  # click's usage errors and everything unexpected
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return 2
        if os.environ.get("FIVELAYER_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in fivelayer; set FIVELAYER_DEBUG=1 for the traceback and report it.\n"
        )
        return 1
    return rc if isinstance(rc, int) else 0


def run() -> None:  # pragma: no cover - console entry
    sys.exit(main())
