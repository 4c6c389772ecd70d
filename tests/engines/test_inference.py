"""The inference engine: roofline bound, monotonicity, energy = power x time, infeasible cases."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fivelayer import InfeasibleConfiguration
from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.chips import ChipSpec
from fivelayer.core.errors import FivelayerError
from fivelayer.engines.inference import InferenceCase, predict_inference, tail_prompt
from fivelayer.models.step import Efficiency, step_cost
from fivelayer.models.work import ModelWork, numeric_format

EFF = Efficiency(compute=0.6, memory=0.8, overhead_s=0.002, power_memory_weight=0.6)


def test_step_never_beats_the_roofline(catalog: CatalogSet) -> None:
    chip = ChipSpec.of(catalog.accelerators.get("h200-sxm"))
    work = ModelWork.of(catalog.language_model("llama-3.1-70b"))
    fmt = numeric_format("fp8")
    batch = np.arange(1, 2000, 7, dtype=float)
    cost = step_cost(chip, work, fmt, EFF, decode_seqs=batch, decode_context=1500.0, tp=8)
    ideal = np.maximum(
        cost.flops / (8 * chip.peak_flops["fp8"]), cost.bytes_moved / (8 * chip.memory_bandwidth_bytes_per_s)
    )
    assert np.all(cost.time_s >= ideal)
    # Decode at batch 1 is memory-bound; at a large batch it is compute-bound.
    assert cost.bottleneck[0] in (1, 3)
    assert cost.compute_s[-1] > cost.memory_s[-1]


def test_serial_share_pays_that_share_of_the_shorter_time(catalog: CatalogSet) -> None:
    """``time = max(c, m) + s x min(c, m) + comm + overhead``: s = 1 pays compute and memory in full (the weights'
    streaming on top of the matrix work), s = 0 is the roofline; the parts themselves do not change."""
    from dataclasses import replace

    chip = ChipSpec.of(catalog.accelerators.get("h200-sxm"))
    work = ModelWork.of(catalog.language_model("llama-2-70b"))
    fmt = numeric_format("fp8")
    batch = np.array([1.0, 64.0, 450.0, 800.0])
    costs = [
        step_cost(chip, work, fmt, replace(EFF, serial=s), decode_seqs=batch, decode_context=370.0)
        for s in (0.0, 0.5, 1.0)
    ]
    roof, half, serial = costs
    assert np.array_equal(roof.compute_s, serial.compute_s) and np.array_equal(roof.memory_s, serial.memory_s)
    shorter = np.minimum(roof.compute_s, roof.memory_s)
    np.testing.assert_allclose(half.time_s - roof.time_s, 0.5 * shorter, rtol=1e-12)
    rest = serial.communication_s + serial.overhead_s
    np.testing.assert_allclose(serial.time_s, serial.compute_s + serial.memory_s + rest, rtol=1e-12)
    # One H200, TP1: no communication; the time per extra sequence at large batches is the serial slope.
    assert float(np.max(serial.communication_s)) == 0.0
    # The prediction names the share among its assumptions, and the roofline says nothing of it.
    case = InferenceCase(accelerator="h200-sxm", count=1, model="llama-2-70b", tp=1, pp=1)
    named = predict_inference(case, catalog, replace(EFF, serial=0.5)).assumptions
    assert any("0.5 of the shorter of compute and memory time" in a for a in named)
    assert not any("shorter of compute" in a for a in predict_inference(case, catalog, EFF).assumptions)


def test_batch_size_caps_the_offline_batch(catalog: CatalogSet) -> None:
    """In offline mode a batch size is the engine's cap (max_num_seqs / TensorRT-LLM max_batch_size), as MLPerf
    configurations set it: NVIDIA's v4.1 H200 Offline runs at most 806 sequences per GPU (configs/llama2-70b)."""
    base: dict[str, Any] = {"accelerator": "h200-sxm", "count": 8, "model": "llama-2-70b", "input_tokens": 222,
                            "output_tokens": 294, "tp": 1, "pp": 1}  # fmt: skip
    free = predict_inference(InferenceCase(**base), catalog, EFF)
    capped = predict_inference(InferenceCase(**base, batch_size=806), catalog, EFF)
    small = predict_inference(InferenceCase(**base, batch_size=8), catalog, EFF)
    assert free.batch_size > 806 >= capped.batch_size and small.batch_size == 8
    assert small.throughput_tokens_per_s < capped.throughput_tokens_per_s <= free.throughput_tokens_per_s
    # A cap above what memory holds changes nothing.
    roomy = predict_inference(InferenceCase(**base, batch_size=100_000), catalog, EFF)
    assert roomy.throughput_tokens_per_s == free.throughput_tokens_per_s


