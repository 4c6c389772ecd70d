"""Studies whose variants are serving simulations (``method: simulate``).

A simulate study varies the inputs of the serving simulator (:func:`fivelayer.engines.serving.simulate`)
instead of a scenario's fields::

    name: rate and hardware
    method: simulate
    sampling: grid              # grid | random | lhs (random and lhs draw `samples` variants)
    seed: 7
    simulation:                 # the base inputs, named as the options of `fivelayer simulate`
      accelerator: h100-sxm
      count: 8
      model: llama-3.1-8b
      rate: 20
      requests: 2000
      input_tokens: 1024
      input_cv: 0.5
    parameters:
      - path: rate
        values: [10, 20, 40]
      - path: accelerator
        values: [h100-sxm, h200-sxm]

Each variant is one whole simulation; its row holds the headline results (:data:`SIMULATE_OUTPUTS`), the
simulation seed it used, the replica layout and, where the configuration cannot be served (the model does
not fit, say), ``feasible`` false and the reason in ``error``.

Seeds. Unless ``simulation.seed`` is given (one seed for every variant: common random numbers) or ``seed``
is a parameter, variant ``i`` is simulated with :func:`variant_seed` ``(study seed, i)``. A variant's result
is therefore a pure function of the study and its index: the same in-process, on any Dask worker, and after
a resume, and ``fivelayer simulate ... --seed S`` with the row's inputs and ``simulation_seed`` reproduces it.

Checks before any work, each naming the study file, line and field: unknown inputs (with a did-you-mean),
values outside an input's limits (a negative rate, a coefficient of variation below zero...), unknown
accelerator, model or precision ids, unreadable trace files, and a missing accelerator, model or arrival
source (exactly one of ``rate`` and ``trace``). Whether a model fits on the accelerators at the chosen layout
is known only when the variant runs: such a variant is reported infeasible, not an error.
"""

from __future__ import annotations

import hashlib
import typing
from pathlib import Path as FilePath
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, ValidationError

from fivelayer.applications.application import MAX_LENGTH_CV
from fivelayer.applications.workload import MAX_REQUESTS
from fivelayer.catalog import CatalogSet
from fivelayer.core.errors import FivelayerError, did_you_mean
from fivelayer.core.provenance import Strict
from fivelayer.core.validation import describe_validation_error
from fivelayer.core.yamlio import LocatedYaml
from fivelayer.engines.serving import SimulationResult
from fivelayer.engines.serving.config import Router
from fivelayer.engines.sweep.paths import Path
from fivelayer.engines.sweep.spec import SIMULATE_OUTPUTS, Parameter, Study, StudyError, StudySpec, _Checker
from fivelayer.scenario import Scenario

__all__ = ["SimulationEvaluator", "SimulationInputs", "check_simulation", "run_simulation", "variant_seed"]

#: Requests per simulation when neither ``requests`` nor a trace says (as ``fivelayer simulate``).
DEFAULT_REQUESTS = 1000


