"""Operating points of one accelerator type serving one language model: offline, server, fixed-batch.

Given ``count`` accelerators, a model and a precision, this engine searches the parallel layouts
(tensor x pipeline x expert parallelism, the rest as data-parallel replicas) and batch sizes, evaluates
every candidate at once with the step-cost model (:func:`fivelayer.models.step.step_cost`), and returns the
best by the mode's rule:

- ``offline``: the highest output-token throughput (every layout, the largest batch that fits);
- ``server``: the highest throughput whose estimated p99 TTFT and TPOT meet the targets;
- ``fixed-batch``: ``batch_size`` concurrent sequences per replica, as ``max_num_seqs`` would run.

In ``offline`` and ``server`` modes a ``batch_size`` is the engine's cap on running sequences per replica
(``max_num_seqs``, TensorRT-LLM's ``max_batch_size``): no candidate runs more.

Steady state of continuous batching: each step decodes one token for each of the ``B`` running sequences
and prefills ``B x input/output`` prompt tokens (each request's prompt once per ``output`` decodes). The
mean context of a running sequence is ``input + output/2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.chips import Accelerator, ChipSpec
from fivelayer.core.errors import FivelayerError, InfeasibleConfiguration
from fivelayer.infrastructure import System
from fivelayer.models import LanguageModel
from fivelayer.models.step import BOTTLENECKS, Efficiency, StepCost, steady_state_cost, step_cost
from fivelayer.models.work import ModelWork, NumericFormat, numeric_format

__all__ = [
    "MEMORY_RESERVE_FRACTION",
    "InferenceCase",
    "InferencePrediction",
    "check_layout",
    "efficiency_origin",
    "missing_rates",
    "predict_inference",
    "solve_offline_many",
    "tail_prompt",
]

Mode = Literal["offline", "server", "fixed-batch"]

#: Fraction of accelerator memory kept free for activations, CUDA graphs, and fragmentation. Assumption:
#: vLLM's default gpu_memory_utilization is 0.9.
MEMORY_RESERVE_FRACTION = 0.10
#: Largest number of concurrent sequences per replica considered. Assumption: serving engines cap
#: max_num_seqs / max_batch_size at a few thousand (TensorRT-LLM benchmarks use up to 4,096).
MAX_BATCH = 4096
#: Prompt tokens one engine step prefills at most (chunked prefill's token budget). Assumption: the
#: serving simulator's default max_num_batched_tokens, 8,192; a longer prompt takes several steps.
PREFILL_CHUNK_TOKENS = 8192
#: Standard normal quantile of 0.99 (2.326): the TTFT target is a 99th percentile, checked also for the prompt
#: that 99 % of prompts do not exceed (:func:`tail_prompt`).
P99_Z = NormalDist().inv_cdf(0.99)
#: Host power per accelerator when the accelerator is given without a system. Assumption: a DGX H100 draws
#: 10.2 kW with 8 x 700 W GPUs, leaving about 575 W of host per GPU; 0.8 x TDP is used for other chips.
HOST_POWER_FRACTION_OF_TDP = 0.8
#: Host power draw while serving, as a fraction of its maximum. Assumption: CPUs, NICs and fans of an AI
#: server run well below their rating while the GPUs work; 60 %.
HOST_LOAD_FRACTION = 0.6
#: Default PUE for the ``facility`` energy scope (a modern liquid-cooled AI hall). Assumption; the
#: facility catalog's designs are used by ``plan``.
DEFAULT_PUE = 1.2


@dataclass(frozen=True)
class InferenceCase:
    """One prediction request, as the command line and case files give it."""

    accelerator: str
    count: int
    model: str
    precision: str = "fp8"
    input_tokens: int = 1024
    output_tokens: int = 256
    mode: Mode = "offline"
    batch_size: int | None = None
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    ttft_slo: float | None = None
    tpot_slo: float | None = None
    pue: float = DEFAULT_PUE
    #: Coefficients of variation (std / mean) of prompt and output lengths; 0: every request has the mean.
    input_cv: float = 0.0
    output_cv: float = 0.0
    #: Board power limit of each accelerator, watts (``nvidia-smi -pl``); None: the TDP.
    power_limit: float | None = None

    @property
    def decode_context(self) -> float:
        """Mean context over decode steps: a sequence of output o spends o steps at mean context L + o/2, so
        steps weight long outputs: L + E[o^2] / (2 E[o]) = L + o (1 + cv_o^2) / 2."""
        return self.input_tokens + self.output_tokens * (1.0 + self.output_cv**2) / 2.0

    @property
    def attention_prompt(self) -> float:
        """The prompt length whose causal attention equals the mean over prompts: E[L^2] / E[L] = L (1 + cv^2)."""
        return self.input_tokens * (1.0 + self.input_cv**2)

    def __post_init__(self) -> None:
        problems = []
        for name in ("input_cv", "output_cv"):
            # Any finite spread: a mixture of applications' lengths (plan) may exceed the bound a user may give
            # (MAX_LENGTH_CV, checked where users give it); only E[L^2] / E[L] enters here.
            value = getattr(self, name)
            if not 0.0 <= value < math.inf:
                problems.append(f"{name} must be a non-negative number (got {value})")
        if self.count < 1:
            problems.append(f"count must be at least 1 (got {self.count})")
        if self.input_tokens < 1 or self.output_tokens < 1:
            problems.append("input_tokens and output_tokens must be at least 1")
        if self.mode not in ("offline", "server", "fixed-batch"):
            problems.append(f"mode must be offline, server or fixed-batch (got {self.mode!r})")
        if self.mode == "fixed-batch" and not self.batch_size:
            problems.append("mode fixed-batch needs batch_size")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"batch_size must be at least 1 (got {self.batch_size})")
        for name in ("tp", "pp", "ep"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1 (got {value})")
        for name in ("ttft_slo", "tpot_slo"):
            value = getattr(self, name)
            if value is not None and not value > 0:  # NaN too: it fails every comparison, so nothing would meet it
                problems.append(f"{name} must be positive (got {value})")
        if not 1.0 <= self.pue <= 3.0:
            problems.append(f"pue must be between 1 and 3 (got {self.pue})")
        if problems:
            raise FivelayerError("; ".join(problems))


@dataclass(frozen=True)
class InferencePrediction:
    """The chosen operating point and what it costs."""

    case: InferenceCase
    accelerator_id: str
    model_id: str
    throughput_tokens_per_s: float
    ttft_s: float
    tpot_s: float
    batch_size: int
    tp: int
    pp: int
    ep: int
    replicas: int
    gpu_power_w: float
    system_power_w: float
    energy_per_output_token_j: dict[str, float]
    bottleneck: str
    step_time_s: float
    step_breakdown_s: dict[str, float]
    memory_per_device_bytes: dict[str, float]
    flops_per_output_token: float
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accelerator": self.accelerator_id,
            "count": self.case.count,
            "model": self.model_id,
            "precision": self.case.precision,
            "mode": self.case.mode,
            "input_tokens": self.case.input_tokens,
            "output_tokens": self.case.output_tokens,
            "power_limit_w": self.case.power_limit,
            "throughput_tokens_per_s": self.throughput_tokens_per_s,
            "ttft_s": self.ttft_s,
            "tpot_s": self.tpot_s,
            "batch_size": self.batch_size,
            "parallelism": {"tp": self.tp, "pp": self.pp, "ep": self.ep, "replicas": self.replicas},
            "gpu_power_w": self.gpu_power_w,
            "system_power_w": self.system_power_w,
            "energy_per_output_token_j": self.energy_per_output_token_j,
            "bottleneck": self.bottleneck,
            "step_time_s": self.step_time_s,
            "step_breakdown_s": self.step_breakdown_s,
            "memory_per_device_bytes": self.memory_per_device_bytes,
            "flops_per_output_token": self.flops_per_output_token,
            "assumptions": self.assumptions,
        }


@dataclass(frozen=True)
class _Layouts:
    tp: np.ndarray
    pp: np.ndarray
    ep: np.ndarray


def _powers_of_two_upto(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def check_layout(work: ModelWork, tp: int | None, ep: int | None, count: int | None = None) -> None:
    """Refuse a given tensor-parallel degree that cannot split the model's attention heads, and expert
    parallelism for a dense model (serving engines refuse both; a number for them would be invented)."""
    if tp and not work.splits_heads(tp):
        limit = count or 64
        valid = [t for t in range(1, limit + 1) if work.splits_heads(t)]
        raise InfeasibleConfiguration(
            f"tp {tp} does not split {work.model_id}'s {work.num_heads} attention heads ({work.kv_heads} KV heads) "
            f"evenly, as serving engines require; use tp {', '.join(map(str, valid))}"
        )
    if ep and ep > 1 and not work.num_experts:
        raise InfeasibleConfiguration(
            f"ep {ep}: expert parallelism needs a mixture-of-experts model, and {work.model_id} is dense; leave ep out"
        )


def _layouts(case: InferenceCase, chip: ChipSpec, work: ModelWork) -> _Layouts:
    check_layout(work, case.tp, case.ep, case.count)
    tps = (
        [case.tp]
        if case.tp
        else [t for t in _powers_of_two_upto(min(case.count, max(chip.scale_up_domain, 1))) if work.splits_heads(t)]
    )
    pps = [case.pp] if case.pp else _powers_of_two_upto(min(case.count, 16))
    rows = []
    for tp in tps:
        for pp in pps:
            n = tp * pp
            if n > case.count:
                continue
            if case.ep:
                eps = [case.ep]
            elif work.num_experts:
                eps = sorted({1, n})
            else:
                eps = [1]
            for ep in eps:
                if ep > n or n % ep:
                    continue
                rows.append((tp, pp, ep))
    if not rows:
        given = " x ".join(f"{name} {value}" for name, value in (("tp", case.tp), ("pp", case.pp)) if value)
        need = (case.tp or 1) * (case.pp or 1)
        if need > case.count:
            raise InfeasibleConfiguration(
                f"no parallel layout fits: {given} needs at least {need} accelerators per replica; {case.count} given"
            )
        raise InfeasibleConfiguration(
            f"no parallel layout fits: ep {case.ep} must divide the accelerators of a replica (tp x pp)"
            + (f", here {given}" if given else f", at most {case.count}")
        )
    arr = np.array(rows, dtype=np.float64)
    return _Layouts(arr[:, 0], arr[:, 1], arr[:, 2])


def _system_for(catalog: CatalogSet, chip: Accelerator) -> System | None:
    for system in catalog.systems:
        if system.accelerator == chip.id:
            return system
    return None


def _fit_message(case: InferenceCase, chip: Accelerator, work: ModelWork, fmt: NumericFormat) -> str:
    usable = chip.memory_bytes * (1 - MEMORY_RESERVE_FRACTION)
    weights = work.weight_bytes(fmt)
    needed = int(np.ceil(weights / usable))
    hints = [f"use at least {needed} x {chip.id} (tensor/pipeline parallel)"]
    for smaller in ("fp8", "fp4", "int4"):
        alt = numeric_format(smaller)
        if alt.weight_bytes < fmt.weight_bytes and work.weight_bytes(alt) <= usable * case.count:
            hints.append(f"or a lower precision such as {smaller} ({work.weight_bytes(alt) / 1e9:,.0f} GB)")
            break
    return (
        f"{work.model_id} in {fmt.name} needs {weights / 1e9:,.0f} GB of weights, but {case.count} x {chip.id} "
        f"hold {usable * case.count / 1e9:,.0f} GB usable ({100 * (1 - MEMORY_RESERVE_FRACTION):.0f} % of "
        f"{chip.memory_bytes / 1e9:,.0f} GB each) with room for a KV cache; " + ", ".join(hints) + "."
    )


def predict_inference(
    case: InferenceCase,
    catalog: CatalogSet | None = None,
    efficiency: Efficiency | None = None,
) -> InferencePrediction:
    """Solve the operating point of ``case``. Raises :class:`InfeasibleConfiguration` if nothing fits."""
    cat = catalog or default_catalog()
    chip_record = cat.accelerators.get(case.accelerator)
    model = cat.language_model(case.model)
    fmt = numeric_format(case.precision)
    eff = efficiency if efficiency is not None else _calibrated(chip_record.family)
    chip = ChipSpec.of(chip_record).power_capped(case.power_limit)
    work = _work(model)

    layouts = _layouts(case, chip, work)
    n = layouts.tp * layouts.pp
    usable = chip.memory_bytes * (1 - MEMORY_RESERVE_FRACTION)
    mean_context = case.decode_context
    kv_per_seq = float(work.kv_bytes(mean_context, fmt))
    kv_room = usable * n - work.weight_bytes(fmt)
    max_batch = np.floor(np.maximum(kv_room, 0.0) / (kv_per_seq * work.kv_replication(layouts.tp)))
    if case.input_tokens + case.output_tokens > work.max_context_tokens:
        raise InfeasibleConfiguration(
            f"{work.model_id} has a context of {work.max_context_tokens:,} tokens; "
            f"{case.input_tokens:,} input + {case.output_tokens:,} output tokens do not fit"
        )
    ok = max_batch >= 1
    if not ok.any():
        raise InfeasibleConfiguration(_fit_message(case, chip_record, work, fmt))
    if case.mode != "offline" and case.pp is None:
        # Latency-bound serving uses pipeline stages only to fit the model: the fewest stages per tp and ep.
        for key in {(t, e) for t, e in zip(layouts.tp, layouts.ep, strict=True)}:
            same = ok & (layouts.tp == key[0]) & (layouts.ep == key[1])
            if same.any():
                ok &= ~same | (layouts.pp == layouts.pp[same].min())
    layouts = _Layouts(layouts.tp[ok], layouts.pp[ok], layouts.ep[ok])
    max_batch = np.minimum(max_batch[ok], MAX_BATCH if case.mode == "fixed-batch" else case.batch_size or MAX_BATCH)
    n = layouts.tp * layouts.pp
    replicas = np.floor(case.count / n)

    if case.mode == "fixed-batch":
        assert case.batch_size is not None
        fits = max_batch >= case.batch_size
        if not fits.any():
            raise InfeasibleConfiguration(
                f"a batch of {case.batch_size} sequences of {mean_context:,.0f} tokens does not fit on "
                f"{case.count} x {chip_record.id}: at most {int(max_batch.max())} fit per replica"
            )
        grid = np.array([float(case.batch_size)])
    else:
        grid = np.unique(np.round(np.geomspace(1, MAX_BATCH, 96)))

    # Every (layout, batch) candidate at once.
    batch = grid[None, :] * np.ones_like(max_batch)[:, None]
    valid = batch <= max_batch[:, None]
    if case.mode == "fixed-batch":
        pass
    else:
        # Always include each layout's own largest batch.
        batch = np.concatenate([batch, max_batch[:, None]], axis=1)
        valid = np.concatenate([valid, np.ones_like(max_batch, dtype=bool)[:, None]], axis=1)
    ratio = case.input_tokens / case.output_tokens
    tp = layouts.tp[:, None]
    pp = layouts.pp[:, None]
    ep = layouts.ep[:, None]
    cost = steady_state_cost(
        chip, work, fmt, eff, batch=batch, input_tokens=case.input_tokens, output_tokens=case.output_tokens,
        tp=tp, pp=pp, ep=ep, input_cv=case.input_cv, output_cv=case.output_cv,
    )  # fmt: skip
    throughput = replicas[:, None] * batch / cost.time_s
    tpot = cost.time_s
    # TTFT: wait for the running step, then the steps that prefill the new prompt in chunks of the token budget
    # (with any other prompts arriving meanwhile).
    chunks = math.ceil(case.input_tokens / PREFILL_CHUNK_TOKENS)
    chunk = min(case.input_tokens, PREFILL_CHUNK_TOKENS)
    alone = step_cost(
        chip, work, fmt, eff, decode_seqs=batch, decode_context=mean_context,
        prefill_tokens=np.minimum(np.maximum(1.0, batch * ratio / case.input_tokens) * chunk, PREFILL_CHUNK_TOKENS),
        prefill_prompt=case.input_tokens, tp=tp, pp=pp, ep=ep,
    )  # fmt: skip
    ttft = cost.time_s + chunks * alone.time_s

    score = np.where(valid, throughput, -np.inf)
    tail_note = None
    if case.mode == "server":
        if case.tpot_slo is not None:
            score = np.where(tpot <= case.tpot_slo, score, -np.inf)
        if case.ttft_slo is not None:
            score = np.where(ttft <= case.ttft_slo, score, -np.inf)
            tail = tail_prompt(case, work.max_context_tokens)
            if tail > case.input_tokens and np.isfinite(score).any():
                # The target is a p99: prefer the layouts whose TTFT for the 99th-percentile prompt meets it.
                others = np.maximum(batch * ratio / case.input_tokens - 1.0, 0.0) * chunk
                tail_step = step_cost(
                    chip, work, fmt, eff, decode_seqs=batch, decode_context=mean_context,
                    prefill_tokens=np.minimum(min(tail, PREFILL_CHUNK_TOKENS) + others, PREFILL_CHUNK_TOKENS),
                    prefill_prompt=tail, tp=tp, pp=pp, ep=ep,
                )  # fmt: skip
                tail_ttft = cost.time_s + math.ceil(tail / PREFILL_CHUNK_TOKENS) * tail_step.time_s
                met = np.where(tail_ttft <= case.ttft_slo, score, -np.inf)
                what = f"the 99th-percentile prompt ({tail:,.0f} tokens, lognormal with cv {case.input_cv:.2g})"
                if np.isfinite(met).any():
                    score = met
                    k = np.unravel_index(int(np.argmax(score)), score.shape)
                    tail_note = f"TTFT target also met for {what}: {float(tail_ttft[k]):.3g} s <= {case.ttft_slo:g} s"
                else:
                    fastest = float(np.min(np.where(np.isfinite(score), tail_ttft, np.inf)))
                    tail_note = (
                        f"no operating point meets the TTFT target for {what}: the fastest reach "
                        f"{fastest:.3g} s > {case.ttft_slo:g} s; sized on the mean prompt, so the p99 TTFT "
                        "exceeds the target (fivelayer simulate measures it)"
                    )
        if not np.isfinite(score).any():
            best_tpot = float(np.min(np.where(valid, tpot, np.inf)))
            best_ttft = float(np.min(np.where(valid, ttft, np.inf)))
            raise InfeasibleConfiguration(
                f"no operating point of {case.count} x {chip_record.id} serving {work.model_id} meets the targets "
                f"(TTFT <= {case.ttft_slo} s, TPOT <= {case.tpot_slo} s); the fastest reach TTFT {best_ttft:.3g} s "
                f"and TPOT {best_tpot:.3g} s. Use more or faster accelerators, or relax the targets."
            )
    flat = np.unravel_index(int(np.argmax(score)), score.shape)
    i, j = int(flat[0]), int(flat[1])
    prediction = _prediction(case, chip_record, chip, work, fmt, eff, cat, cost, alone, layouts, batch, replicas, i, j)
    if tail_note is not None:
        prediction.assumptions.append(tail_note)
    return prediction


def tail_prompt(case: InferenceCase, max_context_tokens: int, z: float = P99_Z) -> float:
    """The prompt length that a fraction ``Phi(z)`` of prompts do not exceed (the 99th percentile by default):
    lognormal with the case's mean and ``input_cv`` (as the serving simulator draws them), no longer than the
    model's context less the mean output. The mean prompt where ``input_cv`` is 0."""
    if case.input_cv <= 0:
        return float(case.input_tokens)
    sigma2 = math.log1p(case.input_cv**2)
    quantile = case.input_tokens * math.exp(z * math.sqrt(sigma2) - sigma2 / 2.0)
    return max(float(case.input_tokens), min(quantile, float(max_context_tokens - case.output_tokens)))


