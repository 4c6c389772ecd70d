"""Parallel layouts of a training run and the time of one optimizer step on each, all evaluated at once.

A layout splits ``count`` accelerators into tensor (``tp``), pipeline (``pp``), context (``cp``) and data
(``dp``) parallel groups, ``count >= tp pp cp dp``; expert parallelism (``ep``) shards the routed experts
over ``ep`` of the data-parallel ranks. ZeRO stage (1 or 3) and activation recomputation (none, selective,
full) are searched too. Every candidate is one row of NumPy arrays; a step of ``B`` tokens costs::

    compute = (linear FLOPs / peak(precision) + attention FLOPs / peak(bf16)) / (devices x eta)
    bubble  = compute x (pp - 1) / (v m)          m micro-batches per step, v interleaved stages
    tp      = 4 collectives per layer (6 with full recomputation), ring 2(t-1)/t, not overlapped
    dp      = gradient all-reduce (x1.5 with ZeRO-3), hidden behind the backward pass up to ``dp_overlap``
    ep      = dispatch + combine, forward and backward, ``ep_exposed`` of it not hidden
    pp      = activations handed between stages
    step    = compute + bubble + tp + pp + exposed dp + exposed ep

Two pipeline schedules (:data:`SCHEDULES`): ``1f1b`` (Megatron-LM's interleaved 1F1B, above) and ``dualpipe``
(DeepSeek-V3's bidirectional schedule, deepseek-ai/DualPipe README, retrieved 2026-11-28): bubble
``(pp/2 - 1)(F&B + B - 3W)`` instead of ``(pp - 1)(F + B)``, the expert all-to-all and pipeline sends overlapped
with computation (exposed only where they outlast it), two copies of the weights and ``pp + 1`` micro-batches
of activations on a device. With ``F = c/3``, ``B = 2c/3``, ``W = B/2`` (``c`` one micro-batch's forward and
backward on a stage; the weight-gradient half of the backward is an assumption) and ``F&B = F + B`` (the
overlapped pair still computes one after the other), ``F&B + B - 3W = 2c/3``.

Links: the scale-up link (one direction) inside a scale-up domain, the scale-out NIC outside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fivelayer.chips.performance import ChipSpec
from fivelayer.models.training import ADAM_BYTES, TrainingWork

__all__ = [
    "MEMORY_RESERVE_FRACTION",
    "SCHEDULES",
    "LayoutCost",
    "Layouts",
    "TrainingEfficiency",
    "enumerate_layouts",
    "evaluate",
    "splits",
]

FloatArray = NDArray[np.float64]

#: Fraction of accelerator memory not available to model states and activations (CUDA context, NCCL buffers,
#: allocator fragmentation). Assumption: 10 %.
MEMORY_RESERVE_FRACTION = 0.10
#: Largest number of interleaved virtual pipeline stages considered. Assumption: Megatron-LM's interleaved 1F1B
#: schedule is run with a few model chunks per stage; 4 is taken.
MAX_VIRTUAL_STAGES = 4
#: Pipeline schedules the planner knows (see the module docstring).
SCHEDULES = ("1f1b", "dualpipe")


@dataclass(frozen=True)
class TrainingEfficiency:
    """Achievable efficiency of training kernels and how much communication hides behind computation.

    ``compute`` is calibrated per accelerator family on published runs (:mod:`.calibration`); the others
    are assumptions, named here so a user can override them.
    """

    #: Achievable fraction of the datasheet peak of matrix products in training (calibrated).
    compute: float = 0.45
    #: fp8 GEMMs reach this fraction of the efficiency bf16 GEMMs reach (quantisation and scaling kernels).
    #: Assumption: 0.65, i.e. fp8 training about 1.3x faster than bf16 on a chip with a 2x fp8 peak.
    fp8_relative: float = 0.65
    #: Fraction of the backward pass behind which the data-parallel gradient reduction hides. Assumption.
    dp_overlap: float = 0.8
    #: Fraction of the expert-parallel all-to-all left exposed. Assumption: half is overlapped.
    ep_exposed: float = 0.5
    #: Power drawn while a step communicates or waits, as a fraction of the dynamic range. Assumption.
    comm_power_weight: float = 0.5


@dataclass(frozen=True)
class Layouts:
    """Candidate layouts, one per row (float arrays of equal length)."""

    tp: FloatArray
    pp: FloatArray
    cp: FloatArray
    dp: FloatArray
    ep: FloatArray
    zero: FloatArray
    recompute: FloatArray

    def __len__(self) -> int:
        return int(self.tp.size)

    def take(self, mask: NDArray[np.bool_]) -> Layouts:
        return Layouts(*(getattr(self, f)[mask] for f in ("tp", "pp", "cp", "dp", "ep", "zero", "recompute")))


@dataclass(frozen=True)
class LayoutCost:
    """Per-layout arrays: seconds per step by part, memory per device, and whether it fits."""

    step_s: FloatArray
    parts_s: dict[str, FloatArray] = field(default_factory=dict)
    memory_bytes: dict[str, FloatArray] = field(default_factory=dict)
    fits: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    valid: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    busy_fraction: FloatArray = field(default_factory=lambda: np.zeros(0))


def splits(work: TrainingWork, tp: int) -> bool:
    """Whether ``tp`` devices share the model's attention heads evenly (Megatron-LM and every tensor-parallel
    trainer split whole heads)."""
    return not work.num_heads or work.num_heads % tp == 0


def _pow2(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def enumerate_layouts(
    count: int,
    chip: ChipSpec,
    work: TrainingWork,
    seq_len: int,
    tp: int | None = None,
    pp: int | None = None,
    ep: int | None = None,
    cp: int | None = None,
) -> Layouts:
    """Every (tp, pp, cp, ep, ZeRO, recompute) candidate with ``dp = count // (tp pp cp)`` (powers of two)."""
    # Tensor parallelism splits the attention heads: only degrees that divide them evenly.
    tps = [tp] if tp else [t for t in _pow2(min(count, chip.scale_up_domain, 64, work.num_heads)) if splits(work, t)]
    pps = [pp] if pp else [p for p in _pow2(min(count, 64)) if p <= work.num_layers]
    cps = [cp] if cp else _pow2(min(count, max(1, seq_len // 4096), 32))
    eps = [ep] if ep else (_pow2(min(count, work.num_experts)) if work.num_experts else [1])
    grid = np.array(np.meshgrid(tps, pps, cps, eps, [1, 3], [0, 1, 2], indexing="ij"), dtype=np.float64)
    g = grid.reshape(6, -1)
    t, p, c, e, z, r = g
    dp = np.floor(count / (t * p * c))
    ok = (dp >= 1) & (np.mod(dp, e) == 0)
    return Layouts(t[ok], p[ok], c[ok], dp[ok], e[ok], z[ok], r[ok])


def evaluate(
    chip: ChipSpec,
    work: TrainingWork,
    layouts: Layouts,
    seq_len: int,
    batch_tokens: float,
    precision: str,
    eff: TrainingEfficiency,
    schedule: str = "1f1b",
) -> LayoutCost:
    """Step time and memory of every layout (vectorised), under pipeline ``schedule`` (one of :data:`SCHEDULES`)."""
    t, p, c, d, e, z, r = (layouts.tp, layouts.pp, layouts.cp, layouts.dp, layouts.ep, layouts.zero, layouts.recompute)
    s = float(seq_len)
    h = float(work.hidden_size)
    devices = t * p * c * d
    bf16 = chip.rate("bf16")
    linear_peak = chip.rate("fp8") * eff.fp8_relative if precision == "fp8" else chip.rate(_compute(precision))
    # FLOPs per step, split into matrix products of weights (at the training precision) and attention (bf16).
    lin_tok = 6.0 * work.active_matmul_params + np.where(r == 2, 2.0 * work.active_matmul_params, 0.0)
    att_fwd = work.attn_flops_per_ctx * s / 2.0
    att_tok = 3.0 * att_fwd + np.where(r >= 1, att_fwd, 0.0)
    compute_s = batch_tokens * (lin_tok / linear_peak + att_tok / bf16) / (devices * eff.compute)
    micro = batch_tokens / (d * s)  # micro-batches (one sequence each) per pipeline per step
    dualpipe = schedule == "dualpipe"
    if dualpipe:
        # DualPipe: (pp/2 - 1)(F&B + B - 3W) = (pp/2 - 1) x 2/3 of one micro-batch's compute (module docstring).
        bubble_s = compute_s * np.maximum(p / 2.0 - 1.0, 0.0) * (2.0 / 3.0) / np.maximum(micro, 1.0)
    else:
        # Pipeline bubble of an interleaved 1F1B schedule.
        v = np.clip(np.floor(work.num_layers / p), 1, MAX_VIRTUAL_STAGES)
        bubble_s = compute_s * (p - 1) / (v * np.maximum(micro, 1.0))

    def link(group: FloatArray) -> FloatArray:
        return np.where(group <= chip.scale_up_domain, chip.link_bytes_per_s, chip.scale_out_bytes_per_s)

    tokens_dev = batch_tokens / (d * c)  # tokens one model replica's device sees per step
    act = 2.0  # bytes per activation element (bf16)
    n_coll = 4.0 + np.where(r == 2, 2.0, 0.0)
    tp_bytes = (work.num_layers / p) * tokens_dev * h * act * n_coll * 2.0 * (t - 1) / t
    tp_s = tp_bytes / link(t)
    pp_s = np.where(p > 1, 2.0 * tokens_dev * h * act / t / link(t * p * 2), 0.0)
    dense = work.params_total - work.expert_params_total
    grads = (dense / (t * p) + work.expert_params_total / (e * t * p)) * 2.0
    dp_bytes = grads * 2.0 * (d - 1) / d * np.where(z >= 3, 1.5, 1.0)
    dp_s = dp_bytes / link(devices)
    dp_exposed = np.maximum(0.0, dp_s - eff.dp_overlap * compute_s * 2.0 / 3.0)
    if work.num_experts:
        ep_bytes = (work.moe_layers / p) * tokens_dev / t * work.experts_per_token * h * act * 4.0 * (e - 1) / e
        ep_full = ep_bytes / link(e * t)
    else:
        ep_full = np.zeros_like(compute_s)
    if dualpipe:
        # All-to-all and pipeline sends run under the other direction's computation; only an excess is exposed.
        hidden = np.maximum(0.0, ep_full + pp_s - compute_s)
        ep_s = hidden * np.where(ep_full + pp_s > 0, ep_full / np.maximum(ep_full + pp_s, 1e-300), 0.0)
        pp_s = hidden - ep_s
    else:
        ep_s = ep_full * eff.ep_exposed
    step = compute_s + bubble_s + tp_s + pp_s + dp_exposed + ep_s
    states = work.state_bytes_per_device(t, p, d, e, z)
    acts = work.activation_bytes_per_device(s, s, t, c, r)
    if dualpipe:
        # Two copies of the weights; pp + 1 micro-batches in flight on the first stage instead of pp.
        dense_w = (work.params_total - work.expert_params_total) / (t * p)
        states = states + (dense_w + work.expert_params_total / (e * t * p)) * ADAM_BYTES.weights
        acts = acts * (p + 1.0) / p
    usable = chip.memory_bytes * (1 - MEMORY_RESERVE_FRACTION)
    fits = states + acts <= usable
    valid = micro >= 1.0
    return LayoutCost(
        step_s=step,
        parts_s={
            "compute": compute_s,
            "pipeline_bubble": bubble_s,
            "tensor_parallel": tp_s,
            "pipeline_parallel": pp_s,
            "data_parallel_exposed": dp_exposed,
            "expert_parallel_exposed": ep_s,
        },
        memory_bytes={"model_states": states, "activations": acts},
        fits=fits,
        valid=valid,
        busy_fraction=compute_s / step,
    )


def _compute(precision: str) -> str:
    return {"fp16": "bf16", "tf32": "fp32"}.get(precision, precision)
