"""Calibration and validation of the training planner against published runs.

The reference set (``fivelayer/data/reference/training.yaml``) holds published pre-training runs: GPU-hours
from model cards and technical reports (Llama 2, Llama 3, Llama 3.1, DeepSeek-V3, BLOOM) and achieved model
TFLOP/s per GPU (Llama 3 405B at 8K and 16K GPUs, BLOOM, OPT-175B). One number is fitted per accelerator
family: the achievable fraction of peak of training matrix products, as ``eta = c (N / 1e11) ** a`` in the
active parameters ``N`` (an empirical size law: published H100 runs reach a higher fraction of peak the
larger the model, A100 runs about the same), by the least median absolute log error of GPU-hours over a
fixed grid of ``(c, a)``.

Honesty rule: :func:`validate_training` predicts every GPU-hours row with the efficiency fitted on the *other*
GPU-hours rows (leave-one-out; a family with fewer than two other rows borrows the pooled fit). Throughput
rows are never fitted on, so they are out of sample for every fit.

:func:`llmcarbon_comparison` recomputes LLMCarbon's training-carbon table (Faiz et al., ICLR 2024) with this
engine's energy and carbon accounting.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import Field

from fivelayer.catalog import default_catalog
from fivelayer.core.catalog import packaged_yaml, parse_records
from fivelayer.core.errors import FivelayerError
from fivelayer.core.provenance import Source, Strict
from fivelayer.engines.calibration import ValidationRow
from fivelayer.engines.training.costs import carbon_t, facility_energy_j
from fivelayer.engines.training.layouts import TrainingEfficiency

__all__ = [
    "COMPUTE_GRID",
    "DEFAULT_VALIDATION_COUNT",
    "CarbonRow",
    "LlmCarbonComparison",
    "ReferenceRun",
    "fitted_size_law",
    "fitted_training_efficiency",
    "llmcarbon_comparison",
    "reference_runs",
    "size_efficiency",
    "validate_training",
]

#: Achievable fractions of peak at which every reference run is predicted once (then interpolated).
EFFICIENCY_GRID = tuple(float(x) for x in np.round(np.arange(0.05, 0.951, 0.01), 3))
#: Grid of the fit: efficiency at the reference size, and its exponent in the active parameters.
COMPUTE_GRID = tuple(float(x) for x in np.round(np.arange(0.20, 0.801, 0.01), 3))
EXPONENT_GRID = tuple(float(x) for x in np.round(np.arange(-0.10, 0.301, 0.025), 3))
#: Active parameters at which ``compute`` is quoted.
REFERENCE_ACTIVE_PARAMS = 1e11
#: Accelerators assumed for a run whose publisher does not give the count (Llama 2, Llama 3 8B/70B model cards).
#: Assumption: 2,048, the size of Meta's Llama 1 training cluster; GPU-hours depend on it only through
#: communication, pipeline bubbles and failure overheads.
DEFAULT_VALIDATION_COUNT = 2048
#: Used where a family has no reference rows: the planner's default.
UNCALIBRATED = TrainingEfficiency().compute


class ReferenceRun(Strict):
    """One published training run (GPU-hours) or throughput measurement (model TFLOP/s per GPU)."""

    id: str
    model: str
    accelerator: str
    count: int | None = Field(default=None, ge=1)
    tokens: float = Field(gt=0)
    seq_len: int | None = Field(default=None, ge=1)
    batch_tokens: float | None = Field(default=None, gt=0)
    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    cp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    precision: str = "bf16"
    #: Pipeline schedule of the run ("1f1b" or "dualpipe"), see :mod:`.layouts`.
    schedule: str = "1f1b"
    gpu_hours: float | None = Field(default=None, gt=0)
    model_tflops_per_gpu: float | None = Field(default=None, gt=0)
    #: The published TFLOP/s count the full-recomputation forward pass too (Megatron's "4 x 2" coefficient instead
    #: of "3 x 2", i.e. 4/3 of model FLOPs); the prediction is put on the same basis before comparing.
    tflops_counts_recompute: bool = False
    sources: tuple[Source, ...] = Field(min_length=1)
    notes: str | None = None

    @property
    def family(self) -> str:
        return str(default_catalog().accelerators.get(self.accelerator).family)


class Interruptions(Strict):
    id: str
    accelerator: str
    count: int
    days: float
    interruptions: int
    planned: int
    unexpected: int
    sources: tuple[Source, ...] = Field(min_length=1)


class CarbonRow(Strict):
    """One row of LLMCarbon's training operational-carbon table."""

    id: str
    params: float = Field(gt=0)
    #: Parameters a token uses, where they differ from ``params`` (mixture-of-experts rows): FLOPs are 6 x these.
    active_params: float | None = Field(default=None, gt=0)
    tokens: float = Field(gt=0)
    device: str
    chips: int = Field(ge=1)
    peak_tflops: float = Field(gt=0)
    hardware_efficiency: float = Field(gt=0, le=1)
    avg_power_w: float = Field(gt=0)
    days: float = Field(gt=0)
    pue: float = Field(ge=1)
    intensity_kg_per_kwh: float = Field(gt=0)
    published_tco2e: float = Field(gt=0)
    llmcarbon_tco2e: float = Field(gt=0)
    sources: tuple[Source, ...] = Field(min_length=1)


