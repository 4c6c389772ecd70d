"""``fivelayer simulate`` on the command line (registered here until app.py registers it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fivelayer.interfaces.cli.app import app
from fivelayer.interfaces.cli.simulate import simulate_cmd
from tests.conftest import SHARED, CliResult

if not any(c.name == "simulate" for c in app.registered_commands):
    app.command("simulate")(simulate_cmd)

Cli = Callable[..., CliResult]
BASE = ("simulate", "--accelerator", "h100-sxm", "--count", "2", "--model", "llama-3.1-8b", "--tp", "1", "--pp", "1")


def test_direct_form_json(cli: Cli) -> None:
    res = cli(*BASE, "--rate", "5", "--requests", "50", "--input-tokens", "512", "--output-tokens", "32", "--json")
    assert res.code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["requests"] == 50 and data["finished"] == 50
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        assert set(data[key]) >= {"p50", "p90", "p99"}
        assert data[key]["p50"] <= data[key]["p90"] <= data[key]["p99"]
    assert data["throughput_tokens_per_s"] == pytest.approx(50 * 32 / data["simulated_s"])
    assert data["goodput_requests_per_s"] <= data["throughput_requests_per_s"] + 1e-12
    assert res.stderr == ""  # no progress bar with --json


def test_trace_form_reads_azure_format(cli: Cli) -> None:
    trace = SHARED / "data" / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_code.csv"
    res = cli(*BASE, "--trace", str(trace), "--requests", "200", "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["finished"] == 200


def test_malformed_trace_exits_2_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "trace.csv"
    bad.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n1,12,x\n")
    res = cli(*BASE, "--trace", str(bad))
    assert res.code == 2
    assert f"{bad} line 3" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # TokenLengths allows a cv up to 10; beyond it the command once failed with an internal error.
        (("--input-cv", "100"), "--input-cv must be between 0 and 10 (got 100.0)"),
        (("--output-cv", "nan"), "--output-cv must be between 0 and 10 (got nan)"),
        # Llama 3.1 8B's context is 131,072 tokens: a mean that does not fit is refused, not trimmed silently.
        (
            ("--input-tokens", "131000", "--output-tokens", "256"),
            "llama-3.1-8b has a context of 131,072 tokens; 131,000 input + 256 output tokens do not fit",
        ),
        (("--turns", "0.5"), "turns per conversation must be at least 1 (got 0.5)"),
    ],
)
def test_bad_synthetic_load_exits_2_with_the_option_and_value(cli: Cli, options: tuple[str, ...], message: str) -> None:
    res = cli(*BASE, "--rate", "1", "--requests", "5", *options)
    assert res.code == 2, res.stdout
    assert message in " ".join(res.stderr.split()) and "Traceback" not in res.stderr


def test_synthetic_options_with_a_trace_are_refused_not_ignored(cli: Cli) -> None:
    trace = SHARED / "data" / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv"
    res = cli(*BASE, "--trace", str(trace), "--requests", "5", "--input-tokens", "500", "--arrival", "gamma")
    assert res.code == 2
    assert "--input-tokens, --arrival shape synthetic arrivals (--rate)" in " ".join(res.stderr.split())
    assert cli(*BASE, "--trace", str(trace), "--requests", "5").code == 0


def test_needs_exactly_one_load(cli: Cli) -> None:
    assert cli(*BASE).code == 2
    res = cli(*BASE, "--rate", "1", "--trace", "x.csv")
    assert res.code == 2 and "exactly one" in res.stderr


def test_records_to_csv_and_missing_parquet_engine(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "requests.csv"
    res = cli(*BASE, "--rate", "5", "--requests", "20", "--output-tokens", "8", "--records", str(out), "--json")
    assert res.code == 0, res.stderr
    assert out.read_text().splitlines()[0].startswith("request,arrival_s,input_tokens")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        res = cli(*BASE, "--rate", "5", "--requests", "5", "--records", str(tmp_path / "r.parquet"), "--json")
        assert res.code == 2 and "pyarrow" in res.stderr


def test_records_are_rewritten_but_a_users_file_of_that_name_is_left_alone(cli: Cli, tmp_path: Path) -> None:
    """Rerunning with the same --records file replaces fivelayer's records (CSV: its header; Parquet: schema
    metadata; DuckDB: the table comment); a file of the user's under that name is refused before the run."""
    from fivelayer.engines.serving.results import RECORD_COLUMNS, is_records_file

    run = (*BASE, "--rate", "5", "--requests", "20", "--output-tokens", "8", "--json", "--records")
    names = ["r.csv", *(["r.parquet"] if _has("pyarrow") else []), *(["r.duckdb"] if _has("duckdb") else [])]
    for name in names:
        out = tmp_path / name
        assert cli(*run, str(out)).code == 0 and is_records_file(out)
        res = cli(*run, str(out))
        assert res.code == 0, res.stderr
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == ",".join(RECORD_COLUMNS)
    mine = tmp_path / "mine.csv"
    mine.write_text("a,b\n1,2\n")
    res = cli(*run, str(mine))
    assert res.code == 2 and "mine.csv exists and is not a fivelayer records file" in res.stderr
    assert "Traceback" not in res.stderr and mine.read_text() == "a,b\n1,2\n"


