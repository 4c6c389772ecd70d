"""The training planner: failures, costs, layouts, infeasible runs, validation against published runs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from fivelayer.core.errors import FivelayerError, InfeasibleConfiguration
from fivelayer.engines.training import TrainingCase, TrainingEfficiency, predict_training
from fivelayer.engines.training.calibration import llmcarbon_comparison, validate_training
from fivelayer.engines.training.costs import carbon_t, facility_energy_j
from fivelayer.engines.training.failures import INTERRUPTIONS_PER_GPU_DAY, goodput, straggler_overhead
from fivelayer.interfaces.cli.training import parse_tokens, predict_training_cmd

EFF = TrainingEfficiency(compute=0.4)


def test_llama3_interruption_rate_and_young_daly() -> None:
    # 466 interruptions / (16,384 GPUs x 54 days).
    assert pytest.approx(5.267e-4, rel=1e-3) == INTERRUPTIONS_PER_GPU_DAY
    g = goodput(16_384, 54 * 86_400, 405e9 * 14)
    assert g.mtbf_s == pytest.approx(86_400 / (466 / 54), rel=1e-9)  # one every 2.78 h
    # Checkpoint of 405e9 x 14 bytes at 2 TB/s = 2.835 s; tau = sqrt(2 x 2.835 x 10,012) = 238 s.
    assert g.checkpoint_s == pytest.approx(2.835)
    assert g.checkpoint_interval_s == pytest.approx(np.sqrt(2 * 2.835 * g.mtbf_s))
    # Meta reports > 90 % effective training time.
    assert 0.85 < g.fraction < 0.95
    assert straggler_overhead(1) == 0.0
    assert straggler_overhead(16_384) == pytest.approx(0.01 * np.sqrt(2 * np.log(16_384)))


def test_gpt3_carbon_as_llmcarbon_counts_it() -> None:
    # 10,000 V100 x 330 W x 14.8 days x PUE 1.1 at 0.429 kg/kWh = 553.1 t.
    energy = facility_energy_j(10_000 * 330.0, 14.8 * 86_400, 1.1)
    assert energy / 3.6e9 == pytest.approx(1289.376)  # MWh
    assert carbon_t(energy, 429.0) == pytest.approx(553.14, rel=1e-4)


def test_llmcarbon_table_reproduced_within_ten_percent() -> None:
    # LLMCarbon (Faiz et al., ICLR 2024) Table 4 rows; inputs and predictions from the authors' repository
    # (SotaroKaneda/MLCarbon data/database.csv + model.py, retrieved 2026-11-28), actual footprints from
    # Patterson et al. 2021 and Wu et al. 2022 (training.yaml).
    rows = {r.id: r for r in llmcarbon_comparison()}
    assert set(rows) == {"t5", "gpt-3", "gshard-600b", "switch-transformer", "xlm"}
    llmcarbon = {"t5": 45.74, "gpt-3": 553.34, "gshard-600b": 4.44, "switch-transformer": 63.78, "xlm": 37.62}
    published = {"t5": 46.7, "gpt-3": 552.1, "gshard-600b": 4.3, "switch-transformer": 59.1, "xlm": 39.0}
    for rid, r in rows.items():
        assert r.llmcarbon_tco2e == llmcarbon[rid] and r.published_tco2e == published[rid]
        # LLMCarbon's method (6 N D at the table's hardware efficiency) recomputed here: its numbers, to 0.1 %.
        assert r.predicted_tco2e == pytest.approx(llmcarbon[rid], rel=1e-3)
        # This engine's accounting with the measured days and power: within 2 % of the published footprints.
        assert r.accounting_tco2e == pytest.approx(published[rid], rel=0.02)
        # LLMCarbon's own claim: within 8.2 % of the published footprints (Switch is the worst, +7.9 %).
        assert abs(r.predicted_tco2e / r.published_tco2e - 1) < 0.082
    # GShard-600B: 6 x 2.3e9 active x 1e12 tokens = 1.38e22 FLOPs at 123 TFLOP/s x 0.39 = 2.877e8 device-seconds
    # (the device count cancels) x 288 W = 23.0 MWh, x PUE 1.09 x 0.177 kg/kWh = 4.44 t.
    device_s = 1.38e22 / (123e12 * 0.39)
    assert rows["gshard-600b"].predicted_tco2e == pytest.approx(device_s * 288 / 3.6e9 * 1.09 * 0.177, rel=1e-9)
    # Switch: 1,024 TPUv3 x 245 W x 27 days x PUE 1.10 x 0.330 kg/kWh = 59.0 t (published 59.1 t, 179 MWh).
    assert rows["switch-transformer"].accounting_tco2e == pytest.approx(1024 * 0.245 * 27 * 24 * 1.1 * 0.330 / 1000)
    gpt3 = rows["gpt-3"]
    assert gpt3.predicted_days == pytest.approx(14.8, rel=0.01)  # 6 N D at 19.7 % of 125 TFLOP/s on 10,000 V100


def test_prediction_is_consistent() -> None:
    case = TrainingCase("h100-sxm", 1024, "llama-3.1-70b", 1e12, seq_len=8192)
    p = predict_training(case, efficiency=EFF)
    lay = p.layout
    assert lay["dp"] * lay["tp"] * lay["pp"] * lay["cp"] <= 1024
    assert p.gpu_hours == pytest.approx(1024 * p.days * 24)
    assert p.days >= p.ideal_days
    # MFU x peak x GPUs x ideal time = model FLOPs of the run.
    assert p.mfu * 989.5e12 * 1024 * p.ideal_days * 86_400 == pytest.approx(p.training_flops, rel=1e-9)
    assert p.mfu < EFF.compute
    mem = p.memory_per_device_bytes
    assert mem["model_states"] + mem["activations"] <= 0.9 * mem["capacity"]
    d = p.to_dict()
    for key in ("gpu_hours", "days", "mfu", "cost_usd", "co2_t"):
        assert d[key] > 0
    assert set(d["energy_mwh"]) == {"it", "facility"}
    assert d["energy_mwh"]["facility"] == pytest.approx(1.2 * d["energy_mwh"]["it"])
    assert {"dp", "tp", "pp", "ep"} <= set(d["layout"])


def test_twice_the_tokens_twice_the_time_and_rent_is_price_times_hours() -> None:
    a = predict_training(TrainingCase("a100-sxm-80gb", 256, "llama-2-7b", 1e11), efficiency=EFF)
    b = predict_training(
        TrainingCase("a100-sxm-80gb", 256, "llama-2-7b", 2e11, price_usd_per_gpu_hour=2.0), efficiency=EFF
    )
    assert b.ideal_days == pytest.approx(2 * a.ideal_days)
    assert b.costs.total_usd == pytest.approx(2.0 * b.gpu_hours)


def test_moe_uses_expert_parallelism_and_fp8_is_faster() -> None:
    bf16 = predict_training(TrainingCase("h800-sxm", 2048, "deepseek-v3", 1e12), efficiency=EFF)
    fp8 = predict_training(TrainingCase("h800-sxm", 2048, "deepseek-v3", 1e12, precision="fp8"), efficiency=EFF)
    assert fp8.ideal_days < bf16.ideal_days
    assert bf16.layout["ep"] >= 1


def test_dualpipe_halves_the_bubble_and_hides_the_all_to_all() -> None:
    # DeepSeek-V3's published layout (arXiv:2412.19437: PP 16, EP 64, no TP) at its 15,360 x 4K-token batch.
    case = TrainingCase(
        "h800-sxm",
        2048,
        "deepseek-v3",
        1e12,
        precision="fp8",
        seq_len=4096,
        batch_tokens=15360 * 4096,
        tp=1,
        pp=16,
        ep=64,
    )
    one = predict_training(case, efficiency=EFF)
    dual = predict_training(replace(case, schedule="dualpipe"), efficiency=EFF)
    assert one.step_breakdown_s["expert_parallel_exposed"] > 0
    assert dual.step_breakdown_s["expert_parallel_exposed"] == 0.0  # all-to-all shorter than the computation
    # Bubbles as fractions of compute: 1F1B (pp - 1)/(v m), v = 3 (61 layers / 16); DualPipe (pp/2 - 1) x 2/3 / m,
    # m = 15,360 / 128 data-parallel replicas = 120 micro-batches per pipeline.
    b1 = one.step_breakdown_s["pipeline_bubble"] / one.step_breakdown_s["compute"]
    b2 = dual.step_breakdown_s["pipeline_bubble"] / dual.step_breakdown_s["compute"]
    assert b1 == pytest.approx(15 / (3 * 120))
    assert b2 == pytest.approx(7 * (2 / 3) / 120)
    assert dual.to_dict()["schedule"] == "dualpipe"
    with pytest.raises(FivelayerError, match="schedule"):
        TrainingCase("h800-sxm", 2048, "deepseek-v3", 1e12, schedule="gpipe")


def test_a_model_that_cannot_fit_names_what_is_short() -> None:
    with pytest.raises(InfeasibleConfiguration) as info:
        predict_training(TrainingCase("h100-sxm", 8, "llama-3.1-405b", 1e12), efficiency=EFF)
    text = str(info.value)
    assert "6,494 GB" in text  # 405.85e9 parameters x 16 bytes
    assert "Short by" in text and "per device" in text


def test_bad_input_is_a_fivelayer_error() -> None:
    with pytest.raises(FivelayerError, match="power of two"):
        TrainingCase("h100-sxm", 64, "llama-2-7b", 1e12, tp=3)
    with pytest.raises(FivelayerError, match="precision"):
        TrainingCase("h100-sxm", 64, "llama-2-7b", 1e12, precision="int4")


def test_published_runs_gpu_hours_median_error_within_fifteen_percent() -> None:
    rows = validate_training()
    hours = [r for r in rows if r.kind == "training_gpu_hours"]
    assert {r.model for r in hours} >= {"llama-2-70b", "llama-3.1-405b", "deepseek-v3", "bloom-176b"}
    assert all(r.predicted is not None for r in rows)
    errors = [abs(r.error or 0.0) for r in hours]
    assert float(np.median(errors)) <= 0.15
    # BLOOM's 156 TFLOP/s count the full-recomputation forward pass ("4*2" instead of "3*2", bigscience tr11
    # README): the prediction is compared as 4/3 of its model TFLOP/s.
    bloom = next(r for r in rows if r.id == "bloom-176b-throughput")
    assert bloom.measured == 156
    assert 0.85 < (bloom.predicted or 0) / bloom.measured < 1.0
    assert all(r.scenario == "training" and r.source.startswith("https://") for r in rows)


def test_parse_tokens() -> None:
    assert parse_tokens("15T") == 15e12
    assert parse_tokens("2.0T tokens") == 2e12
    with pytest.raises(FivelayerError):
        parse_tokens("many")


def test_command_prints_json_and_reports_infeasible() -> None:
    app = typer.Typer()
    app.command()(predict_training_cmd)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["--accelerator", "h100-sxm", "--count", "512", "--model", "llama-3-8b", "--tokens", "1T", "--json"]
    )
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert {"gpu_hours", "days", "mfu", "energy_mwh", "cost_usd", "co2_t", "layout"} <= set(data)
    bad = runner.invoke(
        app, ["--accelerator", "h100-sxm", "--count", "8", "--model", "llama-3.1-405b", "--tokens", "1T"]
    )
    assert isinstance(bad.exception, InfeasibleConfiguration)  # fivelayer's main turns this into exit code 2


def test_command_takes_the_pipeline_schedule() -> None:
    app = typer.Typer()
    app.command()(predict_training_cmd)
    runner = CliRunner()
    args = ["--accelerator", "h800", "--count", "2048", "--model", "deepseek-v3", "--tokens", "14.8T", "--json"]
    ok = runner.invoke(app, [*args, "--precision", "fp8", "--schedule", "dualpipe"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["schedule"] == "dualpipe"
    # The DeepSeek-V3 report's spelling is accepted: names are case-insensitive.
    same = runner.invoke(app, [*args, "--precision", "fp8", "--schedule", "DualPipe"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.output) == json.loads(ok.output)
    bad = runner.invoke(app, [*args, "--schedule", "gpipe"])
    assert isinstance(bad.exception, FivelayerError) and "1f1b, dualpipe" in str(bad.exception)


def test_tensor_parallelism_splits_whole_attention_heads() -> None:
    # Llama 2 13B has 40 attention heads (its config.json, num_attention_heads 40): tp 16 or 32 would split
    # heads across devices, which no trainer does. The planner accepted tp 16 and its search could pick it.
    from fivelayer.catalog import default_catalog
    from fivelayer.chips import ChipSpec
    from fivelayer.engines.training.layouts import enumerate_layouts
    from fivelayer.models.training import TrainingWork

    with pytest.raises(InfeasibleConfiguration, match="tp 16 does not split llama-2-13b's 40 attention heads evenly"):
        predict_training(TrainingCase("h100-sxm", 64, "llama-2-13b", tokens=1e11, tp=16))
    cat = default_catalog()
    chip = ChipSpec.of(cat.accelerators.get("gb200"))  # a 72-GPU NVLink domain: the widest tp on offer
    work = TrainingWork.of(cat.language_model("llama-2-13b"))
    tps = set(enumerate_layouts(1024, chip, work, 4096).tp.astype(int).tolist())
    assert tps == {1, 2, 4, 8}
    planned = predict_training(TrainingCase("gb200", 1024, "llama-2-13b", tokens=1e11))
    assert planned.to_dict()["layout"]["tp"] in tps
