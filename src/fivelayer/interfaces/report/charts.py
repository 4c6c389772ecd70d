"""Plotly figures of a ``plan`` / ``yield`` result and of a serving simulation.

Every figure has a title, axis titles with units and readable labels. The figures are plain
``plotly.graph_objects.Figure`` objects; :mod:`fivelayer.interfaces.report.html` embeds them in one file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = [
    "Chart",
    "annual_cost_waterfall",
    "capex_waterfall",
    "hourly_chart",
    "latency_cdf",
    "latency_percentiles",
    "sankey_chart",
    "stack_charts",
    "unit_cost_breakdown",
]

HOURS_PER_YEAR = 8760
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}
_COLOURS = {
    "grid": "#6c757d",
    "solar": "#f4b400",
    "battery": "#7e57c2",
    "gas": "#8d6e63",
    "meter": "#37474f",
    "power-chain losses": "#e57373",
    "cooling and other": "#4fc3f7",
    "IT": "#1e88e5",
    "accelerators": "#43a047",
    "hosts": "#90a4ae",
    "network": "#ab47bc",
    "storage": "#ffa726",
    "tokens": "#2e7d32",
}


@dataclass(frozen=True)
class Chart:
    """One figure and the id of the element that holds it in a page."""

    id: str
    title: str
    figure: go.Figure


def _layout(fig: go.Figure, title: str, height: int = 440) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        font=_FONT,
        height=height,
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
        template="plotly_white",
    )
    return fig


def _label(key: str) -> str:
    return key.replace("_", " ")


def _usd(value: float) -> str:
    for size, suffix in ((1e9, " bn"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= size:
            return f"${value / size:,.2f}{suffix}"
    return f"${value:,.2f}"


def sankey_chart(result: Any) -> go.Figure:
    """Energy from the meter to tokens: the result's Sankey links in MWh per year (zero links left out)."""
    links = [(a, b, float(v)) for a, b, v in result.sankey["links"] if math.isfinite(float(v)) and float(v) > 0]
    nodes = list(dict.fromkeys([n for a, b, _ in links for n in (a, b)]))
    index = {n: i for i, n in enumerate(nodes)}
    inflow = dict.fromkeys(nodes, 0.0)
    outflow = dict.fromkeys(nodes, 0.0)
    for a, b, v in links:
        outflow[a] += v
        inflow[b] += v
    labels = [f"{n}<br>{max(inflow[n], outflow[n]):,.0f} MWh" for n in nodes]
    fig = go.Figure(
        go.Sankey(
            valueformat=",.0f",
            valuesuffix=" MWh/yr",
            node={
                "label": labels,
                "color": [_COLOURS.get(n, "#78909c") for n in nodes],
                "pad": 18,
                "thickness": 18,
            },
            link={
                "source": [index[a] for a, _, _ in links],
                "target": [index[b] for _, b, _ in links],
                "value": [v for _, _, v in links],
                "color": "rgba(120,144,156,0.35)",
            },
        )
    )
    return _layout(fig, "Where the watts go: energy from the meter to tokens (MWh per year)", 480)


def _waterfall(items: dict[str, float], total_label: str, title: str, y_title: str) -> go.Figure:
    parts = {k: float(v) for k, v in items.items() if math.isfinite(float(v)) and float(v) != 0.0}
    total = sum(parts.values())
    x = [_label(k) for k in parts] + [total_label]
    y = [*parts.values(), total]
    fig = go.Figure(
        go.Waterfall(
            x=x,
            y=y,
            measure=["relative"] * len(parts) + ["total"],
            text=[_usd(v) for v in y],
            textposition="outside",
            connector={"line": {"color": "#b0bec5"}},
            increasing={"marker": {"color": "#1e88e5"}},
            totals={"marker": {"color": "#37474f"}},
        )
    )
    fig.update_yaxes(title_text=y_title, tickprefix="$", tickformat=".3s")
    fig.update_xaxes(title_text="cost item")
    return _layout(fig, title)


def capex_waterfall(result: Any) -> go.Figure:
    """Capital expenditure by item (chips, servers, network, storage, facility, on-site supply)."""
    detail = result.layers["economics"]["capex_detail_usd"]
    return _waterfall(detail, "total capex", "Capital expenditure by layer (USD)", "capex (USD)")


def annual_cost_waterfall(result: Any) -> go.Figure:
    """Annual cost: annualised capital of each item plus operating costs."""
    econ = result.layers["economics"]
    items = {f"{k} (capital)": v for k, v in econ["annualised_capex_usd"].items()}
    items |= {f"{k} (operating)": v for k, v in econ["opex_usd"].items()}
    return _waterfall(
        items,
        "annual cost",
        "Annual cost by layer: capital recovery and operations (USD per year)",
        "cost (USD per year)",
    )


def unit_cost_breakdown(result: Any) -> go.Figure:
    """$ per million tokens, split in proportion to the items of the annual cost."""
    econ = result.layers["economics"]
    items = {f"{k} (capital)": float(v) for k, v in econ["annualised_capex_usd"].items()}
    items |= {f"{k} (operating)": float(v) for k, v in econ["opex_usd"].items()}
    items = {k: v for k, v in items.items() if v > 0 and math.isfinite(v)}
    total_cost = sum(items.values())
    per_million = float(result.totals["usd_per_million_tokens"])
    scale = per_million / total_cost if total_cost > 0 and math.isfinite(per_million) else 0.0
    names = [_label(k) for k in items]
    values = [v * scale for v in items.values()]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            text=[f"${v:,.3f}" for v in values],
            textposition="auto",
            marker={"color": "#43a047"},
        )
    )
    fig.update_xaxes(title_text="USD per million output tokens", tickprefix="$")
    fig.update_yaxes(title_text="cost item", autorange="reversed")
    return _layout(
        fig,
        f"Where the money goes: ${per_million:,.3f} per million tokens, by cost item",
        max(360, 60 + 34 * len(names)),
    )


