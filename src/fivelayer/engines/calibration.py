"""Calibration and validation of the inference engine against published measurements.

The reference set (``fivelayer/data/reference/inference.yaml``) holds published measurements, one row
each, with its source: MLPerf Inference results (throughput), ML.ENERGY measurements (GPU energy per
token), vendor benchmarks. Two things are fitted to it:

- per accelerator family (and serving stack), the achievable fractions of peak compute and memory bandwidth
  (:class:`~fivelayer.models.step.Efficiency` ``compute``, ``memory``), the per-sequence step cost, and for
  the stacks whose published server steps identify them the serial share and the fixed cost of a step
  (:data:`SERIAL_STACKS`, :data:`SERIAL_FIXED`, :data:`OVERHEAD_STACKS`), by least median absolute log error on
  throughput rows over a fixed grid;
- one power coefficient (``power_memory_weight``) on the energy rows.

Honesty rule: :func:`validate` reports leave-one-out errors: each row is predicted with parameters fitted
on every *other* row, so no row is ever predicted by a fit that saw it. A family with fewer than two other
rows borrows the pooled fit of all families.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from fivelayer.catalog import default_catalog
from fivelayer.core.catalog import packaged_yaml, parse_records
from fivelayer.core.errors import FivelayerError
from fivelayer.core.provenance import Source, Strict
from fivelayer.models.step import Efficiency

__all__ = [
    "COMPUTE_GRID",
    "MEMORY_GRID",
    "Harness",
    "Measurement",
    "ValidationRow",
    "fit_origin",
    "fitted_efficiency",
    "reference_measurements",
    "validate",
]

COMPUTE_GRID = tuple(float(x) for x in np.round(np.linspace(0.25, 0.95, 8), 3))
MEMORY_GRID = tuple(float(x) for x in np.round(np.linspace(0.45, 0.95, 6), 3))
PER_SEQUENCE_GRID = (0.0, 5e-6, 10e-6, 20e-6, 40e-6)
#: Fraction of the shorter of compute and memory time a step pays on top of the longer (0: the roofline).
SERIAL_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Serving stacks whose fits may choose a serial fraction above 0. TensorRT-LLM's MLPerf server runs give the
#: steps it ran below the offline batch (:func:`_server_step_rows`), which identify the fraction. For the vLLM
#: stacks a free fraction made leave-one-out errors worse (the ML.ENERGY batch sweeps 13 % -> 26 %; AMD's own
#: offline rows and server steps; docs/methodology/inference.md), so they keep the roofline, except AMD's
#: (:data:`SERIAL_FIXED`): an assumption, chosen on those errors and named here.
SERIAL_STACKS = frozenset({"tensorrt-llm"})
#: Families and stacks whose fits take a fixed serial fraction rather than the roofline: AMD's MLPerf vLLM
#: engines. Each AMD submission publishes two steps of one system: its Offline run at its batch cap, and its
#: server run's median step (Little's law). A straight line through the two has a fixed part about the
#: weights' streaming time (MI300X v5.1: 464 sequences in 151 ms, 1,536 in 442 ms, so 25 ms; MI325X v5.1:
#: 17 ms; 70 GB of FP8 weights take 13 and 12 ms at the two chips' full bandwidth), paid on top of the
#: compute: serial 1. A free fraction made these fits unstable (docs/methodology/inference.md).
SERIAL_FIXED = {("cdna3", "vllm"): 1.0}
#: Fixed cost of a step (``Efficiency.overhead_s``: scheduling, kernel launches, sampling), seconds. Fitted only
#: where every row of the fit is of a stack in :data:`OVERHEAD_STACKS`; elsewhere the first value, the assumed
#: default of :class:`~fivelayer.models.step.Efficiency` (2 ms). TensorRT-LLM systems publish three steps each
#: (Interactive, Server and Offline, the first two by Little's law) that lie on one straight line against the
#: running sequences, with a fixed part of 14-17 ms:
#: B200 v5.1, 257 sequences in 34.5 ms and 1,562 in 126 ms, so 16.5 ms + 0.070 ms per sequence, which gives the
#: Offline result at its 2,048 sequences to 0.7 %; H200 (Dell v5.1) 14.8 ms + 0.220 ms, to 0.3 %. At FP4 a B200
#: streams its weights in 4.4 ms, so most of that fixed part is not the weights (docs/methodology/inference.md).
OVERHEAD_GRID = (Efficiency().overhead_s, 0.010, 0.018)
#: Stacks whose fits choose the fixed step cost. Not the vLLM stacks: a free cost made the leave-one-out error
#: of the ML.ENERGY vLLM batch sweeps worse (19.4 % -> 31.8 %); AMD's vLLM fit chose 18 ms, which puts the
#: fixed part of the MI300X v5.1 step at 35 ms against the 25 ms of its own published steps (22 ms with 2 ms: at
#: serial 1 the weights' streaming is most of it), and moved the MI325X server checks away from the measurements
#: (TPOT p99 at the stated load +22 % -> +79 %).
OVERHEAD_STACKS = frozenset({"tensorrt-llm"})
POWER_GRID = tuple(float(x) for x in np.round(np.linspace(0.0, 1.0, 21), 3))
#: Used where a family has no reference rows at all: the pooled fit's defaults.
UNCALIBRATED = Efficiency()


def _check_length_limits(
    input_tokens: float | None, output_tokens: float | None, max_input: int | None, max_output: int | None
) -> None:
    """A length limit below the mean it caps is a typo (102 for 1,024), not a limit: refuse it."""
    for name, mean, limit in (("input", input_tokens, max_input), ("output", output_tokens, max_output)):
        if mean is not None and limit is not None and limit < mean:
            raise ValueError(f"max_{name}_tokens ({limit:,}) is below the mean {name}_tokens ({mean:,.6g})")


class DatasetMeans(Strict):
    """Mean request lengths of a benchmark's dataset, for rows that do not state their own."""

    id: str
    #: Rows whose benchmark starts with this prefix and whose model (or id) matches use these means.
    benchmark_prefix: str
    model: str | None = None
    id_contains: str | None = None
    input_tokens: float = Field(gt=0)
    output_tokens: float | None = Field(default=None, gt=0)
    #: Coefficients of variation (standard deviation / mean) of the dataset's prompt and output lengths.
    input_cv: float | None = Field(default=None, ge=0)
    output_cv: float | None = Field(default=None, ge=0)
    #: Longest prompt and longest output the benchmark allows (its dataset's maximum, its generation limit).
    max_input_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    sources: tuple[Source, ...] = Field(min_length=1)
    estimate: str | None = None

    @model_validator(mode="after")
    def _limits_above_means(self) -> DatasetMeans:
        _check_length_limits(self.input_tokens, self.output_tokens, self.max_input_tokens, self.max_output_tokens)
        return self