class SimulationInputs(Strict):
    """The inputs of one serving simulation, named and defaulted as the options of ``fivelayer simulate``."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)

    accelerator: str | None = Field(default=None, description="catalog accelerator id, e.g. h100-sxm")
    count: int = Field(default=8, ge=1, le=1_000_000, description="accelerators (of the decode pool if prefill_count)")
    model: str | None = Field(default=None, description="catalog language model id, e.g. llama-3.1-8b")
    precision: str = "fp8"
    rate: float | None = Field(default=None, gt=0, description="mean arrival rate, requests per second")
    trace: str | None = Field(default=None, description="CSV trace (relative to the study file) instead of a rate")
    requests: int | None = Field(
        default=None, ge=1, le=MAX_REQUESTS, description="requests to simulate (default 1,000)"
    )
    input_tokens: int = Field(default=1024, ge=1, description="mean prompt tokens per request")
    output_tokens: int = Field(default=256, ge=1, description="mean generated tokens per request")
    input_cv: float = Field(
        default=0.0, ge=0, le=MAX_LENGTH_CV, description="coefficient of variation of prompt lengths (0: fixed)"
    )
    output_cv: float = Field(
        default=0.0, ge=0, le=MAX_LENGTH_CV, description="coefficient of variation of output lengths (0: fixed)"
    )
    arrival: Literal["poisson", "gamma"] = "poisson"
    burstiness: float = Field(default=2.0, gt=0, description="gap coefficient of variation of gamma arrivals")
    turns: float = Field(default=1.0, ge=1, description="mean turns per conversation (prefix reuse)")
    tp: int | None = Field(default=None, ge=1, description="tensor-parallel degree (default: searched)")
    pp: int | None = Field(default=None, ge=1, description="pipeline-parallel degree (default: searched)")
    ep: int | None = Field(default=None, ge=1, description="expert-parallel degree")
    prefill_count: int | None = Field(default=None, ge=1, description="accelerators in a separate prefill pool")
    router: Router = "least-outstanding"
    dispatch_batch: int = Field(default=1, ge=1, description="requests a batching front end gathers (1: none)")
    dispatch_timeout: float = Field(
        default=0.0, ge=0, le=86_400, description="longest the front end waits between sends, s (at most a day)"
    )
    max_num_seqs: int | None = Field(default=None, ge=1, description="running sequences per replica (default 256)")
    max_batched_tokens: int = Field(default=8192, ge=1, description="token budget per step")
    chunked_prefill: bool = True
    num_scheduler_steps: int = Field(default=1, ge=1, le=1024, description="decode steps per scheduler decision")
    preemption: Literal["recompute", "swap"] = "recompute"
    prefix_caching: bool = True
    speculative_tokens: int = Field(default=0, ge=0, le=64, description="draft tokens checked per step (0: off)")
    acceptance_rate: float = Field(default=0.7, ge=0, lt=1, description="per-token acceptance of drafts")
    ttft_slo: float = Field(default=2.0, gt=0, description="TTFT target for goodput, seconds")
    tpot_slo: float = Field(default=0.2, gt=0, description="TPOT target for goodput, seconds")
    horizon: float | None = Field(default=None, gt=0, description="stop at this simulated time, seconds")
    seed: int | None = Field(default=None, ge=0, description="one seed for every variant (default: per variant)")


def _integer_field(name: str) -> bool:
    annotation = SimulationInputs.model_fields[name].annotation
    kinds = {annotation, *typing.get_args(annotation)} - {type(None)}
    return kinds == {int}


#: Inputs that hold whole numbers: their ranges and distributions are rounded.
INTEGER_INPUTS = frozenset(name for name in SimulationInputs.model_fields if _integer_field(name))


def variant_seed(study_seed: int, variant: int) -> int:
    """The simulation seed of variant ``variant``: a pure function of the study's seed and the index.

    >>> variant_seed(7, 3) == variant_seed(7, 3), variant_seed(7, 3) == variant_seed(7, 4)
    (True, False)
    """
    return int(np.random.SeedSequence([study_seed, variant]).generate_state(1)[0])


# --- checking ---------------------------------------------------------------------------------------------


class _SimulationChecker(_Checker):
    """Parameters of a simulate study: paths are simulation inputs, values go through SimulationInputs."""

    def __init__(self, located: LocatedYaml, base: Scenario, base_raw: LocatedYaml, inputs_raw: dict[str, Any],
                 folder: FilePath | None) -> None:  # fmt: skip
        super().__init__(located, base, base_raw)
        self.inputs_raw = inputs_raw
        self.folder = folder
        self.catalog: CatalogSet = base.resolved_catalog
        self.traces: dict[str, str] = {}  # path -> sha256 of the file

    def resolve_path(self, i: int, text: str) -> Path:
        name = text.strip()
        name = name.removeprefix("simulation.")
        if name not in SimulationInputs.model_fields:
            hint = did_you_mean(name, list(SimulationInputs.model_fields))
            raise self.fail(
                ("parameters", i, "path"),
                f"unknown simulation input {text!r}"
                + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
                + f" (inputs: {', '.join(SimulationInputs.model_fields)})",
            )
        return (name,)

    def value(self, loc: tuple[Any, ...], path: Path, raw: Any) -> Any:
        name = str(path[0])
        if name == "trace" and isinstance(raw, str):
            raw = self.trace_path(raw)
        try:
            inputs = SimulationInputs.model_validate({**self.inputs_raw, name: raw})
        except ValidationError as exc:
            message = "; ".join(str(e["msg"]) for e in exc.errors())
            raise self.fail(loc, f"value {raw!r} for {name} is not valid: {message}") from None
        value = getattr(inputs, name)
        self.check_field(loc, name, value, inputs)
        return value

    def _integer(self, path: Path) -> bool:
        return str(path[0]) in INTEGER_INPUTS

    def _bound_raw(self, path: Path, value: float) -> Any:
        return value

    def trace_path(self, text: str) -> str:
        path = FilePath(text)
        if not path.is_absolute() and self.folder is not None:
            path = self.folder / path
        return str(path.resolve())

    def check_field(self, loc: tuple[Any, ...], name: str, value: Any, inputs: SimulationInputs) -> None:
        """Catalog ids, precisions and trace files: what the schema alone cannot check."""
        if value is None:
            return
        try:
            if name == "accelerator":
                self.catalog.accelerators.get(value)
            elif name == "model":
                self.catalog.language_model(value)
            elif name == "precision":
                from fivelayer.models.work import numeric_format

                numeric_format(value)
            elif name == "trace" and value not in self.traces:
                from fivelayer.applications.workload import read_trace

                read_trace(value)
                self.traces[value] = hashlib.sha256(FilePath(value).read_bytes()).hexdigest()
        except FivelayerError as exc:
            raise self.fail(loc, str(exc)) from None


def check_simulation(spec: StudySpec, located: LocatedYaml, base: Scenario,
                     base_raw: LocatedYaml) -> tuple[SimulationInputs, tuple[Parameter, ...], str]:  # fmt: skip
    """Validate a simulate study's ``simulation`` block and parameters.

    Returns the base inputs, the parameters and text to add to the study's fingerprint (the trace files'
    hashes, so a changed trace is never resumed into old results).
    """
    if spec.simulation is None:
        raise StudyError(
            f"{located.origin}: a simulate study needs a simulation: block with at least accelerator, model and "
            "rate (or trace); its fields are named as the options of fivelayer simulate"
        )
    raw = dict(spec.simulation)
    try:
        SimulationInputs.model_validate(raw)
    except ValidationError as exc:
        message = describe_validation_error(exc, located, ("simulation",), model=SimulationInputs)
        raise StudyError("Invalid study:\n" + message) from None
    origin = FilePath(located.origin)
    folder = origin.parent if origin.exists() else None
    checker = _SimulationChecker(located, base, base_raw, raw, folder)
    if isinstance(raw.get("trace"), str):
        raw["trace"] = checker.trace_path(raw["trace"])
    inputs = SimulationInputs.model_validate(raw)
    for name in inputs.model_fields_set:
        checker.check_field(("simulation", name), name, getattr(inputs, name), inputs)
    parameters = tuple(checker.parameter(i, p) for i, p in enumerate(spec.parameters))
    varied = {str(p.path[0]) for p in parameters}
    given = {k for k in inputs.model_fields_set if getattr(inputs, k) is not None} | varied
    missing = [k for k in ("accelerator", "model") if k not in given]
    if missing:
        raise checker.fail(("simulation",), f"every simulation needs {' and '.join(missing)}: set it under "
                                            "simulation or vary it under parameters")  # fmt: skip
    sources = [k for k in ("rate", "trace") if k in given]
    if len(sources) != 1:
        gives = " and ".join(sources) or "neither"
        raise checker.fail(("simulation",), "every simulation needs exactly one of rate (synthetic arrivals) or "
                                            f"trace (a CSV file); this study gives {gives}")  # fmt: skip
    if sources == ["trace"]:
        from fivelayer.applications.workload import SYNTHETIC_FIELDS

        shaped = [k for k in SYNTHETIC_FIELDS if k in given]
        if shaped:
            where = ("simulation", shaped[0]) if shaped[0] in inputs.model_fields_set else ("simulation",)
            raise checker.fail(where, f"{', '.join(shaped)} shape{'s' if len(shaped) == 1 else ''} synthetic "
                                      "arrivals (rate), but a trace gives each request's arrival time and tokens: "
                                      "leave them out, or use rate instead of trace")  # fmt: skip
    extra = "".join(f"\n---\ntrace {path} sha256 {digest}" for path, digest in sorted(checker.traces.items()))
    return inputs, parameters, extra


# --- running ----------------------------------------------------------------------------------------------


def run_simulation(inputs: SimulationInputs, seed: int, catalog: CatalogSet | None = None) -> SimulationResult:
    """One simulation, built exactly as ``fivelayer simulate`` builds it from the same options and seed."""
    from fivelayer.applications.workload import read_trace, synthetic_workload, token_lengths
    from fivelayer.catalog import default_catalog
    from fivelayer.core.streams import RandomStreams
    from fivelayer.engines.serving import EngineOptions, ReplicaGroup, ServingConfig, simulate

    cat = catalog or default_catalog()
    if inputs.accelerator is None or inputs.model is None:
        raise FivelayerError("a simulation needs an accelerator and a model")
    if inputs.trace is not None:
        workload = read_trace(inputs.trace, limit=inputs.requests or 0)
    elif inputs.rate is not None:
        streams = RandomStreams(seed)
        workload = synthetic_workload(
            inputs.requests or DEFAULT_REQUESTS, streams.generator("arrivals"), streams.generator("lengths"),
            rate_per_s=inputs.rate, input_tokens=token_lengths(inputs.input_tokens, inputs.input_cv, "input_cv"),
            output_tokens=token_lengths(inputs.output_tokens, inputs.output_cv, "output_cv"), arrival=inputs.arrival,
            burstiness_cv=inputs.burstiness, turns_mean=inputs.turns,
            max_context=cat.language_model(inputs.model).max_context_tokens, model=inputs.model,
        )  # fmt: skip
    else:
        raise FivelayerError("a simulation needs a rate or a trace")
    acc, tp, pp, ep = inputs.accelerator, inputs.tp, inputs.pp, inputs.ep
    groups = [ReplicaGroup(acc, inputs.count, "decode" if inputs.prefill_count else "mixed", tp, pp, ep)]
    if inputs.prefill_count:
        groups.insert(0, ReplicaGroup(acc, inputs.prefill_count, "prefill", tp, pp, ep))
    config = ServingConfig(
        model=inputs.model, groups=tuple(groups), precision=inputs.precision, router=inputs.router,
        engine=EngineOptions(
            max_num_seqs=inputs.max_num_seqs, max_num_batched_tokens=inputs.max_batched_tokens,
            chunked_prefill=inputs.chunked_prefill, num_scheduler_steps=inputs.num_scheduler_steps,
            preemption=inputs.preemption, prefix_caching=inputs.prefix_caching,
            speculative_tokens=inputs.speculative_tokens, acceptance_rate=inputs.acceptance_rate,
        ),
        ttft_slo_s=inputs.ttft_slo, tpot_slo_s=inputs.tpot_slo, horizon_s=inputs.horizon,
        dispatch_batch=inputs.dispatch_batch, dispatch_timeout_s=inputs.dispatch_timeout,
    )  # fmt: skip
    return simulate(workload, config, seed=seed, catalog=cat)


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The :data:`SIMULATE_OUTPUTS` of one simulation's summary (``None`` percentiles become NaN)."""
    out: dict[str, Any] = {}
    for name in SIMULATE_OUTPUTS:
        if name == "sustainable":
            out[name] = bool(summary["sustainable"])
        elif name == "replicas":
            out[name] = float(sum(c["replicas"] for c in summary["cluster"]))
        elif name[:5] in ("ttft_", "tpot_") or name.startswith("e2e_"):
            metric, pct, _ = name.rsplit("_", 2)
            out[name] = _number(summary[f"{metric}_s"][pct])
        else:
            out[name] = _number(summary[name])
    return out