def test_energy_is_power_times_time(catalog: CatalogSet) -> None:
    chip = ChipSpec.of(catalog.accelerators.get("h200-sxm"))
    work = ModelWork.of(catalog.language_model("llama-3.1-8b"))
    cost = step_cost(chip, work, numeric_format("bf16"), EFF, decode_seqs=64.0, decode_context=2000.0, tp=2)
    assert float(cost.energy_j) == pytest.approx(float(cost.device_power_w * cost.time_s * 2))
    assert chip.idle_power_w <= float(cost.device_power_w) <= chip.tdp_w


def test_prediction_energy_per_token_is_power_over_throughput() -> None:
    p = predict_inference(InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8"), efficiency=EFF)
    assert p.energy_per_output_token_j["gpu"] == pytest.approx(8 * p.gpu_power_w / p.throughput_tokens_per_s)
    assert p.energy_per_output_token_j["gpu"] < p.energy_per_output_token_j["system"]
    assert p.energy_per_output_token_j["facility"] == pytest.approx(1.2 * p.energy_per_output_token_j["system"])


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=32), st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"]))
def test_more_devices_never_lower_offline_throughput(count: int, model: str) -> None:
    def throughput(n: int) -> float:
        try:
            return predict_inference(InferenceCase("h100-sxm", n, model, "fp8"), efficiency=EFF).throughput_tokens_per_s
        except InfeasibleConfiguration:
            return 0.0

    assert throughput(count + 1) >= throughput(count) * (1 - 1e-9)


def test_server_meets_its_targets_and_never_beats_offline() -> None:
    offline = predict_inference(InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8"), efficiency=EFF)
    server = predict_inference(
        InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8", mode="server", ttft_slo=2.0, tpot_slo=0.04),
        efficiency=EFF,
    )
    assert server.tpot_s <= 0.04
    assert server.ttft_s <= 2.0
    assert server.throughput_tokens_per_s <= offline.throughput_tokens_per_s


def test_the_tail_prompt_is_the_lognormal_99th_percentile_no_longer_than_the_context() -> None:
    # The default scenario's chat prompts: mean 1,155, cv 0.96. sigma^2 = ln(1 + 0.96^2) = 0.65316, sigma 0.80818;
    # p99 = 1,155 exp(2.32635 x 0.80818 - 0.65316 / 2) = 1,155 x 4.7280 = 5,461.
    chat = InferenceCase("h200-sxm", 8, "llama-3.1-70b", input_tokens=1155, output_tokens=211, input_cv=0.96)
    assert tail_prompt(chat, 131_072) == pytest.approx(5461, abs=1)
    assert tail_prompt(InferenceCase("h200-sxm", 8, "llama-3.1-70b", input_tokens=1155), 131_072) == 1155
    # Coding prompts, mean 40,000, cv 0.8: p99 160,000-odd tokens, held to DeepSeek-R1's 131,072 less the 400 out.
    code = InferenceCase("b200", 8, "deepseek-r1", input_tokens=40_000, output_tokens=400, input_cv=0.8)
    assert tail_prompt(code, 131_072) == 131_072 - 400


def test_a_p99_ttft_target_is_checked_for_the_99th_percentile_prompt_where_a_layout_can_meet_it() -> None:
    def server(ttft: float, cv: float, tp: int | None = None) -> Any:
        case = InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8", input_tokens=1155, output_tokens=211,
                             mode="server", ttft_slo=ttft, tpot_slo=0.04, input_cv=cv, tp=tp)  # fmt: skip
        return predict_inference(case, efficiency=EFF)

    # Every prompt of 1,155 tokens: replicas of two H200s, first token in 0.12 s.
    same = server(0.2, 0.0)
    assert (same.tp, same.ttft_s) == (2, pytest.approx(0.122, abs=0.001))
    # Prompts spread with cv 0.96: on two H200s the 5,461-token prompt misses 0.2 s, so eight serve it.
    spread = server(0.2, 0.96)
    note = next(a for a in spread.assumptions if a.startswith("TTFT target also met"))
    assert "99th-percentile prompt (5,461 tokens" in note
    assert spread.tp == 8 and float(re.findall(r": ([\d.]+) s <=", note)[0]) <= 0.2
    assert spread.throughput_tokens_per_s < same.throughput_tokens_per_s
    # Held to two: no point meets the target for that prompt; the mean-prompt sizing is kept and says so.
    held = server(0.2, 0.96, tp=2)
    assert held.tp == 2 and held.ttft_s <= 0.2
    assert any(a.startswith("no operating point meets the TTFT target for the 99th-percentile prompt (5,461 tokens")
               and "sized on the mean prompt" in a for a in held.assumptions)  # fmt: skip