def hourly_chart(result: Any) -> go.Figure:
    """Facility, IT and grid power, electricity price and grid carbon intensity for every hour of the year."""
    hourly = result.hourly
    hours = np.arange(len(hourly["facility_w"]))
    days = hours / 24.0
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        subplot_titles=("Power (MW)", "Electricity price (USD/kWh)", "Grid carbon (gCO2/kWh)"),
    )
    for key, name, colour in (
        ("facility_w", "facility", "#37474f"),
        ("it_w", "IT", "#1e88e5"),
        ("grid_w", "from grid", "#6c757d"),
        ("solar_w", "solar used", "#f4b400"),
    ):
        series = np.asarray(hourly.get(key, np.zeros(hours.size)), dtype=float) / 1e6
        if key == "solar_w" and not series.any():
            continue
        fig.add_trace(
            go.Scatter(x=days, y=series, name=name, mode="lines", line={"width": 1, "color": colour}), row=1, col=1
        )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=np.asarray(hourly["price_usd_per_kwh"], dtype=float),
            name="price",
            mode="lines",
            line={"width": 1, "color": "#e53935"},
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=np.asarray(hourly["carbon_g_per_kwh"], dtype=float),
            name="carbon",
            mode="lines",
            line={"width": 1, "color": "#8d6e63"},
        ),
        row=3,
        col=1,
    )
    fig.update_yaxes(title_text="MW", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="USD/kWh", row=2, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="gCO2/kWh", row=3, col=1, rangemode="tozero")
    fig.update_xaxes(title_text="day of the year", row=3, col=1)
    return _layout(fig, "Hourly power, price and carbon over a year", 640)


def latency_percentiles(simulation: Any) -> go.Figure:
    """P50 / P90 / P99 of time to first token, time per output token and end-to-end latency, in ms."""
    summary = simulation.summary
    fig = go.Figure()
    for metric, name in (
        ("ttft_s", "time to first token"),
        ("tpot_s", "time per output token"),
        ("e2e_s", "end to end"),
    ):
        pct = summary[metric]
        keys = ["p50", "p90", "p99"]
        values = [None if pct.get(k) is None else 1e3 * float(pct[k]) for k in keys]
        fig.add_trace(
            go.Bar(
                x=[k.upper() for k in keys],
                y=values,
                name=name,
                text=[None if v is None else f"{v:,.1f} ms" for v in values],
                textposition="outside",
            )
        )
    fig.update_yaxes(title_text="latency (ms, log scale)", type="log")
    fig.update_xaxes(title_text="percentile")
    fig.update_layout(barmode="group")
    return _layout(fig, "Latency percentiles from the serving simulation (ms)")


def latency_cdf(simulation: Any) -> go.Figure:
    """Empirical CDF of time to first token and end-to-end latency of the simulated requests."""
    fig = go.Figure()
    for key, name in (("ttft_s", "time to first token"), ("e2e_s", "end to end")):
        values = np.asarray(simulation.records[key], dtype=float)
        values = np.sort(values[np.isfinite(values)])
        if values.size == 0:
            continue
        if values.size > 2000:  # plot at most 2,000 points; the curve stays exact at those quantiles
            values = values[np.linspace(0, values.size - 1, 2000).astype(int)]
        share = np.linspace(0.0, 1.0, values.size, endpoint=True)
        fig.add_trace(go.Scatter(x=values, y=share, name=name, mode="lines", line={"shape": "hv"}))
    fig.update_xaxes(title_text="latency (s, log scale)", type="log")
    fig.update_yaxes(title_text="share of requests", tickformat=".0%", range=[0, 1.02])
    return _layout(fig, "Latency CDF of the simulated requests")


def simulation_result(simulation: Any) -> Any:
    """The ``SimulationResult`` of a simulation given as one, or as a planned unit's run (``PlannedUnitRun``)."""
    from fivelayer.engines.serving.planned import PlannedUnitRun

    return simulation.result if isinstance(simulation, PlannedUnitRun) else simulation


def stack_charts(result: Any, simulation: Any | None = None) -> list[Chart]:
    """Every chart of a report, in reading order. ``simulation``: a ``SimulationResult`` or ``PlannedUnitRun``."""
    charts = [
        Chart("chart-sankey", "Energy flow", sankey_chart(result)),
        Chart("chart-capex", "Capital expenditure", capex_waterfall(result)),
        Chart("chart-annual-cost", "Annual cost", annual_cost_waterfall(result)),
        Chart("chart-unit-cost", "USD per million tokens", unit_cost_breakdown(result)),
        Chart("chart-hourly", "Hourly power, price and carbon", hourly_chart(result)),
    ]
    if simulation is not None:
        sim = simulation_result(simulation)
        charts.append(Chart("chart-latency", "Latency percentiles", latency_percentiles(sim)))
        charts.append(Chart("chart-latency-cdf", "Latency CDF", latency_cdf(sim)))
    return charts
