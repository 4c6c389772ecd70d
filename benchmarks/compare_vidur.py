"""fivelayer's serving simulator and Vidur on the same workload: wall time of each, and the ratio.

Run: ``python benchmarks/compare_vidur.py [--requests N] [--qps Q]``, with Vidur installed
(``pip install vidur``; its PyPI wheel, version 0.0.26, was checked on 2026-11-28) in the same environment.

Workload: Llama 3 70B on one 8 x H100 DGX replica at tensor parallelism 8 (a Vidur-supported model and
device), fixed 2,048-token prompts and 512-token outputs, Poisson arrivals at ``--qps``.

Vidur needs GPU profiling data, which it downloads from the Hugging Face Hub when it starts
(``snapshot_download`` in ``vidur/execution_time_predictor/sklearn_execution_time_predictor.py``). Where the
Hub cannot be reached, Vidur stops before simulating; this script then prints Vidur's error, fivelayer's
own figures, and exits 1. On the machine this was written on (package registries only, no Hub), that is
what happens: the ratio could not be measured there. The older Vidur on GitHub (microsoft/vidur) reads
its profiles from its own ``data/profiling`` folder instead, but its attention profiles are Git LFS objects
(10.5 MB for Llama-2-70B on H100) that a source snapshot without LFS does not contain, so it cannot run
offline either.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time

from fivelayer.applications.workload import synthetic_workload
from fivelayer.core.streams import RandomStreams
from fivelayer.engines.serving import ReplicaGroup, ServingConfig, simulate


def _fivelayer(requests: int, qps: float) -> dict[str, float]:
    s = RandomStreams(0)
    w = synthetic_workload(requests, s.generator("arrivals"), s.generator("lengths"), rate_per_s=qps,
                           input_tokens=2048, output_tokens=512)  # fmt: skip
    config = ServingConfig("llama-3-70b", (ReplicaGroup("h100-sxm", 8, tp=8, pp=1),), precision="bf16")
    simulate(w.head(20), config)  # warm the catalog and calibration caches
    start = time.perf_counter()
    result = simulate(w, config)
    wall = time.perf_counter() - start
    return {"wall_s": wall, "requests_per_wall_s": requests / wall, "ttft_p50_s": result["ttft_s"]["p50"],
            "tpot_p50_s": result["tpot_s"]["p50"]}  # fmt: skip


def _vidur(requests: int, qps: float) -> dict[str, float] | str:
    """Run Vidur as its README does; its wall time, or its error output."""
    command = [
        sys.executable, "-m", "vidur.main",
        "--replica_config_device", "h100",
        "--replica_config_model_name", "meta-llama/Llama-3-70B",
        "--cluster_config_num_replicas", "1",
        "--replica_config_tensor_parallel_size", "8",
        "--request_generator_config_type", "synthetic",
        "--synthetic_request_generator_config_num_requests", str(requests),
        "--length_generator_config_type", "fixed",
        "--fixed_request_length_generator_config_prefill_tokens", "2048",
        "--fixed_request_length_generator_config_decode_tokens", "512",
        "--interval_generator_config_type", "poisson",
        "--poisson_request_interval_generator_config_qps", str(qps),
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        return "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
    return {"wall_s": wall, "requests_per_wall_s": requests / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=512, help="requests to simulate (default 512)")
    parser.add_argument("--qps", type=float, default=2.0, help="Poisson arrival rate (default 2 requests/s)")
    args = parser.parse_args()
    ours = _fivelayer(args.requests, args.qps)
    print(json.dumps({"fivelayer": ours}, indent=2))
    if importlib.util.find_spec("vidur") is None:
        print("Vidur is not installed here: pip install vidur", file=sys.stderr)
        return 2
    theirs = _vidur(args.requests, args.qps)
    if isinstance(theirs, str):
        print(f"Vidur did not run (it downloads its profiling data from the Hugging Face Hub):\n{theirs}",
              file=sys.stderr)  # fmt: skip
        return 1
    ratio = theirs["wall_s"] / ours["wall_s"]
    print(json.dumps({"vidur": theirs, "fivelayer_speedup_over_vidur": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