class Harness(Strict):
    """How a published server run scheduled its requests, as the submission's own code sets it: what the
    serving simulator needs to run that submission as it ran (``None``: not published; the simulator's
    default is used). Names follow :class:`~fivelayer.engines.serving.EngineOptions` and
    :class:`~fivelayer.engines.serving.ServingConfig`."""

    chunked_prefill: bool | None = None
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    max_num_seqs: int | None = Field(default=None, ge=1)
    num_scheduler_steps: int = Field(default=1, ge=1)
    #: AMD's MLPerf vLLM scheduler rules (see :class:`~fivelayer.engines.serving.EngineOptions`).
    prefill_max_running: int | None = Field(default=None, ge=1)
    prefill_min_waiting: int = Field(default=0, ge=0)
    decode_batch_target: tuple[int, int, int] | None = None
    #: The harness's batching front end (1: none) and its timeout, seconds.
    dispatch_batch: int = Field(default=1, ge=1)
    dispatch_timeout_s: float = Field(default=0.0, ge=0)
    router: Literal["round-robin", "least-outstanding", "shared-queue"] | None = None
    sources: tuple[Source, ...] = Field(min_length=1)
    notes: str | None = None

    def engine_settings(self) -> dict[str, Any]:
        """The published :class:`~fivelayer.engines.serving.EngineOptions` fields (unpublished ones left out)."""
        return self.model_dump(include=_ENGINE_FIELDS, exclude_none=True)

    def cluster_settings(self) -> dict[str, Any]:
        """The published :class:`~fivelayer.engines.serving.ServingConfig` fields (unpublished ones left out)."""
        return self.model_dump(include={"router", "dispatch_batch", "dispatch_timeout_s"}, exclude_none=True)


_ENGINE_FIELDS = {
    "chunked_prefill", "max_num_batched_tokens", "max_num_seqs", "num_scheduler_steps", "prefill_max_running",
    "prefill_min_waiting", "decode_batch_target",
}  # fmt: skip


