"""Running a study in chunks: in-process or on Dask, with results stored as chunks finish, and resume.

Store layout for ``-o results.duckdb`` (or ``results.parquet``):

- ``results.duckdb.parts/`` holds one Parquet file per finished chunk (``chunk-000012.parquet``) and a
  ``study.json`` with the study's fingerprint. Each part is written to a temporary name and renamed, so a
  part is either complete or absent: a study killed at any moment leaves only whole parts behind.
- When every chunk is done the parts are combined into ``results.duckdb`` (table ``results``, plus
  ``study`` with the fingerprint), again through a temporary file and an atomic rename, and the parts are
  removed. Running the same study again finds the finished file and does nothing; an interrupted study
  skips its finished parts. A store made by a different study is never mixed in: its fingerprint differs
  and the run stops with a message.

Chunks are evaluated by :class:`~fivelayer.engines.sweep.evaluate.Evaluator` (vectorised) and are pure
functions of the study and the chunk number, so a chunk evaluated twice (a Dask worker lost mid-task and the
task retried elsewhere) gives the same rows.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any, Protocol

import numpy as np
import pandas as pd

from fivelayer.core.errors import FivelayerError
from fivelayer.engines.sweep.evaluate import Evaluator
from fivelayer.engines.sweep.sampling import design as make_design
from fivelayer.engines.sweep.spec import Study, load_study, study_from_text

__all__ = ["ChunkEvaluator", "ChunkStore", "RunReport", "chunk_frame", "evaluate_chunk", "make_evaluator",
           "run_study"]  # fmt: skip

Progress = Callable[[int, int], None]


class ChunkEvaluator(Protocol):
    """What evaluates a chunk of variants: :class:`Evaluator` (scenarios) or a simulate study's evaluator."""

    @property
    def engine(self) -> str: ...

    @property
    def extra_columns(self) -> tuple[str, ...]: ...

    def evaluate(self, design: dict[str, np.ndarray], first_variant: int = 0) -> dict[str, np.ndarray]: ...


def make_evaluator(study: Study) -> ChunkEvaluator:
    """The evaluator of ``study``'s method; raises before any work if the study cannot be evaluated as asked."""
    if study.simulate:
        from fivelayer.engines.sweep.simulate import SimulationEvaluator

        return SimulationEvaluator(study)
    return Evaluator(study)


def chunk_frame(study: Study, design: dict[str, np.ndarray], start: int, stop: int,
                evaluator: ChunkEvaluator | None = None) -> pd.DataFrame:  # fmt: skip
    """Rows ``start:stop`` of the study's design, evaluated: one column per parameter, then the outputs,
    ``feasible`` and the evaluator's extra columns."""
    evaluator = evaluator or make_evaluator(study)
    part = {name: values[start:stop] for name, values in design.items()}
    outputs = evaluator.evaluate(part, start)
    columns: dict[str, Any] = {"variant": np.arange(start, stop, dtype=np.int64)}
    for p in study.parameters:
        values = part[p.name]
        if p.kind == "categorical":
            columns[p.name] = pd.Series(np.asarray(p.values, dtype=object)[values.astype(np.int64)], dtype="str")
        else:
            columns[p.name] = values
    for name in study.outputs:
        columns[name] = outputs[name]
    columns["feasible"] = outputs["feasible"]
    for name in evaluator.extra_columns:
        values = outputs[name]
        columns[name] = pd.Series(values, dtype="str") if values.dtype == object else values
    return pd.DataFrame(columns)


# --- work that runs on a Dask worker ---------------------------------------------------------------------

_WORKER_STATE: dict[str, tuple[Study, dict[str, np.ndarray], ChunkEvaluator]] = {}


def evaluate_chunk(source: dict[str, str], chunk: int) -> tuple[int, pd.DataFrame]:
    """Evaluate one chunk of a study given as its file path or text (what a Dask worker runs).

    The parsed study, its design and the unit cache are kept per worker process between chunks.
    """
    key = json.dumps(source, sort_keys=True)
    state = _WORKER_STATE.get(key)
    if state is None:
        study = load_study(source["path"]) if source.get("path") else study_from_text(source["text"], source["origin"])
        state = (study, make_design(study), make_evaluator(study))
        _WORKER_STATE.clear()
        _WORKER_STATE[key] = state
    study, design, evaluator = state
    n = len(next(iter(design.values())))
    size = study.chunk_size
    return chunk, chunk_frame(study, design, chunk * size, min(n, (chunk + 1) * size), evaluator)


