"""Random streams: same seed and name, same draws; different names, independent draws."""

from __future__ import annotations

import numpy as np
import pytest

from fivelayer.core.streams import RandomStreams


def test_same_seed_same_stream() -> None:
    a = RandomStreams(7).generator("arrivals").random(5)
    b = RandomStreams(7).generator("arrivals").random(5)
    np.testing.assert_array_equal(a, b)


def test_streams_do_not_shift_each_other() -> None:
    streams = RandomStreams(7)
    alone = streams.generator("lengths").random(3)
    streams.generator("arrivals").random(1000)
    np.testing.assert_array_equal(streams.generator("lengths").random(3), alone)


def test_different_names_or_seeds_differ() -> None:
    assert RandomStreams(7).generator("a").random() != RandomStreams(7).generator("b").random()
    assert RandomStreams(7).generator("a").random() != RandomStreams(8).generator("a").random()


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        RandomStreams(seed)  # type: ignore[arg-type]