class Measurement(Strict):
    """One published measurement of LLM serving."""

    id: str
    benchmark: str
    division: str | None = None
    scenario: Literal["offline", "server", "interactive", "fixed-batch"]
    submitter: str | None = None
    system: str
    accelerator: str
    count: int = Field(ge=1)
    #: Published parallel layout of the measured run, where stated.
    tp: int | None = Field(default=None, ge=1)
    pp: int | None = Field(default=None, ge=1)
    ep: int | None = Field(default=None, ge=1)
    model: str
    precision: str
    serving_stack: str | None = None
    input_tokens: float | None = Field(default=None, gt=0)
    output_tokens: float | None = Field(default=None, gt=0)
    input_cv: float | None = Field(default=None, ge=0)
    output_cv: float | None = Field(default=None, ge=0)
    #: Longest prompt and output the benchmark allows (from the ``datasets`` section): the serving simulator
    #: draws lengths no longer.
    max_input_tokens: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    tokens_per_s: float | None = Field(default=None, gt=0)
    ttft_p99_s: float | None = Field(default=None, gt=0)
    tpot_p99_s: float | None = Field(default=None, gt=0)
    #: Medians from the same LoadGen log, where read: the body of the distribution the p99s are the tail of.
    ttft_p50_s: float | None = Field(default=None, gt=0)
    tpot_p50_s: float | None = Field(default=None, gt=0)
    batch_size: int | None = Field(default=None, ge=1)
    energy_j_per_output_token: float | None = Field(default=None, gt=0)
    power_w: float | None = Field(default=None, gt=0)
    #: Board power limit each accelerator ran under (``nvidia-smi -pl``), where the submission set one.
    power_limit_w: float | None = Field(default=None, gt=0)
    #: Server rows: the submission's published scheduler settings (for the serving simulator).
    harness: Harness | None = None
    sources: tuple[Source, ...] = Field(min_length=1)
    notes: str | None = None
    retrieved: dt.date | None = None

    @model_validator(mode="after")
    def _limits_above_means(self) -> Measurement:
        _check_length_limits(self.input_tokens, self.output_tokens, self.max_input_tokens, self.max_output_tokens)
        return self

    @property
    def family(self) -> str:
        return str(default_catalog().accelerators.get(self.accelerator).family)

    @property
    def sustained_rates(self) -> bool:
        """Whether the accelerator's compute is measured against sustained rates (catalog ``sustained_flops``)
        rather than the datasheet peak: efficiencies fitted on one basis do not carry over to the other."""
        return default_catalog().accelerators.get(self.accelerator).sustained_flops is not None

    @property
    def stack(self) -> str:
        return self.serving_stack or "other"

    @property
    def throughput(self) -> float | None:
        """Output tokens/s: as published, or GPU power / GPU energy per token where both are measured."""
        if self.tokens_per_s is not None:
            return self.tokens_per_s
        if self.power_w is not None and self.energy_j_per_output_token is not None:
            return self.power_w / self.energy_j_per_output_token
        return None


@functools.cache
def _reference_file() -> tuple[tuple[Measurement, ...], tuple[DatasetMeans, ...]]:
    located = packaged_yaml("reference/inference.yaml")
    rows: list[Measurement] = parse_records(Measurement, located, ("measurements",))
    datasets: list[DatasetMeans] = (
        parse_records(DatasetMeans, located, ("datasets",)) if "datasets" in located.data else []
    )
    return tuple(rows), tuple(datasets)


def _with_dataset_means(row: Measurement, datasets: Sequence[DatasetMeans]) -> Measurement | None:
    if row.input_tokens is not None and row.output_tokens is not None:
        return row
    for d in datasets:
        if not row.benchmark.startswith(d.benchmark_prefix):
            continue
        if d.model is not None and d.model != row.model:
            continue
        if d.id_contains is not None and d.id_contains not in row.id:
            continue
        output = row.output_tokens or d.output_tokens
        if output is None:
            return None
        return row.model_copy(
            update={
                "input_tokens": row.input_tokens or d.input_tokens,
                "output_tokens": output,
                "input_cv": row.input_cv if row.input_cv is not None else d.input_cv,
                "output_cv": row.output_cv if row.output_cv is not None else d.output_cv,
                "max_input_tokens": row.max_input_tokens or d.max_input_tokens,
                "max_output_tokens": row.max_output_tokens or d.max_output_tokens,
            }
        )
    return None


@functools.cache
def reference_measurements() -> tuple[Measurement, ...]:
    """The usable reference rows: accelerator and model in the catalog, request lengths known.

    Rows without their own mean lengths take them from the file's ``datasets`` section; rows for which
    neither is known are left out (and listed by :func:`skipped_measurements`).
    """
    rows, datasets = _reference_file()
    cat = default_catalog()
    usable = []
    for row in rows:
        if row.accelerator not in cat.accelerators or row.model not in cat.models:
            continue
        filled = _with_dataset_means(row, datasets)
        if filled is not None:
            usable.append(filled)
    return tuple(usable)


