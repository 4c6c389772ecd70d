"""The serving simulator: a cluster of replicas behind a router, driven by a workload, one event at a time.

Events (kernel: :class:`~fivelayer.engines.serving.kernel.EventLoop`), in this order at equal times:

0. a replica's step (or decode run) ends: commit it;
1. a KV cache arrives at the decode pool (disaggregated serving);
2. a request arrives: the router picks a replica (or, with a batching front end, the request waits there
   until its batch leaves; the front end's timer is an event of this rank too);
3. a replica plans its next step (after every arrival at that instant has been queued).

Step times and energy come from the one step-cost model through :class:`StepTimer`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fivelayer.applications.workload import Workload
from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.chips.performance import ChipSpec
from fivelayer.core.errors import FivelayerError, InfeasibleConfiguration
from fivelayer.core.streams import RandomStreams
from fivelayer.engines.inference import (
    MEMORY_RESERVE_FRACTION,
    InferenceCase,
    check_layout,
    efficiency_origin,
    missing_rates,
    predict_inference,
)
from fivelayer.engines.serving.config import (
    HOST_LINK_BYTES_PER_S,
    KV_TRANSFER_LATENCY_S,
    ReplicaGroup,
    ServingConfig,
)
from fivelayer.engines.serving.kernel import EventLoop
from fivelayer.engines.serving.replica import Replica, RequestState
from fivelayer.engines.serving.results import SimulationResult, StepLog
from fivelayer.engines.serving.steptime import StepTimer
from fivelayer.models.architecture import LanguageModel
from fivelayer.models.step import Efficiency
from fivelayer.models.work import ModelWork, numeric_format

__all__ = ["ReplicaPlan", "build_replicas", "simulate"]

COMMIT, TRANSFER, ARRIVAL, PLAN = 0, 1, 2, 3
DISPATCH = 4  # the batching front end's timer (ranked with arrivals)
#: Default running sequences per replica (vLLM's max_num_seqs default). Assumption.
DEFAULT_MAX_SEQS = 256


@dataclass(frozen=True)
class ReplicaPlan:
    """How one group is laid out: replicas of tp x pp devices and their KV capacity."""

    group: ReplicaGroup
    accelerator: str
    tp: int
    pp: int
    ep: int
    replicas: int
    kv_blocks: int
    max_seqs: int
    timer: StepTimer
    kv_bytes_per_token: float
    scale_out_bytes_per_s: float
    #: Step times of the speculative draft model on the same devices (``None``: no draft model).
    draft_timer: StepTimer | None = None
    #: Where the step efficiency comes from (the family's calibration, naming any field given instead).
    efficiency_origin: str = ""
    #: The rate the compute efficiency is a fraction of: the datasheet peak, or a vendor-measured sustained rate.
    compute_basis: str = "peak FLOP/s"
    #: Accelerators of the group left over after whole replicas of tp x pp (idle for the whole run).
    spare: int = 0
    #: Idle power of one of those accelerators, W.
    spare_idle_w: float = 0.0


def _efficiency(family: str) -> Efficiency:
    from fivelayer.engines.calibration import fitted_efficiency

    return fitted_efficiency(family, None)


def build_replicas(
    config: ServingConfig,
    catalog: CatalogSet | None = None,
    mean_input: float = 1024.0,
    mean_output: float = 256.0,
    efficiency: Efficiency | None = None,
    check_seed: int | None = 0,
) -> list[ReplicaPlan]:
    """Lay out every group: its parallelism (searched by the inference engine unless given), the KV
    blocks left after the weights, and the step-time tables."""
    cat = catalog or default_catalog()
    model = cat.language_model(config.model)
    work = ModelWork.of(model)
    fmt = numeric_format(config.precision)
    opts = config.engine
    draft_work = _draft_work(cat, model, opts.draft_model) if opts.draft_model else None
    plans = []
    for group in config.groups:
        chip_record = cat.accelerators.get(group.accelerator)
        chip = ChipSpec.of(chip_record).power_capped(group.power_limit_w)
        eff = efficiency if efficiency is not None else _efficiency(chip_record.family)
        if group.tp is None or group.pp is None:
            # The layout `predict inference --mode server` picks at the same batch cap: the most throughput
            # with the fewest pipeline stages that fit (an offline search would add stages for batches the
            # cap never lets run).
            case = InferenceCase(
                accelerator=chip_record.id, count=group.count, model=model.id, precision=config.precision,
                input_tokens=max(1, round(mean_input)), output_tokens=max(1, round(mean_output)),
                mode="server", batch_size=opts.max_num_seqs or DEFAULT_MAX_SEQS,
                tp=group.tp, pp=group.pp, ep=group.ep, power_limit=group.power_limit_w,
            )  # fmt: skip
            pred = predict_inference(case, cat, eff)
            tp, pp, ep = pred.tp, pred.pp, pred.ep
        else:
            check_layout(work, group.tp, group.ep, group.count)
            tp, pp, ep = group.tp, group.pp, group.ep or 1
        n = tp * pp
        replicas = group.count // n
        if replicas < 1:
            raise InfeasibleConfiguration(f"tp {tp} x pp {pp} needs {n} accelerators; the group has {group.count}")
        held = chip.memory_bytes * (1 - MEMORY_RESERVE_FRACTION) * n
        if work.weight_bytes(fmt) >= held:
            raise InfeasibleConfiguration(
                f"{model.id} in {fmt.name} needs {work.weight_bytes(fmt) / 1e9:,.0f} GB of weights, but a replica of "
                f"tp {tp} x pp {pp} = {n} x {chip_record.id} holds {held / 1e9:,.0f} GB usable "
                f"({100 * (1 - MEMORY_RESERVE_FRACTION):.0f} % of {chip.memory_bytes / 1e9:,.0f} GB each): "
                "give more accelerators per replica (tp x pp), or a lower precision"
            )
        usable = held - work.weight_bytes(fmt)
        kv_token = work.kv_bytes_per_token(fmt) * float(work.kv_replication(tp))
        if draft_work is not None:  # the draft's weights and its own KV cache share the replica's memory
            usable -= draft_work.weight_bytes(fmt)
            kv_token += draft_work.kv_bytes_per_token(fmt) * float(draft_work.kv_replication(tp))
        blocks = int(max(usable, 0.0) // (kv_token * opts.block_size))
        if blocks < 1:
            draft = (
                f" with the draft model {opts.draft_model}'s {draft_work.weight_bytes(fmt) / 1e9:,.0f} GB of weights"
                if draft_work is not None
                else ""
            )
            raise InfeasibleConfiguration(
                f"{model.id} in {fmt.name}{draft} does not leave room for a KV cache on {n} x {chip_record.id}"
            )
        tokens_per_seq = max(mean_input + mean_output, 1.0)
        by_memory = max(1, int(blocks * opts.block_size // tokens_per_seq))
        max_seqs = opts.max_num_seqs or min(DEFAULT_MAX_SEQS, by_memory)
        max_seqs = min(max_seqs, opts.max_num_batched_tokens // (1 + opts.speculative_tokens))
        if max_seqs < 1:
            raise FivelayerError(
                f"max_num_batched_tokens ({opts.max_num_batched_tokens:,}) is smaller than one decode step with "
                f"{opts.speculative_tokens:,} speculative tokens ({1 + opts.speculative_tokens:,} tokens): lower "
                "speculative_tokens or raise max_num_batched_tokens"
            )
        max_tokens = opts.max_num_batched_tokens + (0 if opts.chunked_prefill else work.max_context_tokens)
        timer = StepTimer(chip, work, fmt, eff, tp=tp, pp=pp, ep=ep, max_context=work.max_context_tokens,
                          max_tokens=max_tokens, max_seqs=max_seqs)  # fmt: skip
        draft_timer = None
        if draft_work is not None:
            draft_timer = StepTimer(chip, draft_work, fmt, eff, tp=tp, pp=pp, ep=1, max_context=work.max_context_tokens,
                                    max_tokens=max_tokens, max_seqs=max_seqs)  # fmt: skip
        if check_seed is not None:
            timer.check(np.random.default_rng(check_seed), samples=8)
            if draft_timer is not None:
                draft_timer.check(np.random.default_rng(check_seed + 1), samples=8)
        plans.append(
            ReplicaPlan(
                group,
                chip_record.id,
                tp,
                pp,
                ep,
                replicas,
                blocks,
                max_seqs,
                timer,
                kv_token,
                chip.scale_out_bytes_per_s,
                draft_timer,
                efficiency_origin(eff, chip_record.family),
                (
                    f"the vendor-measured sustained {chip_record.runs_at(fmt.compute)} rate"
                    if chip_record.sustained_flops
                    else f"the peak {chip_record.runs_at(fmt.compute)} FLOP/s"
                )
                + missing_rates(chip_record, fmt),
                group.count - replicas * n,
                float(chip.idle_power_w),
            )
        )
    return plans


def _draft_work(cat: CatalogSet, target: LanguageModel, draft_id: str) -> ModelWork:
    """The draft model's work, checked against the target: same vocabulary, at least the same context."""
    draft = cat.language_model(draft_id)
    if draft.vocab_size != target.vocab_size:
        raise FivelayerError(
            f"draft model {draft.id} has a vocabulary of {draft.vocab_size:,} tokens and {target.id} one of "
            f"{target.vocab_size:,}: speculative decoding needs a draft with the target's tokenizer"
        )
    if draft.max_context_tokens < target.max_context_tokens:
        raise FivelayerError(
            f"draft model {draft.id} handles {draft.max_context_tokens:,} tokens of context, fewer than "
            f"{target.id}'s {target.max_context_tokens:,}"
        )
    return ModelWork.of(draft)


