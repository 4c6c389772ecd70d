"""Workloads for the serving simulator: arrival processes, token lengths, multi-turn sessions, traces.

Everything here is a pure function of its arguments and a seeded ``numpy.random.Generator`` passed in
(named streams: :class:`fivelayer.core.streams.RandomStreams`). A :class:`Workload` is a set of requests as
NumPy arrays, sorted by arrival time:

- ``poisson_arrivals``: exponential gaps at a mean rate (memoryless traffic);
- ``gamma_arrivals``: gamma gaps with a coefficient of variation ``cv`` (``cv`` > 1 is burstier than Poisson);
- ``daily_profile_arrivals``: a Poisson process whose rate follows 24 hourly factors (time rescaling);
- ``read_trace``: a CSV trace in the Azure LLM inference trace format
  (``TIMESTAMP,ContextTokens,GeneratedTokens``; timestamps as seconds or ISO dates), or the columns
  ``arrival_s,input_tokens,output_tokens``.

>>> import numpy as np
>>> t = poisson_arrivals(2.0, 4, np.random.default_rng(0))
>>> t.shape, bool(np.all(np.diff(t) >= 0))
((4,), True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fivelayer.applications.application import TokenLengths, check_length_cv
from fivelayer.core.errors import FivelayerError

__all__ = [
    "MAX_REQUESTS",
    "TRACE_COLUMNS",
    "LengthMix",
    "Workload",
    "daily_profile_arrivals",
    "gamma_arrivals",
    "multi_turn_sessions",
    "poisson_arrivals",
    "read_trace",
    "sample_lengths",
    "synthetic_workload",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: The most requests one simulation takes from the command line or a study (about 1.2 GB of per-request
#: records); more is almost certainly a typo.
MAX_REQUESTS = 10_000_000

#: Accepted column names of a trace: (arrival, input tokens, output tokens). The first set is the public
#: Azure LLM inference trace (Azure/AzurePublicDataset, AzureLLMInferenceTrace_{code,conv}.csv).
TRACE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    ("arrival_s", "input_tokens", "output_tokens"),
)


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival: arrival time (s), prompt and output tokens, session and shared prefix.

    ``prefix_tokens[i]`` is how many leading prompt tokens request ``i`` shares with the previous request of
    its session (``session[i]``; -1 for a request without a session), which a prefix cache may hold.
    """

    arrival_s: FloatArray
    input_tokens: IntArray
    output_tokens: IntArray
    session: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    prefix_tokens: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    source: str = "synthetic"
    #: What was changed while the workload was made (prompts trimmed to the model's context), for the report.
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.arrival_s.size
        if self.session.size == 0 and n:
            object.__setattr__(self, "session", np.full(n, -1, dtype=np.int64))
        if self.prefix_tokens.size == 0 and n:
            object.__setattr__(self, "prefix_tokens", np.zeros(n, dtype=np.int64))
        sizes = {self.input_tokens.size, self.output_tokens.size, self.session.size, self.prefix_tokens.size}
        if sizes != {n}:
            raise FivelayerError("workload arrays must all have one entry per request")
        if n and np.any(np.diff(self.arrival_s) < 0):
            raise FivelayerError("workload arrivals must be sorted by time")
        if n and (np.any(self.input_tokens < 1) or np.any(self.output_tokens < 1)):
            raise FivelayerError("every request needs at least one input and one output token")

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    @property
    def duration_s(self) -> float:
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) else 0.0

    def head(self, n: int) -> Workload:
        """The first ``n`` requests."""
        return Workload(
            self.arrival_s[:n], self.input_tokens[:n], self.output_tokens[:n], self.session[:n],
            self.prefix_tokens[:n], self.source, self.notes,
        )  # fmt: skip


# --- arrival processes -------------------------------------------------------------------------------


def _check_rate(rate: float, n: int) -> None:
    if not rate > 0 or not np.isfinite(rate):
        raise FivelayerError(f"request rate must be a positive number of requests per second (got {rate})")
    if n < 0:
        raise FivelayerError(f"number of requests must be non-negative (got {n})")


def poisson_arrivals(rate_per_s: float, n: int, rng: np.random.Generator, start_s: float = 0.0) -> FloatArray:
    """``n`` arrival times of a Poisson process of ``rate_per_s`` (exponential gaps, the first after one gap)."""
    _check_rate(rate_per_s, n)
    return start_s + np.cumsum(rng.exponential(1.0 / rate_per_s, size=n))


