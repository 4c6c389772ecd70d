"""``fivelayer simulate``: the serving simulator on the command line (registered by app.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fivelayer.core.errors import FivelayerError
from fivelayer.interfaces.cli.common import EFFICIENCY_HELP, with_efficiency

__all__ = ["simulate_cmd"]

#: Runs with at least this many requests show a progress bar (unless --json).
PROGRESS_MIN_REQUESTS = 5000


#: Options that also apply to a scenario run; any other, given with SCENARIO.yaml, is refused (not ignored).
SCENARIO_OPTIONS = frozenset({"scenario", "requests", "seed", "as_json", "catalog", "find_units"})


def simulate_cmd(
    ctx: typer.Context,
    scenario: Annotated[
        Path | None,
        typer.Argument(
            help="Scenario YAML file: simulate one planned unit of each deployment at its peak-hour load",
            show_default=False,
        ),
    ] = None,
    accelerator: Annotated[str | None, typer.Option(help="Catalog accelerator id, e.g. h100-sxm")] = None,
    count: Annotated[int, typer.Option(help="Number of accelerators (of the decode pool if --prefill-count)")] = 8,
    model: Annotated[str | None, typer.Option(help="Catalog model id, e.g. llama-3.1-8b")] = None,
    precision: Annotated[str, typer.Option(help="fp8, fp4, bf16, int8, int4 (weight-only)...")] = "fp8",
    rate: Annotated[float | None, typer.Option(help="Mean arrival rate, requests per second")] = None,
    trace: Annotated[
        Path | None, typer.Option(help="CSV trace: TIMESTAMP,ContextTokens,GeneratedTokens (Azure format)")
    ] = None,
    requests: Annotated[int | None, typer.Option(help="Requests to simulate (default 1,000; a trace: all)")] = None,
    input_tokens: Annotated[int, typer.Option(help="Mean prompt tokens per request (with --rate)")] = 1024,
    output_tokens: Annotated[int, typer.Option(help="Mean generated tokens per request (with --rate)")] = 256,
    input_cv: Annotated[float, typer.Option(help="Coefficient of variation of prompt lengths (0: fixed)")] = 0.0,
    output_cv: Annotated[float, typer.Option(help="Coefficient of variation of output lengths (0: fixed)")] = 0.0,
    arrival: Annotated[str, typer.Option(help="Arrival process: poisson or gamma (bursty)")] = "poisson",
    burstiness: Annotated[float, typer.Option(help="Gap coefficient of variation of gamma arrivals")] = 2.0,
    turns: Annotated[float, typer.Option(help="Mean turns per conversation (prefix reuse); 1: none")] = 1.0,
    tp: Annotated[int | None, typer.Option(help="Tensor-parallel degree per replica (default: searched)")] = None,
    pp: Annotated[int | None, typer.Option(help="Pipeline-parallel degree per replica (default: searched)")] = None,
    ep: Annotated[int | None, typer.Option(help="Expert-parallel degree per replica")] = None,
    power_limit: Annotated[
        float | None, typer.Option(help="Board power limit per accelerator, watts (nvidia-smi -pl; default: TDP)")
    ] = None,
    prefill_count: Annotated[
        int | None, typer.Option(help="Accelerators in a separate prefill pool (disaggregated serving)")
    ] = None,
    router: Annotated[
        str, typer.Option(help="round-robin, least-outstanding, kv-aware or shared-queue")
    ] = "least-outstanding",
    dispatch_batch: Annotated[
        int, typer.Option(min=1, help="Requests a batching front end gathers and sends to one replica together")
    ] = 1,
    dispatch_timeout: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=86_400.0,
            help="Seconds the batching front end waits after a send before it sends a partial batch (at most a day)",
        ),
    ] = 0.0,
    max_num_seqs: Annotated[int | None, typer.Option(help="Running sequences per replica (default 256)")] = None,
    max_batched_tokens: Annotated[int, typer.Option(help="Token budget per step")] = 8192,
    chunked_prefill: Annotated[
        bool,
        typer.Option(
            help="Split prompts to the token budget and batch them with decodes (off: vLLM's older "
            "scheduler, prompts in steps of their own that pause every decode)"
        ),
    ] = True,
    num_scheduler_steps: Annotated[
        int,
        typer.Option(min=1, max=1024, help="Multi-step scheduling: decode steps per scheduler decision (vLLM)"),
    ] = 1,
    preemption: Annotated[str, typer.Option(help="recompute or swap")] = "recompute",
    prefix_caching: Annotated[bool, typer.Option(help="Keep finished conversations' KV for reuse")] = True,
    speculative_tokens: Annotated[int, typer.Option(help="Draft tokens checked per step (0: off)")] = 0,
    acceptance_rate: Annotated[float, typer.Option(help="Per-token acceptance of speculative drafts")] = 0.7,
    draft_model: Annotated[
        str | None, typer.Option(help="Catalog id of the draft model (default: free n-gram drafting)")
    ] = None,
    ttft_slo: Annotated[float, typer.Option(help="TTFT target for goodput, seconds")] = 2.0,
    tpot_slo: Annotated[float, typer.Option(help="TPOT target for goodput, seconds")] = 0.2,
    horizon: Annotated[float | None, typer.Option(help="Stop at this simulated time, seconds (default: drain)")] = None,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    efficiency: Annotated[str | None, typer.Option(help=EFFICIENCY_HELP, show_default=False)] = None,
    records: Annotated[Path | None, typer.Option(help="Write per-request records to .parquet, .duckdb or .csv")] = None,
    find_units: Annotated[
        bool,
        typer.Option(
            "--find-units",
            help="With a scenario: also search the fewest units of each deployment whose simulated unit meets the "
            "applications' p99 targets at the peak hour",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    catalog: Annotated[
        list[Path] | None, typer.Option("--catalog", help="A YAML file of your own records.", show_default=False)
    ] = None,
) -> None:
    """Simulate serving: latency percentiles (TTFT, TPOT, end to end), goodput, throughput, power."""
    from fivelayer.applications.workload import MAX_REQUESTS, read_trace, synthetic_workload, token_lengths
    from fivelayer.catalog import default_catalog
    from fivelayer.core.streams import RandomStreams
    from fivelayer.engines.serving import EngineOptions, ReplicaGroup, ServingConfig, simulate

    # Checked for both forms, before any work (a scenario once took 0 as the default of 1,000).
    if requests is not None and not 1 <= requests <= MAX_REQUESTS:
        raise FivelayerError(f"--requests must be between 1 and {MAX_REQUESTS:,} (got {requests:,})")
    if seed < 0:
        raise FivelayerError(f"--seed must be non-negative (got {seed})")
    if scenario is not None:
        given = [
            f"--{name.replace('_', '-')}"
            for name in ctx.params
            if name not in SCENARIO_OPTIONS and getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"
        ]
        if given:
            raise FivelayerError(
                f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to the direct form (--accelerator "
                f"... --rate R or --trace FILE), not to a scenario, whose deployments set the hardware, model and "
                f"load: leave {'it' if len(given) == 1 else 'them'} out, or leave out {scenario}. With a scenario, "
                "only --requests, --seed, --json, --catalog and --find-units apply."
            )
        _simulate_scenario(scenario, 1000 if requests is None else requests, seed, as_json, catalog, find_units)
        return
    if find_units:
        raise FivelayerError("--find-units searches the units of a scenario's deployments: give a scenario file")
    if records is not None:  # checked before the simulation, which may take minutes
        from fivelayer.engines.serving.results import check_records_path

        check_records_path(records)
    missing = [name for name, value in (("--accelerator", accelerator), ("--model", model)) if value is None]
    if missing:
        raise FivelayerError(f"give {' and '.join(missing)}, and --rate R or --trace FILE")
    if (rate is None) == (trace is None):
        raise FivelayerError("give exactly one of --rate R (synthetic arrivals) or --trace FILE")
    if trace is not None:  # the trace gives each request's arrival and tokens: these would be ignored
        from fivelayer.applications.workload import SYNTHETIC_FIELDS

        given = [f"--{name.replace('_', '-')}" for name in SYNTHETIC_FIELDS
                 if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") != "DEFAULT"]  # fmt: skip
        if given:
            raise FivelayerError(
                f"{', '.join(given)} shape{'s' if len(given) == 1 else ''} synthetic arrivals (--rate), but a trace "
                f"gives each request's arrival time and tokens: leave {'it' if len(given) == 1 else 'them'} out, "
                "or use --rate instead of --trace"
            )
    assert accelerator is not None and model is not None
    cat = default_catalog()
    for path in catalog or []:
        cat = cat.with_file(path)
    max_context = cat.language_model(model).max_context_tokens
    eff = None  # the chip family's fit, with the fields --efficiency sets
    if efficiency is not None:
        from fivelayer.engines.calibration import fitted_efficiency

        eff = with_efficiency(efficiency, fitted_efficiency(cat.accelerators.get(accelerator).family))
    streams = RandomStreams(seed)
    if trace is not None:
        workload = read_trace(trace, limit=requests or 0)
    else:
        assert rate is not None
        if input_tokens < 1 or output_tokens < 1:
            raise FivelayerError("--input-tokens and --output-tokens must be at least 1")
        workload = synthetic_workload(
            requests or 1000, streams.generator("arrivals"), streams.generator("lengths"), rate_per_s=rate,
            input_tokens=token_lengths(input_tokens, input_cv, "--input-cv"),
            output_tokens=token_lengths(output_tokens, output_cv, "--output-cv"),
            arrival=arrival, burstiness_cv=burstiness, turns_mean=turns, max_context=max_context, model=model,
        )  # fmt: skip
    groups = [ReplicaGroup(accelerator, count, "decode" if prefill_count else "mixed", tp, pp, ep, power_limit)]
    if prefill_count:
        groups.insert(0, ReplicaGroup(accelerator, prefill_count, "prefill", tp, pp, ep, power_limit))
    config = ServingConfig(
        model=model, groups=tuple(groups), precision=precision, router=router,  # type: ignore[arg-type]
        engine=EngineOptions(
            max_num_seqs=max_num_seqs, max_num_batched_tokens=max_batched_tokens, chunked_prefill=chunked_prefill,
            num_scheduler_steps=num_scheduler_steps, preemption=preemption,  # type: ignore[arg-type]
            prefix_caching=prefix_caching, speculative_tokens=speculative_tokens, acceptance_rate=acceptance_rate,
            draft_model=draft_model,
        ),
        ttft_slo_s=ttft_slo, tpot_slo_s=tpot_slo, horizon_s=horizon,
        dispatch_batch=dispatch_batch, dispatch_timeout_s=dispatch_timeout,
    )  # fmt: skip
    if as_json or len(workload) < PROGRESS_MIN_REQUESTS:
        result = simulate(workload, config, seed=seed, catalog=cat, efficiency=eff)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("simulating"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} requests"),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("simulate", total=len(workload))
            result = simulate(workload, config, seed=seed, catalog=cat, efficiency=eff,
                              progress=lambda done, total: bar.update(task, completed=done))  # fmt: skip
    if records is not None:
        result.write_records(records)
    data = result.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    _print_table(data)


def _simulate_scenario(
    path: Path, requests: int, seed: int, as_json: bool, catalog: list[Path] | None, find_units: bool = False
) -> None:
    """One planned unit of each language-model deployment, at its share of the peak-hour demand, judged
    against the applications' latency targets (``fivelayer.engines.serving.planned``); with ``find_units``,
    also the fewest units that meet them."""
    from fivelayer.catalog import default_catalog
    from fivelayer.engines.analytic import plan
    from fivelayer.engines.serving.planned import UnitSearch, simulate_planned_unit, units_meeting_targets
    from fivelayer.models import LanguageModel
    from fivelayer.scenario import load_scenario

    cat = default_catalog()
    for extra in catalog or []:
        cat = cat.with_file(extra)
    scen = load_scenario(path, cat)
    planned = plan(scen)
    runs = []
    searches: list[UnitSearch | None] = []
    for index, dep in enumerate(scen.deployments):
        if not isinstance(scen.resolved_catalog.models.get(dep.model), LanguageModel):
            continue
        units = int(planned.deployments[index]["units"])
        if units < 1:
            Console(stderr=True).print(
                f"{dep.name}: the plan gives this deployment no units (the site's power is spent elsewhere); "
                "not simulated"
            )
            continue
        runs.append(simulate_planned_unit(scen, index, units, requests=requests, seed=seed + index))
        searches.append(
            units_meeting_targets(scen, index, units, requests=requests, seed=seed + index) if find_units else None
        )
    if not runs:
        raise FivelayerError(f"{path}: no deployment serves a language model with planned units; nothing to simulate")
    if as_json:
        data = {
            "scenario": scen.name,
            "deployments": [
                {**run.to_dict(), **({"units_meeting_targets": s.to_dict()} if s is not None else {})}
                for run, s in zip(runs, searches, strict=True)
            ],
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    for run, search in zip(runs, searches, strict=True):
        out = Console(soft_wrap=True)
        out.print(f"[bold]{run.deployment}[/bold]: one planned unit at {run.load}", highlight=False)
        _print_table(run.result.to_dict())
        style = "green" if run.meets_targets else "yellow" if run.meets_targets is None else "bold red"
        out.print(f"[{style}]{run.deployment}: {run.verdict()}[/{style}]", highlight=False)
        if search is not None:
            out.print(f"{run.deployment}: {search.sentence()}", highlight=False)


def _ms(p: dict[str, Any]) -> str:
    return " / ".join("-" if p[k] is None else f"{p[k] * 1e3:,.1f}" for k in ("p50", "p90", "p99")) + " ms"


def _print_table(d: dict[str, Any]) -> None:
    out = Console(soft_wrap=True)
    cluster = ", ".join(
        f"{c['replicas']} x ({c['tp']}x{c['pp']} {c['accelerator']}){'' if c['role'] == 'mixed' else ' ' + c['role']}"
        for c in d["cluster"]
    )
    table = Table(title=f"{d['model']} ({d['precision']}) on {cluster}: {d['workload']}", show_header=False)
    table.add_column("quantity", style="bold")
    table.add_column("value")
    rows = [
        ("requests", f"{d['finished']:,} finished of {d['requests']:,} ({d['running']} running, "
                     f"{d['waiting']} waiting, {d['dropped']} dropped)"),
        ("TTFT p50 / p90 / p99", _ms(d["ttft_s"])),
        ("TPOT p50 / p90 / p99", _ms(d["tpot_s"])),
        ("end to end p50 / p90 / p99", _ms(d["e2e_s"])),
        ("throughput", f"{d['throughput_tokens_per_s']:,.0f} output tokens/s, {d['throughput_requests_per_s']:,.2f} "
                       f"requests/s (offered {d['offered_requests_per_s']:,.2f})"),
        ("goodput", f"{d['goodput_requests_per_s']:,.2f} requests/s within TTFT {d['latency_targets']['ttft_s']:g} s "
                    f"and TPOT {d['latency_targets']['tpot_s']:g} s ({100 * d['slo_attainment']:.1f} %)"),
        ("load", "sustainable" if d["sustainable"] else "NOT sustainable: queues grow"),
        ("mean batch, utilisation", f"{d['mean_batch']:,.1f} sequences, {100 * d['utilisation']:.1f} % busy"),
        ("preemptions", f"{d['preemptions']:,}"),
        ("power, energy", f"{d['mean_power_w'] / 1e3:,.2f} kW mean, {d['energy_j'] / 3.6e6:,.3f} kWh (accelerators)"),
    ]  # fmt: skip
    if d["prefix_cache_hit_rate"] is not None:
        rows.append(("prefix cache hits", f"{100 * d['prefix_cache_hit_rate']:.1f} % of shared prefix tokens"))
    for label, value in rows:
        table.add_row(label, escape(value))
    out.print(table)
    for line in d["assumptions"]:
        out.print(f"  - {escape(line)}", highlight=False)