def test_efficiency_override_slows_the_steps_and_is_listed(cli: Cli) -> None:
    # Llama 3.1 8B on H100 at 5 requests/s decodes small batches: memory-bound steps, so a quarter of the fitted
    # memory efficiency makes every step, and the median TPOT, several times longer.
    run = (*BASE, "--rate", "5", "--requests", "50", "--json")
    fitted = json.loads(cli(*run).stdout)
    slow = json.loads(cli(*run, "--efficiency", "memory=0.1").stdout)
    assert slow["tpot_s"]["p50"] > 3 * fitted["tpot_s"]["p50"]
    (line,) = [a for a in slow["assumptions"] if a.startswith("step efficiency on h100-sxm")]
    assert "of the peak fp8 FLOP/s and 0.10 of peak bandwidth" in line
    assert line.endswith("(hopper family calibration; memory given instead)")
    bad = cli(*run, "--efficiency", "memroy=0.1")
    assert bad.code == 2 and "did you mean memory?" in bad.stderr


def test_the_step_efficiency_names_the_rate_it_runs_at_and_the_fit(cli: Cli) -> None:
    # fp4 on an H100 computes at the fp8 rate (the H100 lists no fp4 tensor rate), as predict already said; the
    # simulation's line said only "of peak FLOP/s". An A100 (Ampere, no reference rows) runs on Hopper's fit.
    res = cli(*BASE, "--precision", "fp4", "--rate", "2", "--requests", "20", "--json")
    (line,) = [a for a in json.loads(res.stdout)["assumptions"] if a.startswith("step efficiency on h100-sxm")]
    assert "of the peak fp8 FLOP/s (h100-sxm lists no fp4 rate) and" in line
    args = ("simulate", "--accelerator", "a100-sxm-80gb", "--count", "1", "--model", "llama-3.1-8b", "--precision",
            "bf16", "--rate", "2", "--requests", "20", "--json")  # fmt: skip
    (line,) = [a for a in json.loads(cli(*args).stdout)["assumptions"] if a.startswith("step efficiency on a100")]
    assert "of the peak bf16 FLOP/s and" in line
    assert line.endswith("(hopper family calibration, the nearest fitted generation: ampere has fewer than two "
                         "reference rows)")  # fmt: skip


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
def test_a_records_file_that_cannot_be_written_is_one_sentence_not_a_traceback(cli: Cli) -> None:
    for name in ("/proc/fivelayer-records.csv", "/proc/fivelayer-records.parquet"):
        res = cli(*BASE, "--rate", "5", "--requests", "5", "--json", "--records", name)
        assert res.code == 2 and f"cannot write {name}" in res.stderr and "Traceback" not in res.stderr


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_direct_form_options_with_a_scenario_are_refused_not_ignored(cli: Cli) -> None:
    import fivelayer

    default = Path(fivelayer.__file__).parent / "data" / "scenarios" / "default.yaml"
    res = cli("simulate", str(default), "--rate", "5", "--tp", "2", "--requests", "10")  # --requests applies
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "error: --rate, --tp apply to the direct form" in res.stderr


