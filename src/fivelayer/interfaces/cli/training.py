"""``fivelayer predict training``: what training a model on a cluster takes.

The lead registers :func:`predict_training_cmd` on the ``predict`` group of :mod:`.app`; this module does not
import :mod:`.app` (which imports it), so it carries its own small option types.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fivelayer.core.errors import FivelayerError
from fivelayer.core.units import parse_count
from fivelayer.interfaces.cli.common import catalog_with

__all__ = ["parse_tokens", "predict_training_cmd"]


def parse_tokens(text: str) -> float:
    """A token count as people write it: ``15T``, ``2.0T``, ``366B``, ``1.5e13``, ``2000000``.

    >>> parse_tokens("15T"), parse_tokens("366b"), parse_tokens("1.5e13")
    (15000000000000.0, 366000000000.0, 15000000000000.0)
    """
    try:
        return parse_count(text, "--tokens")
    except FivelayerError as exc:
        raise FivelayerError(str(exc)) from None


def predict_training_cmd(
    accelerator: Annotated[str, typer.Option(help="Catalog accelerator id or alias, e.g. h100-sxm")],
    model: Annotated[str, typer.Option(help="Catalog model id or Hugging Face name")],
    tokens: Annotated[str, typer.Option(help="Training tokens, e.g. 15T, 366B or 1.5e13")],
    count: Annotated[int, typer.Option(help="Number of accelerators")] = 1024,
    precision: Annotated[str, typer.Option(help="Training precision: bf16 (default), fp8, fp16, fp32")] = "bf16",
    seq_len: Annotated[int | None, typer.Option(help="Sequence length (default 4,096 or the model's context)")] = None,
    batch_tokens: Annotated[
        float | None, typer.Option(help="Global batch in tokens (default 1,024 per accelerator, 4-16 Mi)")
    ] = None,
    tp: Annotated[int | None, typer.Option(help="Tensor-parallel degree (default: searched)")] = None,
    pp: Annotated[int | None, typer.Option(help="Pipeline-parallel degree (default: searched)")] = None,
    ep: Annotated[int | None, typer.Option(help="Expert-parallel degree (default: searched)")] = None,
    cp: Annotated[int | None, typer.Option(help="Context-parallel degree (default: searched)")] = None,
    schedule: Annotated[
        str, typer.Option(help="Pipeline schedule: 1f1b (interleaved) or dualpipe (DeepSeek-V3's, overlaps all-to-all)")
    ] = "1f1b",
    region: Annotated[str, typer.Option(help="Grid region for carbon and electricity price")] = "us",
    pue: Annotated[float | None, typer.Option(help="Facility PUE (default 1.2)")] = None,
    price_per_gpu_hour: Annotated[
        float | None, typer.Option(help="Rent at this USD per GPU-hour instead of owning the cluster")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    catalog: Annotated[
        list[Path] | None,
        typer.Option("--catalog", help="A YAML file of your own records, added to the catalog.", show_default=False),
    ] = None,
) -> None:
    """Time, GPU-hours, MFU, energy, cost and carbon of training a model on COUNT accelerators."""
    from fivelayer.engines.training import TrainingCase, predict_training

    case = TrainingCase(
        accelerator=accelerator, count=count, model=model, tokens=parse_tokens(tokens), precision=precision,
        seq_len=seq_len, batch_tokens=batch_tokens, tp=tp, pp=pp, ep=ep, cp=cp, region=region, pue=pue,
        price_usd_per_gpu_hour=price_per_gpu_hour, schedule=schedule,
    )  # fmt: skip
    result = predict_training(case, catalog_with(catalog)).to_dict()
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    out = Console(soft_wrap=True)
    lay = result["layout"]
    table = Table(
        title=f"Training {result['model']} on {count} x {result['accelerator']} ({precision})", show_header=False
    )
    table.add_column("quantity", style="bold")
    table.add_column("value")
    for label, value in (
        ("tokens", f"{result['tokens']:.4g}"),
        ("wall-clock", f"{result['days']:,.1f} days ({result['ideal_days']:,.1f} without failures)"),
        ("GPU-hours", f"{result['gpu_hours']:,.0f}"),
        ("MFU", f"{100 * result['mfu']:.1f} % ({result['model_tflops_per_gpu']:,.0f} model TFLOP/s per GPU)"),
        ("layout", f"dp {lay['dp']} x tp {lay['tp']} x pp {lay['pp']} x cp {lay['cp']} (ep {lay['ep']}), "
         f"ZeRO {result['zero_stage']}, {result['recompute']} recomputation"),
        ("goodput", f"{100 * result['goodput']['fraction']:.1f} % ({result['goodput']['interruptions']:,.0f} "
         f"interruptions expected)"),
        ("energy", f"{result['energy_mwh']['it']:,.0f} MWh IT, {result['energy_mwh']['facility']:,.0f} MWh facility"),
        ("cost", f"{result['cost_usd']:,.0f} USD ({result['cost_basis']})"),
        ("carbon", f"{result['co2_t']:,.0f} t CO2e ({result['region']})"),
    ):  # fmt: skip
        table.add_row(label, escape(value))
    out.print(table)
    for line in result["assumptions"]:
        out.print(f"  - {escape(line)}", highlight=False)