def _prediction(
    case: InferenceCase,
    chip_record: Accelerator,
    chip: ChipSpec,
    work: ModelWork,
    fmt: NumericFormat,
    eff: Efficiency,
    cat: CatalogSet,
    cost: StepCost,
    alone: StepCost,
    layouts: _Layouts,
    batch: np.ndarray,
    replicas: np.ndarray,
    i: int,
    j: int,
) -> InferencePrediction:
    b = float(batch[i, j])
    t = float(cost.time_s[i, j])
    reps = int(replicas[i])
    n = int(layouts.tp[i] * layouts.pp[i])
    throughput = reps * b / t
    gpu_power = float(cost.device_power_w[i, j])
    active = reps * n
    idle_devices = case.count - active
    total_gpu_power = gpu_power * active + chip.idle_power_w * idle_devices
    system = _system_for(cat, chip_record)
    if system is not None:
        host_per_device = system.host_power_w / system.accelerator_count
        host_basis = f"host power from system {system.id}"
    else:
        host_per_device = HOST_POWER_FRACTION_OF_TDP * chip.tdp_w
        host_basis = f"no catalog system for {chip.accelerator_id}: host power {HOST_POWER_FRACTION_OF_TDP:.0%} of TDP"
    system_power = total_gpu_power + host_per_device * HOST_LOAD_FRACTION * case.count
    energy = {
        "gpu": total_gpu_power / throughput,
        "system": system_power / throughput,
        "facility": system_power * case.pue / throughput,
    }
    mean_context = case.decode_context
    memory = {
        "weights": work.weight_bytes(fmt) / n,
        "kv_cache": b * float(work.kv_bytes(mean_context, fmt) * work.kv_replication(layouts.tp[i])) / n,
        "reserve": chip.memory_bytes * MEMORY_RESERVE_FRACTION,
        "capacity": chip.memory_bytes,
    }
    parts = {
        "compute": float(cost.compute_s[i, j]),
        "memory": float(cost.memory_s[i, j]),
        "communication": float(cost.communication_s[i, j]),
        "overhead": float(cost.overhead_s[i, j]),
    }
    assumptions = [
        f"steady-state continuous batching: {b:.0f} sequences per replica at mean context {mean_context:,.0f} "
        f"tokens; {min(1.0, b / case.output_tokens):.0%} of steps also prefill whole prompts (not overlapped "
        "with memory-bound decode steps)",
        (
            f"length spread: prompts cv {case.input_cv:g} (attention as for {case.attention_prompt:,.0f}-token "
            f"prompts), outputs cv {case.output_cv:g} (mean decode context {mean_context:,.0f})"
            if case.input_cv or case.output_cv
            else "every request has the mean prompt and output length"
        ),
        f"{fmt.name}: weights {fmt.weight_bytes:.3g} B/param, KV cache {fmt.kv_bytes:g} B/element, "
        f"linear layers at the {chip_record.runs_at(fmt.compute)} tensor rate, attention at the "
        f"{chip_record.runs_at(fmt.attention_compute)} rate{missing_rates(chip_record, fmt)}",
        f"{MEMORY_RESERVE_FRACTION:.0%} of memory reserved for activations and runtime",
        f"TTFT estimate: one running step plus the steps that prefill the prompt in chunks of "
        f"{PREFILL_CHUNK_TOKENS:,} tokens; no queueing",
        f"gpu scope: accelerators ({idle_devices} idle at {chip.idle_power_w:.0f} W)"
        if idle_devices
        else "gpu scope: accelerators only",
        f"system scope: accelerators plus host at {HOST_LOAD_FRACTION:.0%} of its maximum ({host_basis})",
        f"facility scope: system x PUE {case.pue:g}",
        f"efficiency: {eff.compute:.2f} of "
        + (
            f"the sustained {chip_record.runs_at(fmt.compute)} rate "
            f"({chip_record.sustained(fmt.compute) / 1e12:,.0f} TFLOP/s, "
            f"vendor-measured; datasheet peak {chip_record.peak(fmt.compute) / 1e12:,.0f})"
            if chip_record.sustained_flops
            else "peak FLOP/s"
        )
        + f", {eff.memory:.2f} of peak bandwidth, {eff.overhead_s * 1e3:.1f} ms per step"
        + (f" + {eff.per_sequence_s * 1e6:g} us per running sequence" if eff.per_sequence_s else "")
        + (
            f", {eff.serial:g} of the shorter of compute and memory time paid on top of the longer (0: the roofline)"
            if eff.serial
            else ""
        )
        + f" ({efficiency_origin(eff, chip_record.family)})",
    ]
    if case.power_limit is not None:
        assumptions.append(
            f"power limit {case.power_limit:g} W per accelerator (TDP {chip_record.tdp_w:g} W): matrix rates x "
            f"{chip.rate(fmt.compute) / chip_record.sustained(fmt.compute):.2f}, power linear in the clock "
            "(the largest loss such a limit can cause)"
            if case.power_limit < chip_record.tdp_w
            else f"power limit {case.power_limit:g} W at or above the TDP ({chip_record.tdp_w:g} W): no effect"
        )
    return InferencePrediction(
        case=case,
        accelerator_id=chip_record.id,
        model_id=work.model_id,
        throughput_tokens_per_s=throughput,
        ttft_s=float(cost.time_s[i, j] + math.ceil(case.input_tokens / PREFILL_CHUNK_TOKENS) * alone.time_s[i, j]),
        tpot_s=t,
        batch_size=int(b),
        tp=int(layouts.tp[i]),
        pp=int(layouts.pp[i]),
        ep=int(layouts.ep[i]),
        replicas=reps,
        gpu_power_w=gpu_power,
        system_power_w=system_power,
        energy_per_output_token_j=energy,
        bottleneck=BOTTLENECKS[int(cost.bottleneck[i, j])],
        step_time_s=t,
        step_breakdown_s=parts,
        memory_per_device_bytes=memory,
        flops_per_output_token=float(cost.flops[i, j]) / b,
        assumptions=assumptions,
    )