def gamma_arrivals(
    rate_per_s: float, n: int, rng: np.random.Generator, cv: float = 2.0, start_s: float = 0.0
) -> FloatArray:
    """``n`` arrival times with gamma-distributed gaps of mean ``1/rate`` and coefficient of variation ``cv``.

    Shape ``k = 1/cv^2``, scale ``1/(rate k)``: ``cv = 1`` is Poisson, larger ``cv`` bursty traffic.
    """
    _check_rate(rate_per_s, n)
    if not cv > 0:
        raise FivelayerError(f"burstiness cv must be positive (got {cv})")
    shape = 1.0 / (cv * cv)
    return start_s + np.cumsum(rng.gamma(shape, 1.0 / (rate_per_s * shape), size=n))


def daily_profile_arrivals(
    mean_rate_per_s: float,
    n: int,
    rng: np.random.Generator,
    profile: tuple[float, ...] | list[float],
    start_hour: float = 0.0,
) -> FloatArray:
    """``n`` arrivals of a Poisson process whose rate is ``mean_rate x profile[hour]`` (24 hourly factors).

    Time rescaling: unit-rate Poisson points are mapped through the inverse of the cumulative intensity,
    which is piecewise linear over the hours (and repeats daily). Times start at ``start_hour`` (0 = midnight)
    and are returned relative to it, in seconds.
    """
    _check_rate(mean_rate_per_s, n)
    factors = np.asarray(profile, dtype=np.float64)
    if factors.size != 24 or np.any(factors < 0) or factors.sum() <= 0:
        raise FivelayerError("a daily profile needs 24 non-negative hourly factors, not all zero")
    hour_s = 3600.0
    rates = mean_rate_per_s * factors
    # Cumulative expected arrivals at each hour boundary, over enough days to hold n arrivals.
    per_day = float(rates.sum() * hour_s)
    start = start_hour % 24.0
    unit = np.cumsum(rng.exponential(1.0, size=n))
    offset = float(np.interp(start, np.arange(25), np.concatenate([[0.0], np.cumsum(rates * hour_s)])))
    target = unit + offset
    days = int(np.ceil((target[-1] if n else 0.0) / per_day)) + 1
    hours = np.arange(24 * days + 1, dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(np.tile(rates * hour_s, days))])
    # Inverse of the non-decreasing, piecewise-linear cumulative intensity: the first hour boundary at or
    # above each target closes a segment of positive rate (zero-rate hours are skipped over).
    i = np.clip(np.searchsorted(cum, target, side="left"), 1, cum.size - 1)
    t_hours = hours[i - 1] + (target - cum[i - 1]) / (cum[i] - cum[i - 1])
    out: FloatArray = (t_hours - start) * hour_s
    return out


# --- token lengths -----------------------------------------------------------------------------------


def sample_lengths(spec: TokenLengths | int | float, n: int, rng: np.random.Generator, maximum: int = 0) -> IntArray:
    """``n`` token counts: a fixed number, or a :class:`TokenLengths` (fixed or lognormal with mean and cv).

    A lognormal with mean ``m`` and coefficient of variation ``cv`` has ``sigma^2 = ln(1 + cv^2)`` and
    ``mu = ln m - sigma^2/2``. Counts are rounded and clipped to ``[1, maximum]`` (no upper clip if 0).
    """
    if isinstance(spec, int | float):
        spec = TokenLengths(distribution="fixed", mean=float(spec))
    if spec.distribution == "fixed" or spec.cv == 0:
        values = np.full(n, spec.mean)
    else:
        sigma2 = np.log1p(spec.cv**2)
        values = rng.lognormal(np.log(max(spec.mean, 1e-9)) - sigma2 / 2.0, np.sqrt(sigma2), size=n)
    out: IntArray = np.maximum(np.rint(values), 1).astype(np.int64)
    if maximum:
        out = np.minimum(out, maximum).astype(np.int64)
    return out


