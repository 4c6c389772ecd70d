"""What a serving simulation reports: latency percentiles, goodput, throughput, time series, records."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fivelayer.core.errors import FivelayerError

if TYPE_CHECKING:
    import pandas as pd

    from fivelayer.applications.workload import Workload
    from fivelayer.engines.serving.config import ServingConfig
    from fivelayer.engines.serving.replica import Replica, RequestState
    from fivelayer.engines.serving.simulator import ReplicaPlan

__all__ = ["RECORD_COLUMNS", "SimulationResult", "StepLog", "check_records_path", "is_records_file"]

FloatArray = NDArray[np.float64]
PERCENTILES = (50, 90, 99)
#: The per-request records' columns, in order; as a CSV header they mark a file as records fivelayer wrote.
RECORD_COLUMNS = (
    "request", "arrival_s", "input_tokens", "output_tokens", "session", "prefix_hit_tokens", "replica",
    "decode_replica", "first_token_s", "finish_s", "ttft_s", "tpot_s", "e2e_s", "preemptions", "dropped",
)  # fmt: skip
#: The mark of records fivelayer wrote: Parquet schema metadata (key ``fivelayer``), DuckDB table comment.
RECORDS_MARK = "fivelayer simulate: per-request records"
RECORD_SUFFIXES = (".parquet", ".duckdb", ".csv")
_LOG_FIELDS = ("replica", "start", "end", "steps", "batch", "prefill", "energy", "waiting", "running", "blocks")


class StepLog:
    """One row per step or decode run of a replica, in growable NumPy columns."""

    def __init__(self) -> None:
        self._rows: list[tuple[float, ...]] = []

    def add(self, replica: int, start: float, end: float, steps: int, batch: int, prefill: float, energy: float,
            waiting: int, running: int, blocks: int) -> None:  # fmt: skip
        self._rows.append((replica, start, end, steps, batch, prefill, energy, waiting, running, blocks))

    def columns(self) -> dict[str, FloatArray]:
        if not self._rows:
            return {k: np.zeros(0) for k in _LOG_FIELDS}
        arr = np.array(self._rows, dtype=np.float64)
        return {k: arr[:, i] for i, k in enumerate(_LOG_FIELDS)}


def _percentiles(values: FloatArray) -> dict[str, float | None]:
    v = values[np.isfinite(values)]
    out: dict[str, float | None] = dict.fromkeys([*(f"p{p}" for p in PERCENTILES), "mean"])
    if v.size:
        pct = np.percentile(v, PERCENTILES)
        out = {f"p{p}": float(x) for p, x in zip(PERCENTILES, pct, strict=True)}
        out["mean"] = float(v.mean())
    return out


@dataclass(frozen=True)
class SimulationResult:
    """Results of one simulation. ``to_dict()`` is the ``--json`` output; ``to_frame()`` the per-request records."""

    summary: dict[str, Any]
    records: dict[str, NDArray[Any]]
    timeseries: dict[str, list[float]]
    assumptions: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.summary[key]

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary, "timeseries": self.timeseries, "assumptions": self.assumptions}

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.records)

    def write_records(self, path: str | Path) -> Path:
        """Per-request records to ``.parquet`` (needs pyarrow), ``.duckdb`` (needs duckdb) or ``.csv``. An
        existing file is replaced only if it holds records fivelayer wrote (:func:`is_records_file`)."""
        file = Path(path)
        check_records_path(file)
        suffix = file.suffix.lower()
        frame = self.to_frame()
        try:
            if suffix == ".csv":
                frame.to_csv(file, index=False)
            elif suffix == ".parquet":
                _write_parquet(frame, file)
            else:
                _write_duckdb(frame, file)
        except OSError as exc:
            raise FivelayerError(f"cannot write {file}: {exc.strerror or exc}") from None
        return file

    @classmethod
    def build(
        cls,
        *,
        workload: Workload,
        config: ServingConfig,
        state: RequestState,
        log: StepLog,
        replicas: list[Replica],
        plans: list[ReplicaPlan],
        end_s: float,
        arrived: int,
        seed: int,
        front_waiting: int = 0,
    ) -> SimulationResult:
        s = state
        finished = np.isfinite(s.finish)
        ttft = s.first - s.arrival
        e2e = s.finish - s.arrival
        out = s.output
        tpot = np.where(out > 1, (s.finish - s.first) / np.maximum(out - 1, 1), np.nan)
        start = float(s.arrival[0])
        duration = max(end_s - start, 1e-12)
        meets = finished & (ttft <= config.ttft_slo_s) & (np.isnan(tpot) | (tpot <= config.tpot_slo_s))
        generated = float(s.gen.sum())
        tokens_done = float(out[finished].sum())
        cols = log.columns()
        energy_busy = float(cols["energy"].sum())
        spare_w = sum(p.spare * p.spare_idle_w for p in plans)  # accelerators in no replica, idle throughout
        idle_j = sum(r.timer.idle_power_w() * max(duration - r.busy_s, 0.0) for r in replicas) + spare_w * duration
        devices = sum(r.timer.devices for r in replicas)
        waiting_end = sum(len(r.waiting) for r in replicas) + front_waiting
        running_end = sum(r.running for r in replicas)
        dropped = int(s.dropped.sum())
        prefix_possible = float(s.prefix.sum())
        series = _timeseries(cols, start, end_s, replicas, spare_w)
        # Offered load over the requests that arrived (a horizon may stop the run before the rest do).
        arrival_span = max(float(s.arrival[max(arrived, 1) - 1]) - start, 1e-12)
        offered = arrived / arrival_span if arrived > 1 else 0.0
        completion_rate = float(finished.sum()) / duration
        # A request still waiting for its first token has waited at least until the end of the run: at a
        # horizon its TTFT is known to be at least that (censored), and requests in flight are normal, not a
        # queue that grows.
        waited = np.where(np.isfinite(s.first), ttft, end_s - s.arrival)
        if config.horizon_s is not None:
            judged = ~s.dropped[:arrived]
            growing = _queue_growing(waited[:arrived][judged], s.arrival[:arrived][judged],
                                     np.ones(int(judged.sum()), dtype=bool))  # fmt: skip
            # Censoring hides the waits of a queue that grew late or fast; the queue itself shows it: more
            # requests waiting at the horizon than twice the mean queue of the first fifth of the run, plus
            # half a second of arrivals (the slack of the TTFT rule).
            early_queue = series["waiting"][: max(len(series["waiting"]) // 5, 1)]
            growing = growing or waiting_end > 2.0 * float(np.mean(early_queue)) + 0.5 * offered
        else:
            growing = _queue_growing(ttft, s.arrival, finished) or (waiting_end + running_end > 0)
        # Attainment over the requests whose outcome is known: finished, dropped, or past the TTFT target
        # while still waiting for their first token (the same as all arrived requests when the run drains).
        known_miss = ~finished & ~s.dropped & (waited > config.ttft_slo_s)
        known_miss[arrived:] = False
        decided = int(finished.sum()) + dropped + int(known_miss.sum())
        summary: dict[str, Any] = {
            "requests": len(workload),
            "arrived": arrived,
            "finished": int(finished.sum()),
            "running": running_end,
            "waiting": waiting_end,
            "dropped": dropped,
            "simulated_s": duration,
            "offered_requests_per_s": offered,
            "throughput_requests_per_s": completion_rate,
            "throughput_tokens_per_s": generated / duration,
            "finished_output_tokens": tokens_done,
            "ttft_s": _percentiles(ttft),
            "tpot_s": _percentiles(tpot),
            "e2e_s": _percentiles(e2e),
            "goodput_requests_per_s": float(meets.sum()) / duration,
            "slo_attainment": float(meets.sum()) / max(decided, 1),
            "latency_targets": {"ttft_s": config.ttft_slo_s, "tpot_s": config.tpot_slo_s},
            "sustainable": not growing,
            "queue_growing": growing,
            "preemptions": int(s.preemptions.sum()),
            "prefix_cache_hit_rate": float(s.hit.sum()) / prefix_possible if prefix_possible else None,
            "prefix_cache_hit_tokens": int(s.hit.sum()),
            "energy_j": energy_busy + idle_j,
            "energy_per_output_token_j": (energy_busy + idle_j) / generated if generated else None,
            "mean_power_w": (energy_busy + idle_j) / duration,
            "utilisation": float(sum(r.busy_s for r in replicas)) / (duration * len(replicas)),
            "mean_batch": float((cols["batch"] * cols["steps"]).sum() / max(cols["steps"].sum(), 1.0)),
            "steps": int(cols["steps"].sum()),
            "cluster": [
                {
                    "accelerator": p.accelerator,
                    "role": p.group.role,
                    "devices": p.group.count,
                    "replicas": p.replicas,
                    "tp": p.tp,
                    "pp": p.pp,
                    "ep": p.ep,
                    "kv_blocks_per_replica": p.kv_blocks,
                    "kv_tokens_per_replica": p.kv_blocks * config.engine.block_size,
                    "max_num_seqs": p.max_seqs,
                    "spare_devices": p.spare,
                }
                for p in plans
            ],
            "devices": devices,
            "model": config.model,
            "precision": config.precision,
            "router": config.router,
            "seed": seed,
            "workload": workload.source,
        }
        records = {
            "request": np.arange(len(workload)),
            "arrival_s": s.arrival,
            "input_tokens": s.input,
            "output_tokens": out.astype(np.int64),
            "session": s.session,
            "prefix_hit_tokens": s.hit,
            "replica": s.replica,
            "decode_replica": s.decode_replica,
            "first_token_s": s.first,
            "finish_s": s.finish,
            "ttft_s": ttft,
            "tpot_s": tpot,
            "e2e_s": e2e,
            "preemptions": s.preemptions,
            "dropped": s.dropped,
        }
        g = config.engine
        steps = g.num_scheduler_steps
        multi_step = f"the scheduler deciding once every {steps} decode steps, " if steps > 1 else ""
        assumptions = [
            f"continuous batching per replica: {g.block_size}-token KV blocks, up to {g.max_num_batched_tokens:,} "
            f"tokens per step, {'chunked prefill' if g.chunked_prefill else 'whole prompts in steps of their own'}, "
            f"{g.preemption} on preemption, {multi_step}prefix caching {'on' if g.prefix_caching else 'off'}",
            "step time and energy from the step-cost model (fivelayer.models.step.step_cost), "
            "decode context = tokens in the KV cache before the step",
            f"goodput: requests with TTFT <= {config.ttft_slo_s:g} s and TPOT <= {config.tpot_slo_s:g} s per second",
            "idle replicas draw their accelerators' idle power; host power is not included",
            *workload.notes,
        ]
        if dropped:
            context = min(p.timer.max_context for p in plans)
            too_long = int((s.dropped & (s.input + s.output - 1 > context)).sum())
            reasons = [f"{too_long:,} longer than {config.model}'s context of {context:,} tokens"] if too_long else []
            if dropped - too_long:
                reasons.append(f"{dropped - too_long:,} longer than a replica's whole KV cache")
            assumptions.append(
                f"{dropped:,} request{'s' if dropped > 1 else ''} dropped, as a serving engine rejects them: "
                + " and ".join(reasons)
            )
        for p in plans:
            if p.spare:
                assumptions.append(
                    f"{p.group.count} {p.accelerator} make {p.replicas} replica{'s' if p.replicas > 1 else ''} of tp "
                    f"{p.tp} x pp {p.pp}; the {p.spare} left over stay{'s' if p.spare == 1 else ''} idle, drawing "
                    f"{p.spare_idle_w:g} W each"
                )
        seen: set[tuple[str, str]] = set()
        for plan in plans:  # the step efficiency of each kind of replica, and where it comes from
            e = plan.timer.eff
            line = (
                f"step efficiency on {plan.accelerator}: {e.compute:.2f} of {plan.compute_basis} and {e.memory:.2f} "
                f"of peak bandwidth, {e.overhead_s * 1e3:.1f} ms per step"
                + (f" + {e.per_sequence_s * 1e6:g} us per running sequence" if e.per_sequence_s else "")
                + (f", {e.serial:g} of the shorter of compute and memory time on top of the longer" if e.serial else "")
                + f" ({plan.efficiency_origin})"
            )
            if (plan.accelerator, line) not in seen:
                seen.add((plan.accelerator, line))
                assumptions.append(line)
        if g.speculative_tokens:
            assumptions.append(
                f"speculative decoding: {g.speculative_tokens} draft tokens at acceptance {g.acceptance_rate:g} "
                f"give {g.tokens_per_step:.2f} tokens per step (expected value); "
                + (
                    f"draft model {g.draft_model}: {g.speculative_tokens} decode steps of the batch per verification "
                    "step (the first also prefills new prompt chunks), on the same accelerators, its weights and KV "
                    "cache in their memory"
                    if g.draft_model
                    else "drafting is free (n-gram or prompt-lookup drafting; no draft model)"
                )
            )
        if g.prefill_max_running is not None or g.prefill_min_waiting or g.decode_batch_target is not None:
            rules = ["prefill-holding rules (AMD's MLPerf vLLM scheduler)"]
            if g.prefill_max_running is not None:
                rules.append(f"prompts admitted only while fewer than {g.prefill_max_running:,} sequences run")
            if g.prefill_min_waiting:
                rules.append(f"a prefill right after another only with {g.prefill_min_waiting:,} prompts waiting")
            if g.decode_batch_target is not None:
                low, high, step = g.decode_batch_target
                rules.append(f"decode steps of at most {low:,}-{high:,} sequences in steps of {step:,}")
            assumptions.append(": ".join((rules[0], "; ".join(rules[1:]))))
        if config.dispatch_batch > 1:
            assumptions.append(
                f"batching front end: requests wait until {config.dispatch_batch:,} are waiting or "
                f"{config.dispatch_timeout_s:g} s have passed since its last send, then go together to one replica"
            )
        if config.disaggregated:
            assumptions.append("KV transfer: 1 ms + KV bytes over the prefill accelerator's scale-out link")
        return cls(summary=summary, records=records, timeseries=series, assumptions=assumptions)


def _queue_growing(ttft: FloatArray, arrival: FloatArray, finished: NDArray[np.bool_]) -> bool:
    """Whether waiting times grow over the run: the median TTFT of the last fifth of arrivals is more than
    twice that of the first fifth plus half a second (a stable queue keeps its waiting time)."""
    n = arrival.size
    if n < 10:
        return False
    fifth = n // 5
    early = ttft[:fifth][finished[:fifth]]
    late = ttft[-fifth:]
    late = np.where(np.isfinite(late), late, np.inf)
    if early.size == 0:
        return True
    return bool(np.median(late) > 2.0 * float(np.median(early)) + 0.5)


def _timeseries(cols: dict[str, FloatArray], start: float, end: float, replicas: list[Replica],
                spare_w: float = 0.0, bins: int = 60) -> dict[str, list[float]]:  # fmt: skip
    """Queue, batch, utilisation and power in ``bins`` equal intervals (each step counted at its midpoint);
    ``spare_w``: the idle power of accelerators in no replica, drawn throughout."""
    span = max(end - start, 1e-12)
    edges = np.linspace(start, start + span, bins + 1)
    width = span / bins
    idle_w = sum(r.timer.idle_power_w() for r in replicas)
    if cols["start"].size == 0:  # nothing ran: every accelerator idle
        zeros = [0.0] * bins
        return {"time_s": edges[:-1].tolist(), "waiting": zeros, "running": zeros, "batch": zeros,
                "utilisation": zeros, "power_w": [idle_w + spare_w] * bins,
                "energy_j": ((idle_w + spare_w) * width * np.arange(1, bins + 1)).tolist()}  # fmt: skip
    mid = 0.5 * (cols["start"] + cols["end"])
    idx = np.clip(((mid - start) / width).astype(np.int64), 0, bins - 1)
    dur = cols["end"] - cols["start"]
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    per = np.maximum(count, 1.0)
    steps = np.bincount(idx, weights=cols["steps"], minlength=bins)
    busy = np.bincount(idx, weights=dur, minlength=bins)
    energy = np.bincount(idx, weights=cols["energy"], minlength=bins)
    idle_share = np.clip(1.0 - busy / (width * len(replicas)), 0.0, 1.0)
    power = energy / width + idle_w * idle_share + spare_w
    return {
        "time_s": (edges[:-1] - start).tolist(),
        # Requests waiting and running, summed over the replicas that stepped in the interval (mean per step).
        "waiting": (np.bincount(idx, weights=cols["waiting"], minlength=bins) / per * _reps(idx, cols, bins)).tolist(),
        "running": (np.bincount(idx, weights=cols["running"], minlength=bins) / per * _reps(idx, cols, bins)).tolist(),
        "batch": (
            np.bincount(idx, weights=cols["batch"] * cols["steps"], minlength=bins) / np.maximum(steps, 1.0)
        ).tolist(),
        "utilisation": np.clip(busy / (width * len(replicas)), 0.0, 1.0).tolist(),
        "power_w": power.tolist(),
        "energy_j": np.cumsum(energy + (idle_w * idle_share + spare_w) * width).tolist(),
    }


def _reps(idx: NDArray[np.int64], cols: dict[str, FloatArray], bins: int) -> FloatArray:
    """Distinct replicas that logged a step in each interval."""
    pairs = np.unique(idx * 1_000_000 + cols["replica"].astype(np.int64))
    out: FloatArray = np.bincount(pairs // 1_000_000, minlength=bins).astype(np.float64)
    return out


def _library(name: str, file: Path) -> Any:
    """The optional library that writes ``file``, or a sentence saying how to install it."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise FivelayerError(
            f"writing {file} needs {name}, which is not installed: pip install {name} (or use .csv)"
        ) from None