_WORK_CACHE: dict[int, tuple[LanguageModel, ModelWork]] = {}


def _work(model: LanguageModel) -> ModelWork:
    """``ModelWork.of(model)``, cached per record object (the record is kept, so its id is never reused)."""
    hit = _WORK_CACHE.get(id(model))
    if hit is not None and hit[0] is model:
        return hit[1]
    work = ModelWork.of(model)
    if len(_WORK_CACHE) > 1024:
        _WORK_CACHE.clear()
    _WORK_CACHE[id(model)] = (model, work)
    return work


def missing_rates(chip: Accelerator, fmt: NumericFormat) -> str:
    """`` (h100-sxm lists no fp4 rate)`` where the format's tensor rates run at a wider one, else empty."""
    missing = sorted({p for p in (fmt.compute, fmt.attention_compute) if chip.runs_at(p) != p})
    return f" ({chip.id} lists no {' or '.join(missing)} rate)" if missing else ""


def efficiency_origin(eff: Efficiency, family: str) -> str:
    """Where ``eff`` comes from: the family's calibration (or the fit it falls back to, :func:`fit_origin`),
    naming any field given instead."""
    from dataclasses import fields

    from fivelayer.engines.calibration import fit_in_progress, fit_origin

    if fit_in_progress():  # a candidate of the fit itself: asking for the fit would start it again
        return "a candidate of the calibration fit"
    calibrated = _calibrated(family)
    given = [f.name for f in fields(Efficiency) if getattr(eff, f.name) != getattr(calibrated, f.name)]
    return fit_origin(family) + (f"; {', '.join(given)} given instead" if given else "")