def skipped_measurements() -> list[tuple[str, str]]:
    """Reference rows not used, with the reason."""
    rows, datasets = _reference_file()
    cat = default_catalog()
    out = []
    for row in rows:
        if row.accelerator not in cat.accelerators:
            out.append((row.id, f"accelerator {row.accelerator!r} not in the catalog"))
        elif row.model not in cat.models:
            out.append((row.id, f"model {row.model!r} not in the catalog"))
        elif _with_dataset_means(row, datasets) is None:
            out.append((row.id, "mean input/output tokens unknown"))
    return out


def _case(row: Measurement) -> Any:
    from fivelayer.engines.inference import InferenceCase

    mode: Literal["offline", "server", "fixed-batch"]
    if row.scenario == "offline":
        mode = "offline"
    elif row.scenario in ("server", "interactive"):
        mode = "server"
    else:
        mode = "fixed-batch"
    return InferenceCase(
        accelerator=row.accelerator,
        count=row.count,
        model=row.model,
        precision=row.precision,
        input_tokens=max(1, round(row.input_tokens or 1)),
        output_tokens=max(1, round(row.output_tokens or 1)),
        mode=mode,
        batch_size=row.batch_size if mode in ("fixed-batch", "offline") else None,  # offline: the engine's cap
        ttft_slo=row.ttft_p99_s if mode == "server" else None,
        tpot_slo=row.tpot_p99_s if mode == "server" else None,
        input_cv=row.input_cv or 0.0,
        output_cv=row.output_cv or 0.0,
        power_limit=row.power_limit_w,
        tp=row.tp or (row.count if mode == "fixed-batch" else None),
        pp=row.pp or (1 if mode == "fixed-batch" else None),
        ep=row.ep,
    )


def _identifies_overhead(row: Measurement) -> bool:
    """Whether ``row``'s serving stack is one whose fits may choose the fixed step cost (:data:`OVERHEAD_GRID`)."""
    return row.stack in OVERHEAD_STACKS


@functools.cache
def _throughput_table(row: Measurement) -> np.ndarray:
    """Predicted throughput of ``row`` at every (compute, memory, per-sequence, serial, overhead) grid point; NaN
    where infeasible, and at every overhead but the first for a row whose fits never choose it."""
    from fivelayer.engines.inference import predict_inference

    grids = (COMPUTE_GRID, MEMORY_GRID, PER_SEQUENCE_GRID, SERIAL_GRID, OVERHEAD_GRID)
    table = np.full(tuple(len(g) for g in grids), np.nan)
    case = _case(row)
    overheads = len(OVERHEAD_GRID) if _identifies_overhead(row) else 1
    for index in np.ndindex(*table.shape[:-1], overheads):
        c, m, q, x, o = (g[i] for g, i in zip(grids, index, strict=True))
        with contextlib.suppress(FivelayerError):
            eff = Efficiency(compute=c, memory=m, per_sequence_s=q, serial=x, overhead_s=o)
            table[index] = predict_inference(case, efficiency=eff).throughput_tokens_per_s
    return table


def _log_errors(rows: Sequence[Measurement]) -> np.ndarray:
    """|log(pred/measured)| per grid point and row: shape (compute, memory, per-sequence, serial, overhead,
    rows)."""
    tables = [np.log(_throughput_table(r) / float(r.throughput or 1.0)) for r in rows]
    errors: np.ndarray = np.abs(np.stack(tables, axis=-1))
    return errors


def _fit(rows: Sequence[Measurement]) -> Efficiency:
    if not rows:
        return UNCALIBRATED
    errors = _log_errors(rows)
    errors = np.where(np.isnan(errors), 10.0, errors)
    score = np.median(errors, axis=-1) + 1e-3 * np.mean(errors, axis=-1)
    groups = {(r.family, r.stack) for r in rows}
    fixed = SERIAL_FIXED.get(next(iter(groups))) if len(groups) == 1 else None
    if fixed is not None:
        score[..., [x for x, v in enumerate(SERIAL_GRID) if v != fixed], :] = np.inf
    elif not any(r.stack in SERIAL_STACKS for r in rows):
        score[..., 1:, :] = np.inf  # the roofline (serial 0) only
    if not all(_identifies_overhead(r) for r in rows):
        score[..., 1:] = np.inf  # the assumed fixed cost only
    a, b, k, x, o = (int(i) for i in np.unravel_index(int(np.argmin(score)), score.shape))
    return replace(UNCALIBRATED, compute=COMPUTE_GRID[a], memory=MEMORY_GRID[b], per_sequence_s=PER_SEQUENCE_GRID[k],
                   serial=SERIAL_GRID[x], overhead_s=OVERHEAD_GRID[o])  # fmt: skip