@dataclass(frozen=True)
class LengthMix:
    """Requests of several kinds (the applications one deployment serves), each with its own prompt and output
    lengths: a request is of kind ``j`` with probability ``weights[j] / sum(weights)``, and its two lengths
    come from kind ``j``'s distributions (a long-prompt application keeps its own outputs).

    >>> mix = LengthMix((3.0, 1.0), (100, 1000), (10, 50))
    >>> mix.means()
    (325.0, 20.0)
    """

    weights: tuple[float, ...]
    input_tokens: tuple[TokenLengths | int, ...]
    output_tokens: tuple[TokenLengths | int, ...]

    def __post_init__(self) -> None:
        if not self.weights or not len(self.weights) == len(self.input_tokens) == len(self.output_tokens):
            raise FivelayerError("a length mix needs one weight, one prompt and one output length per kind")
        if not all(0 <= w < np.inf for w in self.weights) or not sum(self.weights) > 0:
            raise FivelayerError(f"length mix weights must be non-negative with a positive sum (got {self.weights})")

    def means(self) -> tuple[float, float]:
        """The mean prompt and output tokens of a request of the mix."""
        w = np.asarray(self.weights, dtype=np.float64) / sum(self.weights)

        def mean(specs: tuple[TokenLengths | int, ...]) -> float:
            return float(w @ np.array([s.mean if isinstance(s, TokenLengths) else s for s in specs], dtype=float))

        return mean(self.input_tokens), mean(self.output_tokens)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
        """``n`` requests' prompt and output tokens: a kind for each, then its lengths from that kind."""
        p = np.asarray(self.weights, dtype=np.float64)
        # One kind draws its lengths as input_tokens and output_tokens would, from the same stream.
        kinds = rng.choice(len(p), size=n, p=p / p.sum()) if len(p) > 1 else np.zeros(n, dtype=np.int64)
        inp = np.empty(n, dtype=np.int64)
        out = np.empty(n, dtype=np.int64)
        for j in range(len(p)):
            at = np.flatnonzero(kinds == j)
            inp[at] = sample_lengths(self.input_tokens[j], at.size, rng)
            out[at] = sample_lengths(self.output_tokens[j], at.size, rng)
        return inp, out


def multi_turn_sessions(
    input_tokens: IntArray,
    output_tokens: IntArray,
    rng: np.random.Generator,
    turns_mean: float,
) -> tuple[IntArray, IntArray, IntArray]:
    """Group consecutive requests into conversations of geometric length (mean ``turns_mean`` turns).

    Turn ``j`` of a session re-sends the whole conversation so far: its prompt is the previous turn's
    prompt and answer (the shared prefix) plus its own new tokens. Returns ``(session, input_tokens,
    prefix_tokens)``: the session of each request, its full prompt and the prefix it shares.
    """
    n = input_tokens.size
    if turns_mean < 1:
        raise FivelayerError(f"turns per session must be at least 1 (got {turns_mean})")
    session = np.empty(n, dtype=np.int64)
    prompt = np.empty(n, dtype=np.int64)
    prefix = np.zeros(n, dtype=np.int64)
    # Sessions interleave in time: each request joins a random open session or starts a new one.
    p_new = 1.0 / turns_mean
    starts = rng.random(n) < p_new
    if n:
        starts[0] = True
    open_sessions: list[int] = []
    context: dict[int, int] = {}
    choice = rng.random(n)
    next_id = 0
    for i in range(n):
        if starts[i] or not open_sessions:
            s = next_id
            next_id += 1
            open_sessions.append(s)
            prefix[i] = 0
            prompt[i] = input_tokens[i]
        else:
            s = open_sessions[int(choice[i] * len(open_sessions))]
            prefix[i] = context[s]
            prompt[i] = context[s] + input_tokens[i]
        session[i] = s
        context[s] = int(prompt[i] + output_tokens[i])
        if len(open_sessions) > 64:  # conversations end; keep the most recent ones open
            open_sessions.pop(0)
    return session, prompt, prefix


#: The inputs (command-line options, study fields) that shape a synthetic workload and mean nothing with a
#: trace, which gives each request's arrival and tokens: ``simulate`` refuses them together.
SYNTHETIC_FIELDS = ("input_tokens", "output_tokens", "input_cv", "output_cv", "arrival", "burstiness", "turns")


def token_lengths(mean: int, cv: float, what: str = "a coefficient of variation") -> TokenLengths | int:
    """``mean`` tokens for every request (``cv`` 0), else lognormal lengths around it; ``what`` names the
    spread in the error when it is out of range (an option or a field)."""
    check_length_cv(cv, what)
    return mean if cv == 0 else TokenLengths(distribution="lognormal", mean=float(mean), cv=cv)