def test_fixed_batch_uses_the_batch() -> None:
    p = predict_inference(
        InferenceCase("h100-sxm", 1, "llama-3.1-8b", "bf16", mode="fixed-batch", batch_size=32), efficiency=EFF
    )
    assert p.batch_size == 32
    assert p.throughput_tokens_per_s == pytest.approx(32 / p.tpot_s)


def test_model_that_does_not_fit_says_what_would() -> None:
    with pytest.raises(InfeasibleConfiguration, match=r"needs 812 GB of weights.*at least 12 x h100-sxm") as info:
        predict_inference(InferenceCase("h100-sxm", 4, "llama-3.1-405b", "bf16"), efficiency=EFF)
    assert "fp8" in str(info.value) or "fp4" in str(info.value) or "int4" in str(info.value)


def test_unmeetable_targets_are_infeasible() -> None:
    with pytest.raises(InfeasibleConfiguration, match="meets the targets"):
        predict_inference(
            InferenceCase("h100-sxm", 8, "llama-3.1-70b", "fp8", mode="server", tpot_slo=0.0001), efficiency=EFF
        )


@pytest.mark.parametrize(
    ("model", "tp", "ep", "message"),
    [
        # Llama 3.1 8B: 32 query heads, 8 KV heads (config.json): tp 3 splits neither; 16 would replicate each KV
        # head twice, which engines allow, but 32 heads over 16 devices is also even, so 16 is listed.
        ("llama-3.1-8b", 3, None, "tp 3 does not split llama-3.1-8b's 32 attention heads (8 KV heads) evenly"),
        # Llama 2 13B: 40 heads, plain multi-head attention: 16 does not divide 40.
        ("llama-2-13b", 16, None, "use tp 1, 2, 4, 5, 8, 10"),
        ("llama-3.1-8b", 1, 2, "ep 2: expert parallelism needs a mixture-of-experts model"),
    ],
)
def test_a_layout_serving_engines_refuse_is_refused(model: str, tp: int, ep: int | None, message: str) -> None:
    case = InferenceCase("gb200", 16, model, "fp8", tp=tp, ep=ep)
    with pytest.raises(InfeasibleConfiguration, match=re.escape(message)):
        predict_inference(case, efficiency=EFF)


def test_an_expert_parallel_degree_larger_than_the_replica_is_refused_in_words() -> None:
    # ep 4 cannot split a replica of tp 2 x pp 1 = 2 devices. (The message once read "tp=2 x pp=1 needs more
    # than the 8 accelerator(s) given, or ep=4 does not divide tp x pp", blaming the count first.)
    case = InferenceCase("h100-sxm", 8, "mixtral-8x7b", "fp8", tp=2, pp=1, ep=4)
    with pytest.raises(InfeasibleConfiguration, match=re.escape("ep 4 must divide the accelerators of a replica "
                                                                "(tp x pp), here tp 2 x pp 1")):  # fmt: skip
        predict_inference(case, efficiency=EFF)


def test_the_layout_search_only_offers_tensor_parallel_degrees_that_split_the_heads() -> None:
    # Llama 4 Maverick has 40 query heads and 8 KV heads (config.json): of the powers of two up to the GB200
    # NVL72 domain only 1, 2, 4 and 8 split them. At a 10 ms TPOT target the search once picked tp 16, the
    # fastest modelled layout, which no serving engine can run.
    work = ModelWork.of(default_catalog().language_model("llama-4-maverick"))
    assert [t for t in (1, 2, 4, 8, 16, 32, 64) if work.splits_heads(t)] == [1, 2, 4, 8]
    case = InferenceCase("gb200", 64, "llama-4-maverick", "fp8", mode="server", tpot_slo=0.01)
    p = predict_inference(case, efficiency=EFF)
    assert p.tp in (1, 2, 4, 8) and p.tpot_s <= 0.01


