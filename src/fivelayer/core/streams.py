"""Seeded, named random streams: one new draw in one part of a model never shifts another part's draws.

>>> a = RandomStreams(42).generator("arrivals").random()
>>> b = RandomStreams(42).generator("arrivals").random()
>>> a == b
True
>>> RandomStreams(42).generator("arrivals").random() == RandomStreams(42).generator("lengths").random()
False
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["RandomStreams"]


class RandomStreams:
    """Independent ``numpy.random.Generator`` objects derived from one seed and a stream name.

    The name is hashed with SHA-256 (stable across processes and Python versions, unlike ``hash()``).
    """

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed

    def generator(self, name: str) -> np.random.Generator:
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, *words])))