@functools.cache
def _reference_file() -> tuple[tuple[ReferenceRun, ...], tuple[CarbonRow, ...]]:
    located = packaged_yaml("reference/training.yaml")
    runs: list[ReferenceRun] = parse_records(ReferenceRun, located, ("runs",))
    parse_records(Interruptions, located, ("interruptions",))
    carbon: list[CarbonRow] = parse_records(CarbonRow, located, ("llmcarbon",))
    return tuple(runs), tuple(carbon)


def reference_runs() -> tuple[ReferenceRun, ...]:
    """Reference rows whose model and accelerator are in the catalog."""
    cat = default_catalog()
    return tuple(r for r in _reference_file()[0] if r.model in cat.models and r.accelerator in cat.accelerators)


def _case(row: ReferenceRun) -> Any:
    from fivelayer.engines.training.planner import TrainingCase

    return TrainingCase(
        accelerator=row.accelerator,
        count=row.count or DEFAULT_VALIDATION_COUNT,
        model=row.model,
        tokens=row.tokens,
        precision=row.precision,
        seq_len=row.seq_len,
        batch_tokens=row.batch_tokens,
        tp=row.tp,
        pp=row.pp,
        cp=row.cp,
        ep=row.ep,
        schedule=row.schedule,
    )


def _predict(row: ReferenceRun, compute: float) -> Any:
    from fivelayer.engines.training.planner import predict_training

    return predict_training(_case(row), efficiency=replace(TrainingEfficiency(), compute=compute))


def size_efficiency(compute: float, exponent: float, active_params: float) -> float:
    """The achievable fraction of peak of a model with ``active_params``: ``c (N / 1e11) ** a``, in 0.05..0.95.

    >>> round(size_efficiency(0.4, 0.2, 1e10), 4)
    0.2524
    """
    return float(np.clip(compute * (active_params / REFERENCE_ACTIVE_PARAMS) ** exponent, 0.05, 0.95))


@functools.cache
def _active_params(model: str) -> float:
    return float(default_catalog().language_model(model).params_active())


@functools.cache
def _gpu_hours_table(row: ReferenceRun) -> np.ndarray:
    """Predicted GPU-hours of ``row`` at every efficiency of :data:`EFFICIENCY_GRID` (NaN where infeasible)."""
    out = np.full(len(EFFICIENCY_GRID), np.nan)
    for k, c in enumerate(EFFICIENCY_GRID):
        with contextlib.suppress(FivelayerError):
            out[k] = _predict(row, c).gpu_hours
    return out


def _log_errors(row: ReferenceRun) -> np.ndarray:
    """|log(pred / published)| of ``row`` at every (c, a) of the fit grid, by interpolation in efficiency."""
    c = np.asarray(COMPUTE_GRID)[:, None]
    a = np.asarray(EXPONENT_GRID)[None, :]
    eta = np.clip(c * (_active_params(row.model) / REFERENCE_ACTIVE_PARAMS) ** a, 0.05, 0.95)
    table = np.log(_gpu_hours_table(row))
    grid = np.asarray(EFFICIENCY_GRID)
    good = np.isfinite(table)
    if not good.any():
        return np.full(eta.shape, 10.0)
    pred = np.interp(np.log(eta), np.log(grid[good]), table[good])
    errors: np.ndarray = np.abs(pred - np.log(float(row.gpu_hours or 1.0)))
    return errors


def _gpu_hour_rows() -> list[ReferenceRun]:
    return [r for r in reference_runs() if r.gpu_hours is not None]


def _fit(rows: Sequence[ReferenceRun]) -> tuple[float, float]:
    if not rows:
        return UNCALIBRATED, 0.0
    errors = np.stack([_log_errors(r) for r in rows], axis=-1)
    # Ties (few rows) go to the smallest |exponent|: no size law unless the rows ask for one.
    score = np.median(errors, axis=-1) + 1e-3 * np.mean(errors, axis=-1) + 1e-4 * np.abs(np.asarray(EXPONENT_GRID))
    i, j = np.unravel_index(int(np.argmin(score)), score.shape)
    return COMPUTE_GRID[int(i)], EXPONENT_GRID[int(j)]