def test_a_precision_the_chip_has_no_rate_for_is_said_to_run_at_the_wider_one() -> None:
    # H100 lists no fp4 tensor rate (its datasheet stops at fp8): fp4 weights are computed at the fp8 rate, and
    # the assumption once said "at the fp4 tensor rate". B200 lists fp4, so it runs at its own rate.
    cat = default_catalog()
    assert cat.accelerators.get("h100-sxm").runs_at("fp4") == "fp8"
    assert cat.accelerators.get("b200").runs_at("fp4") == "fp4"
    h100 = predict_inference(InferenceCase("h100-sxm", 8, "llama-3.1-8b", "fp4"), efficiency=EFF)
    line = next(a for a in h100.assumptions if a.startswith("fp4:"))
    assert "linear layers at the fp8 tensor rate" in line and line.endswith("(h100-sxm lists no fp4 rate)")
    b200 = predict_inference(InferenceCase("b200", 8, "llama-3.1-8b", "fp4"), efficiency=EFF)
    line = next(a for a in b200.assumptions if a.startswith("fp4:"))
    assert "linear layers at the fp4 tensor rate" in line and "lists no" not in line


def test_context_longer_than_the_model_allows() -> None:
    with pytest.raises(InfeasibleConfiguration, match="context"):
        predict_inference(InferenceCase("h200-sxm", 8, "llama-2-70b", "fp8", input_tokens=8000), efficiency=EFF)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"count": 0}, "count must be at least 1"),
        ({"mode": "fast"}, "mode must be"),
        ({"mode": "fixed-batch"}, "needs batch_size"),
        # NaN fails every comparison: it once passed the check and ended as "no operating point meets TPOT <= nan".
        ({"mode": "server", "tpot_slo": float("nan")}, "tpot_slo must be positive"),
    ],
)
def test_bad_case_values(kwargs: dict[str, Any], words: str) -> None:
    base: dict[str, Any] = {"accelerator": "h100-sxm", "count": 8, "model": "llama-3.1-8b"}
    with pytest.raises(Exception, match=words):
        InferenceCase(**(base | kwargs))


Cli = Callable[..., Any]


def test_cli_json_has_the_contract_fields(cli: Cli) -> None:
    result = cli("predict", "inference", "--accelerator", "H200", "--count", "8", "--model",
                 "meta-llama/Llama-3.1-70B-Instruct", "--json")  # fmt: skip
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("throughput_tokens_per_s", "ttft_s", "tpot_s", "batch_size", "parallelism", "gpu_power_w",
                "system_power_w", "energy_per_output_token_j", "bottleneck", "assumptions"):  # fmt: skip
        assert key in data
    assert set(data["parallelism"]) == {"tp", "pp", "ep", "replicas"}
    assert set(data["energy_per_output_token_j"]) == {"gpu", "system", "facility"}