@dataclass
class _FrontEnd:
    """A batching front end: it holds requests until ``size`` are waiting or ``timeout`` seconds have passed
    since its last send (as the batcher of AMD's MLPerf harness does)."""

    size: int
    timeout: float
    queue: deque[int] = field(default_factory=deque)
    last_send: float = -math.inf
    timer_pending: bool = False


class _Router:
    def __init__(self, kind: str, replicas: list[Replica]) -> None:
        self.kind = kind
        self.replicas = replicas
        self.next = 0
        self.home: dict[int, int] = {}  # session -> index into replicas that last served it
        self.position = {rep.index: i for i, rep in enumerate(replicas)}
        self.devices = [rep.timer.devices for rep in replicas]

    def pick(self, session: int, t: float) -> Replica:
        reps = self.replicas
        if self.kind == "round-robin":
            rep = reps[self.next % len(reps)]
            self.next += 1
            return rep
        if self.kind == "shared-queue":
            # Engines that draw from one queue when each starts a step: the first to start a step takes it.
            starts = [r.next_step_start(t) for r in reps]
            return reps[starts.index(min(starts))]
        # Least outstanding work per device; the first such replica on a tie (plain lists: this runs per arrival).
        loads = [r.outstanding / d for r, d in zip(reps, self.devices, strict=True)]
        best = reps[loads.index(min(loads))]
        if self.kind == "kv-aware" and session >= 0:
            j = self.home.get(session)
            if j is not None:
                home = reps[j]
                # Follow the cached prefix unless that replica is much busier than the least busy one.
                if home.outstanding / home.timer.devices <= 2.0 * best.outstanding / best.timer.devices + 4096:
                    return home
        return best

    def remember(self, session: int, rep: Replica) -> None:
        """The replica that holds a session's KV now (only replicas this router routes to)."""
        if session >= 0 and self.kind == "kv-aware" and rep.role == "mixed":
            self.home[session] = self.position[rep.index]