def _write_parquet(frame: pd.DataFrame, file: Path) -> None:
    pa = _library("pyarrow", file)
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    marked = {**(table.schema.metadata or {}), b"fivelayer": RECORDS_MARK.encode()}
    pq.write_table(table.replace_schema_metadata(marked), file)


def _write_duckdb(frame: pd.DataFrame, file: Path) -> None:
    duckdb = _library("duckdb", file)
    try:
        con = duckdb.connect(str(file))
    except duckdb.Error as exc:  # its IO errors are not OSError
        raise FivelayerError(f"cannot write {file}: {exc}") from None
    try:
        con.register("records_frame", frame)
        con.execute("CREATE OR REPLACE TABLE requests AS SELECT * FROM records_frame")
        con.execute(f"COMMENT ON TABLE requests IS '{RECORDS_MARK}'")
    finally:
        con.close()


def check_records_path(path: Path) -> None:
    """Raise :class:`FivelayerError` unless ``path`` is a records file name (.parquet, .duckdb, .csv) that can be
    written without replacing a file of the user's (see :mod:`fivelayer.core.files`)."""
    from fivelayer.core.files import check_output_file

    if path.suffix.lower() not in RECORD_SUFFIXES:
        raise FivelayerError(f"records file {path}: use a .parquet, .duckdb or .csv name")
    check_output_file(path, is_records_file, example=f"records{path.suffix.lower()}", what="records file")


def is_records_file(path: Path) -> bool:
    """Whether the file at ``path`` holds per-request records fivelayer wrote: a CSV whose header is
    :data:`RECORD_COLUMNS`, a Parquet file or DuckDB table ``requests`` carrying :data:`RECORDS_MARK`."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with open(path, encoding="utf-8") as fh:
                return fh.readline().rstrip("\r\n") == ",".join(RECORD_COLUMNS)
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return (pq.read_schema(path).metadata or {}).get(b"fivelayer") == RECORDS_MARK.encode()
        if suffix == ".duckdb":
            import duckdb

            with duckdb.connect(str(path), read_only=True) as con:
                row = con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 'requests'").fetchone()
            return row is not None and row[0] == RECORDS_MARK
    except Exception:  # unreadable, not that format, or its library missing: not ours to replace
        return False
    return False
