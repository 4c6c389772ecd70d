"""The ``fivelayer`` command line (typer + rich).

Exit codes: 0 success, 2 bad input (one paragraph, no traceback), 1 internal error.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import fivelayer
from fivelayer.catalog import resolve_kind
from fivelayer.core.errors import FivelayerError
from fivelayer.interfaces.cli.common import EFFICIENCY_HELP, catalog_with, jsonable, with_efficiency
from fivelayer.scenario import Scenario, default_scenario, load_scenario

if TYPE_CHECKING:
    from fivelayer.models.step import Efficiency

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
predict_app = typer.Typer(
    help="Predict what accelerators do with a model: serving (inference) and training runs.", no_args_is_help=True
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(scenario_app, name="scenario")
app.add_typer(predict_app, name="predict")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

CatalogOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog", help="A YAML file of your own records, added to (or replacing) the catalog's.", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")]


@contextmanager
def _working(label: str, quiet: bool) -> Iterator[None]:
    """A spinner on stderr while something runs (off with --quiet or --json, and when stderr is not a terminal)."""
    if quiet or not err.is_terminal:
        yield
        return
    with err.status(label, spinner="dots"):
        yield


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
    records = list(catalog_with(catalog).kind(name))
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
    record = catalog_with(catalog).kind(resolve_kind(kind)).get(record_id)
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
    base = catalog_with(catalog)
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


# --- plan and yield ------------------------------------------------------------------------------------


def _print_stack(result: Any, as_json: bool) -> None:
    if as_json:
        _print_json(jsonable(result.to_dict()))
        return
    out.print(result)
    table = Table(title="deployments")
    for column in ("name", "accelerator", "model", "accelerators", "capacity /s", "peak demand /s", "TTFT s", "TPOT s"):
        table.add_column(column)
    for d in result.deployments:
        table.add_row(
            d["name"], d["accelerator"], d["model"], f"{d['accelerators']:,}", f"{d['capacity_per_s']:,.0f}",
            f"{d['peak_demand_per_s']:,.0f}", "-" if d["ttft_s"] is None else f"{d['ttft_s']:.3f}",
            "-" if d["tpot_s"] is None else f"{d['tpot_s']:.4f}",
        )  # fmt: skip
    out.print(table)
    apps = Table(title="applications")
    for column in ("application", "users", "served", "USD per M units", "USD per request", "revenue USD/yr"):
        apps.add_column(column)
    for a in result.applications:
        apps.add_row(
            a["id"], f"{a['users']:,.0f}", f"{100 * a['served_fraction']:.1f} %", f"{a['usd_per_million_units']:,.3f}",
            f"{a['usd_per_request']:,.4f}", f"{a['revenue_usd_per_year']:,.0f}",
        )  # fmt: skip
    out.print(apps)


@app.command("plan")
def plan_cmd(
    file: ScenarioArg = None, as_json: JsonOption = False, quiet: QuietOption = False, catalog: CatalogOption = None
) -> None:
    """Size the whole stack for a scenario's applications: accelerators, racks, MW, energy, cost, carbon."""
    from fivelayer.engines.analytic import plan

    with _working("planning through the five layers...", quiet or as_json):
        result = plan(_scenario(file, catalog))
    _print_stack(result, as_json)


@app.command("yield")
def yield_cmd(
    file: ScenarioArg = None,
    as_json: JsonOption = False,
    budget: Annotated[str | None, typer.Option(help="Capex budget, e.g. '2e9 USD'")] = None,
    quiet: QuietOption = False,
    catalog: CatalogOption = None,
) -> None:
    """What a site's power (and budget) produces: accelerators, tokens/s, users served, revenue."""
    from fivelayer.core.units import to_si
    from fivelayer.engines.analytic import yield_

    budget_usd = None
    if budget is not None:
        try:
            budget_usd = to_si(budget, "USD")
        except FivelayerError as exc:
            raise FivelayerError(f"--budget: {exc}") from None
    with _working("filling the site...", quiet or as_json):
        result = yield_(_scenario(file, catalog), budget_usd)
    _print_stack(result, as_json)


# --- predict -----------------------------------------------------------------------------------------


