"""What the serving simulator simulates: replica groups, the engine's scheduler settings, the router."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from fivelayer.core.errors import FivelayerError, did_you_mean

__all__ = ["DEFAULT_TPOT_SLO_S", "DEFAULT_TTFT_SLO_S", "EngineOptions", "ReplicaGroup", "ServingConfig"]

Role = Literal["mixed", "prefill", "decode"]
Router = Literal["round-robin", "least-outstanding", "kv-aware", "shared-queue"]
Preemption = Literal["recompute", "swap"]

#: Default latency targets for goodput: the MLPerf Inference Llama 2 70B server constraints (TTFT p99 2 s,
#: TPOT p99 200 ms; mlcommons/inference language/llama2-70b README). Assumption for other models.
DEFAULT_TTFT_SLO_S = 2.0
DEFAULT_TPOT_SLO_S = 0.2
#: Host link for KV swap (PCIe Gen5 x16, about 64 GB/s one direction). Assumption.
HOST_LINK_BYTES_PER_S = 64e9
#: Fixed latency of one KV-cache transfer between a prefill and a decode replica (RDMA set-up). Assumption.
KV_TRANSFER_LATENCY_S = 1e-3


@dataclass(frozen=True)
class EngineOptions:
    """Scheduler settings of every replica, named as vLLM names them.

    Defaults (assumptions, from vLLM's engine arguments): 16-token KV blocks, at most 256 running sequences,
    8,192 tokens per step, chunked prefill, recompute on preemption, prefix caching on.
    """

    block_size: int = 16
    #: Running sequences per replica; ``None``: 256, or fewer where memory holds fewer at full length.
    max_num_seqs: int | None = None
    max_num_batched_tokens: int = 8192
    #: Prompts split to fit the token budget and batched with the decodes. ``False``: vLLM's scheduler without
    #: chunked prefill, whole prompts in steps of their own that pause every decode.
    chunked_prefill: bool = True
    preemption: Preemption = "recompute"
    prefix_caching: bool = True
    #: Speculative decoding: draft tokens checked per step and the per-token acceptance rate.
    speculative_tokens: int = 0
    acceptance_rate: float = 0.7
    #: Catalog id of the draft model that proposes the speculative tokens (same tokenizer as the target). It
    #: runs ``speculative_tokens`` decode steps of the batch before each verification step, on the same
    #: accelerators, and its weights and KV cache share their memory. ``None``: drafting is free (n-gram or
    #: prompt-lookup drafting, whose cost is negligible next to a forward pass).
    draft_model: str | None = None
    #: Most decode steps advanced at once while nothing changes a replica's batch (exact; a performance knob).
    max_run_steps: int = 256
    #: vLLM's multi-step scheduling: the scheduler decides once every this many decode steps. A decode batch
    #: runs them all unchanged (a sequence that finishes inside keeps its slot, and its end is seen, at the
    #: last), and waiting prompts join only between them. 1: every step.
    num_scheduler_steps: int = 1
    #: Prefill-holding rules of AMD's MLPerf vLLM scheduler (``VLLM_LLAMA2_MLPERF_SCHED``; whole prompts only):
    #: prompts are admitted only while fewer than ``prefill_max_running`` sequences run; a scheduler decision
    #: may prefill right after one that could only with ``prefill_min_waiting`` prompts waiting (0: always).
    prefill_max_running: int | None = None
    prefill_min_waiting: int = 0
    #: A decode step takes at most a target batch, the earliest admitted first: ``(low, high, step)`` gives
    #: ``high`` when that many run, ``low`` when fewer than ``low`` run, else the running count rounded down to
    #: a multiple of ``step``. ``None``: every running sequence.
    decode_batch_target: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        problems = []
        minimums = (("block_size", 1), ("max_num_seqs", 1), ("max_num_batched_tokens", 1), ("speculative_tokens", 0),
                    ("max_run_steps", 1), ("num_scheduler_steps", 1), ("prefill_max_running", 1),
                    ("prefill_min_waiting", 0))  # fmt: skip
        for name, minimum in minimums:
            value = getattr(self, name)
            if value is not None and value < minimum:
                problems.append(f"{name} must be at least {minimum} (got {value})")
        if self.preemption not in ("recompute", "swap"):
            problems.append(f"preemption must be recompute or swap (got {self.preemption!r})")
        if self.draft_model is not None and self.speculative_tokens == 0:
            problems.append(f"draft_model {self.draft_model!r} needs speculative_tokens of at least 1")
        if not 0.0 <= self.acceptance_rate < 1.0:
            problems.append(f"acceptance_rate must be in [0, 1) (got {self.acceptance_rate})")
        if self.decode_batch_target is not None:
            low, high, step = self.decode_batch_target
            if not 1 <= low <= high or step < 1:
                problems.append(
                    "decode_batch_target (low, high, step) needs 1 <= low <= high and step >= 1 "
                    f"(got {self.decode_batch_target})"
                )
        if (self.prefill_max_running is not None or self.prefill_min_waiting) and self.chunked_prefill:
            problems.append(
                "prefill_max_running and prefill_min_waiting apply to whole prompts: set chunked_prefill false"
            )
        if problems:
            raise FivelayerError("; ".join(problems))

    def decode_target(self, running: int) -> int:
        """Most sequences one decode step takes with ``running`` sequences running (``decode_batch_target``)."""
        if self.decode_batch_target is None:
            return running
        low, high, step = self.decode_batch_target
        if running >= high:
            return high
        return running // step * step if running >= low else low

    @property
    def tokens_per_step(self) -> float:
        """Expected tokens a sequence gains per decode step: ``(1 - a^(k+1)) / (1 - a)`` with ``k`` draft
        tokens at acceptance ``a`` (Leviathan et al., 2023, eq. 1); 1 without speculation."""
        k, a = self.speculative_tokens, self.acceptance_rate
        if k == 0:
            return 1.0
        return (1.0 - a ** (k + 1)) / (1.0 - a)


@dataclass(frozen=True)
class ReplicaGroup:
    """``count`` accelerators of one kind, split into replicas of ``tp x pp`` (searched if not given)."""

    accelerator: str
    count: int
    role: Role = "mixed"
    tp: int | None = None
    pp: int | None = None
    ep: int | None = None
    #: Board power limit of each accelerator, watts (see :meth:`fivelayer.chips.ChipSpec.power_capped`).
    power_limit_w: float | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise FivelayerError(f"a replica group needs at least 1 accelerator (got {self.count})")
        if self.role not in ("mixed", "prefill", "decode"):
            raise FivelayerError(f"role must be mixed, prefill or decode (got {self.role!r})")


@dataclass(frozen=True)
class ServingConfig:
    """A cluster serving one model: replica groups, router, engine settings, latency targets."""

    model: str
    groups: tuple[ReplicaGroup, ...]
    precision: str = "fp8"
    router: Router = "least-outstanding"
    engine: EngineOptions = field(default_factory=EngineOptions)
    ttft_slo_s: float = DEFAULT_TTFT_SLO_S
    tpot_slo_s: float = DEFAULT_TPOT_SLO_S
    #: Network bandwidth for KV transfer between pools (default: the prefill accelerator's scale-out link).
    kv_transfer_bytes_per_s: float | None = None
    #: Stop at this simulated time (requests still queued or running are reported as such); None: drain.
    horizon_s: float | None = None
    #: A batching front end (as MLPerf harnesses have): arriving requests wait in it until ``dispatch_batch``
    #: of them are waiting or ``dispatch_timeout_s`` has passed since its last send, then go together, up to
    #: ``dispatch_batch`` at a time, to the one replica the router picks. 1 (default): no front-end batching.
    dispatch_batch: int = 1
    dispatch_timeout_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.groups:
            raise FivelayerError("a cluster needs at least one replica group")
        if self.router not in get_args(Router):
            near = did_you_mean(str(self.router), get_args(Router), n=1)
            raise FivelayerError(
                f"router must be {', '.join(get_args(Router)[:-1])} or {get_args(Router)[-1]} (got {self.router!r})"
                + (f"; did you mean {near[0]}?" if near else "")
            )
        roles = {g.role for g in self.groups}
        if ("prefill" in roles) != ("decode" in roles):
            raise FivelayerError("disaggregated serving needs both a prefill and a decode group")
        if "mixed" in roles and "prefill" in roles:
            raise FivelayerError("mix either mixed groups or prefill/decode groups, not both")
        for name, value in (("ttft", self.ttft_slo_s), ("tpot", self.tpot_slo_s)):
            if not value > 0:  # also refuses NaN, which every comparison fails (goodput 0); inf: no target
                raise FivelayerError(f"latency targets must be positive numbers of seconds ({name} target: {value})")
        if self.horizon_s is not None and not self.horizon_s > 0:
            raise FivelayerError(f"horizon must be a positive number of seconds (got {self.horizon_s})")
        if self.dispatch_batch < 1:
            raise FivelayerError(f"dispatch_batch must be at least 1 (got {self.dispatch_batch})")
        if not 0.0 <= self.dispatch_timeout_s < math.inf:
            raise FivelayerError(
                f"dispatch_timeout_s must be a non-negative number of seconds (got {self.dispatch_timeout_s})"
            )

    @property
    def disaggregated(self) -> bool:
        return any(g.role == "prefill" for g in self.groups)
