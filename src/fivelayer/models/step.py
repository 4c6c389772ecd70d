"""The step-cost model: time, FLOPs, bytes, communication and power of one engine step of one replica.

One *step* advances every running sequence of a replica by one token (decode) and processes a chunk of
prompt tokens (prefill), as continuous-batching engines (vLLM, SGLang, TensorRT-LLM) run. The analytic
operating points and the serving simulator both take step times from :func:`step_cost`, so the two can
never disagree silently.

Model of a step on a replica of ``tp x pp`` devices (see docs/methodology/inference.md)::

    flops   = T * 2 * active_params + B * attn(c) + P * attn(L/2)          T = B + P tokens
    bytes   = weights_read(T) * pp_reads + B * kv(c) + P * kv_per_token
    compute = (linear / rate + attention / attention_rate) / (n * eta_c)   (attention at the KV cache's rate;
              rates sustained under load where the catalog lists them, else the datasheet peak)
    memory  = bytes / (n * eta_m * bandwidth)
    comm    = TP all-reduces (2 per layer) + EP all-to-all (2 per MoE layer) over the scale-up link
    time    = max(compute, memory) + serial x min(compute, memory) + comm + overhead + per_sequence x B

Every argument may be a NumPy array; shapes broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fivelayer.chips.performance import ChipSpec, device_power_w
from fivelayer.models.work import ModelWork, NumericFormat

__all__ = ["BOTTLENECKS", "Efficiency", "StepCost", "steady_state_cost", "step_cost"]

FloatArray = NDArray[np.float64]
BOTTLENECKS = ("compute", "memory", "communication", "overhead")

#: Latency of one small all-reduce or all-to-all over NVLink-class links. Assumption: nccl-tests report
#: 5-15 us for small messages on 8-GPU NVLink systems; 10 us is taken for every scale-up fabric.
COLLECTIVE_LATENCY_S = 10e-6


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of peak and the fixed cost of a step, fitted to measurements per chip family.

    ``compute`` and ``memory`` scale the datasheet FLOP/s and bandwidth; ``overhead_s`` is the per-step
    cost of scheduling and kernel launches and ``per_sequence_s`` its part that grows with the batch;
    ``power_memory_weight`` sets the power drawn while memory-bound relative to compute-bound
    (see :func:`fivelayer.chips.device_power_w`).
    """

    compute: float = 0.6
    memory: float = 0.8
    overhead_s: float = 0.002
    #: Cost per running sequence per step (scheduling, sampling, paged-KV bookkeeping), seconds.
    per_sequence_s: float = 0.0
    power_memory_weight: float = 0.6
    #: Fraction of the shorter of compute and memory time that the longer does not hide.
    serial: float = 0.0


@dataclass(frozen=True)
class StepCost:
    """Per-replica cost of one step. Arrays of the broadcast shape of the inputs."""

    time_s: FloatArray
    compute_s: FloatArray
    memory_s: FloatArray
    communication_s: FloatArray
    overhead_s: FloatArray
    flops: FloatArray
    bytes_moved: FloatArray
    device_power_w: FloatArray
    devices: FloatArray

    @property
    def bottleneck(self) -> NDArray[np.int64]:
        """Index into :data:`BOTTLENECKS` of the largest time component."""
        parts = np.stack(np.broadcast_arrays(self.compute_s, self.memory_s, self.communication_s, self.overhead_s))
        index: NDArray[np.int64] = np.argmax(parts, axis=0)
        return index

    @property
    def energy_j(self) -> FloatArray:
        """Accelerator energy of the step over the whole replica: power x time x devices."""
        return self.device_power_w * self.time_s * self.devices


