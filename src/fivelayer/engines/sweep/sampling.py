"""Designs: the table of variants a study evaluates, one column per parameter.

Categorical parameters are stored as codes (0, 1, ... into the parameter's values), numeric ones in SI.
Every column of a random or Latin-hypercube design comes from its own named random stream
(:class:`~fivelayer.core.streams.RandomStreams`), so adding a parameter never changes another's draws,
and the same seed gives the same design, byte for byte, on any machine.
"""

from __future__ import annotations

import math

import numpy as np

from fivelayer.core.streams import RandomStreams
from fivelayer.engines.sweep.spec import Parameter, Study

__all__ = ["DEFAULT_SAMPLES", "design", "design_size", "grid_design", "lhs_design", "random_design"]

#: Variants drawn by a random, lhs or montecarlo study that does not say ``samples``.
DEFAULT_SAMPLES = 1000

Design = dict[str, np.ndarray]


def _is_grid(study: Study) -> bool:
    method = study.spec.method
    return method in ("grid", "optimise") or (method == "simulate" and study.spec.sampling == "grid")


def design_size(study: Study) -> int:
    if _is_grid(study):
        return math.prod(len(p.values) for p in study.parameters)
    return study.spec.samples or DEFAULT_SAMPLES


def grid_design(parameters: tuple[Parameter, ...]) -> Design:
    """Every combination; the first parameter varies slowest.

    >>> from fivelayer.engines.sweep.spec import Parameter
    >>> a = Parameter("a", ("a",), "numeric", (1.0, 2.0))
    >>> b = Parameter("b", ("b",), "categorical", ("x", "y", "z"))
    >>> d = grid_design((a, b))
    >>> d["a"].tolist(), d["b"].tolist()
    ([1.0, 1.0, 1.0, 2.0, 2.0, 2.0], [0.0, 1.0, 2.0, 0.0, 1.0, 2.0])
    """
    axes = [p.grid for p in parameters]
    mesh = np.meshgrid(*axes, indexing="ij")
    return {p.name: m.ravel().astype(np.float64) for p, m in zip(parameters, mesh, strict=True)}


def random_design(parameters: tuple[Parameter, ...], n: int, seed: int) -> Design:
    """Independent draws from each parameter's distribution (uniform over a range or a list of values)."""
    streams = RandomStreams(seed)
    return {p.name: p.ppf(streams.generator(f"sweep:{p.name}").random(n)) for p in parameters}


def lhs_design(parameters: tuple[Parameter, ...], n: int, seed: int) -> Design:
    """A Latin hypercube: each parameter's probability range cut into ``n`` equal strata, one draw in each,
    the strata of different parameters paired at random."""
    streams = RandomStreams(seed)
    out: Design = {}
    for p in parameters:
        rng = streams.generator(f"lhs:{p.name}")
        u = (rng.permutation(n) + rng.random(n)) / n
        out[p.name] = p.ppf(u)
    return out


def design(study: Study) -> Design:
    """The study's whole design."""
    if _is_grid(study):
        return grid_design(study.parameters)
    n = design_size(study)
    if study.spec.method == "lhs" or (study.spec.method == "simulate" and study.spec.sampling == "lhs"):
        return lhs_design(study.parameters, n, study.spec.seed)
    return random_design(study.parameters, n, study.spec.seed)