def synthetic_workload(
    n: int,
    rng_arrivals: np.random.Generator,
    rng_lengths: np.random.Generator,
    *,
    rate_per_s: float,
    input_tokens: TokenLengths | int | None = None,
    output_tokens: TokenLengths | int | None = None,
    lengths: LengthMix | None = None,
    arrival: str = "poisson",
    burstiness_cv: float = 2.0,
    daily_profile: tuple[float, ...] | None = None,
    turns_mean: float = 1.0,
    max_context: int = 0,
    model: str = "the model",
) -> Workload:
    """A synthetic workload: ``arrival`` is ``poisson``, ``gamma`` (bursty) or ``daily`` (needs a profile).

    Lengths: ``input_tokens`` and ``output_tokens``, or a ``lengths`` mix of request kinds.

    With ``max_context``, requests longer than the model's context are trimmed to it (the prompt first, as a
    chat front end drops the oldest turns), and the workload's ``notes`` say how many; mean lengths that do
    not fit at all are refused (``model`` names the model in that error).
    """
    if lengths is None and (input_tokens is None or output_tokens is None):
        raise FivelayerError("give input_tokens and output_tokens, or a lengths mix")
    if lengths is not None and (input_tokens is not None or output_tokens is not None):
        raise FivelayerError("give input_tokens and output_tokens, or a lengths mix, not both")
    if lengths is not None:
        means = list(lengths.means())
    else:
        assert input_tokens is not None and output_tokens is not None
        means = [float(x.mean if isinstance(x, TokenLengths) else x) for x in (input_tokens, output_tokens)]
    if max_context and sum(means) > max_context:
        raise FivelayerError(
            f"{model} has a context of {max_context:,} tokens; {means[0]:,.0f} input + {means[1]:,.0f} output tokens "
            "do not fit (the means of the requests)"
        )
    if not turns_mean >= 1:  # also refuses NaN
        raise FivelayerError(f"turns per conversation must be at least 1 (got {turns_mean}); 1 means no follow-ups")
    if arrival == "poisson":
        t = poisson_arrivals(rate_per_s, n, rng_arrivals)
    elif arrival == "gamma":
        t = gamma_arrivals(rate_per_s, n, rng_arrivals, burstiness_cv)
    elif arrival == "daily":
        if daily_profile is None:
            raise FivelayerError("a daily arrival process needs a daily_profile of 24 hourly factors")
        t = daily_profile_arrivals(rate_per_s, n, rng_arrivals, daily_profile)
    else:
        raise FivelayerError(f"unknown arrival process {arrival!r}; use poisson, gamma or daily")
    if lengths is not None:
        inp, out = lengths.sample(n, rng_lengths)
    else:
        assert input_tokens is not None and output_tokens is not None
        inp = sample_lengths(input_tokens, n, rng_lengths)
        out = sample_lengths(output_tokens, n, rng_lengths)
    if turns_mean > 1:
        session, inp, prefix = multi_turn_sessions(inp, out, rng_lengths, turns_mean)
    else:
        session, prefix = np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64)
    notes: tuple[str, ...] = ()
    if max_context:
        # Keep every request within the model's context: trim the prompt (and the shared prefix with it).
        long = inp + out > max_context
        inp = np.minimum(inp, np.maximum(max_context - out, 1))
        out = np.minimum(out, max_context - inp)
        prefix = np.minimum(prefix, inp - 1)
        if long.any():
            notes = (
                f"{int(long.sum()):,} of {n:,} requests drawn longer than the model's context of {max_context:,} "
                "tokens were trimmed to it (the prompt first)",
            )
    return Workload(t, inp, out, session, prefix, f"{arrival} at {rate_per_s:g} requests/s", notes)


# --- traces -----------------------------------------------------------------------------------------


#: Token counts above this in a trace are refused as they are read (they would overflow an integer later).
MAX_TRACE_TOKENS = 2**31 - 1