def _layout(summary: dict[str, Any]) -> str:
    parts = []
    for c in summary["cluster"]:
        role = "" if c["role"] == "mixed" else f" {c['role']}"
        parts.append(f"{c['replicas']} x tp{c['tp']} pp{c['pp']} {c['accelerator']}{role}")
    return "; ".join(parts)


class SimulationEvaluator:
    """Evaluates chunks of a simulate study: one simulation per variant, in order."""

    engine = "simulate"
    #: Columns after the outputs and ``feasible``: the seed used, the replica layout, why a variant failed.
    extra_columns = ("simulation_seed", "layout", "error")

    def __init__(self, study: Study) -> None:
        if not isinstance(study.simulation, SimulationInputs):
            raise StudyError(f"{study.origin}: not a simulate study")
        self.study = study
        self.base: SimulationInputs = study.simulation
        self.catalog: CatalogSet = study.base.resolved_catalog

    def inputs(self, design: dict[str, np.ndarray], row: int) -> SimulationInputs:
        """The simulation inputs of one row of ``design``."""
        update = {str(p.path[0]): p.value(design[p.name][row]) for p in self.study.parameters}
        return self.base.model_copy(update=update)

    def seed(self, inputs: SimulationInputs, variant: int) -> int:
        return inputs.seed if inputs.seed is not None else variant_seed(self.study.spec.seed, variant)

    def evaluate(self, design: dict[str, np.ndarray], first_variant: int = 0) -> dict[str, np.ndarray]:
        """Outputs, ``feasible`` and :attr:`extra_columns` for each row (row ``r`` is variant ``first_variant + r``)."""
        n = len(next(iter(design.values()))) if design else 1
        out: dict[str, np.ndarray] = {k: np.full(n, np.nan) for k in SIMULATE_OUTPUTS}
        out["sustainable"] = np.zeros(n, dtype=bool)
        feasible = np.zeros(n, dtype=bool)
        seeds = np.zeros(n, dtype=np.int64)
        layout = np.full(n, "", dtype=object)
        error = np.full(n, "", dtype=object)
        for row in range(n):
            inputs = self.inputs(design, row)
            seed = self.seed(inputs, first_variant + row)
            seeds[row] = seed
            try:
                summary = run_simulation(inputs, seed, self.catalog).summary
            except FivelayerError as exc:
                error[row] = str(exc)
                continue
            for name, value in headline(summary).items():
                out[name][row] = value
            layout[row] = _layout(summary)
            feasible[row] = True
        return {**out, "feasible": feasible, "simulation_seed": seeds, "layout": layout, "error": error}
