"""The training-run planner: the best layout for a cluster, and what the run takes in time, energy, money, CO2.

``predict_training`` searches every layout (:mod:`.layouts`), keeps those that fit in memory, picks the one
with the highest throughput, and turns it into a run: ideal time = tokens / throughput; wall-clock time adds
checkpoints, failures, restarts and stragglers (:mod:`.failures`); energy, cost and carbon follow from the
wall-clock time (:mod:`.costs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.chips import ChipSpec
from fivelayer.core.errors import FivelayerError, InfeasibleConfiguration
from fivelayer.engines.training.costs import RunCosts, run_costs
from fivelayer.engines.training.failures import Goodput, goodput
from fivelayer.engines.training.layouts import (
    MEMORY_RESERVE_FRACTION,
    SCHEDULES,
    TrainingEfficiency,
    enumerate_layouts,
    evaluate,
    splits,
)
from fivelayer.models.training import ADAM_BYTES, RECOMPUTE, TrainingWork

__all__ = ["TRAINING_PRECISIONS", "TrainingCase", "TrainingPrediction", "default_batch_tokens", "predict_training"]

TRAINING_PRECISIONS = ("bf16", "fp16", "fp8", "fp32", "tf32")
#: Default sequence length of pre-training. Assumption: 4,096 tokens (Llama 2 and DeepSeek-V3 pre-train at 4K,
#: Llama 3 at 8K), capped at the model's context.
DEFAULT_SEQ_LEN = 4096


def default_batch_tokens(count: int) -> float:
    """Default global batch: 1,024 tokens per accelerator, at least 4 Mi and at most 16 Mi tokens.

    Assumption, bracketed by published runs: Llama 2 used 4M tokens per batch, Llama 3 405B 16M on 16K GPUs.

    >>> default_batch_tokens(512), default_batch_tokens(16_384)
    (4194304.0, 16777216.0)
    """
    return float(min(max(count * 1024, 4 * 2**20), 16 * 2**20))


@dataclass(frozen=True)
class TrainingCase:
    """One training-run question, as the command line gives it."""

    accelerator: str
    count: int
    model: str
    tokens: float
    precision: str = "bf16"
    seq_len: int | None = None
    batch_tokens: float | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    cp: int | None = None
    #: Pipeline schedule: "1f1b" (interleaved 1F1B) or "dualpipe" (DeepSeek-V3); see :mod:`.layouts`.
    schedule: str = "1f1b"
    region: str = "us"
    pue: float | None = None
    price_usd_per_gpu_hour: float | None = None

    def __post_init__(self) -> None:
        # Schedule names are case-insensitive ("DualPipe" as the DeepSeek-V3 report writes it).
        object.__setattr__(self, "schedule", self.schedule.strip().lower())
        problems = []
        if self.count < 1:
            problems.append(f"count must be at least 1 (got {self.count})")
        if not self.tokens > 0 or not math.isfinite(self.tokens):
            problems.append(f"tokens must be a positive number (got {self.tokens})")
        if self.precision not in TRAINING_PRECISIONS:
            problems.append(
                f"training precision must be one of {', '.join(TRAINING_PRECISIONS)} (got {self.precision!r})"
            )
        if self.schedule not in SCHEDULES:
            problems.append(f"pipeline schedule must be one of {', '.join(SCHEDULES)} (got {self.schedule!r})")
        if self.seq_len is not None and self.seq_len < 1:
            problems.append(f"seq_len must be at least 1 (got {self.seq_len})")
        if self.batch_tokens is not None and self.batch_tokens < 1:
            problems.append(f"batch_tokens must be positive (got {self.batch_tokens})")
        for name in ("tp", "pp", "ep", "cp"):
            value = getattr(self, name)
            if value is not None and (value < 1 or value & (value - 1)):
                problems.append(f"{name} must be a power of two (got {value})")
        if self.pue is not None and not 1.0 <= self.pue <= 3.0:
            problems.append(f"pue must be between 1 and 3 (got {self.pue})")
        if self.price_usd_per_gpu_hour is not None and self.price_usd_per_gpu_hour < 0:
            problems.append("price_usd_per_gpu_hour must not be negative")
        if problems:
            raise FivelayerError("; ".join(problems))


@dataclass(frozen=True)
class TrainingPrediction:
    """A planned training run: the layout, its speed, and what the run takes."""

    case: TrainingCase
    accelerator_id: str
    model_id: str
    layout: dict[str, int]
    zero_stage: int
    recompute: str
    seq_len: int
    batch_tokens: float
    step_time_s: float
    step_breakdown_s: dict[str, float]
    tokens_per_s: float
    mfu: float
    model_tflops_per_gpu: float
    training_flops: float
    ideal_days: float
    days: float
    gpu_hours: float
    goodput: Goodput
    memory_per_device_bytes: dict[str, float]
    costs: RunCosts
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        g = self.goodput
        return {
            "accelerator": self.accelerator_id,
            "count": self.case.count,
            "model": self.model_id,
            "tokens": self.case.tokens,
            "precision": self.case.precision,
            "gpu_hours": self.gpu_hours,
            "days": self.days,
            "mfu": self.mfu,
            "model_tflops_per_gpu": self.model_tflops_per_gpu,
            "training_flops": self.training_flops,
            "tokens_per_s": self.tokens_per_s,
            "energy_mwh": {"it": self.costs.it_energy_j / 3.6e9, "facility": self.costs.facility_energy_j / 3.6e9},
            "cost_usd": self.costs.total_usd,
            "cost_breakdown_usd": self.costs.breakdown_usd,
            "cost_basis": self.costs.basis,
            "co2_t": self.costs.co2_t,
            "region": self.costs.region,
            "layout": self.layout,
            "zero_stage": self.zero_stage,
            "recompute": self.recompute,
            "schedule": self.case.schedule,
            "seq_len": self.seq_len,
            "batch_tokens": self.batch_tokens,
            "step_time_s": self.step_time_s,
            "step_breakdown_s": self.step_breakdown_s,
            "ideal_days": self.ideal_days,
            "goodput": {
                "fraction": g.fraction,
                "mtbf_hours": g.mtbf_s / 3600.0,
                "interruptions": g.interruptions,
                "checkpoint_s": g.checkpoint_s,
                "checkpoint_interval_min": g.checkpoint_interval_s / 60.0,
                "checkpoint_overhead": g.checkpoint_overhead,
                "failure_overhead": g.failure_overhead,
                "straggler_overhead": g.straggler_overhead,
            },
            "memory_per_device_bytes": self.memory_per_device_bytes,
            "gpu_power_w": self.costs.gpu_power_w,
            "assumptions": self.assumptions,
        }


def _fit_message(case: TrainingCase, work: TrainingWork, chip: ChipSpec, min_states: float) -> str:
    usable = chip.memory_bytes * (1 - MEMORY_RESERVE_FRACTION)
    total_states = work.params_total * ADAM_BYTES.total
    needed = max(1, math.ceil(total_states / usable))
    return (
        f"{work.model_id} does not fit for training on {case.count} x {chip.accelerator_id}: its model states take "
        f"{total_states / 1e9:,.0f} GB ({ADAM_BYTES.total:g} bytes per parameter: bf16 weights and gradients, fp32 "
        f"Adam states) and the best layout (fully sharded, full recomputation) still needs "
        f"{min_states / 1e9:,.1f} GB per device, but each holds {usable / 1e9:,.1f} GB usable "
        f"({100 * (1 - MEMORY_RESERVE_FRACTION):.0f} % of {chip.memory_bytes / 1e9:,.0f} GB). Short by "
        f"{(min_states - usable) / 1e9:,.1f} GB per device: use at least {needed} x {chip.accelerator_id}, "
        f"a shorter --seq-len, or an accelerator with more memory."
    )


def predict_training(
    case: TrainingCase,
    catalog: CatalogSet | None = None,
    efficiency: TrainingEfficiency | None = None,
) -> TrainingPrediction:
    """Plan ``case``. Raises :class:`InfeasibleConfiguration` naming what is short if nothing fits."""
    cat = catalog or default_catalog()
    chip_record = cat.accelerators.get(case.accelerator)
    model = cat.language_model(case.model)
    chip = ChipSpec.of(chip_record)
    work = TrainingWork.of(model)
    eff = efficiency if efficiency is not None else _calibrated(chip_record.family, model.params_active())
    seq = int(case.seq_len or min(DEFAULT_SEQ_LEN, work.max_context_tokens))
    if seq > work.max_context_tokens:
        raise InfeasibleConfiguration(
            f"{work.model_id} has a context of {work.max_context_tokens:,} tokens; a training sequence of {seq:,} "
            "does not fit"
        )
    batch = float(case.batch_tokens or default_batch_tokens(case.count))
    batch = max(batch, float(seq))
    if case.tp and not splits(work, case.tp):
        good = ", ".join(str(t) for t in (1, 2, 4, 8, 16, 32, 64) if t <= work.num_heads and splits(work, t))
        raise InfeasibleConfiguration(
            f"tp {case.tp} does not split {work.model_id}'s {work.num_heads} attention heads evenly, as tensor "
            f"parallelism requires; use tp {good}"
        )
    layouts = enumerate_layouts(case.count, chip, work, seq, tp=case.tp, pp=case.pp, ep=case.ep, cp=case.cp)
    if not len(layouts):
        raise InfeasibleConfiguration(
            f"no parallel layout of {case.count} accelerator(s) matches tp={case.tp}, pp={case.pp}, cp={case.cp}, "
            f"ep={case.ep}: their product must not exceed the count, and ep must divide the data-parallel degree"
        )
    cost = evaluate(chip, work, layouts, seq, batch, case.precision, eff, case.schedule)
    ok = cost.fits & cost.valid
    if not ok.any():
        if cost.valid.any():
            need = cost.memory_bytes["model_states"] + cost.memory_bytes["activations"]
            raise InfeasibleConfiguration(_fit_message(case, work, chip, float(np.min(need[cost.valid]))))
        raise InfeasibleConfiguration(
            f"a global batch of {batch:,.0f} tokens is less than one {seq:,}-token sequence per data-parallel "
            f"replica on {case.count} accelerators; raise --batch-tokens"
        )
    throughput = np.where(ok, batch / cost.step_s, -np.inf)
    # Prefer the smallest model-parallel group among layouts within 0.1 % of the best.
    best = float(np.max(throughput))
    near = throughput >= best * 0.999
    size = layouts.tp * layouts.pp * layouts.cp + 1e-3 * layouts.zero + 1e-4 * layouts.recompute
    i = int(np.argmin(np.where(near, size, np.inf)))
    return _prediction(case, cat, chip_record.family, chip, work, eff, layouts, cost, i, seq, batch)


def _prediction(
    case: TrainingCase,
    cat: CatalogSet,
    family: str,
    chip: ChipSpec,
    work: TrainingWork,
    eff: TrainingEfficiency,
    layouts: Any,
    cost: Any,
    i: int,
    seq: int,
    batch: float,
) -> TrainingPrediction:
    step = float(cost.step_s[i])
    tokens_per_s = batch / step
    flops = work.training_flops(case.tokens, seq)
    peak = chip.peak("fp8" if case.precision == "fp8" else "bf16")
    mfu = tokens_per_s * float(work.model_flops_per_token(seq)) / (case.count * peak)
    ideal_s = case.tokens / tokens_per_s
    ckpt_bytes = work.params_total * (ADAM_BYTES.weights + ADAM_BYTES.optimizer)
    g = goodput(case.count, ideal_s, ckpt_bytes)
    wall_s = ideal_s / g.fraction
    gpu_hours = case.count * wall_s / 3600.0
    layout = {
        "dp": int(layouts.dp[i]),
        "tp": int(layouts.tp[i]),
        "pp": int(layouts.pp[i]),
        "ep": int(layouts.ep[i]),
        "cp": int(layouts.cp[i]),
    }
    used = layout["dp"] * layout["tp"] * layout["pp"] * layout["cp"]
    costs = run_costs(
        cat, case.accelerator, case.count, wall_s, float(cost.busy_fraction[i]), eff.comm_power_weight,
        region=case.region, pue=case.pue, price_usd_per_gpu_hour=case.price_usd_per_gpu_hour,
        idle_devices=case.count - used,
    )  # fmt: skip
    memory = {k: float(v[i]) for k, v in cost.memory_bytes.items()}
    memory["capacity"] = chip.memory_bytes
    memory["reserve"] = chip.memory_bytes * MEMORY_RESERVE_FRACTION
    assumptions = [
        f"model FLOPs per token {float(work.model_flops_per_token(seq)):.4g} (3 x forward: "
        f"6 x {work.active_matmul_params:.4g} active matmul parameters + attention at sequence {seq:,}); "
        "MFU counts these, not recomputation",
        f"global batch {batch:,.0f} tokens of {seq:,}-token sequences, one sequence per micro-batch",
        f"achievable fraction of peak for training matrix products {eff.compute:.3f} ({family} calibration)"
        + (f", fp8 GEMMs at {eff.fp8_relative:g} of that efficiency" if case.precision == "fp8" else ""),
        f"mixed-precision Adam: {ADAM_BYTES.total:g} bytes per parameter; ZeRO stage {int(layouts.zero[i])}, "
        f"{RECOMPUTE[int(layouts.recompute[i])]} activation recomputation",
        f"data-parallel gradient reduction hidden behind {eff.dp_overlap:.0%} of the backward pass; "
        + (
            "DualPipe schedule: expert all-to-all and pipeline sends overlapped with computation, "
            "bubble (pp/2 - 1) x 2/3 of a micro-batch"
            if case.schedule == "dualpipe"
            else f"{eff.ep_exposed:.0%} of expert all-to-all exposed; interleaved 1F1B pipeline"
        ),
        f"interruptions {g.mtbf_s and 86_400 / g.mtbf_s / case.count:.3g} per GPU-day (Llama 3 405B run), "
        f"checkpoint every {g.checkpoint_interval_s / 60:.1f} min (Young-Daly), restart 10 min, straggler jitter 1 %",
        *costs.assumptions,
    ]
    if used < case.count:
        assumptions.append(f"{case.count - used} accelerator(s) left idle by the layout (still counted in GPU-hours)")
    return TrainingPrediction(
        case=case,
        accelerator_id=chip.accelerator_id,
        model_id=work.model_id,
        layout=layout,
        zero_stage=int(layouts.zero[i]),
        recompute=RECOMPUTE[int(layouts.recompute[i])],
        seq_len=seq,
        batch_tokens=batch,
        step_time_s=step,
        step_breakdown_s={k: float(v[i]) for k, v in cost.parts_s.items()},
        tokens_per_s=tokens_per_s,
        mfu=mfu,
        model_tflops_per_gpu=mfu * peak / 1e12,
        training_flops=flops,
        ideal_days=ideal_s / 86_400.0,
        days=wall_s / 86_400.0,
        gpu_hours=gpu_hours,
        goodput=g,
        memory_per_device_bytes=memory,
        costs=costs,
        assumptions=assumptions,
    )


def _calibrated(family: str, active_params: float) -> TrainingEfficiency:
    from fivelayer.engines.training.calibration import fitted_training_efficiency

    return replace(TrainingEfficiency(), compute=fitted_training_efficiency(family, active_params))