def step_cost(
    chip: ChipSpec,
    work: ModelWork,
    fmt: NumericFormat,
    eff: Efficiency,
    *,
    decode_seqs: ArrayLike,
    decode_context: ArrayLike,
    prefill_tokens: ArrayLike = 0.0,
    prefill_prompt: ArrayLike = 0.0,
    tp: ArrayLike = 1,
    pp: ArrayLike = 1,
    ep: ArrayLike = 1,
) -> StepCost:
    """Cost of one step of one replica running ``decode_seqs`` sequences at mean context ``decode_context``
    plus ``prefill_tokens`` prompt tokens from prompts of ``prefill_prompt`` tokens."""
    b = np.asarray(decode_seqs, dtype=np.float64)
    c = np.asarray(decode_context, dtype=np.float64)
    p = np.asarray(prefill_tokens, dtype=np.float64)
    lp = np.asarray(prefill_prompt, dtype=np.float64)
    tp_ = np.asarray(tp, dtype=np.float64)
    pp_ = np.asarray(pp, dtype=np.float64)
    ep_ = np.asarray(ep, dtype=np.float64)
    n = tp_ * pp_
    tokens = b + p

    linear_flops = tokens * work.linear_flops_per_token()
    attention_flops = b * work.attention_flops_per_token(c) + p * work.prefill_attention_flops_per_token(lp / 2.0)
    flops = linear_flops + attention_flops
    # With pp stages fed by pp micro-batches, each stage streams its weights once per micro-batch.
    weights = work.weight_bytes_read(tokens / pp_, fmt) * pp_
    kv = (b * work.kv_bytes(c, fmt) + p * work.kv_bytes_per_token(fmt)) * work.kv_replication(tp_)
    activations = 2.0 * tokens * work.hidden_size * work.num_layers * fmt.activation_bytes
    bytes_moved = weights + kv + activations

    # Linear layers at the format's tensor rate; attention at the rate of its operands (the KV cache's).
    # Rates sustained under full matrix load (the datasheet peak where the catalog lists no measurement).
    peak = chip.rate(fmt.compute)
    attention_peak = chip.sustained_flops.get(fmt.attention_compute, peak)
    compute_s = (linear_flops / peak + attention_flops / attention_peak) / (n * eff.compute)
    memory_s = bytes_moved / (n * eff.memory * chip.memory_bandwidth_bytes_per_s)

    # Tensor parallelism: two all-reduces of the activations per layer (ring: 2(t-1)/t of the data each way).
    in_domain = n <= chip.scale_up_domain
    link = np.where(in_domain, chip.link_bytes_per_s, chip.scale_out_bytes_per_s)
    act = tokens * work.hidden_size * max(fmt.activation_bytes, 2.0)
    tp_bytes = 2.0 * work.num_layers / pp_ * act * 2.0 * (tp_ - 1.0) / tp_
    tp_s = np.where(tp_ > 1, tp_bytes / link + 2.0 * work.num_layers * COLLECTIVE_LATENCY_S, 0.0)
    # Expert parallelism: dispatch and combine of each token's k expert inputs per MoE layer.
    ep_bytes = 2.0 * work.moe_layers / pp_ * act * work.experts_per_token * (ep_ - 1.0) / np.maximum(ep_, 1.0) / tp_
    ep_s = np.where(ep_ > 1, ep_bytes / link + 2.0 * work.moe_layers * COLLECTIVE_LATENCY_S, 0.0)
    # Pipeline: activations handed between stages.
    pp_s = np.where(pp_ > 1, (pp_ - 1.0) * act / link, 0.0)
    comm_s = tp_s + ep_s + pp_s

    overhead_s = eff.overhead_s + eff.per_sequence_s * b + np.zeros_like(compute_s)
    time_s = np.maximum(compute_s, memory_s) + eff.serial * np.minimum(compute_s, memory_s) + comm_s + overhead_s

    # Power follows how busy the chip is, not how close to the datasheet peak its kernels run: a kernel at
    # 40 % of peak FLOP/s still keeps the tensor cores and clocks at full power.
    compute_busy = compute_s / time_s
    memory_busy = memory_s / time_s
    power = device_power_w(chip.idle_power_w, chip.tdp_w, compute_busy, memory_busy, eff.power_memory_weight)
    return StepCost(
        time_s=time_s,
        compute_s=compute_s,
        memory_s=memory_s,
        communication_s=comm_s,
        overhead_s=overhead_s,
        flops=flops,
        bytes_moved=bytes_moved,
        device_power_w=power,
        devices=np.broadcast_to(n, time_s.shape).astype(np.float64),
    )


def steady_state_cost(
    chip: ChipSpec,
    work: ModelWork,
    fmt: NumericFormat,
    eff: Efficiency,
    *,
    batch: ArrayLike,
    input_tokens: ArrayLike,
    output_tokens: ArrayLike,
    tp: ArrayLike = 1,
    pp: ArrayLike = 1,
    ep: ArrayLike = 1,
    input_cv: ArrayLike = 0.0,
    output_cv: ArrayLike = 0.0,
) -> StepCost:
    """The mean step of continuous batching in steady state, ``batch`` sequences per replica.

    Each sequence lives ``output`` steps, so ``batch / output`` new prompts arrive per step. An engine
    prefills a prompt in the step after it arrives (chunked prefill with a token budget larger than the
    prompt), so a fraction ``f = min(1, batch / output)`` of the steps carry ``max(1, batch / output)``
    whole prompts and the rest only decode. Compute-bound prefill steps and memory-bound decode steps do
    not overlap, so the mean step is ``f x t(mixed) + (1 - f) x t(decode)``, not the roofline of the
    averaged work (which would hide the prefill spikes that set TPOT). Every field of the result is the
    mean over steps; power is mean energy over mean time.

    Lengths that vary (coefficients of variation ``input_cv``, ``output_cv``) change two means: prompt
    attention grows with the square of the length, so it is taken at ``L (1 + cv_in^2)`` (E[L^2] / E[L]);
    long outputs stay longer in the batch, so the decode context is ``L + o (1 + cv_out^2) / 2``.
    """
    b = np.asarray(batch, dtype=np.float64)
    lin = np.asarray(input_tokens, dtype=np.float64)
    lout = np.asarray(output_tokens, dtype=np.float64)
    context = lin + lout * (1.0 + np.square(output_cv)) / 2.0
    attention_prompt = lin * (1.0 + np.square(input_cv))
    arrivals = b / lout
    fraction = np.minimum(1.0, arrivals)
    prompts = np.maximum(1.0, arrivals)
    mixed = step_cost(chip, work, fmt, eff, decode_seqs=b, decode_context=context, prefill_tokens=prompts * lin,
                      prefill_prompt=attention_prompt, tp=tp, pp=pp, ep=ep)  # fmt: skip
    decode = step_cost(chip, work, fmt, eff, decode_seqs=b, decode_context=context, tp=tp, pp=pp, ep=ep)

    def mean(a: FloatArray, d: FloatArray) -> FloatArray:
        result: FloatArray = fraction * a + (1.0 - fraction) * d
        return result

    time_s = mean(mixed.time_s, decode.time_s)
    energy = mean(mixed.energy_j, decode.energy_j)
    devices = mixed.devices
    return StepCost(
        time_s=time_s,
        compute_s=mean(mixed.compute_s, decode.compute_s),
        memory_s=mean(mixed.memory_s, decode.memory_s),
        communication_s=mean(mixed.communication_s, decode.communication_s),
        overhead_s=mean(mixed.overhead_s, decode.overhead_s),
        flops=mean(mixed.flops, decode.flops),
        bytes_moved=mean(mixed.bytes_moved, decode.bytes_moved),
        device_power_w=energy / (time_s * devices),
        devices=devices,
    )
