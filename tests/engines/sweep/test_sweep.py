"""Sweeps: study checks, fast path vs plan(), reproducibility, resume, optimisation, Dask."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fivelayer.engines.analytic import plan
from fivelayer.engines.sweep import (
    Evaluator,
    StudyError,
    design,
    load_study,
    optimum,
    percentiles,
    run_study,
    study_from_text,
)

MC = """
name: mc
method: montecarlo
samples: {samples}
seed: {seed}
chunk_size: {chunk}
parameters:
  - path: applications[customer-service-assistant].users
    distribution: {{kind: lognormal, median: 50e6, sigma: 0.6}}
  - path: site.power_cap
    range: [60 MW, 200 MW]
  - path: deployments[support].precision
    values: [fp8, fp4]
  - path: economics.discount_rate
    distribution: {{kind: normal, mean: 0.08, sd: 10%}}
  - path: site.region
    values: [us-va, us-tx, se]
  - path: facility.design
    values: [direct-to-chip, immersion]
  - path: catalog.grid-regions.us-tx.carbon_intensity_g_per_kwh
    range: [300, 500]
  - path: site.ppa_share
    range: [0, 0.5]
"""


def mc(samples: int = 40, seed: int = 3, chunk: int = 10) -> str:
    return MC.format(samples=samples, seed=seed, chunk=chunk)


def test_fast_path_agrees_with_plan() -> None:
    study = study_from_text(mc(samples=60))
    d = design(study)
    fast = Evaluator(study).evaluate(d)
    assert Evaluator(study).engine == "fast"
    exact = Evaluator(study, engine="exact").evaluate(d)
    assert (fast["feasible"] == exact["feasible"]).all()
    names = ("capex_usd", "annual_cost_usd", "energy_mwh_per_year", "co2_t_per_year", "accelerators", "racks",
             "usd_per_million_tokens", "revenue_usd_per_year", "unserved_demand_fraction", "tokens_per_s")  # fmt: skip
    for name in names:
        np.testing.assert_allclose(fast[name], exact[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_exact_path_is_plan() -> None:
    study = study_from_text(mc(samples=3))
    d = design(study)
    ev = Evaluator(study, engine="exact")
    out = ev.evaluate(d)
    assert out["capex_usd"][1] == pytest.approx(plan(ev.scenario(d, 1)).totals["capex_usd"], rel=1e-12)


def test_seed_makes_monte_carlo_reproducible() -> None:
    a = run_study(study_from_text(mc(seed=5))).table
    b = run_study(study_from_text(mc(seed=5))).table
    c = run_study(study_from_text(mc(seed=6))).table
    pd.testing.assert_frame_equal(a, b)
    assert not a["capex_usd"].equals(c["capex_usd"])


def test_percentiles_are_ordered() -> None:
    study = study_from_text(mc(samples=80, chunk=80))
    stats = percentiles(run_study(study).table, study.outputs)
    assert stats
    for s in stats.values():
        assert s["p10"] <= s["p50"] <= s["p90"]


@pytest.mark.parametrize("suffix", [".duckdb", ".parquet"])
def test_killed_sweep_resumes_to_the_same_table(tmp_path: Path, suffix: str) -> None:
    study = study_from_text(mc(samples=50, chunk=10))
    whole = run_study(study, tmp_path / f"whole{suffix}").table
    out = tmp_path / f"resumed{suffix}"
    first = run_study(study, out, max_chunks=2)  # killed after two chunks
    assert first.computed == 2 and not out.exists()
    (out.parent / (out.name + ".parts") / ".tmp-half.parquet").write_bytes(b"PAR1 half")  # a torn write
    second = run_study(study, out)
    assert second.skipped == 2 and second.computed == 3
    pd.testing.assert_frame_equal(second.table.reset_index(drop=True), whole.reset_index(drop=True))
    third = run_study(study, out)
    assert third.computed == 0
    pd.testing.assert_frame_equal(third.table, whole)
    other = study_from_text(mc(samples=50, chunk=10, seed=99))
    with pytest.raises(Exception, match="another study"):
        run_study(other, out)


OPT = """
name: opt
method: optimise
objective: {objective}
parameters:
  - path: deployments[support].system
    values: [dgx-h100, dgx-h200, dgx-b200]
  - path: deployments[support].precision
    values: [fp8, fp4]
  - path: site.region
    values: [us-va, se]
  - path: site.power_cap
    values: [100 MW, 400 MW]