# --- the store --------------------------------------------------------------------------------------------


class ChunkStore:
    """Finished chunks on disk (see the module docstring); ``None`` path keeps them in memory."""

    def __init__(self, output: FilePath | None, fingerprint: str) -> None:
        self.output = output
        self.fingerprint = fingerprint
        self.memory: dict[int, pd.DataFrame] = {}
        if output is None:
            self.parts = None
            return
        suffix = output.suffix.lower()
        if suffix not in (".duckdb", ".db", ".parquet"):
            raise FivelayerError(f"{output}: write results to a .duckdb or .parquet file")
        self.parts = output.with_name(output.name + ".parts")

    @property
    def complete(self) -> bool:
        """The output file exists and was made by this study."""
        if self.output is None or not self.output.exists():
            return False
        stamp = self._stamp_of_output()
        if stamp != self.fingerprint:
            raise FivelayerError(
                f"{self.output} holds the results of another study (or another version of this one); "
                "remove it or write to a new file"
            )
        return True

    def _stamp_of_output(self) -> str | None:
        assert self.output is not None
        if self.output.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            meta = pq.read_schema(self.output).metadata or {}
            value = meta.get(b"fivelayer_study")
            return value.decode() if value else None
        import duckdb

        with duckdb.connect(str(self.output), read_only=True) as con:
            try:
                row = con.execute("select fingerprint from study").fetchone()
            except duckdb.Error:
                return None
        return None if row is None else str(row[0])

    def open(self) -> set[int]:
        """Prepare the parts folder; the chunks already finished."""
        if self.parts is None:
            return set(self.memory)
        stamp = self.parts / "study.json"
        if self.parts.exists():
            recorded = json.loads(stamp.read_text()).get("fingerprint") if stamp.exists() else None
            if recorded != self.fingerprint:
                raise FivelayerError(
                    f"{self.parts} holds unfinished chunks of another study; remove it or write to a new file"
                )
        else:
            self.parts.mkdir(parents=True)
            _atomic_write_text(stamp, json.dumps({"fingerprint": self.fingerprint}))
        done = set()
        for part in self.parts.glob("chunk-*.parquet"):
            done.add(int(part.stem.split("-")[1]))
        return done

    def put(self, chunk: int, frame: pd.DataFrame) -> None:
        if self.parts is None:
            self.memory[chunk] = frame
            return
        target = self.parts / f"chunk-{chunk:06d}.parquet"
        fd, tmp = tempfile.mkstemp(dir=self.parts, prefix=".tmp-", suffix=".parquet")
        os.close(fd)
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def frames(self) -> Iterable[pd.DataFrame]:
        if self.parts is None:
            for chunk in sorted(self.memory):
                yield self.memory[chunk]
            return
        for part in sorted(self.parts.glob("chunk-*.parquet")):
            yield pd.read_parquet(part)

    def finish(self) -> pd.DataFrame:
        """Combine the parts into the output file (atomically) and return the table."""
        frames = list(self.frames())
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if self.output is None or self.parts is None:
            return table
        fd, tmp = tempfile.mkstemp(dir=self.output.parent, prefix=f".{self.output.name}.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
        try:
            if self.output.suffix.lower() == ".parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                arrow = pa.Table.from_pandas(table, preserve_index=False)
                meta = dict(arrow.schema.metadata or {})
                meta[b"fivelayer_study"] = self.fingerprint.encode()
                pq.write_table(arrow.replace_schema_metadata(meta), tmp)
            else:
                import duckdb

                with duckdb.connect(tmp) as con:
                    con.register("frame", table)
                    con.execute("create table results as select * from frame order by variant")
                    con.execute("create table study (fingerprint varchar)")
                    con.execute("insert into study values (?)", [self.fingerprint])
            os.replace(tmp, self.output)
        finally:
            for leftover in (tmp, tmp + ".wal"):
                if os.path.exists(leftover):
                    os.unlink(leftover)
        shutil.rmtree(self.parts)
        return table

    def read(self) -> pd.DataFrame:
        """The finished output file as a table."""
        assert self.output is not None
        if self.output.suffix.lower() == ".parquet":
            return pd.read_parquet(self.output)
        import duckdb

        with duckdb.connect(str(self.output), read_only=True) as con:
            return con.execute("select * from results order by variant").df()


def _atomic_write_text(path: FilePath, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


# --- running ----------------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What a run did: the table, how many chunks it computed and skipped, and how."""

    table: pd.DataFrame
    chunks: int
    computed: int
    skipped: int
    engine: str
    backend: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def run_study(
    study: Study,
    output: str | FilePath | None = None,
    *,
    backend: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    progress: Progress | None = None,
    max_chunks: int | None = None,
    source: dict[str, str] | None = None,
) -> RunReport:
    """Evaluate every chunk of ``study`` not yet in ``output``, then combine them into ``output``.

    ``backend`` is ``"local"`` (in this process) or ``"dask"`` (``scheduler`` an address, else a
    ``LocalCluster`` of ``workers`` processes on 127.0.0.1). ``max_chunks`` stops after that many new chunks
    (leaving the study unfinished but resumable: used by tests and for budgeted runs). ``source`` is how
    Dask workers find the study (``{"path": ...}`` or ``{"text": ..., "origin": ...}``); by default the study
    file's path.
    """
    import time

    start = time.perf_counter()
    evaluator = make_evaluator(study)  # raises before any work if the study cannot be evaluated as asked
    store = ChunkStore(None if output is None else FilePath(output), study.fingerprint)
    design = make_design(study)
    n = len(next(iter(design.values())))
    size = study.chunk_size
    chunks = -(-n // size)
    if store.complete:
        return RunReport(store.read(), chunks, 0, chunks, evaluator.engine, backend, time.perf_counter() - start,
                         ["already finished; nothing recomputed"])  # fmt: skip
    done = store.open()
    todo = [c for c in range(chunks) if c not in done]
    if max_chunks is not None:
        todo = todo[:max_chunks]
    if progress:
        progress(len(done), chunks)
    finished = len(done)
    if backend == "local" and scheduler is None:
        for chunk in todo:
            store.put(chunk, chunk_frame(study, design, chunk * size, min(n, (chunk + 1) * size), evaluator))
            finished += 1
            if progress:
                progress(finished, chunks)
    else:
        src = source or _source_of(study)
        for chunk, frame in _dask_chunks(src, todo, scheduler, workers, study.fingerprint):
            store.put(chunk, frame)
            finished += 1
            if progress:
                progress(finished, chunks)
    computed = len(todo)
    if finished < chunks:
        table = pd.concat(list(store.frames()), ignore_index=True) if finished else pd.DataFrame()
        return RunReport(table, chunks, computed, len(done), evaluator.engine, _backend(backend, scheduler),
                         time.perf_counter() - start, [f"stopped after {finished} of {chunks} chunks"])  # fmt: skip
    table = store.finish()
    table = table.sort_values("variant", ignore_index=True) if len(table) else table
    return RunReport(table, chunks, computed, len(done), evaluator.engine, _backend(backend, scheduler),
                     time.perf_counter() - start)  # fmt: skip


def _backend(backend: str, scheduler: str | None) -> str:
    return f"dask ({scheduler})" if scheduler else backend


def _source_of(study: Study) -> dict[str, str]:
    origin = FilePath(study.origin)
    if origin.exists():
        return {"path": str(origin.resolve())}
    return {"text": study.text.split("\n---\n", 1)[0], "origin": study.origin}


def _dask_chunks(source: dict[str, str], todo: list[int], scheduler: str | None, workers: int,
                 fingerprint: str) -> Iterable[tuple[int, pd.DataFrame]]:  # fmt: skip
    import importlib

    try:
        distributed: Any = importlib.import_module("dask.distributed")
    except ImportError:  # pragma: no cover - depends on the environment
        raise FivelayerError("the Dask backend needs dask[distributed]: pip install 'fivelayer[sweep]'") from None
    cluster: Any = None
    if scheduler is None:
        # ":0": the scheduler's HTTP server (which runs even without a dashboard) on a free port, so that another
        # Dask cluster on this machine (port 8787) does not stop this one.
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=":0")  # fmt: skip
        client = distributed.Client(cluster)
    else:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise FivelayerError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None
    try:
        futures = [client.submit(evaluate_chunk, source, chunk, key=f"fivelayer-{fingerprint}-{chunk}", pure=False)
                   for chunk in todo]  # fmt: skip
        for future in distributed.as_completed(futures):
            chunk, frame = future.result()
            yield chunk, frame
            future.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