#: Suffix of the id of a step point derived from a server row (:func:`_server_step_rows`), and the scenario
#: its validation rows are grouped under.
STEP_POINT = "#step"
SERVER_STEP = "server (median step)"


@functools.cache
def _server_step_rows() -> tuple[Measurement, ...]:
    """One measured step of each MLPerf server/interactive row, by Little's law: a replica serving ``x``
    output tokens/s with a median time per output token ``t`` runs ``x t`` sequences at once, so the row is a
    fixed-batch measurement of ``x`` tokens/s at batch ``x t`` (prompts prefilled alongside, as in every
    fixed-batch row). The replica is laid out as the inference engine and the serving simulator lay it out.
    These points measure throughput at the batch the server actually ran, below the offline batch: the
    shape of the step time between the two, which offline rows alone cannot tell."""
    from fivelayer.engines.inference import predict_inference

    out = []
    for r in reference_measurements():
        if r.scenario not in ("server", "interactive") or not (r.tpot_p50_s and r.tokens_per_s and r.output_tokens):
            continue
        try:  # the layout as the engine lays the system out (the row's own tp/pp where it states them)
            layout = predict_inference(_case(r.model_copy(update={"scenario": "offline"})), efficiency=UNCALIBRATED)
        except FivelayerError:
            continue
        devices = layout.tp * layout.pp
        per_replica = r.tokens_per_s / (r.count // devices)
        batch = max(1, round(per_replica * r.tpot_p50_s))
        update = {"id": r.id + STEP_POINT, "scenario": "fixed-batch", "count": devices, "tp": layout.tp,
                  "pp": layout.pp, "ep": layout.ep, "tokens_per_s": per_replica, "batch_size": batch,
                  "ttft_p99_s": None, "tpot_p99_s": None}  # fmt: skip
        out.append(r.model_copy(update=update))
    return tuple(out)


def _throughput_rows() -> list[Measurement]:
    """Offline and fixed-batch throughput rows, and the step points of the server rows. The server rows'
    latencies are the serving simulator's to check (against fits that leave the row's own step point out)."""
    rows = [r for r in reference_measurements() if r.throughput and r.scenario in ("offline", "fixed-batch")]
    return rows + list(_server_step_rows())


@dataclass(frozen=True)
class _FamilyInfo:
    vendor: str
    sustained_rates: bool
    launch_year: int


def _family_info(family: str) -> _FamilyInfo | None:
    """Vendor, basis of the rates (sustained or datasheet peak) and first launch year of an accelerator family,
    from the catalog; None if no accelerator has that family."""
    chips = [a for a in default_catalog().accelerators if a.family == family]
    if not chips:
        return None
    return _FamilyInfo(str(chips[0].vendor), chips[0].sustained_flops is not None, min(a.launch_year for a in chips))


def _nearest_sibling(family: str, candidates: Sequence[str]) -> str | None:
    """Of ``candidates`` (families with enough rows), the same vendor's family on the same basis of rates that
    launched closest to ``family`` (the newer on a tie): the generation whose software it most likely runs."""
    info = _family_info(family)
    if info is None:
        return None
    siblings = []
    for name in candidates:
        other = _family_info(name)
        if name == family or other is None:
            continue
        if (other.vendor, other.sustained_rates) == (info.vendor, info.sustained_rates):
            siblings.append((abs(other.launch_year - info.launch_year), -other.launch_year, name))
    return min(siblings)[2] if siblings else None


def _fit_for(family: str, stack: str | None, rows: Sequence[Measurement], exclude: str | None = None) -> Efficiency:
    """Fit on the rows of the same family and serving stack; else the same family; else the nearest generation
    of the same vendor whose chips share the basis of the rates (sustained or datasheet peak); else all rows on
    that basis; else all rows. Each level needs two rows."""
    return _fit(_training_rows(family, stack, rows, exclude)[0])


def _training_rows(
    family: str, stack: str | None, rows: Sequence[Measurement], exclude: str | None = None
) -> tuple[list[Measurement], _FitKey]:
    """The rows :func:`_fit_for` fits on, and the level they are (as a shipped fit's key)."""
    train = [r for r in rows if r.id != exclude]
    same_stack = [r for r in train if r.family == family and (stack is None or r.stack == stack)]
    if len(same_stack) >= 2:
        return same_stack, ("family", family, stack)
    same_family = [r for r in train if r.family == family]
    if len(same_family) >= 2:
        return same_family, ("family", family, None)
    counts = Counter(r.family for r in train)
    sibling = _nearest_sibling(family, [name for name, n in counts.items() if n >= 2])
    if sibling is not None:
        return [r for r in train if r.family == sibling], ("family", sibling, None)
    info = _family_info(family)
    same_basis = [r for r in train if info is None or r.sustained_rates == info.sustained_rates]
    if len(same_basis) >= 2 and info is not None:
        return same_basis, ("basis", info.sustained_rates, None)
    return (same_basis if len(same_basis) >= 2 else train), ("all", None, None)


#: Fits in progress. A prediction made during a fit (with the candidate efficiency it is given) must not ask
#: for the calibrated efficiency to name where its own comes from: that would start the same fit again.
_FITS_IN_PROGRESS = 0


@contextlib.contextmanager
def _fitting() -> Iterator[None]:
    global _FITS_IN_PROGRESS
    _FITS_IN_PROGRESS += 1
    try:
        yield
    finally:
        _FITS_IN_PROGRESS -= 1


def fit_in_progress() -> bool:
    """Whether a calibration fit is running (its predictions are made at candidate efficiencies)."""
    return _FITS_IN_PROGRESS > 0


def fitted_efficiency(family: str, stack: str | None = None) -> Efficiency:
    """The calibrated efficiency of an accelerator family (and serving stack), fitted on every reference row.

    Without a stack, the family's rows of all stacks are pooled; a family without rows of its own takes the
    fit of its vendor's nearest generation (see :func:`_fit_for`). The fit is shipped in
    ``reference/calibration.yaml`` (written by ``python -m fivelayer.engines.calibration``) and used while the
    reference file it was fitted on is unchanged; otherwise it is fitted here (about four minutes on one core).
    """
    return _fitted(family, stack)[0]


def fit_origin(family: str, stack: str | None = None) -> str:
    """Which fit :func:`fitted_efficiency` gives ``family``, in words: its own, or the one it falls back to
    (the vendor's nearest fitted generation, the chips on the same basis of rates, or all chips).

    >>> fit_origin("hopper")
    'hopper family calibration'
    >>> fit_origin("ampere")
    'hopper family calibration, the nearest fitted generation: ampere has fewer than two reference rows'
    """
    return _fitted(family, stack)[1]


@functools.cache
def _fitted(family: str, stack: str | None) -> tuple[Efficiency, str]:
    """The fit :func:`fitted_efficiency` returns and :func:`fit_origin` names (one fit for both, cached)."""
    shipped = _shipped_fit()
    if shipped is not None:
        efficiencies, weight = shipped
        keys: list[_FitKey] = [("family", family, stack), ("family", family, None)]
        fitted = [str(k[1]) for k in efficiencies if k[0] == "family" and k[2] is None]
        sibling = _nearest_sibling(family, fitted)
        if sibling is not None:
            keys.append(("family", sibling, None))
        info = _family_info(family)
        if info is not None:
            keys.append(("basis", info.sustained_rates, None))
        for key in (*keys, ("all", None, None)):
            if key in efficiencies:
                return replace(efficiencies[key], power_memory_weight=weight), _describe_level(family, stack, key)
    with _fitting():
        try:
            rows = _throughput_rows()
        except (FivelayerError, FileNotFoundError):
            return UNCALIBRATED, "uncalibrated defaults (no reference rows could be read)"
        train, key = _training_rows(family, stack, rows)
        return replace(_fit(train), power_memory_weight=_fit_power(None)), _describe_level(family, stack, key)


def _describe_level(family: str, stack: str | None, key: _FitKey) -> str:
    """The fit of ``key`` as ``family``'s origin, in words."""
    level, name, detail = key
    if level == "family" and name == family:
        return f"{family} family calibration" + (f" ({detail} stack)" if detail else "")
    if level == "family":
        return f"{name} family calibration, the nearest fitted generation: {family} has fewer than two reference rows"
    if level == "basis":
        basis = "vendor-measured sustained rates" if name else "datasheet peak rates"
        return f"calibration of all chips rated at {basis}: {family} has fewer than two reference rows"
    return f"calibration of all chips: {family} has fewer than two reference rows"


#: Key of one shipped fit: ("family", family, stack or None), ("basis", sustained rates, None) or
#: ("all", None, None).
_FitKey = tuple[str, str | bool | None, str | bool | None]


CALIBRATION_FILE = "reference/calibration.yaml"


def _reference_digest() -> str:
    """SHA-256 over what the fit depends on: the reference file and the catalog's chips and models."""
    from importlib import resources

    data = resources.files("fivelayer").joinpath("data")
    digest = hashlib.sha256(data.joinpath("reference", "inference.yaml").read_bytes())
    for folder in ("chips", "models"):
        for item in sorted(data.joinpath(folder).iterdir(), key=lambda f: f.name):
            if item.name.endswith(".yaml"):
                digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()


def fit_all() -> dict[str, Any]:
    """Every fit :func:`fitted_efficiency` can return, as the data of ``reference/calibration.yaml``: per
    (family, serving stack) and per family with two rows or more (a family without rows takes its vendor's
    nearest generation's), per basis of rates, and over all rows; and the power weight."""
    with _fitting():
        return _fit_all()


def _fit_all() -> dict[str, Any]:
    rows = _throughput_rows()
    fits: list[dict[str, Any]] = []

    def add(key: dict[str, Any], subset: Sequence[Measurement], eff: Efficiency) -> None:
        fits.append({**key, "rows": len(subset), "compute": eff.compute, "memory": eff.memory,
                     "per_sequence_s": eff.per_sequence_s, "serial": eff.serial,
                     "overhead_s": eff.overhead_s})  # fmt: skip

    add({"level": "all"}, rows, _fit(rows))
    for basis in sorted({r.sustained_rates for r in rows}):
        subset = [r for r in rows if r.sustained_rates == basis]
        if len(subset) >= 2:
            add({"level": "basis", "sustained_rates": basis}, subset, _fit(subset))
    for name in sorted({r.family for r in rows}):
        family_rows = [r for r in rows if r.family == name]
        if len(family_rows) >= 2:
            add({"level": "family", "family": name, "stack": None}, family_rows, _fit_for(name, None, rows))
        for stack_name in sorted({r.stack for r in family_rows}):
            subset = [r for r in family_rows if r.stack == stack_name]
            if len(subset) >= 2:
                add({"level": "family", "family": name, "stack": stack_name}, subset, _fit_for(name, stack_name, rows))
    return {
        "reference_sha256": _reference_digest(),
        "power_memory_weight": _fit_power(None),
        "fits": fits,
    }


def _fit_key(entry: dict[str, Any]) -> _FitKey:
    level = entry.get("level", "family")
    if level == "family":
        return ("family", entry["family"], entry["stack"])
    if level == "basis":
        return ("basis", bool(entry["sustained_rates"]), None)
    return ("all", None, None)


@functools.cache
def _shipped_fit() -> tuple[dict[_FitKey, Efficiency], float] | None:
    """The shipped fits, if they were made on the reference file as it is now."""
    try:
        data = packaged_yaml(CALIBRATION_FILE).data
    except FileNotFoundError:
        return None
    if not isinstance(data, dict) or data.get("reference_sha256") != _reference_digest():
        return None
    if any("overhead_s" not in f for f in data["fits"]):
        return None  # written before the fixed step cost was fitted: fit here
    out = {
        _fit_key(f): replace(
            UNCALIBRATED,
            compute=float(f["compute"]),
            memory=float(f["memory"]),
            per_sequence_s=float(f["per_sequence_s"]),
            serial=float(f["serial"]),
            overhead_s=float(f["overhead_s"]),
        )
        for f in data["fits"]
    }
    return out, float(data["power_memory_weight"])


def write_calibration(path: str) -> None:
    """Fit on every reference row and write ``reference/calibration.yaml`` to ``path``."""
    import yaml

    header = (
        "# Efficiency fits of the inference engine to reference/inference.yaml (every row), per accelerator family\n"
        "# and serving stack. Generated by `python -m fivelayer.engines.calibration --write`; do not edit by hand.\n"
        "# Used only while reference_sha256 matches the reference file and the catalog's chips and models; a test\n"
        "# checks it is up to date.\n"
    )
    text = header + yaml.safe_dump(fit_all(), sort_keys=False)  # fitted before the old file is touched
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)


