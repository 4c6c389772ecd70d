"""``fivelayer sweep STUDY.yaml``: sweeps, Monte Carlo and optimisation (registered by ``app.py``)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fivelayer.interfaces.cli.common import jsonable

__all__ = ["sweep_cmd"]

#: Simulate studies: outputs whose first-order sensitivity indices are reported (random and lhs sampling).
SIMULATION_SENSITIVITY = ("goodput_requests_per_s", "ttft_p99_s", "tpot_p99_s", "energy_per_output_token_j")
#: Simulate studies with at most this many variants list every row (in the terminal: the first 40).
MAX_ROWS_SHOWN = 1000
ROWS_PRINTED = 40


def sweep_cmd(
    file: Annotated[Path, typer.Argument(help="Study YAML file: the scenario, the varied fields, the method.")],
    scheduler: Annotated[
        str | None, typer.Option(help="Address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the table to a .duckdb or .parquet file (resumable)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Run on a local Dask cluster of this many worker processes.", min=1)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")] = False,
) -> None:
    """Sweep, Monte Carlo or optimise a scenario, or run many serving simulations (method: simulate):
    ranges (P10/P50/P90), sensitivities and the best design."""
    from fivelayer.engines.sweep import (
        first_order_indices,
        load_study,
        optimum,
        pareto_front,
        percentiles,
        run_study,
        tornado,
    )

    study = load_study(file)  # every check happens here, before any work
    backend = "dask" if scheduler is not None or workers is not None else "local"
    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=as_json or not err.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task(f"{study.spec.name} ({backend})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_study(study, output, backend=backend, scheduler=scheduler, workers=workers or 2,
                           progress=progress)  # fmt: skip
    table = report.table
    result: dict[str, Any] = {
        "study": study.spec.name,
        "method": study.spec.method,
        "variants": len(table),
        "feasible": int(table["feasible"].sum()) if len(table) else 0,
        "engine": report.engine,
        "backend": report.backend,
        "chunks": report.chunks,
        "chunks_computed": report.computed,
        "chunks_reused": report.skipped,
        "seconds": report.seconds,
        "output": None if output is None else str(output),
    }
    if study.simulate:
        result["percentiles"] = percentiles(table, study.outputs)
        if study.spec.sampling != "grid":
            key = [o for o in SIMULATION_SENSITIVITY if o in study.outputs]
            result["sensitivity"] = {o: first_order_indices(table, study, o) for o in key}
        if len(table) <= MAX_ROWS_SHOWN:
            result["rows"] = [_row(r) for _, r in table.iterrows()]
    elif study.spec.method == "optimise":
        best = optimum(table, study.objective, study.spec.max_unserved)
        result["objective"] = study.objective
        result["best"] = None if best is None else _row(best)
        front = pareto_front(table, max_unserved=study.spec.max_unserved)
        result["pareto_front"] = [_row(r) for _, r in front.iterrows()]
    else:
        result["percentiles"] = percentiles(table, study.outputs)
        if study.spec.method != "grid":
            key = [o for o in ("annual_cost_usd", "energy_mwh_per_year", "co2_t_per_year") if o in study.outputs]
            result["sensitivity"] = {o: first_order_indices(table, study, o) for o in key}
            result["tornado"] = tornado(study, tuple(key))
    if as_json:
        sys.stdout.write(json.dumps(jsonable(result), indent=2) + "\n")
        return
    _print(result)


def _row(row: Any) -> dict[str, Any]:
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def _print(result: dict[str, Any]) -> None:
    out = Console(soft_wrap=True)
    out.print(
        f"[bold]{result['study']}[/bold]: {result['variants']:,} variants ({result['feasible']:,} feasible), "
        f"{result['method']}, engine {result['engine']}, {result['backend']}, {result['seconds']:.1f} s; "
        f"{result['chunks_computed']} chunk(s) computed, {result['chunks_reused']} reused"
        + (f"; written to {result['output']}" if result["output"] else "")
    )
    if "percentiles" in result:
        table = Table(title="outputs")
        for column in ("output", "P10", "P50", "P90", "mean"):
            table.add_column(column, justify="right" if column != "output" else "left")
        for name, s in result["percentiles"].items():
            table.add_row(name, *(f"{s[k]:,.4g}" for k in ("p10", "p50", "p90", "mean")))
        out.print(table)
    for name, indices in result.get("sensitivity", {}).items():
        table = Table(title=f"sensitivity of {name}")
        for column in ("input", "first-order index", "tornado low", "tornado high"):
            table.add_column(column)
        bars = {b["parameter"]: b for b in result.get("tornado", {}).get(name, [])}
        for param, index in indices.items():
            bar = bars.get(param, {})
            table.add_row(param, f"{index:.3f}", f"{bar.get('output_low', math.nan):,.4g}",
                          f"{bar.get('output_high', math.nan):,.4g}")  # fmt: skip
        out.print(table)
    if "rows" in result:
        _print_rows(out, result["rows"])
    if "best" in result:
        best = result["best"]
        if best is None:
            out.print("[red]no variant meets the demand and latency targets[/red]")
        else:
            out.print(f"[bold]best[/bold] by {result['objective']}: {best[result['objective']]:,.6g}")
            for key, value in best.items():
                out.print(f"  {key}: {value}")
            out.print(f"Pareto front (cost, TPOT, energy): {len(result['pareto_front'])} variant(s)")


def _print_rows(out: Console, rows: list[dict[str, Any]]) -> None:
    """The variants of a simulate study, one line each, with the headline results."""
    if not rows or "throughput_tokens_per_s" not in rows[0]:
        return
    shown = {"throughput_tokens_per_s": "tokens/s", "goodput_requests_per_s": "goodput req/s",
             "ttft_p99_s": "TTFT p99 ms", "tpot_p99_s": "TPOT p99 ms", "e2e_p99_s": "e2e p99 ms",
             "sustainable": "sustainable", "energy_per_output_token_j": "J/token"}  # fmt: skip
    names = list(rows[0])
    inputs = names[1 : names.index("throughput_tokens_per_s")]
    notes = any(row.get("error") for row in rows)
    table = Table(title=f"variants ({min(len(rows), ROWS_PRINTED)} of {len(rows)})")
    for column in ("variant", *inputs, *(label for key, label in shown.items() if key in rows[0])):
        table.add_column(column, justify="left" if column in inputs else "right")
    if notes:
        table.add_column("note")
    for row in rows[:ROWS_PRINTED]:
        cells = [str(row["variant"]), *(f"{row[c]:g}" if isinstance(row[c], float) else str(row[c]) for c in inputs)]
        for key in shown:
            if key not in row:
                continue
            value = row[key]
            if isinstance(value, bool):
                cells.append("yes" if value else "no")
            elif value is None or (isinstance(value, float) and not math.isfinite(value)):
                cells.append("-")
            else:
                cells.append(f"{value * (1e3 if key.endswith('p99_s') else 1):,.4g}")
        if notes:
            cells.append(str(row.get("error") or ""))
        table.add_row(*cells)
    out.print(table)
