"""Serving-simulator speed: simulated requests per wall second, and one hour of a 100-replica cluster.

Run: ``python benchmarks/bench_serving.py [--quick]``. Targets (issue 5): at least 10,000 simulated
2,048-in/512-out requests per wall second on one 8-GPU server (Vidur: about 75), and one hour of a
100-replica cluster at 50 requests/s in under a minute, on one core.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fivelayer.applications.application import TokenLengths
from fivelayer.applications.workload import Workload, synthetic_workload
from fivelayer.core.streams import RandomStreams
from fivelayer.engines.serving import ReplicaGroup, ServingConfig, simulate


def _server(requests: int, rate: float) -> dict[str, float]:
    """8 x H100 serving Llama 3.1 8B (fp8, 8 replicas of one GPU), fixed 2,048-in/512-out requests."""
    s = RandomStreams(1)
    w = synthetic_workload(requests, s.generator("arrivals"), s.generator("lengths"), rate_per_s=rate,
                           input_tokens=2048, output_tokens=512)  # fmt: skip
    config = ServingConfig("llama-3.1-8b", (ReplicaGroup("h100-sxm", 8, tp=1, pp=1),))
    simulate(w.head(50), config)  # warm the catalog and calibration caches
    start = time.perf_counter()
    result = simulate(w, config)
    wall = time.perf_counter() - start
    return {"requests": requests, "offered_requests_per_s": rate, "wall_s": wall,
            "simulated_requests_per_wall_s": requests / wall,
            "served_requests_per_s": result["throughput_requests_per_s"], "steps": result["steps"]}  # fmt: skip


def _cluster(hours: float) -> dict[str, float]:
    """100 x H100 replicas of Llama 3.1 8B at 50 requests/s for ``hours``, lognormal lengths (1,024 / 256, cv 1)."""
    s = RandomStreams(2)
    n = int(50 * 3600 * hours)
    lengths = (TokenLengths(distribution="lognormal", mean=1024, cv=1.0),
               TokenLengths(distribution="lognormal", mean=256, cv=1.0))  # fmt: skip
    w = synthetic_workload(n, s.generator("arrivals"), s.generator("lengths"), rate_per_s=50.0,
                           input_tokens=lengths[0], output_tokens=lengths[1], max_context=131072)  # fmt: skip
    config = ServingConfig("llama-3.1-8b", (ReplicaGroup("h100-sxm", 100, tp=1, pp=1),))
    simulate(Workload(w.arrival_s[:50], w.input_tokens[:50], w.output_tokens[:50]), config)
    start = time.perf_counter()
    result = simulate(w, config)
    wall = time.perf_counter() - start
    return {"simulated_hours": hours, "requests": n, "wall_s": wall, "steps": result["steps"],
            "ttft_p99_s": result["ttft_s"]["p99"], "tpot_p99_s": result["tpot_s"]["p99"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args()
    n = 5_000 if args.quick else 50_000
    saturated = _server(n, 1000.0)
    out = {
        "server_saturated": saturated,
        "server_at_90_percent_load": _server(n, 0.9 * saturated["served_requests_per_s"]),
        "cluster_100_replicas": _cluster(0.05 if args.quick else 1.0),
        "numpy": np.__version__,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