def _energy_rows() -> list[Measurement]:
    return [r for r in reference_measurements() if r.energy_j_per_output_token is not None]


def _predict_energy(row: Measurement, eff: Efficiency) -> float:
    from fivelayer.engines.inference import predict_inference

    return predict_inference(_case(row), efficiency=eff).energy_per_output_token_j["gpu"]


def _fit_power(exclude: str | None) -> float:
    """The power coefficient that best predicts measured energy, over every energy row but ``exclude``."""
    rows = [r for r in _energy_rows() if r.id != exclude]
    if not rows:
        return UNCALIBRATED.power_memory_weight
    throughput = _throughput_rows()
    best, best_score = UNCALIBRATED.power_memory_weight, math.inf
    effs = {r.id: _fit_for(r.family, r.stack, throughput, exclude=exclude) for r in rows}
    for w in POWER_GRID:
        errs = []
        for r in rows:
            try:
                pred = _predict_energy(r, replace(effs[r.id], power_memory_weight=w))
            except FivelayerError:
                continue
            errs.append(abs(math.log(pred / float(r.energy_j_per_output_token or 1.0))))
        score = float(np.median(errs)) if errs else math.inf
        if score < best_score:
            best, best_score = w, score
    return best


@dataclass(frozen=True)
class ValidationRow:
    """One reference row: measured, predicted (leave-one-out), and the error."""

    id: str
    kind: str
    family: str
    accelerator: str
    model: str
    scenario: str
    measured: float
    predicted: float | None
    source: str
    #: The benchmark the measurement comes from (e.g. ``mlperf-inference-v5.1``), where the record names one.
    benchmark: str = ""

    @classmethod
    def of(cls, row: Any, kind: str, measured: float, predicted: float | None, scenario: str = "") -> ValidationRow:
        """The row of reference record ``row`` (its id, family, accelerator, model, scenario and first source)."""
        src = row.sources[0]
        return cls(
            id=row.id,
            kind=kind,
            family=row.family,
            accelerator=row.accelerator,
            model=row.model,
            scenario=scenario or row.scenario,
            measured=measured,
            predicted=predicted,
            source=src.url or src.citation or "",
            benchmark=str(getattr(row, "benchmark", "") or ""),
        )

    @property
    def error(self) -> float | None:
        if self.predicted is None:
            return None
        return (self.predicted - self.measured) / self.measured

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "family": self.family,
            "accelerator": self.accelerator,
            "model": self.model,
            "scenario": self.scenario,
            "measured": self.measured,
            "predicted": self.predicted,
            "error": self.error,
            "source": self.source,
            "benchmark": self.benchmark,
        }


