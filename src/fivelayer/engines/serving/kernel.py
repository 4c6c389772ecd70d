"""A small deterministic discrete-event kernel: one heap, one ordering key ``(time, priority, sequence)``.

The heap belongs to an instance (no class-level state). Events at the same time run by priority, then in
the order they were scheduled, so a run is reproducible byte for byte.

>>> loop = EventLoop()
>>> loop.schedule(1.0, 2, "b"); loop.schedule(1.0, 1, "a"); loop.schedule(0.5, 9, "c")
>>> [loop.pop()[3] for _ in range(3)]
['c', 'a', 'b']
"""

from __future__ import annotations

import heapq
from typing import Any

__all__ = ["EventLoop"]


class EventLoop:
    """A priority queue of events ``(time, priority, sequence, kind, payload)``."""

    __slots__ = ("_heap", "_sequence", "now")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, int, Any]] = []
        self._sequence = 0
        self.now = 0.0

    def schedule(self, time: float, priority: int, kind: Any, payload: Any = None) -> None:
        """Add an event; ``time`` may not lie in the past."""
        if time < self.now:
            raise ValueError(f"event at {time} scheduled in the past (now {self.now})")
        self._sequence += 1
        heapq.heappush(self._heap, (time, priority, self._sequence, kind, payload))

    def pop(self) -> tuple[float, int, int, Any, Any]:
        """Remove and return the earliest event, advancing ``now`` to its time."""
        event = heapq.heappop(self._heap)
        self.now = event[0]
        return event

    def peek_time(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    def __len__(self) -> int:
        return len(self._heap)