def test_cli_efficiency_override_sets_the_named_fields_and_says_so(cli: Cli) -> None:
    """Llama 3.1 8B at batch 1 on one H100 SXM (3.35 TB/s, NVIDIA datasheet) is memory-bound: each decode step
    reads the 8.03 GB of fp8 weights plus the KV cache. With the roofline (serial 0, no fixed costs) its memory
    time is bytes / (memory x 3.35 TB/s): halving the memory efficiency doubles it exactly."""
    base = ("predict", "inference", "--accelerator", "h100-sxm", "--count", "1", "--model", "llama-3.1-8b",
            "--mode", "fixed-batch", "--batch-size", "1", "--input-tokens", "1024", "--output-tokens", "128",
            "--json")  # fmt: skip
    fixed = "compute=0.5,overhead_s=0,per_sequence_s=0,serial=0"
    full, half = (json.loads(cli(*base, "--efficiency", f"{fixed},memory={m}").stdout) for m in ("1", "0.5"))
    assert half["step_breakdown_s"]["memory"] == pytest.approx(2 * full["step_breakdown_s"]["memory"], rel=1e-12)
    weights_s = 8.03e9 / 3.35e12  # 2.40 ms; the KV cache of ~1,100 tokens adds about 3 %
    assert full["step_breakdown_s"]["memory"] == pytest.approx(weights_s, rel=0.04)
    assert full["step_breakdown_s"]["overhead"] == 0.0
    assert (
        "(hopper family calibration; compute, memory, overhead_s, per_sequence_s, serial given instead)"
        in full["assumptions"][-1]
    )
    fitted = json.loads(cli(*base).stdout)["assumptions"][-1]
    assert fitted.endswith("(hopper family calibration)")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("comptue=0.7", "unknown field 'comptue' (did you mean compute?)"),
        ("compute=1.7", "compute must be above 0 and at most 1"),
        ("memory=0", "memory must be above 0"),
        ("serial=-1", "serial must be at least 0"),
        ("memory=fast", "'fast' is not a number"),
        ("compute", "give KEY=VALUE pairs"),
        (" , ", "--efficiency is empty"),
    ],
)
def test_cli_bad_efficiency_exit_2(cli: Cli, value: str, words: str) -> None:
    result = cli("predict", "inference", "--accelerator", "h100-sxm", "--model", "llama-3.1-8b", "--efficiency", value)
    assert result.code == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_cli_cases_carry_their_own_efficiency(cli: Cli, tmp_path: Path) -> None:
    """A case's ``efficiency`` field overrides those fields for it, after --efficiency; in a CSV cell the pairs
    may be joined by ';'. Offline Llama 3.1 8B on 8 x H100 is compute-bound at its large batch (bottleneck
    'compute' in the prediction), so a lower compute efficiency lowers the throughput."""
    cases = tmp_path / "cases.csv"
    cases.write_text(
        "accelerator,count,model,efficiency\nh100-sxm,8,llama-3.1-8b,\nh100-sxm,8,llama-3.1-8b,compute=0.3;serial=0\n"
    )
    result = cli("predict", "inference", "--cases", str(cases), "--efficiency", "memory=0.9")
    assert result.code == 0, result.stderr
    fitted, own = (json.loads(line) for line in result.stdout.splitlines())
    assert fitted["bottleneck"] == "compute"
    assert own["throughput_tokens_per_s"] < fitted["throughput_tokens_per_s"]
    assert fitted["assumptions"][-1].endswith("(hopper family calibration; memory given instead)")
    assert own["assumptions"][-1].endswith("(hopper family calibration; compute, memory, serial given instead)")
    cases.write_text("accelerator,count,model,efficiency\nh100-sxm,8,llama-3.1-8b,memroy=0.5\n")
    result = cli("predict", "inference", "--cases", str(cases))
    assert result.code == 2 and f"{cases} line 2: field 'efficiency' 'memroy=0.5'" in result.stderr


def test_cli_infeasible_exit_2(cli: Cli) -> None:
    result = cli("predict", "inference", "--accelerator", "h100-sxm", "--count", "1", "--model", "llama-3.1-405b")
    assert result.code == 2
    assert "needs" in result.stderr and "Traceback" not in result.stderr


def test_cli_cases_file_in_order_and_bad_line(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "cases.jsonl"
    good.write_text(
        '{"accelerator": "h100-sxm", "count": 8, "model": "llama-3.1-70b"}\n'
        '{"accelerator": "h200-sxm", "count": 1, "model": "meta-llama/Llama-3.1-8B-Instruct", "precision": "bf16"}\n'
    )
    result = cli("predict", "inference", "--cases", str(good))
    assert result.code == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["accelerator"] for x in lines] == ["h100-sxm", "h200-sxm"]
    assert lines[1]["model"] == "llama-3.1-8b"
    bad = tmp_path / "bad.csv"
    bad.write_text("accelerator,count,model\nh100-sxm,8,llama-3.1-70b\nh100-sxm,eight,llama-3.1-70b\n")
    result = cli("predict", "inference", "--cases", str(bad))
    assert result.code == 2
    assert f"{bad} line 3" in result.stderr and "'count' must be int" in result.stderr
    # A user's spread is bounded (96 for 0.96 is a typo, not a spread), on the command line and in a case.
    spread = tmp_path / "spread.csv"
    spread.write_text("accelerator,count,model,input_cv\nh100-sxm,8,llama-3.1-70b,96\n")
    result = cli("predict", "inference", "--cases", str(spread))
    assert result.code == 2
    assert f"{spread} line 2: field 'input_cv' must be between 0 and 10 (got 96.0)" in result.stderr
    result = cli("predict", "inference", "--accelerator", "h100-sxm", "--model", "llama-3.1-8b", "--output-cv", "96")
    assert result.code == 2 and "--output-cv must be between 0 and 10 (got 96.0)" in result.stderr


