"""Benchmark: 10^6 variants of the default scenario through plan's analytic path, in-process and on Dask.

Run: ``python benchmarks/bench_sweep.py [N] [--dask]``. Prints variants per second; with ``--dask`` also runs
the same study on a local Dask cluster of 2 worker processes and checks the tables are identical.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from fivelayer.engines.sweep import load_study, run_study

STUDY = """
name: benchmark
method: montecarlo
samples: {n}
seed: 1
chunk_size: 100000
parameters:
  - path: applications[customer-service-assistant].users
    distribution: {{kind: lognormal, median: 50e6, sigma: 0.4}}
  - path: applications[coding-agent].users
    distribution: {{kind: triangular, low: 100000, mode: 200000, high: 400000}}
  - path: site.power_cap
    range: [60 MW, 200 MW]
  - path: economics.discount_rate
    distribution: {{kind: normal, mean: 0.08, sd: 10%}}
  - path: site.region
    values: [us-va, us-tx, se, de]
  - path: facility.design
    values: [direct-to-chip, immersion]
  - path: deployments[support].precision
    values: [fp8, fp4]
"""


def main(argv: list[str]) -> None:
    n = int(next((a for a in argv if a.isdigit()), "1000000"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.yaml"
        path.write_text(STUDY.format(n=n))
        study = load_study(path)
        start = time.perf_counter()
        local = run_study(study)
        seconds = time.perf_counter() - start
        print(f"in-process: {n:,} variants in {seconds:.1f} s ({n / seconds:,.0f} variants/s), engine {local.engine}")
        if "--dask" in argv:
            start = time.perf_counter()
            dask = run_study(study, Path(tmp) / "r.duckdb", backend="dask", workers=2)
            seconds = time.perf_counter() - start
            print(f"dask (2 workers, incl. cluster start and DuckDB write): {seconds:.1f} s")
            pd.testing.assert_frame_equal(local.table.reset_index(drop=True), dask.table.reset_index(drop=True))
            print("dask table identical to in-process table")


if __name__ == "__main__":
    main(sys.argv[1:])
