"""One replica's continuous-batching scheduler: paged KV blocks, token budget, chunked prefill, preemption,
prefix caching and speculative decoding, advanced one step (or one unchanging decode run) at a time.

Per-request state lives in the simulation's arrays (:class:`RequestState`), indexed by request id; a
replica holds only the ids it serves. A step is planned at its start (what runs, which KV blocks it needs)
and committed at its end (tokens produced, requests finished). While a batch does not change (no prefill,
no admission possible, no completion, no new KV block beyond what is free) the replica plans a *decode run*
of many steps at once, timed in one vectorised call; an arrival in the middle truncates the run at the
first step that starts after it, so the result is the same as stepping one by one.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fivelayer.engines.serving.config import EngineOptions, Role
from fivelayer.engines.serving.steptime import StepTimer

__all__ = ["Replica", "RequestState"]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
_EPS = 1e-9
#: The decode batch of a step that decodes nothing.
_NO_SEQS: NDArray[np.int64] = np.zeros(0, dtype=np.int64)


@dataclass
class RequestState:
    """Per-request arrays shared by every replica of one simulation."""

    arrival: FloatArray
    input: IntArray
    output: FloatArray
    session: IntArray
    prefix: IntArray
    kv: FloatArray  # tokens held in the KV cache
    gen: FloatArray  # tokens generated (fractional with speculative decoding: expected value)
    held: IntArray  # KV blocks held on the replica
    done: IntArray  # prompt tokens computed in the current prefill
    target: IntArray  # prompt tokens to compute before decoding (prompt, or prompt + output after recompute)
    first: FloatArray  # time of the first token
    finish: FloatArray
    replica: IntArray  # replica that computed the prefill
    decode_replica: IntArray
    preemptions: IntArray
    hit: IntArray  # prompt tokens served from the prefix cache
    admitted: IntArray  # admission order (-1: never admitted)
    swapped: NDArray[np.bool_]
    dropped: NDArray[np.bool_]

    @classmethod
    def of(cls, arrival: FloatArray, inp: IntArray, out: IntArray, session: IntArray, prefix: IntArray) -> RequestState:
        n = arrival.size
        return cls(
            arrival=arrival, input=inp.astype(np.int64), output=out.astype(np.float64), session=session,
            prefix=prefix, kv=np.zeros(n), gen=np.zeros(n), held=np.zeros(n, dtype=np.int64),
            done=np.zeros(n, dtype=np.int64), target=inp.astype(np.int64).copy(), first=np.full(n, np.nan),
            finish=np.full(n, np.nan), replica=np.full(n, -1, dtype=np.int64),
            decode_replica=np.full(n, -1, dtype=np.int64), preemptions=np.zeros(n, dtype=np.int64),
            hit=np.zeros(n, dtype=np.int64), admitted=np.full(n, -1, dtype=np.int64),
            swapped=np.zeros(n, dtype=bool), dropped=np.zeros(n, dtype=bool),
        )  # fmt: skip


class Replica:
    """A replica of ``timer.devices`` accelerators running one engine with ``capacity`` KV blocks."""

    def __init__(
        self,
        index: int,
        group: int,
        role: Role,
        timer: StepTimer,
        capacity_blocks: int,
        max_seqs: int,
        opts: EngineOptions,
        kv_bytes_per_token: float,
        host_bytes_per_s: float,
        state: RequestState,
        draft: StepTimer | None = None,
    ) -> None:
        self.index, self.group, self.role, self.timer = index, group, role, timer
        self.draft = draft
        self.capacity = int(capacity_blocks)
        self.free = int(capacity_blocks)
        self.max_seqs = int(max_seqs)
        self.max_tokens = int(opts.max_num_batched_tokens)
        self.bs = int(opts.block_size)
        self.g = opts.tokens_per_step
        self.spec = int(opts.speculative_tokens)
        self.chunked = opts.chunked_prefill
        self.swap = opts.preemption == "swap"
        self.prefix_caching = opts.prefix_caching
        self.max_run = int(opts.max_run_steps)
        self.multi = int(opts.num_scheduler_steps)
        self.opts = opts
        self.gated = opts.prefill_max_running is not None or opts.prefill_min_waiting > 0
        self.prefill_turn = True  # AMD's rule: whether the previous decision could not prefill
        self.swap_s_per_token = kv_bytes_per_token / host_bytes_per_s
        self.s = state
        self.waiting: deque[int] = deque()
        self.decoding: list[int] = []
        self.prefilling: list[int] = []
        self._dec: IntArray | None = None
        self.cache: OrderedDict[int, tuple[float, int]] = OrderedDict()
        self.cached = 0
        self.busy = False  # a step is running or about to be planned
        self.version = 0
        self.outstanding = 0.0
        self.admissions = 0
        self.pending_extra_s = 0.0
        # The run in flight.
        self.run_start = 0.0
        self.run_k = 0
        self.run_ends: FloatArray | None = None
        self.run_end = 0.0
        self.run_energy: FloatArray | None = None
        self.run_energy_1 = 0.0
        self.run_dec: IntArray = np.zeros(0, dtype=np.int64)
        self.run_chunks: list[tuple[int, int]] = []
        self.run_b = 0
        self.run_p = 0.0
        # Totals.
        self.busy_s = 0.0
        self.energy_j = 0.0
        self.steps = 0

    # --- helpers ---------------------------------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self.decoding) + len(self.prefilling)

    @property
    def used_blocks(self) -> int:
        return self.capacity - self.free

    def dec_ids(self) -> IntArray:
        if self._dec is None:
            self._dec = np.array(self.decoding, dtype=np.int64)
        return self._dec

    def _reserve(self, blocks: int) -> bool:
        """Make ``blocks`` free, evicting least-recently used prefix-cache entries if needed."""
        while blocks > self.free and self.cache:
            _, (_, b) = self.cache.popitem(last=False)
            self.cached -= b
            self.free += b
        return blocks <= self.free

    def enqueue(self, r: int, front: bool = False) -> None:
        s = self.s
        if front:
            self.waiting.appendleft(r)
        else:
            self.waiting.append(r)
            self.outstanding += float(s.target[r] - s.done[r]) + float(s.output[r] - s.gen[r])

    def next_step_start(self, t: float) -> float:
        """When this replica next starts a step, and so can take a request that arrives at ``t``: at once if it is
        idle (or about to plan), else when the step in flight at ``t`` ends (for multi-step scheduling, the run)."""
        if not self.busy or self.run_k == 0:
            return t
        ends = self.run_ends
        if ends is None or self.run_k <= 1 or self.multi > 1:
            return self.run_end
        j = int(np.searchsorted(ends[: self.run_k], t, side="left"))
        return float(ends[min(j, self.run_k - 1)])

    def truncate(self, t: float) -> float | None:
        """An arrival at ``t`` during a decode run: keep only the steps that started before ``t``.

        Returns the new end time of the run if it changed (the caller reschedules the commit)."""
        ends = self.run_ends
        if ends is None or self.run_k <= 1 or self.multi > 1:  # multi-step: the scheduler waits for the run's end
            return None
        j = 1 + int(np.searchsorted(ends[: self.run_k - 1], t, side="left"))
        if j >= self.run_k:
            return None
        self.run_k = j
        self.run_end = float(ends[j - 1])
        self.version += 1
        return self.run_end

    def _decode_batch(self) -> IntArray:
        """The sequences this decode step takes: all running decodes, or the earliest admitted up to the target
        batch (``decode_batch_target``)."""
        dec = self.dec_ids()
        if self.opts.decode_batch_target is not None:
            dec = dec[: self.opts.decode_target(self.running)]
        return dec

    def _victim(self) -> int:
        s = self.s
        candidates = self.decoding + self.prefilling
        return max(candidates, key=lambda r: int(s.admitted[r]))

    def _preempt(self, r: int) -> None:
        s = self.s
        if r in self.prefilling:
            self.prefilling.remove(r)
        else:
            self.decoding.remove(r)
            self._dec = None
        self.free += int(s.held[r])
        s.held[r] = 0
        s.preemptions[r] += 1
        if self.swap:
            s.swapped[r] = True
            self.pending_extra_s += float(s.kv[r]) * self.swap_s_per_token
        else:
            if s.done[r] >= s.target[r]:  # decoding: recompute the prompt and what was generated
                s.target[r] = math.ceil(s.kv[r])
            self.outstanding += float(s.kv[r])
            s.kv[r] = 0.0
            s.done[r] = 0
        self.waiting.appendleft(r)

    # --- plan ------------------------------------------------------------------------------------------

    def _may_prefill(self) -> bool:
        """One scheduler decision of the prefill-holding rules (``prefill_max_running``, ``prefill_min_waiting``),
        as AMD's patched vLLM takes it: every decision, prompts waiting or not, updates whose turn it is."""
        opts = self.opts
        ok = opts.prefill_max_running is None or self.running < opts.prefill_max_running
        if opts.prefill_min_waiting:
            ok = ok and (len(self.waiting) >= opts.prefill_min_waiting or self.prefill_turn)
            self.prefill_turn = not ok
        return ok

    def plan(self, now: float, drop: Callable[[int], None], retry: bool = False) -> float | None:
        """Plan the next step (or decode run) starting at ``now``; return its end time, or None if idle."""
        s, bs, g = self.s, self.bs, self.g
        may_prefill = self._may_prefill() if self.gated and not retry else True
        if not may_prefill and not self.decoding:  # an empty decision: the next one, at once, decides again
            may_prefill = self._may_prefill()
        # 1. Requests whose KV arrives whole (disaggregated decode, swapped-out decodes) rejoin first.
        while self.waiting and self.running < self.max_seqs:
            r = self.waiting[0]
            if s.done[r] < s.target[r]:
                break
            nb = math.ceil(s.kv[r] / bs)
            if not self._reserve(nb):
                break
            self.waiting.popleft()
            self._admit_ready(r, nb)
        # Without chunked prefill, vLLM's scheduler runs whole prompts in steps of their own, decodes paused.
        if not self.chunked and (self.prefilling or self.waiting) and may_prefill:
            chunks, admitted = self._prefills(self.max_tokens, 0, drop)
            if chunks:
                return self._time(now, _NO_SEQS, chunks, admitted)
        # 2. Running decodes grow by g tokens; preempt the latest admitted while the blocks are not there.
        dec = self._decode_batch()
        while dec.size:
            need = int(np.ceil((s.kv[dec] + g) / bs).sum()) - int(s.held[dec].sum())
            if need <= 0 or self._reserve(need):
                break
            self._preempt(self._victim())
            dec = self._decode_batch()
        if dec.size:
            new_held = np.ceil((s.kv[dec] + g) / bs).astype(np.int64)
            self.free -= int(new_held.sum() - s.held[dec].sum())
            s.held[dec] = new_held
        b = int(dec.size)
        if may_prefill:
            chunks, admitted = self._prefills(self.max_tokens - b * (1 + self.spec), b, drop)
        else:  # the prefill rules hold the prompts back this decision
            chunks, admitted = [], False
        if not b and not chunks:
            if self.running:  # prefills stuck without blocks: free the latest and try again
                self._preempt(self._victim())
                return self.plan(now, drop, retry=True)
            self.busy = False
            self.run_k = 0
            return None
        return self._time(now, dec, chunks, admitted)

    def _prefills(self, budget: int, b: int, drop: Callable[[int], None]) -> tuple[list[tuple[int, int]], bool]:
        """Prompt chunks for a step with ``b`` decodes and ``budget`` tokens left: prefills in progress first, then
        waiting requests admitted first come, first served while sequences and blocks allow. Returns the chunks
        and whether anything was admitted."""
        s, bs = self.s, self.bs
        chunks: list[tuple[int, int]] = []
        # 3. Prefills in progress continue, in admission order.
        for r in self.prefilling:
            if budget <= 0:
                break
            c = self._chunk(r, budget, bool(chunks) or b > 0)
            if c <= 0:
                break
            chunks.append((r, c))
            budget -= c
        # 4. Admit waiting requests (first come, first served) while budget, sequences and blocks allow.
        admitted = False
        while self.waiting and budget > 0 and self.running < self.max_seqs:
            r = self.waiting[0]
            longest = s.input[r] + s.output[r] - 1  # tokens in the KV cache before the last one is produced
            if longest > self.timer.max_context or math.ceil(longest / bs) > self.capacity:
                self.waiting.popleft()
                drop(r)
                continue
            if s.done[r] >= s.target[r]:
                nb = math.ceil(s.kv[r] / bs)
                if not self._reserve(nb):
                    break
                self.waiting.popleft()
                self._admit_ready(r, nb)
                admitted = True
                continue
            if s.admitted[r] < 0 and self.prefix_caching and s.prefix[r] > 0:
                self._prefix_hit(r)
            if s.swapped[r]:
                restore = math.ceil(s.kv[r] / bs)
                if not self._reserve(restore):
                    break
                self.free -= restore
                s.held[r] = restore
                s.swapped[r] = False
                self.pending_extra_s += float(s.kv[r]) * self.swap_s_per_token
            c = self._chunk(r, budget, bool(chunks) or b > 0)
            if c <= 0:
                break
            self.waiting.popleft()
            s.admitted[r] = self.admissions
            self.admissions += 1
            if s.replica[r] < 0 or self.role != "decode":
                s.replica[r] = self.index
            self.prefilling.append(r)
            chunks.append((r, c))
            budget -= c
            admitted = True
        return chunks, admitted

    def _chunk(self, r: int, budget: int, others: bool) -> int:
        """Prompt tokens of ``r`` to compute this step, with the KV blocks for them reserved."""
        s, bs = self.s, self.bs
        remaining = int(s.target[r] - s.done[r])
        c = min(remaining, budget)
        if not self.chunked and c < remaining:
            if others:
                return 0
            c = remaining  # without chunking a prompt longer than the budget runs alone
        kv, held = float(s.kv[r]), int(s.held[r])
        nb = math.ceil((kv + c) / bs) - held
        if nb > 0 and not self._reserve(nb):
            if not self.chunked:
                return 0
            c = int((held + self.free) * bs - kv)
            if c <= 0:
                return 0
            nb = math.ceil((kv + c) / bs) - held
        if nb > 0:
            self.free -= nb
            s.held[r] = held + nb
        return c

    def _admit_ready(self, r: int, blocks: int) -> None:
        s = self.s
        self.free -= blocks
        s.held[r] = blocks
        if s.swapped[r]:
            self.pending_extra_s += float(s.kv[r]) * self.swap_s_per_token
            s.swapped[r] = False
        s.admitted[r] = self.admissions
        self.admissions += 1
        if self.role == "decode":
            s.decode_replica[r] = self.index
        self.decoding.append(r)
        self._dec = None

    def _prefix_hit(self, r: int) -> None:
        s, bs = self.s, self.bs
        entry = self.cache.pop(int(s.session[r]), None)
        if entry is None:
            return
        tokens, blocks = entry
        self.cached -= blocks
        hit = int(min(s.prefix[r], tokens, s.target[r] - 1))
        keep = math.ceil(hit / bs)
        self.free += blocks - keep
        s.held[r] = keep
        s.hit[r] = hit
        s.done[r] = hit
        s.kv[r] = float(hit)
        self.outstanding -= hit

    def _time(self, now: float, dec: IntArray, chunks: list[tuple[int, int]], admitted: bool) -> float:
        s, g = self.s, self.g
        b = int(dec.size)
        c_mean = float(s.kv[dec].mean()) if b else 0.0
        extra, self.pending_extra_s = self.pending_extra_s, 0.0
        k = 1
        if b and not chunks and not admitted:
            k = self._run_length(dec)
        self.run_dec = dec
        self.run_chunks = chunks
        self.run_b = b
        self.run_start = now
        if k == 1:
            p = float(b * self.spec)
            span = 2.0 * c_mean * p
            chunk_p = chunk_span = 0.0
            for r, c in chunks:
                chunk_p += c
                chunk_span += c * (2.0 * float(s.done[r]) + c)
            p += chunk_p
            span += chunk_span
            time, energy = self.timer.step(float(b), c_mean, p, span / p if p else 0.0)
            if self.draft is not None:
                # The draft prefills the new prompt chunks with its first proposal step, then proposes the
                # rest of its tokens one decode step of the batch at a time.
                draft_t, draft_e = self.draft.step(float(b), c_mean, chunk_p, chunk_span / chunk_p if chunk_p else 0.0)
                if b:
                    more_t, more_e = self.draft.step(float(b), c_mean, 0.0, 0.0)
                    draft_t += (self.spec - 1) * more_t
                    draft_e += (self.spec - 1) * more_e
                time += draft_t
                energy += draft_e
            time += extra
            energy += extra * self.timer.idle_power_w()
            self.run_k = 1
            self.run_ends = None
            self.run_energy_1 = energy
            self.run_p = p
            self.run_end = now + time
            return self.run_end
        times, energies = self.timer.decode_run(b, c_mean, g, k, self.spec)
        if self.draft is not None:
            run_t, run_e = self.draft.decode_run(b, c_mean, g, k)
            times += self.spec * run_t
            energies += self.spec * run_e
        times[0] += extra
        energies[0] += extra * self.timer.idle_power_w()
        self.run_k = k
        self.run_ends = now + np.cumsum(times)
        self.run_energy = energies
        self.run_p = float(b * self.spec)
        self.run_end = float(self.run_ends[-1])
        return self.run_end

    def _run_length(self, dec: IntArray) -> int:
        """Steps the unchanged decode batch can run: until a completion (with multi-step scheduling, the
        scheduler's steps, completions or not), or the KV blocks run out."""
        s, g, bs = self.s, self.g, self.bs
        if self.multi > 1 or (self.gated and self.waiting):
            # Multi-step: the scheduler's steps. Prompts held back by the prefill rules: the next decision may
            # let them in, so the run ends with the scheduler's steps (one without multi-step).
            k_max = self.multi
        else:
            remaining = s.output[dec] - s.gen[dec]
            k_max = min(int(np.ceil(float(remaining.min()) / g - _EPS)), self.max_run)
        if k_max <= 1:
            return 1
        kv = s.kv[dec]
        held = int(s.held[dec].sum())
        avail = self.free + self.cached

        def need(k: int) -> int:
            return int(np.ceil((kv + k * g) / bs).sum()) - held

        if need(k_max) <= avail:
            k = k_max
        else:
            lo, hi = 1, k_max  # need(lo) <= avail < need(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if need(mid) <= avail:
                    lo = mid
                else:
                    hi = mid
            k = lo
        extra = need(k)
        if extra > 0:
            self._reserve(extra)
            self.free -= extra
            s.held[dec] = np.ceil((kv + k * g) / bs).astype(np.int64)
        return k

    # --- commit ----------------------------------------------------------------------------------------

    def commit(self, t: float) -> tuple[list[int], list[int], float, int]:
        """Apply the run that ends at ``t``. Returns (finished ids, ids whose prefill completed, energy, steps)."""
        s, g, bs = self.s, self.g, self.bs
        k = self.run_k
        if self.run_ends is None:
            energy = self.run_energy_1
        else:
            assert self.run_energy is not None
            energy = float(self.run_energy[:k].sum())
        self.busy_s += t - self.run_start
        self.energy_j += energy
        self.steps += k
        finished: list[int] = []
        prefilled: list[int] = []
        dec = self.run_dec
        work = 0.0
        if dec.size:
            gen = np.minimum(s.gen[dec] + k * g, s.output[dec])
            work += float((gen - s.gen[dec]).sum())
            s.gen[dec] = gen
            kv = s.kv[dec] + k * g
            s.kv[dec] = kv
            new_held = np.ceil(kv / bs - _EPS).astype(np.int64)
            self.free += int(s.held[dec].sum() - new_held.sum())
            s.held[dec] = new_held
            done_mask = gen >= s.output[dec] - _EPS
            if done_mask.any():
                finished = dec[done_mask].tolist()
        for r, c in self.run_chunks:
            s.done[r] += c
            s.kv[r] += c
            work += c
            if s.done[r] >= s.target[r]:
                s.gen[r] += 1.0
                work += 1.0
                if np.isnan(s.first[r]):
                    s.first[r] = t
                prefilled.append(r)
        self.outstanding = max(self.outstanding - work, 0.0)
        for r in prefilled:
            self.prefilling.remove(r)
            if s.gen[r] >= s.output[r] - _EPS:
                finished.append(r)
            elif self.role != "prefill":
                self.decoding.append(r)
        if prefilled:
            self._dec = None
        for r in finished:
            s.finish[r] = t
            if r in self.decoding:
                self.decoding.remove(r)
            self._release(r)
        if finished:
            self._dec = None
        self.run_k = 0
        self.run_ends = None
        return finished, prefilled, energy, k

    def _release(self, r: int) -> None:
        """A request's blocks return to the pool, or stay as a prefix-cache entry of its session."""
        s = self.s
        blocks = int(s.held[r])
        s.held[r] = 0
        session = int(s.session[r])
        if self.prefix_caching and session >= 0 and blocks:
            old = self.cache.pop(session, None)
            if old is not None:
                self.cached -= old[1]
                self.free += old[1]
            self.cache[session] = (float(s.kv[r]), blocks)
            self.cached += blocks
        else:
            self.free += blocks

    def hand_off(self, r: int) -> None:
        """A prefill replica hands a request to the decode pool: its KV leaves with it."""
        self.free += int(self.s.held[r])
        self.s.held[r] = 0
