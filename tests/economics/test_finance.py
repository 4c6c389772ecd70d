"""Finance and unit-cost definitions, checked by hand and against SemiAnalysis InferenceMAX's constants."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fivelayer.economics import (
    annualised_capex,
    capital_recovery_factor,
    net_present_value,
    payback_years,
    tokens_per_s_per_mw,
    usd_per_million_tokens,
)
from tests.conftest import REPO


def test_capital_recovery_by_hand() -> None:
    # 8 % over 5 years: 0.08 x 1.08^5 / (1.08^5 - 1) = 0.08 x 1.469328 / 0.469328 = 0.250456
    assert capital_recovery_factor(0.08, 5) == pytest.approx(0.250456, abs=1e-6)
    assert annualised_capex(38e9, 0.0, 5) == pytest.approx(7.6e9)


@given(st.floats(0.0, 0.3), st.floats(1.0, 40.0))
def test_annuity_repays_the_capital(rate: float, years: float) -> None:
    """The present value of the annuity over the life equals the capital."""
    crf = capital_recovery_factor(rate, years)
    if rate == 0:
        assert crf * years == pytest.approx(1.0)
    else:
        pv = crf * -math.expm1(-years * math.log1p(rate)) / rate
        assert pv == pytest.approx(1.0)


def test_npv_and_payback() -> None:
    assert net_present_value(0.1, [-100.0, 60.0, 60.0]) == pytest.approx(-100 + 60 / 1.1 + 60 / 1.21)
    assert payback_years(100.0, 0.0) == math.inf


INFERENCEMAX = yaml.safe_load((REPO / "src/fivelayer/data/reference/economics.yaml").read_text())[
    "semianalysis-inferencemax-tco"
]


@pytest.mark.parametrize("gpu", sorted(INFERENCEMAX["gpu_constants"]))
def test_inferencemax_definitions(gpu: str) -> None:
    """cost per M tokens = USD/GPU-hour / (tok/s/GPU x 3600 / 1e6); tok/s/MW = tok/s/GPU x 1000 / kW per GPU."""
    constants = INFERENCEMAX["gpu_constants"][gpu]
    throughput = 2500.0  # tokens/s per GPU, any value
    expected_cost = constants["costh"] / (throughput * 3600 / 1e6)
    assert usd_per_million_tokens(constants["costh"], throughput) == pytest.approx(expected_cost)
    assert tokens_per_s_per_mw(throughput, constants["power_kw"]) == pytest.approx(
        throughput * 1000 / constants["power_kw"]
    )


def test_inferencemax_worked_example() -> None:
    # H100: 1.30 USD/GPU-hour (hyperscaler tier), 1.73 kW all-in; at 1,000 tok/s/GPU:
    # 3.6 M tokens per hour -> 0.361 USD per M tokens; 1,000 x 1,000 / 1.73 = 578,035 tok/s per MW.
    h100 = INFERENCEMAX["gpu_constants"]["h100"]
    assert usd_per_million_tokens(h100["costh"], 1000.0) == pytest.approx(0.3611, abs=1e-4)
    assert tokens_per_s_per_mw(1000.0, h100["power_kw"]) == pytest.approx(578_035, abs=1)
