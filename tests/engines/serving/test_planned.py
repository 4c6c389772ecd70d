"""One planned unit simulated at its share of the peak hour (``simulate_planned_unit``), as
``fivelayer simulate SCENARIO`` and ``fivelayer report --simulate`` run it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from fivelayer.catalog import default_catalog
from fivelayer.engines.analytic import plan
from fivelayer.engines.serving.planned import simulate_planned_unit
from fivelayer.interfaces.cli.app import app
from fivelayer.interfaces.cli.simulate import simulate_cmd
from fivelayer.scenario import load_scenario
from tests.conftest import CliResult

if not any(c.name == "simulate" for c in app.registered_commands):
    app.command("simulate")(simulate_cmd)

Cli = Callable[..., CliResult]

# One application with the catalog's daily profile of the customer-service assistant (mean 1, peak 1.33 at
# 10:00) and 6 requests per user per day; the scenario fixes the mean lengths so the load is worked by hand.
SCENARIO = """\
name: planned unit
site: {{region: us-va{cap}}}
deployments:
  - {{name: chat, system: dgx-h200, model: llama-3.1-8b, precision: fp8, serves: [customer-service-assistant]}}
applications:
  - {{id: customer-service-assistant, users: {users}, input_tokens: 1000, output_tokens: 200{extra}}}
"""


def _scenario(tmp_path: Path, users: int = 1_000_000, extra: str = "", cap: str = "") -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(users=users, extra=extra, cap=cap))
    return path


def _rate(workload: str) -> float:
    match = re.match(r"poisson at ([0-9.e+-]+) requests/s", workload)
    assert match, workload
    return float(match.group(1))


def test_the_unit_gets_its_share_of_the_peak_hour_the_plan_sized_for(tmp_path: Path) -> None:
    scenario = load_scenario(_scenario(tmp_path, users=10_000_000), default_catalog())
    row = plan(scenario).deployments[0]
    run = simulate_planned_unit(scenario, 0, int(row["units"]), requests=200)
    # Peak hour by hand: 10,000,000 users x 6 requests a day / 86,400 s x 1.33 = 923.6 requests/s, shared by the
    # plan's units; 200 output tokens each, so the plan's peak demand is 184,722 output tokens/s.
    assert row["peak_demand_per_s"] == pytest.approx(1e7 * 6 / 86400 * 1.33 * 200, rel=1e-9)
    assert _rate(run.result.summary["workload"]) == pytest.approx(1e7 * 6 / 86400 * 1.33 / row["units"], rel=1e-5)
    assert run.units == row["units"] and f"one of {row['units']:,} units" in run.load
    # The plan's layout and accelerators, and its analytic estimates beside the simulated p99s.
    (group,) = run.result.summary["cluster"]
    assert group["devices"] == row["accelerators"] // row["units"]
    assert (group["tp"], group["pp"], group["ep"]) == tuple(row["parallelism"][k] for k in ("tp", "pp", "ep"))
    assert run.plan_ttft_s == pytest.approx(row["ttft_s"]) and run.plan_tpot_s == pytest.approx(row["tpot_s"])
    # The catalog's targets for the application: TTFT 450 ms, TPOT 40 ms at p99.
    assert (run.ttft_target_s, run.tpot_target_s) == (0.45, 0.04)
    assert run.result.summary["latency_targets"] == {"ttft_s": 0.45, "tpot_s": 0.04}


def test_the_scenarios_own_latency_targets_judge_the_unit(tmp_path: Path, cli: Cli) -> None:
    # The scenario's targets (TTFT 15 ms, TPOT 5 ms) override the catalog's 450 ms and 40 ms; the simulation
    # used to judge goodput by the catalog's targets whatever the file said. The plan meets them on its
    # estimate (one step plus the 1,000-token prompt's prefill, no queueing, 13.4 ms), but prompts that
    # arrive while another prefills wait for it: the simulated p99 TTFT (28.5 ms) misses.
    path = _scenario(tmp_path, users=200_000, extra=", ttft_p99: 15 ms, tpot_p99: 5 ms")
    res = cli("simulate", str(path), "--requests", "100", "--json")
    assert res.code == 0, res.stderr
    (dep,) = json.loads(res.stdout)["deployments"]
    assert dep["latency_targets"] == {"ttft_s": pytest.approx(0.015), "tpot_s": pytest.approx(0.005)}
    assert dep["plan_estimate"]["ttft_s"] <= 0.015 and dep["plan_estimate"]["tpot_s"] <= 0.005
    assert dep["ttft_s"]["p99"] > 0.015
    assert dep["goodput_requests_per_s"] < dep["throughput_requests_per_s"]
    assert dep["meets_latency_targets"] is False
    assert "MISSES" in dep["verdict"] and "TTFT p99" in dep["verdict"] and "> 15.0 ms" in dep["verdict"]
    assert "TPOT p99" not in dep["verdict"].split(";")[0]  # its TPOT target is met


def test_a_unit_within_its_targets_is_said_to_meet_them(tmp_path: Path, cli: Cli) -> None:
    # Lax targets (60 s, 10 s): any sustainable unit meets them, and the table says so.
    path = _scenario(tmp_path, users=200_000, extra=", ttft_p99: 60 s, tpot_p99: 10 s")
    res = cli("simulate", str(path), "--requests", "100")
    assert res.code == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "chat: meets the applications' latency targets at this load" in text
    assert "one planned unit at the peak hour (the only unit)" in text
    assert "the plan's analytic estimate: TTFT" in text


def test_a_power_limited_unit_runs_at_most_its_planned_capacity(tmp_path: Path) -> None:
    # 1 MW cannot serve 500 million users' peak: the plan scales the deployment down and reports the rest as
    # unserved; the simulated unit carries its planned capacity, not its share of the whole demand.
    scenario = load_scenario(_scenario(tmp_path, users=500_000_000, cap=", power_cap: 1 MW"), default_catalog())
    row = plan(scenario).deployments[0]
    assert row["units"] >= 1 and row["capacity_per_s"] < row["peak_demand_per_s"]
    run = simulate_planned_unit(scenario, 0, int(row["units"]), requests=100)
    assert "capped at its planned capacity" in run.load
    assert _rate(run.result.summary["workload"]) * 200 == pytest.approx(row["capacity_per_s"] / row["units"], rel=1e-5)
