"""The serving simulator: step tables, hand-worked timelines, invariants, determinism, saturation."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fivelayer.applications.workload import Workload
from fivelayer.catalog import default_catalog
from fivelayer.chips.performance import ChipSpec
from fivelayer.core.errors import FivelayerError
from fivelayer.engines.inference import InferenceCase, predict_inference
from fivelayer.engines.serving import (
    EngineOptions,
    EventLoop,
    ReplicaGroup,
    ServingConfig,
    StepTimer,
    build_replicas,
    simulate,
)
from fivelayer.models.step import Efficiency
from fivelayer.models.work import ModelWork, numeric_format

EFF = Efficiency()  # fixed efficiency: these tests do not move when the calibration is refitted
H100 = "h100-sxm"


def _workload(arrival: list[float], inp: list[int], out: list[int], session: list[int] | None = None,
              prefix: list[int] | None = None) -> Workload:  # fmt: skip
    n = len(arrival)
    return Workload(
        np.array(arrival, dtype=float), np.array(inp, dtype=np.int64), np.array(out, dtype=np.int64),
        np.array(session if session else [-1] * n, dtype=np.int64), np.array(prefix if prefix else [0] * n),
    )  # fmt: skip


def _config(model: str = "llama-3.1-8b", count: int = 1, **engine: object) -> ServingConfig:
    return ServingConfig(model, (ReplicaGroup(H100, count, tp=1, pp=1),), engine=EngineOptions(**engine))  # type: ignore[arg-type]


def _timer(model: str, tp: int = 1, accelerator: str = H100, eff: Efficiency = EFF) -> StepTimer:
    cat = default_catalog()
    work = ModelWork.of(cat.language_model(model))
    chip = ChipSpec.of(cat.accelerators.get(accelerator))
    return StepTimer(chip, work, numeric_format("fp8"), eff, tp=tp, pp=1, ep=1, max_context=work.max_context_tokens,
                     max_tokens=8192, max_seqs=256)  # fmt: skip


# --- kernel and step tables --------------------------------------------------------------------------


def test_event_loop_orders_by_time_priority_then_sequence() -> None:
    loop = EventLoop()
    for time, priority, name in ((2.0, 0, "d"), (1.0, 3, "c"), (1.0, 0, "a"), (1.0, 0, "b")):
        loop.schedule(time, priority, name)
    assert [loop.pop()[3] for _ in range(4)] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="past"):
        loop.schedule(1.5, 0, "late")


@pytest.mark.parametrize(("model", "tp"), [("llama-3.1-8b", 1), ("mixtral-8x7b", 2), ("gemma-3-12b", 1)])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b=st.integers(0, 256), c=st.floats(0, 30_000), p=st.integers(0, 7000), lp=st.floats(0, 30_000))
def test_step_tables_equal_step_cost(model: str, tp: int, b: int, c: float, p: int, lp: float) -> None:
    # Dense, MoE (experts touched depend on tokens) and sliding-window (piecewise-linear context) models.
    timer = _timer(model, tp)
    assert timer.step(b, c, p, lp) == pytest.approx(timer.reference(b, c, p, lp), rel=1e-9)


def test_decode_run_equals_single_steps() -> None:
    timer = _timer("llama-3.1-8b")
    times, energies = timer.decode_run(37, 1000.5, 1.0, 5)
    for i in range(5):
        assert (times[i], energies[i]) == pytest.approx(timer.reference(37, 1000.5 + i, 0, 0), rel=1e-9)


def test_step_tables_follow_the_serial_share() -> None:
    # The TensorRT-LLM fits pay part or all of the shorter of compute and memory on top (Efficiency.serial).
    for serial in (0.5, 1.0):
        timer = _timer("llama-3.1-8b", eff=replace(EFF, serial=serial))
        for b, c, p, lp in ((1, 100.0, 0, 0.0), (200, 3000.5, 0, 0.0), (64, 800.0, 4000, 700.0)):
            assert timer.step(b, c, p, lp) == pytest.approx(timer.reference(b, c, p, lp), rel=1e-9)
        times, energies = timer.decode_run(37, 1000.5, 1.0, 3)
        for i in range(3):
            assert (times[i], energies[i]) == pytest.approx(timer.reference(37, 1000.5 + i, 0, 0), rel=1e-9)


# --- hand-worked timelines ---------------------------------------------------------------------------


def test_light_load_ttft_is_one_prefill() -> None:
    result = simulate(_workload([0.0], [2048], [16]), _config(), efficiency=EFF)
    prefill, _ = _timer("llama-3.1-8b").reference(0, 0, 2048, 2048)
    assert result["ttft_s"]["p50"] == pytest.approx(prefill, rel=1e-12)


def test_two_request_timeline_by_hand() -> None:
    timer = _timer("llama-3.1-8b")

    def t(b: float, c: float, p: float, lp: float) -> float:
        return timer.reference(b, c, p, lp)[0]

    # A (4 in, 3 out) arrives at 0; B (4 in, 2 out) arrives halfway through A's prefill.
    t1 = t(0, 0, 4, 4)  # step 1: prefill A alone -> A's first token
    t2 = t1 + t(1, 4, 4, 4)  # step 2: decode A (4 tokens cached) + prefill B -> A's 2nd, B's 1st token
    t3 = t2 + t(2, 4.5, 0, 0)  # step 3: decode A (5 cached) and B (4 cached) -> A's 3rd, B's 2nd: both done
    result = simulate(_workload([0.0, t1 / 2], [4, 4], [3, 2]), _config(), efficiency=EFF)
    f = result.to_frame()
    assert f["first_token_s"].tolist() == pytest.approx([t1, t2], rel=1e-12)
    assert f["finish_s"].tolist() == pytest.approx([t3, t3], rel=1e-12)
    assert f["ttft_s"].tolist() == pytest.approx([t1, t2 - t1 / 2], rel=1e-12)
    assert f["tpot_s"].tolist() == pytest.approx([(t3 - t1) / 2, t3 - t2], rel=1e-12)
    assert result["steps"] == 3


def test_without_chunked_prefill_prompts_run_in_steps_of_their_own() -> None:
    # vLLM's default scheduler without chunked prefill never batches a prefill with decodes: the same two
    # requests as above, but B's prompt pauses A's decoding for a step of its own.
    timer = _timer("llama-3.1-8b")

    def t(b: float, c: float, p: float, lp: float) -> float:
        return timer.reference(b, c, p, lp)[0]

    t1 = t(0, 0, 4, 4)  # step 1: prefill A -> A's first token
    t2 = t1 + t(0, 0, 4, 4)  # step 2: prefill B alone, A waits -> B's first token
    t3 = t2 + t(2, 4, 0, 0)  # step 3: decode A and B (4 cached each) -> A's 2nd, B's 2nd token: B done
    t4 = t3 + t(1, 5, 0, 0)  # step 4: decode A (5 cached) -> A's 3rd token: done
    result = simulate(_workload([0.0, t1 / 2], [4, 4], [3, 2]), _config(chunked_prefill=False), efficiency=EFF)
    f = result.to_frame()
    assert f["first_token_s"].tolist() == pytest.approx([t1, t2], rel=1e-12)
    assert f["finish_s"].tolist() == pytest.approx([t4, t3], rel=1e-12)
    assert result["steps"] == 4


def test_multi_step_scheduling_admits_prompts_only_between_runs() -> None:
    # vLLM's num_scheduler_steps = 4: A (4 in, 9 out) is prefilled, then decodes in runs of 4 steps. B (4 in,
    # 2 out) arrives during the first step of A's first run; it waits for the run's end (every step would let
    # it in at once), then joins a mixed step with A.
    timer = _timer("llama-3.1-8b")

    def t(b: float, c: float, p: float, lp: float) -> float:
        return timer.reference(b, c, p, lp)[0]

    t1 = t(0, 0, 4, 4)  # prefill A -> A's first token; A has 4 tokens in the KV cache
    run = sum(t(1, c, 0, 0) for c in (4.0, 5.0, 6.0, 7.0))  # A's tokens 2-5
    t2 = t1 + run + t(1, 8, 4, 4)  # decode A (8 cached) + prefill B -> A's 6th, B's first token
    arrival_b = t1 + 0.5 * t(1, 4, 0, 0)
    f = simulate(_workload([0.0, arrival_b], [4, 4], [9, 2]), _config(num_scheduler_steps=4), efficiency=EFF,
                 check_invariants=True).to_frame()  # fmt: skip
    assert f["first_token_s"].tolist() == pytest.approx([t1, t2], rel=1e-12)
    # Every step: B gets in right after the step it arrived in.
    g = simulate(_workload([0.0, arrival_b], [4, 4], [9, 2]), _config(), efficiency=EFF).to_frame()
    assert g["first_token_s"].iloc[1] == pytest.approx(t1 + t(1, 4, 0, 0) + t(1, 5, 4, 4), rel=1e-12)


def test_multi_step_run_keeps_finished_sequences_to_its_end() -> None:
    # One request, 4 in and 3 out, runs of 4 steps: the prefill gives token 1; the run computes 4 steps though
    # only 2 tokens remain (the scheduler looks again only at the run's end), and the request ends with it.
    timer = _timer("llama-3.1-8b")
    t1 = timer.reference(0, 0, 4, 4)[0]
    run = sum(timer.reference(1, c, 0, 0)[0] for c in (4.0, 5.0, 6.0, 7.0))
    result = simulate(_workload([0.0], [4], [3]), _config(num_scheduler_steps=4), efficiency=EFF)
    assert result.to_frame()["finish_s"].iloc[0] == pytest.approx(t1 + run, rel=1e-12)
    assert result["steps"] == 5


@pytest.mark.parametrize(("options", "message"), [
    ({"num_scheduler_steps": 0}, "num_scheduler_steps must be at least 1 (got 0)"),
    ({"chunked_prefill": False, "prefill_min_waiting": -1}, "prefill_min_waiting must be at least 0 (got -1)"),
    ({"decode_batch_target": (608, 352, 16)}, "1 <= low <= high"),
])  # fmt: skip
def test_scheduler_settings_are_checked(options: dict[str, object], message: str) -> None:
    with pytest.raises(FivelayerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EngineOptions(**options)  # type: ignore[arg-type]


def test_decode_batch_target_as_amd_patch_computes_it() -> None:
    # scheduler-change-to-have-prefill-and-decode-reach-go.patch (AMD, MLPerf v5.1), MI300X: 352, 608, 16.
    opts = EngineOptions(decode_batch_target=(352, 608, 16))
    assert [opts.decode_target(n) for n in (700, 608, 500, 351, 100)] == [608, 608, 496, 352, 352]
    assert EngineOptions().decode_target(700) == 700


def test_decode_batch_target_leaves_the_latest_admitted_waiting() -> None:
    # Three 4-token prompts at 0, whole-prompt prefill, at most 2 sequences per decode step: one prefill step
    # of all three (12 tokens, mean span 4), then A and B decode their 2 remaining tokens while C waits, then C.
    timer = _timer("llama-3.1-8b")

    def t(b: float, c: float, p: float, lp: float) -> float:
        return timer.reference(b, c, p, lp)[0]

    t1 = t(0, 0, 12, 4)
    t2 = t1 + t(2, 4, 0, 0) + t(2, 5, 0, 0)
    t3 = t2 + t(1, 4, 0, 0) + t(1, 5, 0, 0)
    config = _config(chunked_prefill=False, decode_batch_target=(2, 2, 1))
    f = simulate(_workload([0.0] * 3, [4] * 3, [3] * 3), config, efficiency=EFF, check_invariants=True).to_frame()
    assert f["first_token_s"].tolist() == pytest.approx([t1] * 3, rel=1e-12)
    assert f["finish_s"].tolist() == pytest.approx([t2, t2, t3], rel=1e-12)


def test_prefill_min_waiting_holds_a_lone_prompt_for_one_decision() -> None:
    # AMD's rule with 2 prompts required: A is prefilled (the first decision may); B arrives during that step,
    # alone, right after a prefill decision: the next decision decodes A one step, the one after prefills B.
    timer = _timer("llama-3.1-8b")

    def t(b: float, c: float, p: float, lp: float) -> float:
        return timer.reference(b, c, p, lp)[0]

    t1 = t(0, 0, 4, 4)
    w = _workload([0.0, t1 / 2], [4, 4], [9, 2])
    held = simulate(w, _config(chunked_prefill=False, prefill_min_waiting=2), efficiency=EFF,
                    check_invariants=True).to_frame()  # fmt: skip
    assert held["first_token_s"].iloc[1] == pytest.approx(t1 + t(1, 4, 0, 0) + t(0, 0, 4, 4), rel=1e-12)
    free = simulate(w, _config(chunked_prefill=False), efficiency=EFF).to_frame()
    assert free["first_token_s"].iloc[1] == pytest.approx(t1 + t(0, 0, 4, 4), rel=1e-12)
    with pytest.raises(FivelayerError, match="whole prompts"):
        EngineOptions(prefill_min_waiting=2)


def test_batching_front_end_holds_requests_until_full_or_timed_out() -> None:
    # Front end of 2 requests or 1 s since its last send. A (t=0) finds it long idle: sent at once. B (0.1)
    # waits; C (0.2) fills the batch: B and C sent together at 0.2. D (5.0) comes more than 1 s after that
    # send: at once. E (5.5) waits for the timeout: sent alone at 5.0 + 1 = 6.0.
    arrival, sent = [0.0, 0.1, 0.2, 5.0, 5.5], [0.0, 0.2, 0.2, 5.0, 6.0]
    inp, out = [4] * 5, [2] * 5
    batched = ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, 1, tp=1, pp=1),), dispatch_batch=2,
                            dispatch_timeout_s=1.0)  # fmt: skip
    f = simulate(_workload(arrival, inp, out), batched, efficiency=EFF, check_invariants=True).to_frame()
    # The replica sees exactly what a front-end-free cluster sees when the requests arrive at the send times.
    g = simulate(_workload(sent, inp, out), _config(), efficiency=EFF).to_frame()
    assert f["first_token_s"].tolist() == pytest.approx(g["first_token_s"].tolist(), rel=1e-12)
    assert f["finish_s"].tolist() == pytest.approx(g["finish_s"].tolist(), rel=1e-12)
    # E, alone on an idle replica, gets its first token one prefill after 6.0; TTFT counts from its arrival.
    prefill = _timer("llama-3.1-8b").reference(0, 0, 4, 4)[0]
    assert f["first_token_s"].iloc[4] == pytest.approx(6.0 + prefill, rel=1e-12)
    assert f["ttft_s"].iloc[4] == pytest.approx(0.5 + prefill, rel=1e-12)


def test_front_end_batch_goes_to_one_replica() -> None:
    # Two replicas, round robin: a batch of three is one routing decision, so all three share a replica and
    # the next batch goes to the other one.
    config = ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, 2, tp=1, pp=1),), router="round-robin",
                           dispatch_batch=3, dispatch_timeout_s=10.0)  # fmt: skip
    w = _workload([0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06], [64] * 7, [4] * 7)
    f = simulate(w, config, efficiency=EFF).to_frame()
    # Request 0 leaves at once (the front end was idle), 1-3 and 4-6 as full batches.
    assert f["replica"].tolist() == [0, 1, 1, 1, 0, 0, 0]


def test_shared_queue_sends_a_request_to_the_replica_whose_next_step_starts_first() -> None:
    # A (4,096-token prompt) starts a long prefill step on replica 0 at t = 0; B (16 in, 5,000 out) takes idle
    # replica 1 at 1 ms and decodes in short steps. C arrives at 20 ms, inside A's prefill step.
    timer = _timer("llama-3.1-8b")
    prefill_a = timer.reference(0, 0, 4096, 4096)[0]
    decode_b = timer.reference(1, 17, 0, 0)[0]
    assert prefill_a > 0.02 + 2 * decode_b  # 8B on one H100 at the fixed efficiency: 57 ms against 5 ms
    w = _workload([0.0, 0.001, 0.02], [4096, 16, 64], [8, 5000, 4])

    def run(router: str) -> Any:
        config = ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, 2, tp=1, pp=1),), router=router)  # type: ignore[arg-type]
        return simulate(w, config, efficiency=EFF, check_invariants=True).to_frame()

    # Least outstanding work sends C to replica 0 (4,104 tokens outstanding against B's 5,000-odd), where it
    # waits for A's prefill to end; engines drawing from one queue give it to replica 1, whose step ends first.
    work, shared = run("least-outstanding"), run("shared-queue")
    assert work["replica"].tolist() == [0, 1, 0] and shared["replica"].tolist() == [0, 1, 1]
    assert work["first_token_s"].iloc[2] > prefill_a
    assert shared["first_token_s"].iloc[2] < prefill_a
    assert shared["ttft_s"].iloc[2] < work["ttft_s"].iloc[2]


def test_an_unknown_router_is_refused_with_the_nearest_name() -> None:
    with pytest.raises(FivelayerError, match=r"\(got 'shared-queu'\); did you mean shared-queue\?"):
        ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, 1),), router="shared-queu")  # type: ignore[arg-type]


@pytest.mark.parametrize(("field", "value"), [("dispatch_batch", 0), ("dispatch_timeout_s", -1.0),
                                              ("dispatch_timeout_s", float("inf"))])  # fmt: skip
def test_front_end_settings_are_checked(field: str, value: float) -> None:
    with pytest.raises(FivelayerError, match=field):
        ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, 1),), **{field: value})  # type: ignore[arg-type]


def test_prefix_cache_serves_the_previous_turn() -> None:
    # Turn 2 re-sends turn 1's 100 prompt + 20 answer tokens; the cache holds 100 + 20 - 1 = 119 of them
    # (the last answer token was never fed back), so 119 prompt tokens are not recomputed.
    w = _workload([0.0, 100.0], [100, 150], [20, 5], session=[7, 7], prefix=[0, 120])
    result = simulate(w, _config(), efficiency=EFF)
    assert result.to_frame()["prefix_hit_tokens"].tolist() == [0, 119]
    assert result["prefix_cache_hit_rate"] == pytest.approx(119 / 120)


def test_speculative_decoding_cuts_decode_steps() -> None:
    opts = EngineOptions(speculative_tokens=3, acceptance_rate=0.7)
    # (1 - 0.7^4) / (1 - 0.7) = 0.7599 / 0.3 = 2.533 tokens per step
    assert opts.tokens_per_step == pytest.approx(2.533, abs=1e-3)
    result = simulate(_workload([0.0], [64], [101]), _config(speculative_tokens=3, acceptance_rate=0.7),
                      efficiency=EFF)  # fmt: skip
    # 1 prefill step, then 100 tokens at 2.533 per step: ceil(39.47) = 40 decode steps.
    assert result["steps"] == 41


def test_draft_model_steps_by_hand() -> None:
    # One request (64 in, 3 out), 2 speculative tokens from Llama 3.2 1B at acceptance 0 (one token per
    # step, so the step count is the plain one). Step 1: the target and the draft prefill the prompt. Then
    # two decode steps at 64 and 65 cached tokens: the draft proposes 2 tokens (2 decode steps of the
    # batch), the target verifies them (1 sequence + 2 speculative tokens attending to the context).
    target, draft = _timer("llama-3.1-8b"), _timer("llama-3.2-1b")

    def t(timer: StepTimer, b: float, c: float, p: float, lp: float) -> float:
        return timer.reference(b, c, p, lp)[0]

    prefill = t(target, 0, 0, 64, 64) + t(draft, 0, 0, 64, 64)
    decode = sum(t(target, 1, c, 2, 2 * c) + 2 * t(draft, 1, c, 0, 0) for c in (64.0, 65.0))
    config = _config(speculative_tokens=2, acceptance_rate=0.0, draft_model="llama-3.2-1b")
    f = simulate(_workload([0.0], [64], [3]), config, efficiency=EFF).to_frame()
    assert f["first_token_s"].tolist() == pytest.approx([prefill], rel=1e-12)
    assert f["finish_s"].tolist() == pytest.approx([prefill + decode], rel=1e-12)


def test_draft_model_shares_the_memory() -> None:
    cat = default_catalog()
    fmt = numeric_format("fp8")
    target, draft = (ModelWork.of(cat.language_model(m)) for m in ("llama-3.1-8b", "llama-3.2-1b"))
    with_draft = build_replicas(_config(speculative_tokens=2, draft_model="llama-3.2-1b"), efficiency=EFF)[0]
    without = build_replicas(_config(speculative_tokens=2), efficiency=EFF)[0]
    free = without.kv_blocks * 16 * target.kv_bytes_per_token(fmt)  # bytes left for the KV cache, to a block
    # The draft's ~1.2 GB of fp8 weights come off, and each token now also holds the draft's KV entry.
    expected = (free - draft.weight_bytes(fmt)) / (target.kv_bytes_per_token(fmt) + draft.kv_bytes_per_token(fmt))
    assert with_draft.kv_blocks * 16 == pytest.approx(expected, rel=2e-3)
    assert with_draft.draft_timer is not None and without.draft_timer is None


def test_draft_model_needs_the_target_tokenizer() -> None:
    from fivelayer.core.errors import FivelayerError

    with pytest.raises(FivelayerError, match="vocabulary of 151,936 tokens"):
        build_replicas(_config(speculative_tokens=2, draft_model="qwen3-8b"), efficiency=EFF)
    with pytest.raises(FivelayerError, match="needs speculative_tokens"):
        EngineOptions(draft_model="llama-3.2-1b")


def test_a_draft_that_crowds_out_the_kv_cache_is_named() -> None:
    # Llama 3.1 405B as the draft of Llama 3.1 8B on one 80 GB H100: its 406 GB of fp8 weights (405.9 B params
    # x 1 byte) leave no memory for a KV cache, and the error says it is the draft's.
    with pytest.raises(
        FivelayerError, match=re.escape("the draft model llama-3.1-405b's 406 GB of weights does not leave")
    ):
        build_replicas(_config(speculative_tokens=2, draft_model="llama-3.1-405b"), efficiency=EFF)


# --- invariants ---------------------------------------------------------------------------------------

requests = st.lists(
    st.tuples(st.floats(0, 5), st.integers(1, 6000), st.integers(1, 600), st.integers(-1, 3)), min_size=1, max_size=25
)


@settings(max_examples=30, deadline=None)
@given(reqs=requests, preemption=st.sampled_from(["recompute", "swap"]), chunked=st.booleans(),
       disaggregated=st.booleans(), spec=st.integers(0, 2), front=st.sampled_from([(1, 0.0), (3, 0.5)]),
       multi=st.sampled_from([1, 3]), amd=st.booleans())  # fmt: skip
def test_conservation_and_kv_capacity_at_every_step(
    reqs: list[tuple[float, int, int, int]],
    preemption: str,
    chunked: bool,
    disaggregated: bool,
    spec: int,
    front: tuple[int, float],
    multi: int,
    amd: bool,
) -> None:
    # Llama 2 70B in fp8 on one H100 leaves ~3 GB, about 18,000 tokens, for the KV cache: preemption happens.
    reqs.sort()
    w = _workload([r[0] for r in reqs], [r[1] for r in reqs], [r[2] for r in reqs], [r[3] for r in reqs])
    groups: tuple[ReplicaGroup, ...]
    if disaggregated:
        groups = (ReplicaGroup(H100, 1, "prefill", tp=1, pp=1), ReplicaGroup(H100, 1, "decode", tp=1, pp=1))
    else:
        groups = (ReplicaGroup(H100, 2, tp=1, pp=1),)
    holding: dict[str, Any] = {}  # AMD's v5.1 prefill-holding rules, which apply without chunked prefill
    if amd and not chunked:
        holding = {"prefill_max_running": 3, "prefill_min_waiting": 2, "decode_batch_target": (2, 3, 1)}
    config = ServingConfig(
        "llama-2-70b", groups, router="kv-aware",
        engine=EngineOptions(preemption=preemption, chunked_prefill=chunked, speculative_tokens=spec,  # type: ignore[arg-type]
                             max_num_batched_tokens=2048 if chunked else 8192, num_scheduler_steps=multi, **holding),
        dispatch_batch=front[0], dispatch_timeout_s=front[1],
    )  # fmt: skip
    result = simulate(w, config, efficiency=EFF, check_invariants=True)  # raises on any broken step
    assert result["finished"] + result["dropped"] == len(w)
    assert result["running"] == result["waiting"] == 0


def test_same_seed_same_results_different_seed_differs() -> None:
    from fivelayer.applications.workload import synthetic_workload
    from fivelayer.core.streams import RandomStreams

    def run(seed: int) -> dict[str, object]:
        s = RandomStreams(seed)
        w = synthetic_workload(300, s.generator("arrivals"), s.generator("lengths"), rate_per_s=20.0,
                               input_tokens=512, output_tokens=64, arrival="gamma", turns_mean=3)  # fmt: skip
        return simulate(w, _config(count=2), seed=seed, efficiency=EFF).to_dict()

    assert run(5) == run(5)
    assert run(5) != run(6)


# --- against the analytic engine -----------------------------------------------------------------------


def test_saturated_throughput_matches_analytic_offline() -> None:
    offline = predict_inference(InferenceCase(H100, 1, "llama-3.1-8b", "fp8", 1024, 256, tp=1, pp=1), efficiency=EFF)
    plan = build_replicas(_config(), efficiency=EFF)[0]
    batch = plan.kv_blocks * 16 // (1024 + 256)  # sequences that fit at full length (no preemption)
    n = 30 * batch
    # Arrivals 10 % faster than the server can finish them keep the batch full, staggered as in steady state.
    gap = 0.9 * offline.tpot_s * 256 / batch
    w = _workload((np.arange(n) * gap).tolist(), [1024] * n, [256] * n)
    result = simulate(w, _config(max_num_seqs=batch, max_num_batched_tokens=batch + 8192), efficiency=EFF)
    f = result.to_frame()
    lo, hi = 0.25 * result["simulated_s"], 0.75 * result["simulated_s"]
    window = ((f["finish_s"] > lo) & (f["finish_s"] <= hi)).sum() * 256 / (hi - lo)
    assert window == pytest.approx(offline.throughput_tokens_per_s, rel=0.05)


def test_saturated_throughput_with_spread_prompts_matches_analytic_with_their_cv() -> None:
    # Lognormal prompts of mean 16,000 tokens and cv 1: attention is quadratic in the prompt, so the mean
    # prompt costs as one of 16,000 x (1 + 1^2) = 32,000 tokens. The analytic engine given the cv agrees with
    # the simulator; given only the mean, it is over 15 % optimistic.
    from fivelayer.applications.application import TokenLengths
    from fivelayer.applications.workload import sample_lengths

    def offline(cv: float) -> float:
        case = InferenceCase(H100, 1, "llama-3.1-8b", "fp8", 16_000, 128, tp=1, pp=1, input_cv=cv)
        return predict_inference(case, efficiency=EFF).throughput_tokens_per_s

    spread = predict_inference(
        InferenceCase(H100, 1, "llama-3.1-8b", "fp8", 16_000, 128, tp=1, pp=1, input_cv=1.0), efficiency=EFF
    )
    n = 3000
    inp = sample_lengths(TokenLengths(distribution="lognormal", mean=16_000, cv=1.0), n, np.random.default_rng(1),
                         maximum=120_000)  # fmt: skip
    gap = 0.8 * spread.tpot_s * 128 / spread.batch_size  # arrivals faster than the server finishes them
    w = _workload((np.arange(n) * gap).tolist(), inp.tolist(), [128] * n)
    config = _config(max_num_seqs=spread.batch_size, max_num_batched_tokens=8192)
    result = simulate(w, config, efficiency=EFF)
    f = result.to_frame()
    lo, hi = 0.25 * result["simulated_s"], 0.75 * result["simulated_s"]
    window = ((f["finish_s"] > lo) & (f["finish_s"] <= hi)).sum() * 128 / (hi - lo)
    assert window == pytest.approx(offline(1.0), rel=0.05)
    assert offline(0.0) > 1.15 * window


def test_searched_layout_is_the_one_predict_server_picks_at_the_same_batch_cap() -> None:
    # Llama 3.1 70B in fp8 (70.6 GB of weights) fits on one H200 (141 GB). At the simulator's cap of 256
    # sequences per replica, eight single-GPU replicas carry the most; an offline search, whose batches are
    # bounded only by memory, would take four pipeline stages per replica for batches the cap never runs.
    config = ServingConfig("llama-3.1-70b", (ReplicaGroup("h200-sxm", 8),))
    plan = build_replicas(config, efficiency=EFF)[0]
    server = predict_inference(
        InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8", 1024, 256, mode="server", batch_size=256), efficiency=EFF
    )
    offline = predict_inference(InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8", 1024, 256), efficiency=EFF)
    assert (plan.tp, plan.pp, plan.replicas, plan.max_seqs) == (server.tp, server.pp, 8, 256) == (1, 1, 8, 256)
    assert offline.pp > 1  # the search the simulator no longer uses


def test_overload_is_simulated_and_reported() -> None:
    n = 400
    w = _workload((np.arange(n) * 0.002).tolist(), [2048] * n, [256] * n)  # 500 requests/s on one GPU
    result = simulate(w, _config(), efficiency=EFF)
    assert result["finished"] == n
    assert result["sustainable"] is False and result["queue_growing"] is True
    assert result["goodput_requests_per_s"] < result["throughput_requests_per_s"]


def test_power_limited_replicas_run_slower_and_under_the_limit() -> None:
    """The simulator takes the same power-capped chip as the inference engine (ReplicaGroup.power_limit_w)."""
    n = 400
    w = _workload([0.0] * n, [1024] * n, [256] * n)
    free = simulate(w, _config(), efficiency=EFF)
    capped_config = ServingConfig(
        "llama-3.1-8b", (ReplicaGroup(H100, 1, tp=1, pp=1, power_limit_w=400.0),), engine=EngineOptions()
    )
    capped = simulate(w, capped_config, efficiency=EFF)
    assert capped["simulated_s"] > free["simulated_s"]
    # Mean power over the run, per accelerator, stays under the limit.
    assert capped["energy_j"] / capped["simulated_s"] <= 400.0 + 1e-6


def test_accelerators_left_over_from_whole_replicas_draw_idle_power_and_are_named() -> None:
    """3 x H100 at tp 2 make one replica and leave one GPU over: the run is the 2-GPU run, plus that GPU's
    idle power (catalog: 70 W for h100-sxm) for the whole simulated time, stated among the assumptions."""
    n = 50
    w = _workload((np.arange(n) * 0.05).tolist(), [512] * n, [64] * n)

    def run(count: int) -> dict[str, Any]:
        config = ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, count, tp=2, pp=1),), engine=EngineOptions())
        return simulate(w, config, efficiency=EFF).to_dict()

    two, three = run(2), run(3)
    assert three["simulated_s"] == two["simulated_s"]
    assert three["ttft_s"] == two["ttft_s"]
    assert three["energy_j"] - two["energy_j"] == pytest.approx(70.0 * two["simulated_s"], rel=1e-9)
    assert three["timeseries"]["energy_j"][-1] - two["timeseries"]["energy_j"][-1] == pytest.approx(
        70.0 * two["simulated_s"], rel=1e-9
    )
    assert three["cluster"][0]["spare_devices"] == 1 and two["cluster"][0]["spare_devices"] == 0
    assert (
        "3 h100-sxm make 1 replica of tp 2 x pp 1; the 1 left over stays idle, drawing 70 W each"
        in three["assumptions"]
    )


def test_a_given_layout_that_engines_refuse_is_refused_as_predict_refuses_it() -> None:
    # Llama 3.1 8B has 32 heads and 8 KV heads: tp 3 splits neither; it is dense, so ep 2 means nothing.
    for tp, ep, words in ((3, None, "tp 3 does not split"), (1, 2, "needs a mixture-of-experts model")):
        config = ServingConfig("llama-3.1-8b", (ReplicaGroup(H100, 6, tp=tp, pp=1, ep=ep),))
        with pytest.raises(FivelayerError, match=words):
            build_replicas(config, efficiency=EFF)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("tpot_slo_s", float("nan"), "tpot target: nan"),
        ("ttft_slo_s", 0.0, "ttft target: 0.0"),
        ("horizon_s", float("nan"), "horizon must be a positive number of seconds (got nan)"),
    ],
)
def test_a_target_or_horizon_that_is_not_a_positive_time_is_refused(field: str, value: float, words: str) -> None:
    # NaN passes a `value <= 0` check and then fails every comparison: goodput 0 with no word of why.
    changes: dict[str, Any] = {field: value}
    with pytest.raises(FivelayerError, match=re.escape(words)):
        replace(_config(), **changes)


def test_requests_longer_than_the_context_are_dropped_and_the_reason_stated() -> None:
    # Llama 3.1 8B holds 131,072 tokens: a 131,000-token prompt with 100 tokens to generate needs 131,099 in
    # its KV cache before the last token, so it is rejected; the 1,000-token request beside it is served.
    w = _workload([0.0, 0.1], [131_000, 1000], [100, 100])
    result = simulate(w, _config(), efficiency=EFF).to_dict()
    assert (result["finished"], result["dropped"]) == (1, 1)
    assert (
        "1 request dropped, as a serving engine rejects them: 1 longer than llama-3.1-8b's context of 131,072 tokens"
        in result["assumptions"]
    )


def _horizon_run(gap_s: float, n: int, horizon_s: float) -> dict[str, Any]:
    w = _workload((np.arange(n) * gap_s).tolist(), [2048] * n, [256] * n)
    config = replace(_config(), horizon_s=horizon_s)
    return simulate(w, config, efficiency=EFF).to_dict()


def test_a_horizon_cuts_a_light_load_without_calling_it_unsustainable() -> None:
    # One request every 0.2 s, cut at 100 s: requests 0..500 arrive (the one at exactly 100 s too), so the
    # offered load is 501 / 100 s. Those still running at the cut are in flight, not a growing queue, and
    # they do not count against the attainment. Before, the offered load was taken over all 1,000 requests'
    # arrival span (2.5 /s) and any request left at the horizon made the load "not sustainable".
    r = _horizon_run(0.2, 1000, 100.0)
    assert r["arrived"] == 501
    assert r["offered_requests_per_s"] == pytest.approx(5.01)
    assert r["running"] + r["waiting"] > 0
    assert r["sustainable"] is True
    assert r["slo_attainment"] == 1.0


def test_a_horizon_still_sees_an_overload() -> None:
    # 500 requests/s of 2,048-token prompts on one H100 (it carries about 18 /s): at a 4 s horizon most
    # arrivals still wait, and those that have waited past the 2 s TTFT target count as missed.
    r = _horizon_run(0.002, 4000, 4.0)
    assert r["sustainable"] is False and r["waiting"] > 1000
    assert r["slo_attainment"] < 0.5


def test_a_given_layout_too_small_for_the_weights_says_so() -> None:
    # Llama 3.1 70B in fp8 is 70.6 GB of weights; one H100 holds 72 GB usable (90 % of 80 GB) but then nothing
    # is left for a KV cache; in bf16 (141 GB) the weights alone do not fit, and the error says that, not that
    # the KV cache has no room.
    config = ServingConfig("llama-3.1-70b", (ReplicaGroup(H100, 1, tp=1, pp=1),), precision="bf16")
    with pytest.raises(FivelayerError, match=r"needs 141 GB of weights, but a replica of tp 1 x pp 1 = 1 x h100-sxm"):
        build_replicas(config, efficiency=EFF)