def simulate(
    workload: Workload,
    config: ServingConfig,
    *,
    seed: int = 0,
    catalog: CatalogSet | None = None,
    efficiency: Efficiency | None = None,
    progress: Callable[[int, int], None] | None = None,
    check_invariants: bool = False,
) -> SimulationResult:
    """Simulate ``workload`` on the cluster of ``config``; see :class:`SimulationResult` for what comes out.

    ``check_invariants`` verifies after every step that arrived = finished + running + waiting + dropped and
    that no replica holds more KV blocks than it has (slower; for tests).
    """
    n = len(workload)
    if n == 0:
        raise FivelayerError("the workload has no requests")
    plans = build_replicas(
        config, catalog, float(workload.input_tokens.mean()), float(workload.output_tokens.mean()), efficiency,
        check_seed=int(RandomStreams(seed).generator("step-table-check").integers(0, 2**31)),
    )  # fmt: skip
    state = RequestState.of(
        workload.arrival_s.astype(np.float64), workload.input_tokens, workload.output_tokens, workload.session,
        workload.prefix_tokens,
    )  # fmt: skip
    replicas: list[Replica] = []
    for gi, plan in enumerate(plans):
        for _ in range(plan.replicas):
            replicas.append(
                Replica(
                    len(replicas),
                    gi,
                    plan.group.role,
                    plan.timer,
                    plan.kv_blocks,
                    plan.max_seqs,
                    config.engine,
                    plan.kv_bytes_per_token,
                    HOST_LINK_BYTES_PER_S,
                    state,
                    plan.draft_timer,
                )
            )
    front = [r for r in replicas if r.role in ("mixed", "prefill")]
    back = [r for r in replicas if r.role == "decode"]
    router = _Router(config.router, front)
    decode_router = _Router("least-outstanding" if config.router == "kv-aware" else config.router, back)
    transfer_bw = config.kv_transfer_bytes_per_s
    log = StepLog()
    loop = EventLoop()
    horizon = config.horizon_s if config.horizon_s is not None else math.inf
    counts = {"finished": 0, "dropped": 0, "transfer": 0}
    arrived = 0
    report_every = max(n // 100, 1)

    front_end = _FrontEnd(config.dispatch_batch, config.dispatch_timeout_s)

    def send(t: float, k: int) -> None:
        queue = front_end.queue
        rep = router.pick(int(state.session[queue[0]]), t)
        for _ in range(k):
            rep.enqueue(queue.popleft())
        wake(rep, t)
        front_end.last_send = t

    def dispatch(t: float) -> None:
        """Send every full batch now, the rest once the timeout since the last send has passed."""
        fe = front_end
        while len(fe.queue) >= fe.size:
            send(t, fe.size)
        if fe.queue and t >= fe.last_send + fe.timeout:
            send(t, len(fe.queue))
        if fe.queue and not fe.timer_pending:
            fe.timer_pending = True
            loop.schedule(fe.last_send + fe.timeout, ARRIVAL, DISPATCH, None)

    def drop(r: int) -> None:
        state.dropped[r] = True
        counts["dropped"] += 1

    def check() -> None:
        waiting = sum(len(r.waiting) for r in replicas) + len(front_end.queue)
        running = sum(r.running for r in replicas) + counts["transfer"]
        if arrived != counts["finished"] + running + waiting + counts["dropped"]:
            raise AssertionError(
                f"conservation broken: arrived {arrived} != finished {counts['finished']} + running {running} "
                f"+ waiting {waiting} + dropped {counts['dropped']}"
            )
        for rep in replicas:
            ids = rep.decoding + rep.prefilling + list(rep.waiting)
            held = int(state.held[ids].sum()) if ids else 0
            if rep.free < 0 or held + rep.cached + rep.free != rep.capacity:
                raise AssertionError(
                    f"replica {rep.index}: KV blocks held {held} + cached {rep.cached} + free {rep.free} "
                    f"!= capacity {rep.capacity}"
                )

    def wake(rep: Replica, t: float) -> None:
        if not rep.busy:
            rep.busy = True
            loop.schedule(t, PLAN, PLAN, rep)
        else:
            end = rep.truncate(t)
            if end is not None:
                loop.schedule(end, COMMIT, COMMIT, (rep, rep.version))

    loop.schedule(float(state.arrival[0]), ARRIVAL, ARRIVAL, 0)
    while len(loop):
        t, _, _, kind, payload = loop.pop()
        if t > horizon:
            loop.now = horizon
            break
        if kind == COMMIT:
            rep, version = payload
            if version != rep.version:
                continue
            finished, prefilled, energy, k = rep.commit(t)
            log.add(rep.index, rep.run_start, t, k, rep.run_b, rep.run_p, energy, len(rep.waiting), rep.running,
                    rep.used_blocks)  # fmt: skip
            for r in finished:
                router.remember(int(state.session[r]), rep)
            counts["finished"] += len(finished)
            if rep.role == "prefill":
                for r in prefilled:
                    if state.gen[r] >= state.output[r]:
                        continue
                    rep.hand_off(r)
                    counts["transfer"] += 1
                    bw = transfer_bw or min(rep.timer.chip.scale_out_bytes_per_s, 1e30)
                    delay = KV_TRANSFER_LATENCY_S + float(state.kv[r]) * plans[rep.group].kv_bytes_per_token / bw
                    loop.schedule(t + delay, TRANSFER, TRANSFER, r)
            loop.schedule(t, PLAN, PLAN, rep)
            if check_invariants:
                check()
            done = counts["finished"] + counts["dropped"]
            if progress is not None and finished and done % report_every < len(finished):
                progress(done, n)
        elif kind == ARRIVAL:
            r = payload
            arrived += 1
            if front_end.size == 1:
                rep = router.pick(int(state.session[r]), t)
                rep.enqueue(r)
                wake(rep, t)
            else:
                front_end.queue.append(r)
                dispatch(t)
            if r + 1 < n:
                loop.schedule(max(float(state.arrival[r + 1]), t), ARRIVAL, ARRIVAL, r + 1)
        elif kind == PLAN:
            rep = payload
            if rep.run_k:  # a run is already in flight (planned by an earlier event at this instant)
                continue
            end = rep.plan(t, drop)
            if end is not None:
                rep.version += 1
                loop.schedule(end, COMMIT, COMMIT, (rep, rep.version))
            if check_invariants:
                check()
        elif kind == DISPATCH:
            front_end.timer_pending = False
            dispatch(t)
        else:  # TRANSFER
            r = payload
            counts["transfer"] -= 1
            rep = decode_router.pick(-1, t)
            state.decode_replica[r] = rep.index
            rep.enqueue(r)
            wake(rep, t)
    if progress is not None:
        progress(counts["finished"] + counts["dropped"], n)
    end_time = loop.now
    return SimulationResult.build(
        workload=workload, config=config, state=state, log=log, replicas=replicas, plans=plans,
        end_s=end_time, arrived=arrived, seed=seed, front_waiting=len(front_end.queue),
    )  # fmt: skip