def test_scenario_form_simulates_one_planned_unit_per_deployment(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: small\nsite: {region: us-va, power_cap: 10 MW}\n"
        "deployments:\n  - {name: chat, system: dgx-h200, model: llama-3.1-8b, precision: fp8,"
        " serves: [customer-service-assistant]}\n"
        "applications:\n  - {id: customer-service-assistant, users: 1000000}\n"
    )
    result = cli("simulate", str(path), "--requests", "200", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    (dep,) = data["deployments"]
    assert dep["deployment"] == "chat"
    assert dep["requests"] == 200
    assert dep["ttft_s"]["p50"] <= dep["ttft_s"]["p99"]


def test_direct_form_takes_a_power_limit(cli: Cli) -> None:
    args = (*BASE, "--rate", "50", "--requests", "200", "--input-tokens", "1024", "--output-tokens", "64", "--json")
    free = json.loads(cli(*args).stdout)
    capped = cli(*args, "--power-limit", "350")
    assert capped.code == 0, capped.stderr
    # Two H100s at most 350 W each, averaged over the run; the busy run takes longer than uncapped.
    assert json.loads(capped.stdout)["mean_power_w"] <= 2 * 350.0 + 1e-6
    assert json.loads(capped.stdout)["simulated_s"] >= free["simulated_s"]
    bad = cli(*args, "--power-limit", "40")
    assert bad.code == 2 and "idle power" in bad.stderr and "Traceback" not in bad.stderr


def test_without_chunked_prefill_prompts_stall_the_decodes(cli: Cli) -> None:
    args = (*BASE, "--rate", "40", "--requests", "300", "--input-tokens", "1024", "--output-tokens", "64", "--json")
    mixed = json.loads(cli(*args).stdout)
    res = cli(*args, "--no-chunked-prefill")
    assert res.code == 0, res.stderr
    alone = json.loads(res.stdout)
    # Same work; but every 1,024-token prompt now stops all decodes for a step of its own, so the streams
    # between tokens wait longer.
    assert alone["finished"] == mixed["finished"] == 300
    assert alone["tpot_s"]["p99"] > mixed["tpot_s"]["p99"]
    assert any("whole prompts in steps of their own" in a for a in alone["assumptions"])


def test_batching_front_end_on_the_command_line(cli: Cli) -> None:
    args = (*BASE, "--rate", "20", "--requests", "200", "--input-tokens", "256", "--output-tokens", "16", "--json")
    direct = json.loads(cli(*args).stdout)
    res = cli(*args, "--dispatch-batch", "64", "--dispatch-timeout", "0.5")
    assert res.code == 0, res.stderr
    held = json.loads(res.stdout)
    # At 20 requests/s a batch of 64 never fills: requests leave every 0.5 s, after waiting 0.25 s on average
    # (uniform arrivals in the window), which two lightly loaded H100s cannot hide.
    assert held["finished"] == 200
    assert held["ttft_s"]["p50"] > direct["ttft_s"]["p50"] + 0.1
    assert any("batching front end" in a for a in held["assumptions"])
    bad = cli(*args, "--dispatch-batch", "0")
    assert bad.code == 2 and "--dispatch-batch" in bad.stderr and "Traceback" not in bad.stderr
    endless = cli(*args, "--dispatch-timeout", "inf")  # named by its option, not by the Python field
    assert endless.code == 2 and "--dispatch-timeout" in endless.stderr and "Traceback" not in endless.stderr


def test_multi_step_scheduling_on_the_command_line(cli: Cli) -> None:
    args = (*BASE, "--rate", "20", "--requests", "300", "--input-tokens", "256", "--output-tokens", "64", "--json")
    every = json.loads(cli(*args).stdout)
    res = cli(*args, "--num-scheduler-steps", "8")
    assert res.code == 0, res.stderr
    multi = json.loads(res.stdout)
    # A prompt now waits for the end of the 8-step decode run in flight: several steps instead of part of one.
    assert multi["finished"] == 300
    assert multi["ttft_s"]["p50"] > 1.5 * every["ttft_s"]["p50"]
    assert any("once every 8 decode steps" in a for a in multi["assumptions"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # A scenario took --requests 0 as its default of 1,000, and --seed -1 was an internal error; a hundred
        # billion requests asked for 745 GiB before failing.
        (("--requests", "0"), "--requests must be between 1 and 10,000,000 (got 0)"),
        (("--requests", "100000000000"), "--requests must be between 1 and 10,000,000 (got 100,000,000,000)"),
        (("--seed", "-1"), "--seed must be non-negative (got -1)"),
    ],
)
def test_requests_and_seed_are_checked_in_both_forms(cli: Cli, options: tuple[str, ...], message: str) -> None:
    import fivelayer

    default = Path(fivelayer.__file__).parent / "data" / "scenarios" / "default.yaml"
    for form in ((*BASE, "--rate", "1"), ("simulate", str(default))):
        res = cli(*form, *options)
        assert res.code == 2, res.stdout
        assert message in res.stderr and "Traceback" not in res.stderr