def _fit_for(family: str, rows: Sequence[ReferenceRun], exclude: str | None = None) -> tuple[float, float]:
    train = [r for r in rows if r.id != exclude]
    same = [r for r in train if r.family == family]
    return _fit(same if len(same) >= 2 else train)


@functools.cache
def fitted_size_law(family: str) -> tuple[float, float]:
    """``(c, a)`` of the achievable efficiency ``c (N / 1e11) ** a`` of a family, fitted on every GPU-hours row."""
    try:
        rows = _gpu_hour_rows()
    except (FivelayerError, FileNotFoundError):
        return UNCALIBRATED, 0.0
    return _fit_for(family, rows)


def fitted_training_efficiency(family: str, active_params: float) -> float:
    """Achievable fraction of peak of training matrix products of a model on an accelerator family."""
    c, a = fitted_size_law(family)
    return size_efficiency(c, a, active_params)


def validate_training() -> list[ValidationRow]:
    """Leave-one-out GPU-hours of every published run, and out-of-sample model TFLOP/s per GPU."""
    out: list[ValidationRow] = []
    hour_rows = _gpu_hour_rows()
    for row in hour_rows:
        compute = size_efficiency(*_fit_for(row.family, hour_rows, exclude=row.id), _active_params(row.model))
        predicted: float | None
        try:
            predicted = _predict(row, compute).gpu_hours
        except FivelayerError:
            predicted = None
        out.append(ValidationRow.of(row, "training_gpu_hours", float(row.gpu_hours or 0.0), predicted, "training"))
    for row in reference_runs():
        if row.model_tflops_per_gpu is None:
            continue
        compute = size_efficiency(*_fit_for(row.family, hour_rows), _active_params(row.model))
        try:
            predicted = _predict(row, compute).model_tflops_per_gpu * (
                4.0 / 3.0 if row.tflops_counts_recompute else 1.0
            )
        except FivelayerError:
            predicted = None
        out.append(
            ValidationRow.of(row, "training_model_tflops_per_gpu", row.model_tflops_per_gpu, predicted, "training")
        )
    return out


@dataclass(frozen=True)
class LlmCarbonComparison:
    """One row of LLMCarbon's table recomputed here.

    ``accounting_tco2e`` uses the row's measured days and power (this engine's energy and carbon accounting);
    ``predicted_tco2e`` predicts the days too, from 6 N D FLOPs (N the active parameters) at the row's hardware
    efficiency, as LLMCarbon does.
    """

    id: str
    published_tco2e: float
    llmcarbon_tco2e: float
    accounting_tco2e: float
    predicted_days: float
    predicted_tco2e: float
    source: str

    def error_vs(self, value: float, reference: float) -> float:
        return (value - reference) / reference

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "published_tco2e": self.published_tco2e,
            "llmcarbon_tco2e": self.llmcarbon_tco2e,
            "accounting_tco2e": self.accounting_tco2e,
            "accounting_error_vs_published": self.error_vs(self.accounting_tco2e, self.published_tco2e),
            "predicted_days": self.predicted_days,
            "predicted_tco2e": self.predicted_tco2e,
            "predicted_error_vs_published": self.error_vs(self.predicted_tco2e, self.published_tco2e),
            "predicted_error_vs_llmcarbon": self.error_vs(self.predicted_tco2e, self.llmcarbon_tco2e),
            "source": self.source,
        }


def llmcarbon_comparison() -> list[LlmCarbonComparison]:
    """LLMCarbon's training operational-carbon table, recomputed with this engine's accounting."""
    out = []
    for row in _reference_file()[1]:
        it_power = row.chips * row.avg_power_w
        measured_s = row.days * 86_400.0
        accounting = carbon_t(facility_energy_j(it_power, measured_s, row.pue), row.intensity_kg_per_kwh * 1000.0)
        flops = 6.0 * (row.active_params or row.params) * row.tokens
        predicted_s = flops / (row.chips * row.peak_tflops * 1e12 * row.hardware_efficiency)
        predicted = carbon_t(facility_energy_j(it_power, predicted_s, row.pue), row.intensity_kg_per_kwh * 1000.0)
        src = row.sources[0]
        out.append(
            LlmCarbonComparison(
                id=row.id,
                published_tco2e=row.published_tco2e,
                llmcarbon_tco2e=row.llmcarbon_tco2e,
                accounting_tco2e=accounting,
                predicted_days=predicted_s / 86_400.0,
                predicted_tco2e=predicted,
                source=src.url or src.citation or "",
            )
        )
    return out