def read_trace(path: str | Path, limit: int = 0) -> Workload:
    """Read a CSV trace of requests; errors name the file and line.

    Columns ``TIMESTAMP,ContextTokens,GeneratedTokens`` (the Azure LLM inference trace) or
    ``arrival_s,input_tokens,output_tokens``. Timestamps are seconds or ISO dates, non-decreasing; arrival
    times are returned relative to the first. Token counts are non-negative integers (0 is read as 1).
    """
    import pandas as pd

    file = Path(path)
    if file.is_dir():
        raise FivelayerError(f"trace file {file} is a folder; give the CSV file in it")
    if not file.is_file():
        raise FivelayerError(f"trace file {file} does not exist")
    try:
        # Without a header row to pandas, a row with one field too many is an error naming its line (with a
        # header, pandas would quietly take the first field of such a row as an index and shift the rest).
        # Blank lines are kept, then dropped, so that every row keeps its line number (index + 1).
        frame = pd.read_csv(file, header=None, dtype=str, keep_default_na=False, skipinitialspace=True,
                            skip_blank_lines=False, encoding="utf-8-sig")  # fmt: skip
    except pd.errors.ParserError as exc:
        fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if fields:
            expected, at, saw = fields.groups()
            raise FivelayerError(f"{file} line {at}: {saw} fields, but the header has {expected}") from None
        raise FivelayerError(f"{file}: not a readable CSV file ({str(exc).strip()})") from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise FivelayerError(f"{file}: not a readable CSV file ({exc})") from None
    header = [str(c).strip() for c in frame.iloc[0]] if len(frame) else []
    frame = frame.iloc[1:]
    frame = frame[~(frame.apply(lambda col: col.str.strip() == "")).all(axis=1)]  # blank lines
    if limit:
        frame = frame.iloc[:limit]
    line = (frame.index.to_numpy() + 1).astype(np.int64)
    names = next((cols for cols in TRACE_COLUMNS if all(c in header for c in cols)), None)
    if names is None:
        wanted = " or ".join(",".join(cols) for cols in TRACE_COLUMNS)
        missing = [c for c in TRACE_COLUMNS[0] if c not in header]
        raise FivelayerError(
            f"{file} line 1: missing column(s) {', '.join(missing)}; a trace needs the columns {wanted} "
            f"(found: {', '.join(h for h in header if h) or 'none'})"
        )
    t_col, in_col, out_col = names

    def column(name: str) -> pd.Series:
        values: pd.Series = frame[header.index(name)].str.strip()  # the first column of that name
        return values

    tokens = []
    for col in (in_col, out_col):
        raw = column(col)
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values < 0) | (values != np.floor(values)) | (values > MAX_TRACE_TOKENS)
        if bad.any():
            i = int(np.argmax(bad))
            reason = (
                "negative" if np.isfinite(values[i]) and values[i] < 0
                else f"more than {MAX_TRACE_TOKENS:,} tokens, longer than any model's context"
                if np.isfinite(values[i]) and values[i] > MAX_TRACE_TOKENS
                else "not a whole number"
            )  # fmt: skip
            raise FivelayerError(f"{file} line {line[i]}: {col} is {reason} ({raw.iloc[i]!r})")
        tokens.append(np.maximum(values, 1).astype(np.int64))
    stamps = column(t_col)
    seconds = pd.to_numeric(stamps, errors="coerce").to_numpy(dtype=np.float64)
    numeric = np.isfinite(seconds)
    if len(stamps) and not numeric.any():
        # Dates; with time-zone offsets they are compared in UTC (a date without an offset is taken as UTC).
        parsed = pd.to_datetime(stamps, errors="coerce", format="ISO8601", utc=True)
        nat = parsed.isna().to_numpy()
        if nat.any():
            i = int(np.argmax(nat))
            raise FivelayerError(f"{file} line {line[i]}: {t_col} is not a time ({stamps.iloc[i]!r})")
        ns = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        seconds = (ns - ns[0]).astype(np.float64) / 1e9
    elif not numeric.all():  # a word or a date among seconds, or a number too large to be a time (1e400: inf)
        i = int(np.argmax(~numeric))
        raise FivelayerError(
            f"{file} line {line[i]}: {t_col} is not a number of seconds ({stamps.iloc[i]!r}), as line "
            f"{line[int(np.argmax(numeric))]}'s is; give every time in seconds or every time as a date"
        )
    if len(seconds) == 0:
        raise FivelayerError(f"{file}: the trace has no requests")
    back = np.diff(seconds) < 0
    if back.any():
        i = int(np.argmax(back)) + 1
        raise FivelayerError(
            f"{file} line {line[i]}: timestamps out of order ({stamps.iloc[i]!r} is before {stamps.iloc[i - 1]!r})"
        )
    arrival = seconds - seconds[0]
    return Workload(arrival, tokens[0], tokens[1], source=str(file))
