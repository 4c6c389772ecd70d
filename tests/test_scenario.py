"""Scenario files: the default validates; bad files are refused with file, line, field and a hint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fivelayer import ScenarioError, default_scenario, load_scenario

GOOD = """\
name: test factory
site:
  region: us-va
  power_cap: 20 MW
facility:
  design: direct-to-chip
deployments:
  - name: support
    accelerator: h200-sxm
    count: 64
    model: llama-3.1-70b
    precision: fp8
    serves: [customer-service-assistant]
applications:
  - id: customer-service-assistant
    users: 1000000
economics:
  discount_rate: 0.07
"""


def line_of(text: str, marker: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if marker in line:
            return number
    raise AssertionError(marker)


# (case id, old text, new text, marker of the offending line, field path, words the message must contain)
BAD = [
    (
        "unknown-accelerator",
        "h200-sxm",
        "h200-sxn",
        "h200-sxn",
        "deployments[0].accelerator",
        "Did you mean 'h200-sxm'",
    ),
    ("unknown-model", "llama-3.1-70b", "llama-3.1-71b", "llama-3.1-71b", "deployments[0].model", "Did you mean"),
    ("unknown-region", "us-va", "us-vaa", "us-vaa", "site.region", "Did you mean 'us-va'"),
    ("unknown-design", "direct-to-chip", "direct-to-chp", "direct-to-chp", "facility.design", "Did you mean"),
    ("negative-users", "users: 1000000", "users: -5", "users:", "applications[0].users", "greater than 0"),
    ("power-without-unit", "power_cap: 20 MW", "power_cap: 100", "power_cap", "site.power_cap", "has no unit"),
    ("power-wrong-unit", "power_cap: 20 MW", "power_cap: 20 GB", "power_cap", "site.power_cap", "not a W quantity"),
    (
        "power-below-one-rack",
        "power_cap: 20 MW",
        "power_cap: 50 kW",
        "power_cap",
        "site.power_cap",
        "below the power of one",
    ),
    ("typo-in-field", "site:", "sitee:", "sitee", "sitee", "unknown field; did you mean 'site'?"),
    ("typo-in-nested-field", "power_cap:", "power_capp:", "power_capp", "site.power_capp", "did you mean 'power_cap'?"),
    (
        "accelerator-and-system",
        "    count: 64",
        "    system: dgx-h200\n    count: 64",
        "- name: support",
        "deployments[0]",
        "exactly one of 'accelerator' or 'system'",
    ),
    ("bad-precision", "precision: fp8", "precision: fp7", "precision", "deployments[0].precision", "'fp7'"),
    ("zero-count", "count: 64", "count: 0", "count:", "deployments[0].count", "greater than or equal to 1"),
    (
        "serves-unknown-app",
        "serves: [customer-service-assistant]",
        "serves: [customer-service]",
        "serves",
        "deployments[0].serves[0]",
        "not in this scenario's applications",
    ),
    (
        "app-served-by-nobody",
        "serves: [customer-service-assistant]",
        "serves: []",
        "- id: customer-service-assistant",
        "applications[0].id",
        "served by no deployment",
    ),
    (
        "discount-rate-above-one",
        "discount_rate: 0.07",
        "discount_rate: 1.5",
        "discount_rate",
        "economics.discount_rate",
        "less than or equal to 0.5",
    ),
    (
        "negative-growth-below-minus-one",
        "users: 1000000",
        "users: 1000000\n    growth_per_year: -2",
        "growth_per_year",
        "applications[0].growth_per_year",
        "greater than or equal to -0.99",
    ),
    (
        "latency-without-unit",
        "users: 1000000",
        "users: 1000000\n    ttft_p99: 2",
        "ttft_p99",
        "applications[0].ttft_p99",
        "has no unit",
    ),
]


@pytest.mark.parametrize(("old", "new", "marker", "field", "words"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_scenario_exit_2_with_file_line_field(
    tmp_path: Path, cli: Callable[..., object], old: str, new: str, marker: str, field: str, words: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    result = cli("scenario", "check", str(path))
    assert result.code == 2, result.stderr  # type: ignore[attr-defined]
    message = result.stderr  # type: ignore[attr-defined]
    assert f"{path} line {line_of(text, marker)}" in message
    assert f"({field})" in message
    assert words in message
    assert "Traceback" not in message


def test_missing_section_is_named(tmp_path: Path, cli: Callable[..., object]) -> None:
    text = GOOD.split("deployments:")[0] + "applications:\n  - id: customer-service-assistant\n    users: 10\n"
    path = tmp_path / "s.yaml"
    path.write_text(text)
    result = cli("scenario", "check", str(path))
    assert result.code == 2  # type: ignore[attr-defined]
    assert "(deployments): Field required" in result.stderr  # type: ignore[attr-defined]


def test_invalid_yaml_names_the_line(tmp_path: Path, cli: Callable[..., object]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("  power_cap: 20 MW", "  power_cap: [20 MW"))
    result = cli("scenario", "check", str(path))
    assert result.code == 2  # type: ignore[attr-defined]
    assert f"{path} line" in result.stderr and "not valid YAML" in result.stderr  # type: ignore[attr-defined]


def test_missing_file(cli: Callable[..., object], tmp_path: Path) -> None:
    result = cli("scenario", "check", str(tmp_path / "nope.yaml"))
    assert result.code == 2  # type: ignore[attr-defined]
    assert "no such file" in result.stderr  # type: ignore[attr-defined]


def test_good_scenario_loads_with_si_values(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    scenario = load_scenario(path)
    assert scenario.site.power_cap == 20e6
    assert scenario.deployments[0].count == 64
    assert scenario.economics.discount_rate == 0.07
    assert scenario.economics.accelerator_life_years == 5.0  # default


def test_scenario_may_bring_its_own_catalog(tmp_path: Path) -> None:
    (tmp_path / "chips.yaml").write_text(
        (Path(__file__).parent / "core" / "test_catalog_machinery.py")
        .read_text()
        .split('CHIP = """\\\n')[1]
        .split('"""')[0]
        .format(id="my-npu", memory="96 GB")
        .replace("{{", "{")
        .replace("}}", "}")
    )
    path = tmp_path / "s.yaml"
    path.write_text("catalog: [chips.yaml]\n" + GOOD.replace("accelerator: h200-sxm", "accelerator: my-npu"))
    scenario = load_scenario(path)
    assert scenario.resolved_catalog.accelerators.get("my-npu").memory_bytes == 96e9