def test_vectorised_step_matches_scalar_calls() -> None:
    cat = default_catalog()
    chip = ChipSpec.of(cat.accelerators.get("h100-sxm"))
    work = ModelWork.of(cat.language_model("llama-3.1-8b"))
    fmt = numeric_format("fp8")
    batch = np.array([1.0, 8.0, 64.0])
    many = step_cost(chip, work, fmt, EFF, decode_seqs=batch, decode_context=500.0)
    for i, b in enumerate(batch):
        one = step_cost(chip, work, fmt, EFF, decode_seqs=b, decode_context=500.0)
        assert float(one.time_s) == pytest.approx(float(many.time_s[i]))


def test_length_spread_moments_by_hand() -> None:
    # Coding-agent lengths (applications catalog): prompts lognormal mean 40,000 cv 0.8, outputs mean 400 cv 1.5.
    case = InferenceCase("b200", 8, "deepseek-r1", input_tokens=40_000, output_tokens=400, input_cv=0.8,
                         output_cv=1.5)  # fmt: skip
    assert case.attention_prompt == pytest.approx(40_000 * 1.64)  # E[L^2]/E[L] = L (1 + 0.64)
    assert case.decode_context == pytest.approx(40_000 + 400 * 3.25 / 2)  # L + E[o^2] / (2 E[o])
    with pytest.raises(FivelayerError, match="input_cv must be a non-negative number"):
        InferenceCase("b200", 8, "deepseek-r1", input_cv=-0.1)
    with pytest.raises(FivelayerError, match="output_cv must be a non-negative number"):
        InferenceCase("b200", 8, "deepseek-r1", output_cv=math.nan)
    # A mixture of applications may spread more than one distribution a user gives (plan mixes them).
    assert InferenceCase("b200", 8, "deepseek-r1", input_tokens=445, input_cv=11.4).attention_prompt == (
        pytest.approx(445 * (1 + 11.4**2))
    )


@settings(max_examples=20, deadline=None)
@given(cv=st.floats(0.0, 3.0), more=st.floats(0.01, 2.0))
def test_more_length_spread_never_raises_throughput(cv: float, more: float) -> None:
    def throughput(c: float) -> float:
        case = InferenceCase("h100-sxm", 8, "llama-3.1-70b", input_tokens=4000, output_tokens=300, input_cv=c,
                             output_cv=c)  # fmt: skip
        return predict_inference(case).throughput_tokens_per_s

    assert throughput(cv + more) <= throughput(cv) * (1 + 1e-12)


def test_fp4_linear_layers_and_fp8_attention() -> None:
    # NVFP4 serving quantises the linear layers to fp4; attention multiplies by the fp8 KV cache at the fp8
    # rate. B200 (NVIDIA HGX B200 datasheet, dense): fp4 9 PFLOP/s, fp8 4.5 PFLOP/s.
    cat = default_catalog()
    chip = ChipSpec.of(cat.accelerators.get("b200"))
    work = ModelWork.of(cat.language_model("llama-2-70b"))
    cost = step_cost(chip, work, numeric_format("fp4"), EFF, decode_seqs=64, decode_context=4000)
    linear = 64 * work.linear_flops_per_token()
    attention = 64 * float(work.attention_flops_per_token(4000))
    assert float(cost.compute_s) == pytest.approx((linear / 9e15 + attention / 4.5e15) / 0.6, rel=1e-12)