def validate() -> list[ValidationRow]:
    """Leave-one-out predictions of every reference row."""
    from fivelayer.engines.inference import predict_inference

    out: list[ValidationRow] = []
    throughput = _throughput_rows()
    for row in throughput:
        eff = _fit_for(row.family, row.stack, throughput, exclude=row.id)
        try:
            predicted: float | None = predict_inference(_case(row), efficiency=eff).throughput_tokens_per_s
        except FivelayerError:
            predicted = None
        scenario = SERVER_STEP if row.id.endswith(STEP_POINT) else ""
        out.append(ValidationRow.of(row, "throughput_tokens_per_s", float(row.throughput or 0), predicted, scenario))
    for row in _energy_rows():
        eff = replace(
            _fit_for(row.family, row.stack, throughput, exclude=row.id), power_memory_weight=_fit_power(row.id)
        )
        try:
            predicted = _predict_energy(row, eff)
        except FivelayerError:
            predicted = None
        out.append(
            ValidationRow.of(row, "gpu_energy_j_per_output_token", float(row.energy_j_per_output_token or 0), predicted)
        )
    return out


#: Scenario label of the summary groups of MLPerf Inference Offline rows alone.
MLPERF_OFFLINE = "offline (MLPerf)"
#: The error within which acceptance criteria of the inference engine and the serving simulator ask
#: predictions to fall; each group of the validation counts its rows within it.
ACCEPTANCE_ERROR = 0.20


