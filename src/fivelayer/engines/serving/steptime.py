"""Step times and energy for the simulator, taken from the one step-cost model (:func:`step_cost`).

The simulator evaluates millions of steps, one at a time, so it cannot afford a NumPy call per step.
:class:`StepTimer` calls :func:`fivelayer.models.step.step_cost` once, vectorised, at construction and keeps
its components as tables that are exact by the structure of the model:

- ``compute_s = b x Cd(c) + p x Cp(lp)``: FLOPs are linear in the decode sequences ``b`` and prefill tokens
  ``p``; ``Cd`` (per decode sequence at mean context ``c``) and ``Cp`` (per prefill token of prompt span
  ``lp``) are tabulated at every integer context and interpolated linearly between (attention and KV are
  piecewise linear in the context with kinks only at integer windows, so the interpolation is exact);
- ``memory_s = M0(T) + b x Kd(c) + p x Kp``: weights streamed depend only on the tokens ``T = b + p`` of the
  step (experts touched, for MoE), KV reads on ``b`` and ``c``;
- ``communication_s = X(T)`` and ``overhead_s = O(b)``.

``time = max(compute, memory) + serial x min(compute, memory) + communication + overhead`` as in
:func:`step_cost`; energy uses the same power model (:func:`fivelayer.chips.device_power_w`).
:meth:`StepTimer.check` compares the tables against direct :func:`step_cost` calls at random points (the
simulator runs it at construction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fivelayer.chips.performance import ChipSpec
from fivelayer.core.errors import FivelayerError
from fivelayer.models.step import Efficiency, step_cost
from fivelayer.models.work import ModelWork, NumericFormat

__all__ = ["StepTimer"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class _Layout:
    tp: int
    pp: int
    ep: int


class StepTimer:
    """Exact, fast step time and energy of one replica layout, from tables of :func:`step_cost`."""

    def __init__(
        self,
        chip: ChipSpec,
        work: ModelWork,
        fmt: NumericFormat,
        eff: Efficiency,
        *,
        tp: int,
        pp: int,
        ep: int,
        max_context: int,
        max_tokens: int,
        max_seqs: int,
    ) -> None:
        self.chip, self.work, self.fmt, self.eff = chip, work, fmt, eff
        self.layout = _Layout(tp, pp, ep)
        self.devices = tp * pp
        self.max_context = int(max_context)
        self.max_tokens = int(max_tokens)
        kw = {"tp": tp, "pp": pp, "ep": ep}
        ctx = np.arange(self.max_context + 2, dtype=np.float64)
        span = np.arange(2 * self.max_context + 3, dtype=np.float64)  # prefill spans up to 2c (speculation)
        tokens = np.arange(self.max_tokens + 1, dtype=np.float64)
        seqs = np.arange(max(max_seqs, 1) + 1, dtype=np.float64)
        zero = np.zeros(1)
        # Decode sequence alone, one at each context; prefill token alone, at each prompt span.
        dec = step_cost(chip, work, fmt, eff, decode_seqs=1.0, decode_context=ctx, **kw)
        pre = step_cost(chip, work, fmt, eff, decode_seqs=0.0, decode_context=0.0, prefill_tokens=1.0,
                        prefill_prompt=span, **kw)  # fmt: skip
        by_tokens = step_cost(chip, work, fmt, eff, decode_seqs=tokens, decode_context=zero, **kw)
        by_seqs = step_cost(chip, work, fmt, eff, decode_seqs=seqs, decode_context=zero, **kw)

        def full(values: FloatArray, like: FloatArray) -> FloatArray:
            return np.broadcast_to(np.asarray(values, dtype=np.float64), like.shape).copy()

        m0 = full(by_tokens.memory_s, tokens)
        m1 = float(m0[1])
        self._cd = full(dec.compute_s, ctx)
        self._cp = full(pre.compute_s, span)
        self._kd = full(dec.memory_s, ctx) - m1
        self._kp = float(np.ravel(pre.memory_s)[0]) - m1
        self._m0 = m0
        self._x = full(by_tokens.communication_s, tokens)
        self._o = full(by_seqs.overhead_s, seqs)
        # Plain-float copies for the scalar path (NumPy scalars are several times slower in Python loops).
        self._cd_l: list[float] = self._cd.tolist()
        self._cp_l: list[float] = self._cp.tolist()
        self._kd_l: list[float] = self._kd.tolist()
        self._m0_l: list[float] = self._m0.tolist()
        self._x_l: list[float] = self._x.tolist()
        self._o_l: list[float] = self._o.tolist()
        self._idle = float(chip.idle_power_w)
        self._dyn = float(chip.tdp_w - chip.idle_power_w)
        self._w = float(eff.power_memory_weight)
        self._serial = float(eff.serial)
        self._range = (self._idle + self._dyn) - self._idle  # TDP - idle, rounded as device_power_w rounds it

    # --- exact reference -------------------------------------------------------------------------------

    def reference(self, b: float, c: float, p: float, lp: float) -> tuple[float, float]:
        """(time, energy) of one step straight from :func:`step_cost` (slow; for checks)."""
        lay = self.layout
        cost = step_cost(self.chip, self.work, self.fmt, self.eff, decode_seqs=b, decode_context=c,
                         prefill_tokens=p, prefill_prompt=lp, tp=lay.tp, pp=lay.pp, ep=lay.ep)  # fmt: skip
        return float(cost.time_s), float(cost.energy_j)

    def check(self, rng: np.random.Generator, samples: int = 32, rtol: float = 1e-9) -> None:
        """Compare the tables with direct :func:`step_cost` calls at random points; raise if they differ."""
        for _ in range(samples):
            b = float(rng.integers(0, len(self._o_l)))
            p = float(rng.integers(0, max(self.max_tokens - int(b), 0) + 1))
            c = float(rng.uniform(0, self.max_context))
            lp = float(rng.uniform(0, self.max_context))
            want_t, want_e = self.reference(b, c, p, lp)
            got_t, got_e = self.step(b, c, p, lp)
            if not (math.isclose(got_t, want_t, rel_tol=rtol) and math.isclose(got_e, want_e, rel_tol=rtol)):
                raise FivelayerError(
                    f"internal: step tables disagree with step_cost at b={b}, c={c}, p={p}, lp={lp}: "
                    f"{got_t} vs {want_t} s, {got_e} vs {want_e} J"
                )

    # --- fast paths --------------------------------------------------------------------------------------

    def step(self, b: float, c: float, p: float, lp: float) -> tuple[float, float]:
        """(time s, energy J over the replica) of one step: ``b`` decode sequences at mean context ``c``
        and ``p`` prefill tokens of mean prompt span ``lp`` (plain floats)."""
        ci = int(c)
        fc = c - ci
        cd = self._cd_l
        kd = self._kd_l
        if fc:
            cdv = cd[ci] + fc * (cd[ci + 1] - cd[ci])
            kdv = kd[ci] + fc * (kd[ci + 1] - kd[ci])
        else:
            cdv, kdv = cd[ci], kd[ci]
        li = int(lp)
        fl = lp - li
        cp = self._cp_l
        cpv = cp[li] + fl * (cp[li + 1] - cp[li]) if fl else cp[li]
        t = int(b + p + 0.5)
        compute = b * cdv + p * cpv
        memory = self._m0_l[t] + b * kdv + p * self._kp
        longer, shorter = (compute, memory) if compute > memory else (memory, compute)
        time = longer + self._serial * shorter + self._x_l[t] + self._o_l[int(b + 0.5)]
        activity = (compute + self._w * memory) / time
        power = self._idle + self._dyn * (1.0 if activity > 1.0 else activity)
        return time, power * time * self.devices

    def decode_run(self, b: int, c0: float, g: float, k: int, spec: int = 0) -> tuple[FloatArray, FloatArray]:
        """Times and energies of ``k`` consecutive steps of ``b`` sequences whose mean context starts at
        ``c0`` and grows by ``g`` per step; with ``spec`` speculative tokens per sequence checked per step
        (``b x spec`` extra tokens attending to the context, as prefill tokens of span ``2c``)."""
        c = c0 + g * np.arange(k, dtype=np.float64)
        ci = c.astype(np.int64)  # contexts are never negative: truncation is the floor
        cj = ci + 1
        fc = c - ci
        cd, kd = self._cd, self._kd
        cd0, kd0 = cd[ci], kd[ci]
        cdv = cd0 + fc * (cd[cj] - cd0)
        kdv = kd0 + fc * (kd[cj] - kd0)
        p = float(b * spec)
        t = int(b + p + 0.5)
        if spec:
            lp = 2.0 * c
            li = np.floor(lp).astype(np.int64)
            cpv = self._cp[li] + (lp - li) * (self._cp[li + 1] - self._cp[li])
            compute = b * cdv + p * cpv
            memory = self._m0[t] + b * kdv + p * self._kp
        else:
            compute = b * cdv
            memory = self._m0[t] + b * kdv
        time = np.maximum(compute, memory) + self._serial * np.minimum(compute, memory) + self._x[t] + self._o[b]
        # The power model of :func:`device_power_w`, inlined (this runs once per decode run).
        activity = compute / time + self._w * (memory / time)
        power = self._idle + self._range * np.minimum(activity, 1.0)
        return time, power * time * self.devices

    def idle_power_w(self) -> float:
        """Power of the replica's devices while no step runs."""
        return self._idle * self.devices
