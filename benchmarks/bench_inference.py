"""Speed of the inference engine on one core (run: python benchmarks/bench_inference.py).

Prints step evaluations per second (one vectorised call over 10^6 configurations) and full operating-
point solves per second (offline mode: every parallel layout x 97 batch sizes per solve). Targets from
the inference issue: >= 10^6 step evaluations/s and >= 10^4 solves/s.
"""

from __future__ import annotations

import time

import numpy as np

from fivelayer.catalog import default_catalog
from fivelayer.chips import ChipSpec
from fivelayer.engines.inference import InferenceCase, predict_inference, solve_offline_many
from fivelayer.models.step import Efficiency, step_cost
from fivelayer.models.work import ModelWork, numeric_format


def main() -> None:
    cat = default_catalog()
    chip = ChipSpec.of(cat.accelerators.get("h200-sxm"))
    work = ModelWork.of(cat.language_model("llama-3.1-70b"))
    fmt = numeric_format("fp8")
    eff = Efficiency()
    rng = np.random.default_rng(0)
    n = 1_000_000
    batch = rng.integers(1, 1024, n).astype(float)
    context = rng.integers(128, 8192, n).astype(float)
    tp = 2.0 ** rng.integers(0, 4, n)
    step_cost(chip, work, fmt, eff, decode_seqs=batch[:10], decode_context=context[:10], tp=tp[:10])
    start = time.perf_counter()
    step_cost(chip, work, fmt, eff, decode_seqs=batch, decode_context=context, prefill_tokens=batch, tp=tp)
    elapsed = time.perf_counter() - start
    print(f"step evaluations: {n / elapsed:,.0f} per second ({n:,} in {elapsed:.3f} s)")

    solves = 20_000
    counts = rng.integers(1, 65, solves)
    inputs = rng.integers(64, 4096, solves)
    outputs = rng.integers(16, 1024, solves)
    solve_offline_many(chip, work, fmt, eff, counts[:10], inputs[:10], outputs[:10])
    start = time.perf_counter()
    solve_offline_many(chip, work, fmt, eff, counts, inputs, outputs)
    elapsed = time.perf_counter() - start
    print(
        f"offline operating-point solves (batched): {solves / elapsed:,.0f} per second ({solves:,} in {elapsed:.3f} s)"
    )

    singles = 300
    start = time.perf_counter()
    for i in range(singles):
        predict_inference(
            InferenceCase("h200-sxm", int(counts[i]), "llama-3.1-70b", "fp8", int(inputs[i]), int(outputs[i])),
            efficiency=eff,
        )
    elapsed = time.perf_counter() - start
    print(f"single predict_inference calls (with catalog lookups): {singles / elapsed:,.0f} per second")


if __name__ == "__main__":
    main()