def _calibrated(family: str) -> Efficiency:
    from fivelayer.engines.calibration import fitted_efficiency

    return fitted_efficiency(family, None)


def solve_offline_many(
    chip: ChipSpec,
    work: ModelWork,
    fmt: NumericFormat,
    eff: Efficiency,
    counts: np.ndarray,
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
    chunk: int = 4096,
) -> dict[str, np.ndarray]:
    """Offline operating points of many cases of one chip, model and precision, vectorised.

    Offline throughput ``B / t(B)`` never falls as the batch grows (a step's time is affine or concave in
    the batch, with a positive intercept), so each layout's best batch is the largest that fits; the
    search is then over layouts only. Returns arrays per case: ``throughput_tokens_per_s`` (0 where
    nothing fits), ``batch_size``, ``tp``, ``pp``, ``ep``, ``tpot_s``, ``gpu_power_w``.
    """
    counts = np.asarray(counts, dtype=np.float64)
    inputs = np.asarray(input_tokens, dtype=np.float64)
    outputs = np.asarray(output_tokens, dtype=np.float64)
    tps = [t for t in _powers_of_two_upto(max(chip.scale_up_domain, 1)) if work.splits_heads(t)]
    rows = [(t, p, e) for t in tps for p in _powers_of_two_upto(16) for e in ({1, t * p} if work.num_experts else {1})]
    lay = np.array(rows, dtype=np.float64)
    tp, pp, ep = lay[:, 0][None, :], lay[:, 1][None, :], lay[:, 2][None, :]
    n = tp * pp
    usable = chip.memory_bytes * (1 - MEMORY_RESERVE_FRACTION)
    weights = work.weight_bytes(fmt)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("throughput_tokens_per_s", "batch_size", "tp", "pp", "ep",
                                                        "tpot_s", "gpu_power_w")}  # fmt: skip
    for start in range(0, counts.size, chunk):
        c = counts[start : start + chunk, None]
        i = inputs[start : start + chunk, None]
        o = outputs[start : start + chunk, None]
        ctx = i + o / 2.0
        kv_seq = work.kv_bytes(ctx, fmt) * work.kv_replication(tp)
        max_batch = np.minimum(np.floor(np.maximum(usable * n - weights, 0.0) / kv_seq), MAX_BATCH)
        ok = (n <= c) & (max_batch >= 1) & (i + o <= work.max_context_tokens)
        batch = np.maximum(max_batch, 1.0)
        cost = steady_state_cost(chip, work, fmt, eff, batch=batch, input_tokens=i, output_tokens=o,
                                 tp=tp, pp=pp, ep=ep)  # fmt: skip
        throughput = np.where(ok, np.floor(c / n) * batch / cost.time_s, 0.0)
        best = np.argmax(throughput, axis=1)
        pick = np.arange(best.size)
        out["throughput_tokens_per_s"].append(throughput[pick, best])
        out["batch_size"].append(np.broadcast_to(batch, throughput.shape)[pick, best])
        out["tp"].append(np.broadcast_to(tp, throughput.shape)[pick, best])
        out["pp"].append(np.broadcast_to(pp, throughput.shape)[pick, best])
        out["ep"].append(np.broadcast_to(ep, throughput.shape)[pick, best])
        out["tpot_s"].append(np.broadcast_to(cost.time_s, throughput.shape)[pick, best])
        out["gpu_power_w"].append(np.broadcast_to(cost.device_power_w, throughput.shape)[pick, best])
    return {k: np.concatenate(v) for k, v in out.items()}