def summarise(rows: Sequence[ValidationRow]) -> list[dict[str, Any]]:
    """Median and P90 absolute error per (kind, scenario, family), and overall per kind, with the number of
    rows within :data:`ACCEPTANCE_ERROR` (``within_20_percent``).

    Offline rows from MLPerf Inference are also grouped on their own (scenario ``offline (MLPerf)``): the
    acceptance figure of the inference engine is stated on them.
    """
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        if r.error is None:
            continue
        scenarios = [r.scenario]
        if r.scenario == "offline" and r.benchmark.startswith("mlperf"):
            scenarios.append(MLPERF_OFFLINE)
        for scenario in scenarios:
            groups.setdefault((r.kind, scenario, r.family), []).append(abs(r.error))
            groups.setdefault((r.kind, scenario, "all"), []).append(abs(r.error))
    out = []
    for (kind, scenario, family), errs in sorted(groups.items()):
        arr = np.array(errs)
        out.append(
            {
                "kind": kind,
                "scenario": scenario,
                "family": family,
                "rows": len(errs),
                "median_abs_error": float(np.median(arr)),
                "p90_abs_error": float(np.percentile(arr, 90)),
                "within_20_percent": int(np.count_nonzero(arr <= ACCEPTANCE_ERROR)),
            }
        )
    return out


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    import sys
    from importlib import resources

    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m fivelayer.engines.calibration --write")
    target = resources.files("fivelayer").joinpath("data", "reference", "calibration.yaml")
    write_calibration(str(target))
    print(f"wrote {target}")
