"""What a study's table says: P10/P50/P90 of every output, sensitivities, the optimum and the Pareto front.

Sensitivity is reported two ways:

- **tornado**: each output at the P10 and the P90 of one input with the others at their base values (one
  at a time), evaluated with the same evaluator as the study; the bar width ranks the inputs;
- **first-order variance-based index** ``S_i = Var(E[Y | X_i]) / Var(Y)``, estimated from the Monte Carlo
  sample itself by grouping the rows into equal-count bins of ``X_i`` (one bin per category for a
  categorical input): the share of the output's variance that input explains alone. No extra evaluations;
  the estimate's bias is about (bins - 1) / samples, so ``sqrt(samples)`` bins are used.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fivelayer.engines.sweep.evaluate import Evaluator
from fivelayer.engines.sweep.spec import Study

__all__ = ["first_order_indices", "optimum", "pareto_front", "percentiles", "tornado"]


def percentiles(table: pd.DataFrame, outputs: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Mean, P10, P50 and P90 of each output over the feasible rows (P10 <= P50 <= P90 by construction)."""
    ok = table[table["feasible"]] if "feasible" in table else table
    out = {}
    for name in outputs:
        values = ok[name].to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        out[name] = {"mean": float(values.mean()), "p10": float(p10), "p50": float(p50), "p90": float(p90)}
    return out


def first_order_indices(table: pd.DataFrame, study: Study, output: str) -> dict[str, float]:
    """``S_i`` of each parameter for one output (see the module docstring)."""
    ok = table[table["feasible"]] if "feasible" in table else table
    y = ok[output].to_numpy(dtype=np.float64)
    keep = np.isfinite(y)
    y = y[keep]
    out: dict[str, float] = {}
    if y.size < 4 or float(y.var()) == 0.0:
        return {p.name: 0.0 for p in study.parameters}
    total = float(y.var())
    bins = max(2, int(math.sqrt(y.size)))
    for p in study.parameters:
        x = ok[p.name].to_numpy()[keep]
        if p.kind == "categorical":
            groups = pd.Series(x).astype("string").to_numpy()
        else:
            ranks = pd.Series(x.astype(np.float64)).rank(method="first").to_numpy()
            groups = np.floor((ranks - 1) * bins / ranks.size).astype(np.int64)
        frame = pd.DataFrame({"g": groups, "y": y})
        stats = frame.groupby("g")["y"].agg(["mean", "count"])
        between = float((stats["count"] * (stats["mean"] - y.mean()) ** 2).sum() / y.size)
        out[p.name] = min(1.0, max(0.0, between / total))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def tornado(
    study: Study, outputs: tuple[str, ...], evaluator: Evaluator | None = None
) -> dict[str, list[dict[str, Any]]]:
    """For each output, each numeric input swung from its P10 to its P90 (others at base): low, high, width.

    Categorical inputs swing across their first and last value. Sorted widest first.
    """
    evaluator = evaluator or Evaluator(study)
    rows: list[tuple[str, float, float]] = []
    design: dict[str, list[float]] = {p.name: [] for p in study.parameters}
    base_values = {p.name: _base_code(study, p) for p in study.parameters}
    for p in study.parameters:
        lo, hi = (0.0, float(len(p.values) - 1)) if p.kind == "categorical" else (
            float(p.ppf(np.array([0.1]))[0]), float(p.ppf(np.array([0.9]))[0]))  # fmt: skip
        for value in (lo, hi):
            for q in study.parameters:
                design[q.name].append(value if q is p else base_values[q.name])
        rows.append((p.name, lo, hi))
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in design.items()}
    results = evaluator.evaluate(arrays)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in outputs:
        bars = []
        for i, (param, lo, hi) in enumerate(rows):
            y_lo, y_hi = float(results[name][2 * i]), float(results[name][2 * i + 1])
            bars.append(
                {
                    "parameter": param,
                    "input_low": lo,
                    "input_high": hi,
                    "output_low": y_lo,
                    "output_high": y_hi,
                    "width": abs(y_hi - y_lo) if math.isfinite(y_hi - y_lo) else math.inf,
                }
            )
        out[name] = sorted(bars, key=lambda b: -b["width"])
    return out


def _base_code(study: Study, p: Any) -> float:
    from fivelayer.engines.sweep.paths import get_value, is_catalog_path

    if is_catalog_path(p.path):
        _, kind, record_id, field = p.path
        value = getattr(study.base.resolved_catalog.kind(str(kind)).get(str(record_id)), str(field))
    else:
        value = get_value(study.base, p.path)
    if p.kind == "categorical":
        return float(p.values.index(value)) if value in p.values else 0.0
    return float(value) if isinstance(value, int | float) else float(p.ppf(np.array([0.5]))[0])


def optimum(table: pd.DataFrame, objective: str, max_unserved: float = 0.0) -> pd.Series | None:
    """The feasible row with the lowest ``objective`` that serves the demand (within ``max_unserved``).

    Ties go to the lowest variant number, so the answer is deterministic.
    """
    ok = table[table["feasible"] & (table["unserved_demand_fraction"] <= max_unserved + 1e-12)]
    ok = ok[np.isfinite(ok[objective].to_numpy(dtype=np.float64))]
    if ok.empty:
        return None
    best: pd.Series = ok.sort_values([objective, "variant"], kind="mergesort").iloc[0]
    return best


def pareto_front(table: pd.DataFrame, objectives: tuple[str, ...] = ("annual_cost_usd", "tpot_s_max",
                 "energy_mwh_per_year"), max_unserved: float = 0.0) -> pd.DataFrame:  # fmt: skip
    """Feasible rows that no other row beats on every objective (all minimised)."""
    ok = table[table["feasible"] & (table["unserved_demand_fraction"] <= max_unserved + 1e-12)]
    values = ok[list(objectives)].to_numpy(dtype=np.float64)
    finite = np.isfinite(values).all(axis=1)
    ok, values = ok[finite], values[finite]
    order = np.lexsort(values.T[::-1])
    keep: list[int] = []
    for i in order:
        v = values[i]
        if not any(np.all(values[j] <= v) and np.any(values[j] < v) for j in keep):
            keep.append(int(i))
    front: pd.DataFrame = ok.iloc[sorted(keep)]
    return front