@predict_app.command("inference")
def predict_inference_cmd(
    accelerator: Annotated[str | None, typer.Option(help="Catalog accelerator id or alias, e.g. h200-sxm")] = None,
    count: Annotated[int, typer.Option(help="Number of accelerators")] = 8,
    model: Annotated[str | None, typer.Option(help="Catalog model id or Hugging Face name")] = None,
    precision: Annotated[str, typer.Option(help="fp8, fp4, bf16, int8, int4 (weight-only)...")] = "fp8",
    input_tokens: Annotated[int, typer.Option(help="Prompt tokens per request")] = 1024,
    output_tokens: Annotated[int, typer.Option(help="Generated tokens per request")] = 256,
    mode: Annotated[str, typer.Option(help="offline, server or fixed-batch")] = "offline",
    batch_size: Annotated[
        int | None,
        typer.Option(help="Concurrent sequences per replica (fixed-batch); the most per replica in the other modes"),
    ] = None,
    tp: Annotated[int | None, typer.Option(help="Tensor-parallel degree (default: searched)")] = None,
    pp: Annotated[int | None, typer.Option(help="Pipeline-parallel degree (default: searched)")] = None,
    ep: Annotated[int | None, typer.Option(help="Expert-parallel degree (default: searched)")] = None,
    ttft_slo: Annotated[float | None, typer.Option(help="p99 time-to-first-token target, seconds (server)")] = None,
    tpot_slo: Annotated[float | None, typer.Option(help="p99 time-per-output-token target, seconds (server)")] = None,
    input_cv: Annotated[float, typer.Option(help="Coefficient of variation of prompt lengths (0: all the mean)")] = 0,
    output_cv: Annotated[float, typer.Option(help="Coefficient of variation of output lengths (0: all the mean)")] = 0,
    power_limit: Annotated[
        float | None, typer.Option(help="Board power limit per accelerator, watts (nvidia-smi -pl; default: TDP)")
    ] = None,
    efficiency: Annotated[str | None, typer.Option(help=EFFICIENCY_HELP, show_default=False)] = None,
    cases: Annotated[
        Path | None, typer.Option(help="JSON-lines or CSV file of cases; one JSON line out per case")
    ] = None,
    as_json: JsonOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Throughput, latency, power and energy per token of COUNT accelerators serving a model."""
    from fivelayer.applications.application import check_length_cv
    from fivelayer.engines.calibration import fitted_efficiency
    from fivelayer.engines.inference import InferenceCase, predict_inference
    from fivelayer.interfaces.cli.cases import read_cases

    cat = catalog_with(catalog)

    def eff_for(chip: str, own: str | None = None) -> Efficiency | None:
        """The chip family's fit with the fields --efficiency sets, then those the case's own field sets."""
        if efficiency is None and own is None:
            return None
        eff = fitted_efficiency(cat.accelerators.get(chip).family)
        eff = eff if efficiency is None else with_efficiency(efficiency, eff)
        return eff if own is None else with_efficiency(own, eff, option="field 'efficiency'")

    if cases is not None:
        for number, fields in read_cases(cases):
            own = fields.pop("efficiency", None)
            try:
                for name in ("input_cv", "output_cv"):
                    if name in fields:
                        check_length_cv(fields[name], f"field {name!r}")
                case = InferenceCase(**fields)
                prediction = predict_inference(case, cat, eff_for(case.accelerator, own))
            except FivelayerError as exc:
                raise FivelayerError(f"{cases} line {number}: {exc}") from None
            sys.stdout.write(json.dumps(prediction.to_dict()) + "\n")
        return
    missing = [name for name, value in (("--accelerator", accelerator), ("--model", model)) if value is None]
    if missing:
        raise FivelayerError(f"give {' and '.join(missing)} (or --cases FILE)")
    assert accelerator is not None and model is not None
    check_length_cv(input_cv, "--input-cv")
    check_length_cv(output_cv, "--output-cv")
    case = InferenceCase(
        accelerator=accelerator, count=count, model=model, precision=precision, input_tokens=input_tokens,
        output_tokens=output_tokens, mode=mode,  # type: ignore[arg-type]
        batch_size=batch_size, tp=tp, pp=pp, ep=ep, ttft_slo=ttft_slo, tpot_slo=tpot_slo, input_cv=input_cv,
        output_cv=output_cv, power_limit=power_limit,
    )  # fmt: skip
    result = predict_inference(case, cat, eff_for(accelerator)).to_dict()
    if as_json:
        _print_json(result)
        return
    table = Table(
        title=f"{count} x {result['accelerator']} serving {result['model']} ({precision}, {mode})", show_header=False
    )
    table.add_column("quantity", style="bold")
    table.add_column("value")
    par = result["parallelism"]
    energy = result["energy_per_output_token_j"]
    for label, value in (
        ("throughput", f"{result['throughput_tokens_per_s']:,.0f} output tokens/s"),
        ("TTFT (estimate)", f"{result['ttft_s'] * 1e3:,.1f} ms"),
        ("TPOT", f"{result['tpot_s'] * 1e3:,.2f} ms"),
        ("batch per replica", f"{result['batch_size']}"),
        ("parallelism", f"tp {par['tp']} x pp {par['pp']} (ep {par['ep']}), {par['replicas']} replica(s)"),
        ("bottleneck", result["bottleneck"]),
        ("power per accelerator", f"{result['gpu_power_w']:,.0f} W"),
        ("system power", f"{result['system_power_w'] / 1e3:,.2f} kW"),
        (
            "energy per output token",
            f"{energy['gpu']:.3f} J (gpu), {energy['system']:.3f} J (system), {energy['facility']:.3f} J (facility)",
        ),
    ):
        table.add_row(label, value)
    out.print(table)
    for line in result["assumptions"]:
        out.print(f"  - {escape(line)}", highlight=False)


@app.command("validate")
def validate_cmd(
    as_json: JsonOption = False,
    markdown: Annotated[Path | None, typer.Option(help="Also write the report as Markdown to this file")] = None,
    quick: Annotated[
        bool, typer.Option(help="Simulate MLPerf server rows for 60 s instead of LoadGen's 600 s (rough, fast)")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Predicted vs measured for every reference row (leave-one-out), with median and P90 error per group."""
    from fivelayer.engines.calibration import summarise, validate
    from fivelayer.engines.serving import validate_serving
    from fivelayer.engines.training import validate_training

    if markdown is not None:  # checked before the run, which takes minutes
        from fivelayer.core.files import check_output_file, head_contains
        from fivelayer.interfaces.cli.cases import VALIDATION_MARK

        check_output_file(
            markdown, lambda p: head_contains(p, VALIDATION_MARK), example="validation.md", what="validation report"
        )
    with _working("predicting every reference measurement (leave-one-out)...", quiet or as_json):
        rows = validate() + validate_training() + validate_serving(duration_s=60.0 if quick else 600.0)
    summary = summarise(rows)
    if as_json:
        _print_json({"rows": [r.to_dict() for r in rows], "summary": summary})
    else:
        table = Table(title="Reference measurements: measured vs predicted (leave-one-out)")
        for column in ("id", "family", "kind", "measured", "predicted", "error"):
            table.add_column(column, overflow="fold")
        for r in rows:
            table.add_row(
                r.id,
                r.family,
                r.kind,
                f"{r.measured:,.4g}",
                "-" if r.predicted is None else f"{r.predicted:,.4g}",
                "-" if r.error is None else f"{100 * r.error:+.1f} %",
            )
        out.print(table)
        summary_table = Table(title="Absolute error per group")
        for column in ("kind", "scenario", "family", "rows", "median", "P90", "within 20 %"):
            summary_table.add_column(column)
        for g in summary:
            summary_table.add_row(
                g["kind"],
                g["scenario"],
                g["family"],
                str(g["rows"]),
                f"{100 * g['median_abs_error']:.1f} %",
                f"{100 * g['p90_abs_error']:.1f} %",
                str(g["within_20_percent"]),
            )
        out.print(summary_table)
    if markdown is not None:
        from fivelayer.interfaces.cli.cases import validation_markdown

        try:
            markdown.write_text(validation_markdown(rows, summary), encoding="utf-8")
        except OSError as exc:
            raise FivelayerError(f"cannot write {markdown}: {exc.strerror}") from None


def _register_optional_commands() -> None:
    """Commands defined in their own modules."""
    from fivelayer.interfaces.cli.project import project_cmd
    from fivelayer.interfaces.cli.report import report_cmd, serve_cmd
    from fivelayer.interfaces.cli.simulate import simulate_cmd
    from fivelayer.interfaces.cli.sweep import sweep_cmd
    from fivelayer.interfaces.cli.training import predict_training_cmd

    predict_app.command("training")(predict_training_cmd)
    app.command("simulate")(simulate_cmd)
    app.command("project")(project_cmd)
    app.command("sweep")(sweep_cmd)
    app.command("report")(report_cmd)
    app.command("serve")(serve_cmd)


_register_optional_commands()


# --- entry point -----------------------------------------------------------------------------------


#: Optional dependencies and the extra that installs each.
_OPTIONAL_MODULES = {
    "plotly": "web",
    "fastapi": "web",
    "uvicorn": "web",
    "multipart": "web",
    "dask": "sweep",
    "distributed": "sweep",
    "duckdb": "sweep",
    "pyarrow": "sweep",
    "pvlib": "solar",
    "h5py": "solar",
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; turn fivelayer errors into exit code 2 and anything else into 1."""
    try:
        rc = app(args=argv, prog_name="fivelayer", standalone_mode=False)
    except FivelayerError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except ModuleNotFoundError as exc:
        extra = _OPTIONAL_MODULES.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        sys.stderr.write(
            f"error: this command needs {exc.name}, part of the optional '{extra}' extra; "
            f"install it with: pip install 'fivelayer[{extra}]' (or pip install -e '.[{extra}]' in a clone)\n"
        )
        return 2
    except typer.Abort:
        err.print("aborted")
        return 1
    except Exception as exc:  # click's usage errors and everything unexpected
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click's usage errors (typer may vendor click)
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
