"""Simulate studies: variants that are serving simulations, in-process and on Dask, resumable, checked first."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fivelayer.engines.sweep import StudyError, load_study, run_study, study_from_text
from fivelayer.engines.sweep import simulate as simulate_module
from fivelayer.engines.sweep.simulate import SimulationEvaluator, run_simulation, variant_seed
from fivelayer.engines.sweep.spec import SIMULATE_OUTPUTS

#: Four variants of 200 requests each, two per chunk.
STUDY = """
name: small serving study
method: simulate
seed: 11
chunk_size: 2
simulation:
  accelerator: h100-sxm
  count: 2
  model: llama-3.1-8b
  requests: 200
  input_tokens: 512
  output_tokens: 64
  input_cv: 0.5
  output_cv: 0.3
parameters:
  - path: rate
    values: [5, 40]
  - path: accelerator
    values: [h100-sxm, h200-sxm]
"""
DASK_SECONDS = 240


def _write(tmp_path: Path, text: str = STUDY) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_one_row_per_variant_with_headline_results(tmp_path: Path) -> None:
    table = run_study(load_study(_write(tmp_path))).table
    assert list(table["variant"]) == [0, 1, 2, 3]
    assert list(table["rate"]) == [5.0, 5.0, 40.0, 40.0]
    assert list(table["accelerator"]) == ["h100-sxm", "h200-sxm", "h100-sxm", "h200-sxm"]
    for name in (*SIMULATE_OUTPUTS, "feasible", "simulation_seed", "layout", "error"):
        assert name in table.columns, name
    assert table["feasible"].all() and (table["error"] == "").all()
    assert (table["finished"] == 200).all()
    for metric in ("ttft", "tpot", "e2e"):
        assert (table[f"{metric}_p50_s"] <= table[f"{metric}_p90_s"]).all()
        assert (table[f"{metric}_p90_s"] <= table[f"{metric}_p99_s"]).all()
    # Eight times the arrival rate gives (about) eight times the throughput on an unsaturated cluster.
    ratio = table["throughput_requests_per_s"][2] / table["throughput_requests_per_s"][0]
    assert 4.0 < ratio < 16.0


def test_each_variant_is_seeded_from_the_study_seed_and_its_index(tmp_path: Path) -> None:
    study = load_study(_write(tmp_path))
    table = run_study(study).table
    assert list(table["simulation_seed"]) == [variant_seed(11, i) for i in range(4)]
    # A row is exactly the simulation that its inputs and seed give on their own (as `fivelayer simulate` runs it).
    evaluator = SimulationEvaluator(study)
    inputs = study.simulation.model_copy(update={"rate": 40.0, "accelerator": "h200-sxm"})
    alone = run_simulation(inputs, int(table["simulation_seed"][3]), evaluator.catalog).summary
    assert alone["throughput_tokens_per_s"] == table["throughput_tokens_per_s"][3]
    assert alone["ttft_s"]["p99"] == table["ttft_p99_s"][3]
    # One seed for every variant (common random numbers) when the study fixes it.
    fixed = study_from_text(STUDY.replace("  count: 2\n", "  count: 2\n  seed: 5\n"))
    assert set(run_study(fixed).table["simulation_seed"]) == {5}


def test_the_simulate_command_reproduces_a_row(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from fivelayer.interfaces.cli.simulate import simulate_cmd

    table = run_study(load_study(_write(tmp_path))).table
    row = table.iloc[1]
    app = typer.Typer()
    app.command()(simulate_cmd)
    args = ["--accelerator", "h200-sxm", "--count", "2", "--model", "llama-3.1-8b", "--rate", "5", "--requests", "200",
            "--input-tokens", "512", "--output-tokens", "64", "--input-cv", "0.5", "--output-cv", "0.3",
            "--seed", str(int(row["simulation_seed"])), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["throughput_tokens_per_s"] == row["throughput_tokens_per_s"]
    assert data["e2e_s"]["p90"] == row["e2e_p90_s"]


def test_dask_gives_the_same_table(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    study = load_study(_write(tmp_path))
    local = run_study(study).table
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0")  # fmt: skip
    out = tmp_path / "dask.duckdb"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        running = pool.submit(run_study, study, out, scheduler=cluster.scheduler_address)
        report = running.result(timeout=DASK_SECONDS)  # bounded: a hung cluster fails the test
    finally:
        cluster.close()
        pool.shutdown(wait=False, cancel_futures=True)
    assert report.backend.startswith("dask") and report.computed == 2
    pd.testing.assert_frame_equal(report.table.reset_index(drop=True), local.reset_index(drop=True))
    assert out.exists() and not (tmp_path / "dask.duckdb.parts").exists()


class _Interrupted(Exception):
    pass


def test_interrupted_study_resumes_without_redoing_finished_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = load_study(_write(tmp_path))
    whole = run_study(study, tmp_path / "whole.parquet").table
    calls: list[Any] = []
    real = simulate_module.run_simulation

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(simulate_module, "run_simulation", counting)

    def interrupt(done: int, total: int) -> None:
        if done == 1:
            raise _Interrupted  # killed right after the first chunk was stored

    out = tmp_path / "resumed.duckdb"
    with pytest.raises(_Interrupted):
        run_study(study, out, progress=interrupt)
    assert len(calls) == 2 and not out.exists()
    parts = out.parent / (out.name + ".parts")
    assert sorted(p.name for p in parts.glob("chunk-*.parquet")) == ["chunk-000000.parquet"]
    calls.clear()
    resumed = run_study(study, out)
    assert resumed.skipped == 1 and resumed.computed == 1
    assert len(calls) == 2  # only the second chunk's two variants were simulated
    assert [c.rate for c in calls] == [40.0, 40.0]
    pd.testing.assert_frame_equal(resumed.table.reset_index(drop=True), whole.reset_index(drop=True))
    calls.clear()
    again = run_study(study, out)
    assert again.computed == 0 and not calls
    pd.testing.assert_frame_equal(again.table, whole)


def test_a_configuration_that_cannot_be_served_is_an_infeasible_row() -> None:
    study = study_from_text(STUDY.replace("  count: 2\n", "  count: 2\n  tp: 4\n"))
    table = run_study(study).table
    assert not table["feasible"].any()
    assert table["error"].str.contains("no parallel layout fits").all()
    assert table["throughput_tokens_per_s"].isna().all()


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (("  - path: rate\n", "  - path: rat\n"), "unknown simulation input 'rat'; did you mean 'rate'"),
        (("values: [5, 40]", "values: [5, -40]"), "parameters[0].values[1]): value -40 for rate is not valid"),
        (("  count: 2\n", "  count: 2\n  rate: -3\n"), "(simulation.rate): Input should be greater than 0"),
        (("  count: 2\n", "  count: 2\n  rat: 3\n"), "(simulation.rat): unknown field; did you mean 'rate'?"),
        (("values: [h100-sxm, h200-sxm]", "values: [h100-sxm, h200-sxn]"), "parameters[1].values[1]"),
        (("  model: llama-3.1-8b\n", "  model: llama-3.1-8c\n"), "(simulation.model)"),
        (("  model: llama-3.1-8b\n", ""), "needs model"),
        (("  count: 2\n", "  count: 2\n  trace: missing.csv\n"), "(simulation.trace)"),
        (("  count: 2\n", "  count: 2\n  precision: fp9\n"), "Unknown precision 'fp9'"),
        (("  count: 2\n", "  count: 2\n  burstiness: -0.5\n"), "(simulation.burstiness)"),
        # A token-length spread over 10 (TokenLengths' bound) once failed inside the run, case by case.
        (("  input_cv: 0.5\n", "  input_cv: 100\n"), "(simulation.input_cv)"),
        (("  count: 2\n", "  count: 2\n  dispatch_timeout: .inf\n"), "(simulation.dispatch_timeout)"),
        (("    values: [5, 40]", "    distribution: {kind: uniform, low: 2, high: 50}"), "distributions are for"),
        (("    values: [5, 40]", "    range: [40, 5]"), "empty range for rate"),
        (("chunk_size: 2\n", "chunk_size: 2\noutputs: [goodput_request_per_s]\n"), "'goodput_requests_per_s'"),
    ],
)
def test_bad_simulate_study_is_rejected_with_the_field_named(tmp_path: Path, edit: tuple[str, str],
                                                             needle: str) -> None:  # fmt: skip
    old, new = edit
    assert old in STUDY
    path = _write(tmp_path, STUDY.replace(old, new))
    with pytest.raises(StudyError, match=r"study\.yaml") as info:
        load_study(path)
    assert needle in str(info.value)
    assert " line " in str(info.value)


def test_impossible_distribution_for_rate_is_rejected(tmp_path: Path) -> None:
    text = STUDY.replace("seed: 11\n", "seed: 11\nsampling: random\nsamples: 4\n").replace(
        "    values: [5, 40]", "    distribution: {kind: normal, mean: 10, sd: 5}"
    )
    with pytest.raises(StudyError, match=r"line \d+ \(parameters\[0\]\.distribution\): impossible normal"):
        load_study(_write(tmp_path, text))


def test_random_sampling_draws_the_same_variants_every_time() -> None:
    text = (
        STUDY.replace("seed: 11\n", "seed: 11\nsampling: lhs\nsamples: 3\n")
        .replace("    values: [5, 40]", "    distribution: {kind: loguniform, low: 2, high: 50}")
        .replace("  count: 2\n", "  count: 2\n  requests: 50\n")
        .replace("  requests: 200\n", "")
    )
    a = run_study(study_from_text(text)).table
    b = run_study(study_from_text(text)).table
    assert len(a) == 3 and a["rate"].between(2, 50).all()
    pd.testing.assert_frame_equal(a, b)


def test_cli_sweep_simulate(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from fivelayer.interfaces.cli.sweep import sweep_cmd

    app = typer.Typer()
    app.command()(sweep_cmd)
    path = _write(tmp_path)
    result = CliRunner().invoke(app, [str(path), "-o", str(tmp_path / "r.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["method"] == "simulate" and data["variants"] == 4 and data["feasible"] == 4
    assert data["engine"] == "simulate"
    assert len(data["rows"]) == 4 and data["rows"][3]["accelerator"] == "h200-sxm"
    assert data["percentiles"]["goodput_requests_per_s"]["p10"] <= data["percentiles"]["goodput_requests_per_s"]["p90"]
    table = CliRunner().invoke(app, [str(path), "-o", str(tmp_path / "r.parquet")])
    assert table.exit_code == 0, table.output
    assert "0 chunk(s) computed" in table.output


def test_example_serving_study_loads() -> None:
    root = Path(__file__).resolve().parents[3] / "docs" / "examples" / "studies"
    study = load_study(root / "serving.yaml")
    assert study.simulate and study.parameters


def test_trace_study_reads_the_trace_relative_to_the_study_and_fingerprints_it(tmp_path: Path) -> None:
    lines = ["arrival_s,input_tokens,output_tokens"] + [f"{0.1 * i:.1f},{200 + 7 * i},{20 + i % 9}" for i in range(60)]
    (tmp_path / "trace.csv").write_text("\n".join(lines) + "\n")
    shaped = STUDY.replace("  requests: 200\n", "  trace: trace.csv\n").replace(
        "  - path: rate\n    values: [5, 40]\n", "  - path: prefix_caching\n    values: [true, false]\n"
    )
    # The trace gives each request's tokens: the synthetic lengths of the base study would be ignored, so a
    # study that keeps them is refused at their line (they were once silently ignored).
    with pytest.raises(StudyError, match=r"line 11 \(simulation.input_tokens\): input_tokens, output_tokens, "
                                         r"input_cv, output_cv shape synthetic arrivals"):  # fmt: skip
        load_study(_write(tmp_path, shaped))
    text = "".join(line for line in shaped.splitlines(keepends=True) if "_tokens:" not in line and "_cv:" not in line)
    study = load_study(_write(tmp_path, text))
    table = run_study(study).table
    assert (table["finished"] == 60).all() and table["feasible"].all()
    before = study.fingerprint
    (tmp_path / "trace.csv").write_text("\n".join(lines[:-1]) + "\n")
    assert load_study(tmp_path / "study.yaml").fingerprint != before
    both = _write(tmp_path, text.replace("  count: 2\n", "  count: 2\n  rate: 4\n"))
    with pytest.raises(StudyError, match=r"exactly one of rate .* this study gives rate and trace"):
        load_study(both)


def test_a_distribution_written_as_one_string_is_refused_with_the_mapping_form(tmp_path: Path) -> None:
    # The methodology once listed distributions as `uniform low high`; written that way, pydantic only said
    # "Input should be a valid dictionary". The error now shows the mapping form.
    study = tmp_path / "s.yaml"
    study.write_text(
        "name: x\nmethod: simulate\nsimulation: {accelerator: h100-sxm, model: llama-3.1-8b, rate: 5}\n"
        "parameters:\n  - path: rate\n    distribution: uniform 1 10\n"
    )
    with pytest.raises(StudyError, match=r"line 6 \(parameters\[0\]\.distribution\): write a distribution as"):
        load_study(study)
