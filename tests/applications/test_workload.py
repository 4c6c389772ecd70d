"""Arrival processes, token lengths and trace reading (applications/workload.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fivelayer.applications.application import TokenLengths
from fivelayer.applications.workload import (
    daily_profile_arrivals,
    gamma_arrivals,
    multi_turn_sessions,
    poisson_arrivals,
    read_trace,
    sample_lengths,
    synthetic_workload,
    token_lengths,
)
from fivelayer.core.errors import FivelayerError
from tests.conftest import SHARED

AZURE = SHARED / "data" / "azure-llm-inference-2023"


def test_poisson_gaps_average_one_over_rate() -> None:
    t = poisson_arrivals(4.0, 40_000, np.random.default_rng(1))
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(0.25, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.03)  # exponential: cv 1


def test_gamma_gaps_have_the_requested_burstiness() -> None:
    gaps = np.diff(gamma_arrivals(10.0, 40_000, np.random.default_rng(2), cv=3.0))
    assert gaps.mean() == pytest.approx(0.1, rel=0.05)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.05)


def test_daily_profile_puts_arrivals_where_the_rate_is() -> None:
    profile = [0.0] * 12 + [2.0] * 12  # nothing before noon, twice the mean after
    t = daily_profile_arrivals(0.01, 800, np.random.default_rng(3), profile)
    hours = (t / 3600.0) % 24
    assert np.all(hours >= 12.0)
    # 0.01/s x 2 x 12 h = 864 arrivals a day: 800 arrivals fill most of the first day.
    assert t[-1] / 3600.0 == pytest.approx(12 + 800 / 864 * 12, rel=0.05)


def test_lognormal_lengths_have_mean_and_cv() -> None:
    x = sample_lengths(TokenLengths(distribution="lognormal", mean=500, cv=1.0), 50_000, np.random.default_rng(4))
    assert x.mean() == pytest.approx(500, rel=0.03)
    assert x.std() / x.mean() == pytest.approx(1.0, rel=0.08)
    assert sample_lengths(7, 3, np.random.default_rng(0)).tolist() == [7, 7, 7]


def test_multi_turn_prompts_carry_the_conversation() -> None:
    inp = np.array([10, 20, 30, 40])
    out = np.array([5, 5, 5, 5])
    session, prompt, prefix = multi_turn_sessions(inp, out, np.random.default_rng(0), turns_mean=1e9)
    # One session (never a new one after the first): each prompt = previous prompt + answer + new tokens.
    assert session.tolist() == [0, 0, 0, 0]
    assert prompt.tolist() == [10, 35, 70, 115]
    assert prefix.tolist() == [0, 15, 40, 75]


def test_azure_trace_reads_with_relative_arrival_times() -> None:
    w = read_trace(AZURE / "AzureLLMInferenceTrace_conv.csv")
    assert len(w) == 19366
    # 18:15:46.6805900 -> 18:15:50.9951690 is 4.314579 s (lines 2 and 3 of the file).
    assert w.arrival_s[:2].tolist() == pytest.approx([0.0, 4.314579])
    assert w.input_tokens[:2].tolist() == [374, 396]
    assert w.output_tokens[:2].tolist() == [44, 109]
    assert read_trace(AZURE / "AzureLLMInferenceTrace_code.csv", limit=5).input_tokens.tolist()[0] == 4808


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("TIMESTAMP,ContextTokens\n1,2\n", "line 1: missing column(s) GeneratedTokens"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n1,ten,5\n", "line 3: ContextTokens is not a whole number"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n1,10,-5\n", "line 3: GeneratedTokens is negative"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n2,10,5\n1,10,5\n", "line 4: timestamps out of order"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,1\nsoon,1,1\n", "line 3: TIMESTAMP is not"),
        # 1e400 overflows a float to inf: not a time, rather than an arrival that turns every result into NaN.
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n1e400,10,5\n", "line 3: TIMESTAMP is not a number"),
        # 1e30 tokens would wrap around when cast to a 64-bit integer and read as a negative count.
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,1e30,5\n", "line 2: ContextTokens is more than 2,147,483,647"),
        # One field too many: pandas would take the first as an index and shift the rest into the wrong columns.
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5,7\n", "line 2: 4 fields, but the header has 3"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n1,10,5,7\n", "line 3: 4 fields, but the header has 3"),
        # A blank line still counts: the bad row is line 4 of the file.
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n\n1,10,-5\n", "line 4: GeneratedTokens is negative"),
        (
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:00,1,1\n5,1,1\n",
            "line 2: TIMESTAMP is not a number of seconds ('2023-11-16 18:00:00'), as line 3's is",
        ),
    ],
)
def test_malformed_trace_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(FivelayerError) as info:
        read_trace(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_synthetic_requests_longer_than_the_context_are_trimmed_and_counted() -> None:
    # Prompts of mean 60 and cv 1.5 with 30-token answers against a 120-token context: the mean fits, the
    # long tail does not. Each long request loses prompt tokens down to 120 - 30 = 90, and the workload says
    # how many were trimmed: those whose drawn prompt (the same draw, from the same seed) exceeded 90.
    prompts = TokenLengths(mean=60, cv=1.5)
    w = synthetic_workload(200, np.random.default_rng(0), np.random.default_rng(1), rate_per_s=1.0,
                           input_tokens=prompts, output_tokens=30, max_context=120)  # fmt: skip
    drawn = sample_lengths(prompts, 200, np.random.default_rng(1))
    long = drawn > 90
    assert 0 < long.sum() < 200
    assert w.input_tokens.tolist() == np.where(long, 90, drawn).tolist()
    assert w.notes == (f"{long.sum()} of 200 requests drawn longer than the model's context of 120 tokens were "
                       "trimmed to it (the prompt first)",)  # fmt: skip
    assert w.head(2).notes == w.notes
    rng = np.random.default_rng(0)
    fits = synthetic_workload(5, rng, rng, rate_per_s=1.0, input_tokens=90, output_tokens=30, max_context=120)
    assert fits.notes == ()


@pytest.mark.parametrize("turns", [0.5, 0.0, float("nan")])
def test_fewer_than_one_turn_per_conversation_is_refused(turns: float) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(FivelayerError, match="turns per conversation must be at least 1"):
        synthetic_workload(5, rng, rng, rate_per_s=1.0, input_tokens=10, output_tokens=5, turns_mean=turns)


def test_trace_dates_with_time_zone_offsets_are_compared_in_utc(tmp_path: Path) -> None:
    # 19:00:30+01:00 is 18:00:30 UTC: 30 s after the first request, not an hour; pandas once refused the mix.
    path = tmp_path / "tz.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16T18:00:00+00:00,10,5\n"
                    "2023-11-16T19:00:30+01:00,10,5\n")  # fmt: skip
    assert read_trace(path).arrival_s.tolist() == [0.0, 30.0]


def test_a_folder_given_as_the_trace_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(FivelayerError, match="is a folder"):
        read_trace(tmp_path)


def test_mean_lengths_beyond_the_context_are_refused_not_trimmed() -> None:
    # Trimming the tail of a spread is what an engine's front end does; trimming every request of a mean that
    # cannot fit would simulate a different workload than the one asked for.
    rng = np.random.default_rng(0)
    with pytest.raises(FivelayerError, match="llama-2-70b has a context of 4,096 tokens; 4,000 input \\+ 200 output"):
        synthetic_workload(5, rng, rng, rate_per_s=1.0, input_tokens=TokenLengths(mean=4000, cv=0.5),
                           output_tokens=200, max_context=4096, model="llama-2-70b")  # fmt: skip


@pytest.mark.parametrize("cv", [-0.1, 10.5, float("nan")])
def test_a_length_spread_out_of_range_is_refused_naming_what_set_it(cv: float) -> None:
    with pytest.raises(FivelayerError, match=f"--input-cv must be between 0 and 10 \\(got {cv}\\)"):
        token_lengths(100, cv, "--input-cv")
