"""The serving simulator against published MLPerf Inference *Server* results (TTFT and TPOT p99).

Each server row of the reference set is simulated at its stated load: Poisson arrivals at
``tokens_per_s / output_tokens`` requests per second on the row's accelerators, with the row's mean output
length. What can and cannot be checked, honestly:

- MLPerf rows publish the mean *output* length of their dataset but not the mean *input* length, and
  both TTFT (one prefill) and TPOT (decode steps shared with prefill chunks) depend on it. A row whose input
  length is unknown (neither in the row nor in the reference file's ``datasets`` section) is reported with
  ``predicted = None``; ``assumed_input_tokens`` runs it anyway at an assumed length, and the kind then
  says so (``ttft_p99_s@input=N``), so an assumption never passes for a check.
- The simulator uses fixed lengths at the dataset means, while MLPerf draws lengths from its dataset; the
  p99 of a spread of lengths is larger than at the mean.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fivelayer.applications.workload import poisson_arrivals
from fivelayer.core.errors import FivelayerError
from fivelayer.core.streams import RandomStreams
from fivelayer.engines.calibration import Measurement, ValidationRow, _reference_file, reference_measurements

__all__ = ["SERVER_VALIDATION_REQUESTS", "validate_serving"]

#: Requests simulated per reference row (enough for a stable p99: about 20 requests above it).
SERVER_VALIDATION_REQUESTS = 2000


def _server_rows() -> list[tuple[Measurement, float | None]]:
    """Every server row with a measured latency, and its mean input length where known."""
    known = {r.id: r.input_tokens for r in reference_measurements()}
    rows, _ = _reference_file()
    return [
        (r, known.get(r.id))
        for r in rows
        if r.scenario == "server" and (r.ttft_p99_s or r.tpot_p99_s) and r.tokens_per_s and r.output_tokens
    ]


def _memory_seqs(row: Measurement, input_tokens: float) -> int:
    """Sequences that fit in memory at full length, capped at 2,048 (MLPerf harnesses run large batches)."""
    from fivelayer.engines.serving.config import ReplicaGroup, ServingConfig
    from fivelayer.engines.serving.simulator import build_replicas

    config = ServingConfig(
        model=row.model,
        precision=row.precision,
        groups=(ReplicaGroup(row.accelerator, row.count, tp=row.tp, pp=row.pp),),
    )
    plan = build_replicas(config, mean_input=input_tokens, mean_output=row.output_tokens or 1.0, check_seed=None)[0]
    tokens = plan.kv_blocks * config.engine.block_size
    return max(1, min(2048, int(tokens // (input_tokens + (row.output_tokens or 1.0)))))


def _simulate_row(row: Measurement, input_tokens: float, requests: int, seed: int) -> dict[str, Any]:
    import numpy as np

    from fivelayer.applications.workload import Workload
    from fivelayer.engines.serving.config import EngineOptions, ReplicaGroup, ServingConfig
    from fivelayer.engines.serving.simulator import simulate

    assert row.tokens_per_s is not None and row.output_tokens is not None
    rate = row.tokens_per_s / row.output_tokens
    rng = RandomStreams(seed).generator(f"validation:{row.id}")
    arrivals = poisson_arrivals(rate, requests, rng)
    n_in = np.full(requests, max(1, round(input_tokens)), dtype=np.int64)
    n_out = np.full(requests, max(1, round(row.output_tokens)), dtype=np.int64)
    workload = Workload(arrivals, n_in, n_out, source=f"MLPerf server load {rate:.2f} requests/s")
    config = ServingConfig(
        model=row.model, precision=row.precision,
        groups=(ReplicaGroup(row.accelerator, row.count, tp=row.tp, pp=row.pp, ep=row.ep),),
        engine=EngineOptions(
            max_num_seqs=row.batch_size or _memory_seqs(row, input_tokens), max_num_batched_tokens=16384
        ),
        ttft_slo_s=row.ttft_p99_s or 2.0,
        tpot_slo_s=row.tpot_p99_s or 0.2,
    )  # fmt: skip
    return simulate(workload, config, seed=seed).summary


def validate_serving(
    assumed_input_tokens: float | None = None,
    requests: int = SERVER_VALIDATION_REQUESTS,
    seed: int = 0,
) -> list[ValidationRow]:
    """Measured vs simulated p99 TTFT and TPOT of every MLPerf server row (see the module docstring)."""
    out: list[ValidationRow] = []
    for row, input_tokens in _server_rows():
        suffix = ""
        if input_tokens is None and assumed_input_tokens is not None:
            input_tokens = assumed_input_tokens
            suffix = f"@input={assumed_input_tokens:g}"
        summary: dict[str, Any] | None = None
        if input_tokens is not None:
            with contextlib.suppress(FivelayerError):
                summary = _simulate_row(row, input_tokens, requests, seed)
        src = row.sources[0]
        family = row.family
        for kind, measured in (("ttft_p99_s", row.ttft_p99_s), ("tpot_p99_s", row.tpot_p99_s)):
            if measured is None:
                continue
            predicted = None if summary is None else summary[kind.split("_p99")[0] + "_s"]["p99"]
            out.append(
                ValidationRow(
                    id=row.id,
                    kind=kind + suffix,
                    family=family,
                    accelerator=row.accelerator,
                    model=row.model,
                    scenario=row.scenario,
                    measured=float(measured),
                    predicted=predicted,
                    source=src.url or src.citation or "",
                )
            )
    return out