def test_explain_names_file_lines_defaults_and_sources(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    rows = {row.field: row for row in load_scenario(path).explain()}
    assert rows["site.power_cap"].origin == "scenario"
    assert rows["site.power_cap"].source == f"{path} line 4"
    assert rows["economics.accelerator_life_years"].origin == "default"
    assert "assumption" in rows["economics.accelerator_life_years"].source
    chip_tdp = rows["deployments[0].accelerator -> accelerators/h200-sxm.tdp_w"]
    assert chip_tdp.origin == "catalog" and chip_tdp.value == "700"
    assert "nvidia.com" in chip_tdp.source
    price = rows["deployments[0].accelerator -> accelerators/h200-sxm.price_usd"]
    assert price.source.startswith("estimate:")


def test_default_scenario_is_valid_and_explained(cli: Callable[..., object]) -> None:
    scenario = default_scenario()
    assert scenario.site.power_cap == 100e6
    assert {a.id for a in scenario.applications} == {"customer-service-assistant", "coding-agent"}
    result = cli("scenario", "explain", "--json")
    assert result.code == 0  # type: ignore[attr-defined]
    assert '"origin": "catalog"' in result.stdout  # type: ignore[attr-defined]


def test_python_errors_are_scenario_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("us-va", "atlantis"))
    with pytest.raises(ScenarioError, match="Unknown grid region 'atlantis'"):
        load_scenario(path)


def test_unquoted_no_gets_a_yaml_hint(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("region: us-va", "region: no"))
    with pytest.raises(ScenarioError, match=r"line 3 \(site.region\).*quote the value"):
        load_scenario(path)


def test_a_bad_only_deployment_is_one_problem_not_two(tmp_path: Path, cli: Callable[..., object]) -> None:
    # pydantic also reports the deployments list as empty (it counts only items that validated); the item's
    # own error is the whole story. An empty list is still refused as such.
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("precision: fp8", "precison: fp8"))
    message = cli("scenario", "check", str(path)).stderr  # type: ignore[attr-defined]
    assert "(deployments[0].precison): unknown field; did you mean 'precision'?" in message
    assert "at least 1 item" not in message
    empty = GOOD.split("deployments:")[0] + "deployments: []\n" + "applications:" + GOOD.split("applications:")[1]
    path.write_text(empty)
    message = cli("scenario", "check", str(path)).stderr  # type: ignore[attr-defined]
    assert "(deployments): Tuple should have at least 1 item" in message
