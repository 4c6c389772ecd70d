"""The serving simulator against published MLPerf Inference *Server* results (TTFT and TPOT p99, and the
medians of the same runs).

Each server row of the reference set is simulated at its stated load: Poisson arrivals at
``tokens_per_s / output_tokens`` requests per second on the row's accelerators, with prompt and output
lengths drawn (lognormal) around the dataset's means with its coefficients of variation, no longer than the
benchmark allows, for as long as MLPerf's LoadGen runs at least (600 s; at most
``MAX_SERVER_VALIDATION_REQUESTS``), p99 and median over every request. Each submission is scheduled as its own
published harness code schedules it, where the row records that (``harness``: chunked prefill or not,
tokens per step, running sequences, the router, a batching front end); elsewhere as vLLM does by default
(chunked prefill, least outstanding work). Step times come from the fit of the row's family and serving stack
that leaves the row's own median step out (the server rows' steps are fit rows, by Little's law; see
:func:`fivelayer.engines.calibration._server_step_rows`). What can and cannot be checked, honestly:

- MLPerf submitters raise the server load until the p99 latencies approach their limits, at 80-99 % of
  the same system's offline throughput. There a p99 latency is very sensitive to load (it grows as
  1 / (1 - utilisation)), so a capacity error of a few per cent, which the offline rows measure, moves the
  simulated p99 by tens of per cent. The check at the stated load (kinds ``ttft_p99_s``, ``tpot_p99_s``)
  is therefore reported together with one whose replica is *calibrated on the same system's published
  Offline result* (kinds ``ttft_p99_s@offline-calibrated``, ...): every step time but communication is
  scaled by one factor, until the system's analytic offline capacity (which the simulator's saturated
  throughput matches) equals the submission's own Offline tokens/s, as a profiling-based simulator is
  calibrated on the hardware it models. The load is still the stated one. This removes the capacity error
  and leaves the shape of the step time against the batch, the scheduling and the queueing; it is a
  diagnostic next to the first check, not a substitute for it.
- Near capacity the check at the stated load is ill-conditioned: the batch that carries the load, and with
  it the TPOT, moves by about 1 / (1 - utilisation) times any throughput error. The inverse check (kind
  ``tokens_per_s@measured-tpot-p50``, :func:`load_at_measured_tpot`) finds the load at which the simulated
  median TPOT equals the measured one and compares it with the published load; it moves by the few per cent
  that the first check turns into tens, and it is the sizing question: what load does this system carry at
  this latency?
- A row whose input length is unknown (neither in the row nor in the reference file's ``datasets``
  section) is reported with ``predicted = None``; ``assumed_input_tokens`` runs it anyway at an assumed
  length, and the kind then says so (``ttft_p99_s@input=N``), so an assumption never passes for a check.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from typing import Any

import numpy as np

from fivelayer.applications.workload import IntArray, poisson_arrivals
from fivelayer.core.errors import FivelayerError
from fivelayer.core.streams import RandomStreams
from fivelayer.engines.calibration import (
    STEP_POINT,
    Measurement,
    ValidationRow,
    _fit_for,
    _fit_power,
    _reference_file,
    _throughput_rows,
    reference_measurements,
)
from fivelayer.models.step import Efficiency

__all__ = ["LOAD_AT_TPOT", "SERVER_VALIDATION_REQUESTS", "load_at_measured_tpot", "row_lengths", "validate_serving"]

#: Fewest and most requests simulated per reference row. Between the two, a run lasts as LoadGen's minimum:
#: server queries for at least 600 s (mlcommons/inference loadgen/mlperf.conf, min_duration 600000 ms),
#: percentiles over all of them. Near saturation the batch takes minutes to fill (simulated TPOT p99 of the
#: v5.1 H200 row grows from 74 ms in the first minute to 176 ms after seven), so a short run flatters the
#: simulation. The cap bounds the validation's run time; it is short of the real runs in two ways: above
#: 250 requests/s a run is cut before 600 s, and NVIDIA's Llama 2 and Mixtral submissions set min_duration
#: 2,400 s (their run logs' test parameters), whose percentiles weigh the filling minutes less.
SERVER_VALIDATION_REQUESTS = 2000
MAX_SERVER_VALIDATION_REQUESTS = 150_000
MLPERF_MIN_DURATION_S = 600.0
#: The offline-calibrated replica's analytic capacity matches the submission's Offline result to this fraction.
CALIBRATION_TOLERANCE = 1e-3
#: Tokens per step where a submission does not publish its own (assumption: large enough not to bind at the
#: MLPerf prompt lengths).
DEFAULT_SERVER_TOKENS_PER_STEP = 16384
#: The search for the load at the measured median TPOT (:func:`load_at_measured_tpot`): it stops when the
#: bracketing loads are this close (relative) or the simulated median TPOT is within TPOT_TOLERANCE (log) of
#: the measured one; it steps the load by LOAD_STEP until the measured TPOT is bracketed, within LOAD_RANGE
#: times the published load, in at most MAX_LOAD_RUNS simulations beyond the one at the published load.
LOAD_TOLERANCE = 0.01
TPOT_TOLERANCE = 0.01
LOAD_STEP = 1.1
LOAD_RANGE = (0.25, 2.0)
MAX_LOAD_RUNS = 5
#: Kind of the rows of :func:`load_at_measured_tpot`: measured, the published load (output tokens/s); predicted,
#: the load at which the simulation's median TPOT equals the measured one (none: not reached).
LOAD_AT_TPOT = "tokens_per_s@measured-tpot-p50"


def _server_rows() -> list[tuple[Measurement, float | None]]:
    """Every server row with a measured latency (with its dataset's lengths where known), and its mean input
    length where known."""
    known = {r.id: r for r in reference_measurements()}
    rows, _ = _reference_file()
    return [
        (known.get(r.id, r), known[r.id].input_tokens if r.id in known else None)
        for r in rows
        if r.scenario == "server" and (r.ttft_p99_s or r.tpot_p99_s) and r.tokens_per_s and r.output_tokens
    ]


def _offline_twin(row: Measurement) -> Measurement | None:
    """The same submission's Offline result (same benchmark round, system and model), if published, with its
    dataset's lengths."""
    twin_id = row.id.replace("-server-", "-offline-")
    return next(
        (r for r in reference_measurements() if r.id == twin_id and r.scenario == "offline" and r.tokens_per_s), None
    )


def _efficiency(row: Measurement) -> Efficiency:
    """The fit of the row's accelerator family and serving stack on every throughput row but the row's own step
    point (its median TPOT, :func:`fivelayer.engines.calibration._server_step_rows`): leave-one-out, as every
    validation row."""
    fit = _fit_for(row.family, row.stack, _throughput_rows(), exclude=row.id + STEP_POINT)
    return replace(fit, power_memory_weight=_fit_power(None))


def _capacity(offline: Measurement, efficiency: Efficiency) -> float:
    """Analytic output tokens/s of an Offline row's system, as it ran (its layout and batch cap where the row
    states them), at ``efficiency``."""
    from fivelayer.engines.calibration import _case
    from fivelayer.engines.inference import predict_inference

    return predict_inference(_case(offline), efficiency=efficiency).throughput_tokens_per_s


def _slowed(eff: Efficiency, factor: float) -> Efficiency:
    """``eff`` with every part of a step but communication (compute, memory, fixed and per-sequence overhead)
    ``factor`` times longer."""
    return replace(eff, compute=eff.compute / factor, memory=eff.memory / factor, overhead_s=eff.overhead_s * factor,
                   per_sequence_s=eff.per_sequence_s * factor)  # fmt: skip


def offline_calibrated(row: Measurement, offline: Measurement) -> tuple[Efficiency, float]:
    """The server row's efficiency slowed (or sped up) by one factor until its system's analytic offline
    throughput equals the same submission's published Offline result (``offline``: its layout, batch cap and
    lengths); and the factor."""
    assert offline.tokens_per_s is not None
    base = _efficiency(row)
    factor = 1.0
    for _ in range(12):
        ratio = _capacity(offline, _slowed(base, factor)) / offline.tokens_per_s
        factor *= ratio
        if abs(ratio - 1.0) <= CALIBRATION_TOLERANCE:
            break
    return _slowed(base, factor), factor


def _memory_seqs(row: Measurement, input_tokens: float, efficiency: Efficiency) -> int:
    """Sequences that fit in memory at full length, capped at 2,048 (MLPerf harnesses run large batches)."""
    from fivelayer.engines.serving.config import ReplicaGroup, ServingConfig
    from fivelayer.engines.serving.simulator import build_replicas

    config = ServingConfig(
        model=row.model,
        precision=row.precision,
        groups=(ReplicaGroup(row.accelerator, row.count, tp=row.tp, pp=row.pp, power_limit_w=row.power_limit_w),),
    )
    plan = build_replicas(config, mean_input=input_tokens, mean_output=row.output_tokens or 1.0, efficiency=efficiency,
                          check_seed=None)[0]  # fmt: skip
    tokens = plan.kv_blocks * config.engine.block_size
    return max(1, min(2048, int(tokens // (input_tokens + (row.output_tokens or 1.0)))))


def row_lengths(
    row: Measurement, input_tokens: float, requests: int, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Prompt and output lengths of ``requests`` requests of ``row``'s benchmark: lognormal around the means with
    the dataset's spread, no longer than the benchmark allows (its longest prompt, its generation limit) nor
    than half the model's context."""
    from fivelayer.applications.application import TokenLengths
    from fivelayer.applications.workload import sample_lengths
    from fivelayer.catalog import default_catalog

    assert row.output_tokens is not None
    room = default_catalog().language_model(row.model).max_context_tokens

    def spread(mean: float, cv: float | None) -> TokenLengths:
        return TokenLengths(distribution="lognormal" if cv else "fixed", mean=mean, cv=cv or 0.0)

    longest_in = min(room // 2, row.max_input_tokens or room)
    longest_out = min(room // 2, row.max_output_tokens or room)
    n_in = sample_lengths(spread(input_tokens, row.input_cv), requests, rng, maximum=longest_in)
    n_out = sample_lengths(spread(row.output_tokens, row.output_cv), requests, rng, maximum=longest_out)
    return n_in, n_out


def _simulate_row(
    row: Measurement,
    input_tokens: float,
    requests: int,
    seed: int,
    duration_s: float = MLPERF_MIN_DURATION_S,
    efficiency: Efficiency | None = None,
    load: float = 1.0,
) -> dict[str, Any]:
    """Simulate ``row`` at ``load`` times its published load for MLPerf's minimum duration, with ``efficiency``
    (default: the leave-one-out fit of its family and stack, :func:`_efficiency`), and return the p99 TTFT and
    TPOT over every request, as LoadGen does."""
    from fivelayer.applications.workload import Workload
    from fivelayer.engines.serving.config import EngineOptions, ReplicaGroup, ServingConfig
    from fivelayer.engines.serving.simulator import simulate

    assert row.tokens_per_s is not None and row.output_tokens is not None
    eff = efficiency or _efficiency(row)
    rate = load * row.tokens_per_s / row.output_tokens
    requests = int(min(MAX_SERVER_VALIDATION_REQUESTS, max(requests, rate * duration_s)))
    streams = RandomStreams(seed)
    arrivals = poisson_arrivals(rate, requests, streams.generator(f"validation:{row.id}"))
    n_in, n_out = row_lengths(row, input_tokens, requests, streams.generator(f"validation-lengths:{row.id}"))
    workload = Workload(arrivals, n_in, n_out, source=f"MLPerf server load {rate:.2f} requests/s")
    # The submission's published settings; what it leaves unpublished keeps the simulator's defaults.
    engine: dict[str, Any] = {"max_num_batched_tokens": DEFAULT_SERVER_TOKENS_PER_STEP}
    engine.update(row.harness.engine_settings() if row.harness else {})
    if "max_num_seqs" not in engine:
        engine["max_num_seqs"] = row.batch_size or _memory_seqs(row, input_tokens, eff)
    config = ServingConfig(
        model=row.model, precision=row.precision,
        groups=(
            ReplicaGroup(row.accelerator, row.count, tp=row.tp, pp=row.pp, ep=row.ep, power_limit_w=row.power_limit_w),
        ),
        engine=EngineOptions(**engine),
        ttft_slo_s=row.ttft_p99_s or 2.0,
        tpot_slo_s=row.tpot_p99_s or 0.2,
        **(row.harness.cluster_settings() if row.harness else {}),
    )  # fmt: skip
    summary = simulate(workload, config, seed=seed, efficiency=eff).summary
    return {"requests": requests, **summary}


def load_at_measured_tpot(
    row: Measurement,
    input_tokens: float,
    requests: int,
    seed: int,
    duration_s: float = MLPERF_MIN_DURATION_S,
    at_stated: dict[str, Any] | None = None,
) -> float | None:
    """The multiple of the row's published load at which the simulated median TPOT equals the measured one
    (leave-one-out fit, as :func:`_simulate_row`), to :data:`LOAD_TOLERANCE`; None where no load in
    :data:`LOAD_RANGE` reaches it (the simulation stays faster up to its capacity, or slower at light load).

    The inverse of the check at the stated load, and well conditioned where that one is not: near capacity a
    load error of a few per cent moves the median TPOT by tens of per cent, while this answer moves by that
    few per cent. It is also the sizing question asked of the simulator: what load does this system carry at
    this latency? ``at_stated``: the simulation at the published load, if already run."""
    target = row.tpot_p50_s
    if not target:
        return None
    low: tuple[float, float] | None = None  # the largest load simulated faster than measured, and its gap
    high: tuple[float, float] | None = None  # the smallest load simulated slower
    load = 1.0
    previous: tuple[float, float] | None = None  # the run before, while not bracketed
    summary = at_stated or _simulate_row(row, input_tokens, requests, seed, duration_s)
    for run in range(MAX_LOAD_RUNS + 1):
        gap = math.log(summary["tpot_s"]["p50"] / target)
        if abs(gap) <= TPOT_TOLERANCE:
            return load
        if gap < 0:
            low = (load, gap) if low is None or load > low[0] else low
        else:
            high = (load, gap) if high is None or load < high[0] else high
        if low is not None and high is not None:
            (x0, g0), (x1, g1) = (math.log(low[0]), low[1]), (math.log(high[0]), high[1])
            root = x0 - g0 * (x1 - x0) / (g1 - g0)
            if high[0] / low[0] - 1.0 <= LOAD_TOLERANCE or run == MAX_LOAD_RUNS:
                return math.exp(root)
            load = math.exp(min(max(root, x0 + 0.1 * (x1 - x0)), x1 - 0.1 * (x1 - x0)))
        else:  # not bracketed yet: step towards the measured TPOT, by the secant through the last two runs
            up = low is not None
            if up and not summary["sustainable"]:
                return None  # past the simulated capacity and still faster than measured
            step = LOAD_STEP
            if previous is not None and previous[1] != gap and previous[0] != load:
                slope = (gap - previous[1]) / math.log(load / previous[0])
                if slope * (1 if up else -1) > 0:
                    step = min(max(math.exp(abs(gap / slope)) * (1 + LOAD_TOLERANCE), LOAD_STEP**0.5), LOAD_STEP**3)
            previous = (load, gap)
            load = load * step if up else load / step
            if not LOAD_RANGE[0] <= load <= LOAD_RANGE[1]:
                return None
        if run == MAX_LOAD_RUNS:
            return None
        summary = _simulate_row(row, input_tokens, requests, seed, duration_s, load=load)
    return None


def validate_serving(
    assumed_input_tokens: float | None = None,
    requests: int = SERVER_VALIDATION_REQUESTS,
    seed: int = 0,
    duration_s: float = MLPERF_MIN_DURATION_S,
) -> list[ValidationRow]:
    """Measured vs simulated p99 TTFT and TPOT of every MLPerf server row (see the module docstring).

    ``duration_s`` shorter than LoadGen's 600 s gives a quick, rough check; its kinds say so (``@60s``).
    """
    out: list[ValidationRow] = []
    short = "" if duration_s >= MLPERF_MIN_DURATION_S else f"@{duration_s:g}s"
    for row, input_tokens in _server_rows():
        suffix = short
        if input_tokens is None and assumed_input_tokens is not None:
            input_tokens = assumed_input_tokens
            suffix += f"@input={assumed_input_tokens:g}"
        summary: dict[str, Any] | None = None
        calibrated: dict[str, Any] | None = None
        load: float | None = None
        twin = _offline_twin(row)
        if input_tokens is not None:
            with contextlib.suppress(FivelayerError):
                summary = _simulate_row(row, input_tokens, requests, seed, duration_s=duration_s)
                load = load_at_measured_tpot(row, input_tokens, requests, seed, duration_s, at_stated=summary)
                if twin is not None and twin.tokens_per_s:
                    eff, _ = offline_calibrated(row, twin)
                    calibrated = _simulate_row(row, input_tokens, requests, seed, duration_s, eff)
        measures = (("ttft", "p99", row.ttft_p99_s), ("tpot", "p99", row.tpot_p99_s),
                    ("ttft", "p50", row.ttft_p50_s), ("tpot", "p50", row.tpot_p50_s))  # fmt: skip
        for metric, percentile, measured in measures:
            kind = f"{metric}_{percentile}_s"
            if measured is None:
                continue
            runs: list[tuple[str, dict[str, Any] | None]] = [(kind + suffix, summary)]
            if twin is not None and "@input" not in suffix:
                runs.append((kind + "@offline-calibrated" + short, calibrated))
            for label, result in runs:
                predicted = None if result is None else result[metric + "_s"][percentile]
                out.append(ValidationRow.of(row, label, float(measured), predicted))
        if row.tpot_p50_s and row.tokens_per_s and summary is not None:
            at_load = None if load is None else load * row.tokens_per_s
            out.append(ValidationRow.of(row, LOAD_AT_TPOT + suffix, float(row.tokens_per_s), at_load))
    return out