"""


@pytest.mark.parametrize("objective", ["cost", "energy", "carbon"])
def test_optimiser_never_worse_than_brute_force(objective: str) -> None:
    study = study_from_text(OPT.format(objective=objective))
    best = optimum(run_study(study).table, study.objective)
    assert best is not None
    d = design(study)
    ev = Evaluator(study, engine="exact")
    brute = []
    for row in range(len(d["site.region"])):
        result = plan(ev.scenario(d, row))
        if result.totals["unserved_demand_fraction"] <= 1e-12:
            brute.append(result.totals[study.objective])
    assert best[study.objective] <= min(brute) * (1 + 1e-9)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("  - path: deployments[0].acelerator\n    values: [h100-sxm]", "deployments[0]"),
        ("  - path: economics.discount_rat\n    values: [0.1]", "discount_rat"),
        ("  - path: site.power_cap\n    range: [100 MW, 100 MW]", "empty range"),
        ("  - path: economics.discount_rate\n    range: []", "parameters[0].range"),
        ("  - path: economics.discount_rate\n    values: []", "empty list"),
        ("  - path: economics.discount_rate\n    distribution: {kind: normal, mean: 0.08, sd: -1}", "impossible"),
        ("  - path: economics.discount_rate\n    distribution: {kind: uniform, low: 0.1, high: 0.05}", "impossible"),
        ("  - path: applications[0].users\n    distribution: {kind: normal, mean: 1e6, sd: 1e6}", "impossible"),
        ("  - path: deployments[support].system\n    values: [dgx-h300]", "dgx-h"),
        ("  - path: catalog.accelerators.h200-sxm.price_dollars\n    values: [1]", "price_usd"),
    ],
)
def test_bad_study_is_rejected_with_the_field_named(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(f"name: bad\nmethod: montecarlo\nparameters:\n{body}\n")
    with pytest.raises(StudyError, match=r"study\.yaml line") as info:
        load_study(path)
    assert needle in str(info.value)


def test_cli_sweep(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from fivelayer.interfaces.cli.sweep import sweep_cmd

    app = typer.Typer()
    app.command()(sweep_cmd)
    path = tmp_path / "study.yaml"
    path.write_text(mc(samples=20, chunk=10))
    result = CliRunner().invoke(app, [str(path), "-o", str(tmp_path / "r.duckdb"), "--json"])
    assert result.exit_code == 0, result.output
    assert '"variants": 20' in result.output


def test_example_studies_load() -> None:
    root = Path(__file__).resolve().parents[3] / "docs" / "examples" / "studies"
    for path in sorted(root.glob("*.yaml")):
        assert load_study(path).parameters


def test_dask_gives_the_same_table_and_survives_a_dead_worker(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    path = tmp_path / "study.yaml"
    path.write_text(mc(samples=60, chunk=10))
    study = load_study(path)
    local = run_study(study).table
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0")  # fmt: skip
    client = distributed.Client(cluster)
    pids = client.run(os.getpid)
    killed: list[int] = []

    def progress(done: int, total: int) -> None:
        if done == 2 and not killed:  # a worker dies mid-study; its nanny restarts it, its tasks are redone
            pid = pids[sorted(pids)[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        out = tmp_path / "dask.duckdb"
        report = run_study(study, out, scheduler=cluster.scheduler_address, progress=progress)
    finally:
        client.close()
        cluster.close()
    assert killed
    pd.testing.assert_frame_equal(report.table.reset_index(drop=True), local.reset_index(drop=True))
    assert out.exists() and not (tmp_path / "dask.duckdb.parts").exists()