def test_compute_runs_at_the_sustained_rate(catalog: CatalogSet) -> None:
    """MI300X and MI325X share the datasheet FP8 peak; compute-bound steps run at the sustained rates, so the
    MI325X's compute time is 1273 / 1519 of the MI300X's (AMD's measured max-achievable FLOP/s)."""
    work = ModelWork.of(catalog.language_model("llama-2-70b"))
    fmt = numeric_format("fp8")
    times = {}
    for chip_id in ("mi300x", "mi325x"):
        chip = ChipSpec.of(catalog.accelerators.get(chip_id))
        cost = step_cost(chip, work, fmt, EFF, decode_seqs=1024.0, decode_context=500.0)
        assert cost.compute_s > cost.memory_s
        # By hand: (linear + attention FLOPs at the fp8 rate) / (eta_c x sustained fp8 rate).
        assert float(cost.compute_s) == pytest.approx(float(cost.flops) / (EFF.compute * chip.rate("fp8")))
        times[chip_id] = float(cost.compute_s)
    assert times["mi325x"] / times["mi300x"] == pytest.approx(1273 / 1519)


def test_power_limit_scales_the_matrix_rates_by_hand(catalog: CatalogSet) -> None:
    """H200 SXM: idle 75 W (catalog estimate), TDP 700 W. At a 500 W limit (NVIDIA's MLPerf v4.1 MaxQ setting)
    the matrix rates scale by (500 - 75) / (700 - 75) = 0.68; bandwidth does not change."""
    h200 = ChipSpec.of(catalog.accelerators.get("h200-sxm"))
    capped = h200.power_capped(500.0)
    assert capped.rate("fp8") == pytest.approx(0.68 * h200.rate("fp8"))
    assert capped.memory_bandwidth_bytes_per_s == h200.memory_bandwidth_bytes_per_s
    assert capped.tdp_w == 500.0
    assert h200.power_capped(None) is h200 and h200.power_capped(700.0) is h200 and h200.power_capped(900.0) is h200
    with pytest.raises(InfeasibleConfiguration, match=r"at or below h200-sxm's idle power \(75 W\)"):
        h200.power_capped(60.0)
    # Not a number of watts a board takes (a typo, or a script's inf/NaN): refused, never silently ignored.
    for bad in (-5.0, 0.0, float("nan"), float("inf"), 1e9):
        with pytest.raises(FivelayerError, match="power limit must be a number of watts above 0 and at most 3,000"):
            h200.power_capped(bad)


def test_power_limited_prediction_stays_under_the_limit() -> None:
    free = predict_inference(InferenceCase("h200-sxm", 8, "llama-2-70b", "fp8", 222, 294), efficiency=EFF)
    capped = predict_inference(
        InferenceCase("h200-sxm", 8, "llama-2-70b", "fp8", 222, 294, power_limit=500.0), efficiency=EFF
    )
    assert free.bottleneck == capped.bottleneck == "compute"
    # Compute-bound: throughput falls by about the rate factor 0.68 (memory and overheads do not slow down).
    assert 0.68 <= capped.throughput_tokens_per_s / free.throughput_tokens_per_s < 0.75
    assert capped.gpu_power_w <= 500.0 + 1e-9 < free.gpu_power_w
    assert capped.to_dict()["power_limit_w"] == 500.0
    assert any("power limit 500 W" in line and "x 0.68" in line for line in capped.assumptions)


@settings(max_examples=20, deadline=None)
@given(st.floats(min_value=100.0, max_value=700.0), st.floats(min_value=100.0, max_value=700.0))
def test_a_lower_power_limit_never_raises_throughput(a: float, b: float) -> None:
    low, high = sorted((a, b))

    def throughput(limit: float) -> float:
        case = InferenceCase("h200-sxm", 8, "llama-3.1-70b", "fp8", power_limit=limit)
        return predict_inference(case, efficiency=EFF).throughput_tokens_per_s

    assert throughput(low) <= throughput(high) * (1 + 1e-9)


def test_cli_power_limit(cli: Cli, tmp_path: Path) -> None:
    import json

    args = ("predict", "inference", "--accelerator", "h200-sxm", "--model", "llama-2-70b", "--json")
    ok = cli(*args, "--power-limit", "500")
    assert ok.code == 0 and json.loads(ok.stdout)["power_limit_w"] == 500.0
    bad = cli(*args, "--power-limit", "50")
    assert bad.code == 2 and "idle power" in bad.stderr and "Traceback" not in bad.stderr
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"accelerator": "h200-sxm", "count": 8, "model": "llama-2-70b", "power_limit": 500}\n')
    out = cli("predict", "inference", "--cases", str(cases))
    assert out.code == 0 and json.loads(out.stdout)["power_limit_w"] == 500.0
