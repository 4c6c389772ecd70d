"""Training work of a language model: FLOPs per token (forward + backward), model states and activations.

Pure functions of the architecture; arguments that describe a parallel layout accept NumPy arrays, so a
whole layout search evaluates at once.

Worked numbers (tests/models/test_training.py):

- A dense model trains at ``6 x N`` FLOPs per token (2 forward, 4 backward per multiply-add) plus attention:
  Llama 2 7B over 2.0T tokens is 6 x 6.74e9 x 2e12 = 8.09e22 FLOPs of matrix products.
- Mixed-precision Adam keeps 16 bytes per parameter (Rajbhandari et al., ZeRO, 2020): bf16 weights (2) and
  gradients (2), and fp32 master weights, momentum and variance (4 + 4 + 4).
- Activations per layer per token (Korthikanti et al., 2022, bf16): ``34 h + 5 a s`` bytes without
  recomputation, ``34 h`` with selective recomputation (attention recomputed), ``2 h`` with full
  recomputation (only the layer input kept); tensor parallelism with sequence parallelism divides all by ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fivelayer.models.architecture import LanguageModel
from fivelayer.models.work import ModelWork

__all__ = [
    "ADAM_BYTES",
    "RECOMPUTE",
    "ModelStateBytes",
    "Recompute",
    "TrainingWork",
]

FloatArray = NDArray[np.float64]
Recompute = Literal["none", "selective", "full"]
RECOMPUTE: tuple[Recompute, ...] = ("none", "selective", "full")


@dataclass(frozen=True)
class ModelStateBytes:
    """Bytes per parameter of the model states in mixed-precision training with Adam (ZeRO, 2020)."""

    weights: float = 2.0
    gradients: float = 2.0
    #: fp32 master weights, first and second moments.
    optimizer: float = 12.0

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer


#: Mixed-precision Adam: 2 + 2 + 12 = 16 bytes per parameter (Rajbhandari et al. 2020, arXiv:1910.02054, 3.1).
ADAM_BYTES = ModelStateBytes()


@dataclass(frozen=True)
class TrainingWork:
    """The numbers of one model that training needs, computed once from the architecture."""

    model_id: str
    num_layers: int
    hidden_size: int
    num_heads: int
    #: Parameters multiplied per token (dense part plus the routed experts a token uses).
    active_matmul_params: float
    #: All parameters, every expert included, and the part that is routed experts.
    params_total: float
    expert_params_total: float
    moe_layers: int
    experts_per_token: int
    num_experts: int
    #: Forward attention FLOPs per token per context token (QK^T and AV, summed over layers).
    attn_flops_per_ctx: float
    max_context_tokens: int

    @classmethod
    def of(cls, model: LanguageModel) -> TrainingWork:
        work = ModelWork.of(model)
        # Training runs attention as prefill does (MLA unabsorbed: per head, scores over qk_nope + qk_rope dims
        # and values over v_head_dim; the absorbed form is the cheaper one for decoding, not for training).
        attn = work.prefill_attn_flops_per_ctx_global + work.prefill_attn_flops_per_ctx_local
        return cls(
            model_id=model.id,
            num_layers=model.num_layers,
            hidden_size=model.hidden_size,
            num_heads=model.attention.num_heads,
            active_matmul_params=work.active_matmul_params,
            params_total=work.params_total,
            expert_params_total=work.moe_layers * work.num_experts * work.expert_params,
            moe_layers=work.moe_layers,
            experts_per_token=work.experts_per_token,
            num_experts=work.num_experts,
            attn_flops_per_ctx=attn,
            max_context_tokens=model.max_context_tokens,
        )

    # --- compute ---------------------------------------------------------------------------------------

    def forward_flops_per_token(self, seq_len: ArrayLike) -> FloatArray:
        """Forward FLOPs of one token in a causal sequence of ``seq_len`` tokens (mean context seq/2).

        >>> w = TrainingWork("x", 1, 8, 1, 1e9, 1e9, 0.0, 0, 0, 0, 4.0 * 8, 4096)
        >>> float(w.forward_flops_per_token(1000))
        2000016000.0
        """
        s = np.asarray(seq_len, dtype=np.float64)
        return 2.0 * self.active_matmul_params + self.attn_flops_per_ctx * s / 2.0

    def model_flops_per_token(self, seq_len: ArrayLike) -> FloatArray:
        """FLOPs per token counted for MFU: forward + backward (2x forward) = 3 x forward, no recomputation.

        For a dense model and short sequences this is the familiar ``6 N``.
        """
        return 3.0 * self.forward_flops_per_token(seq_len)

    def hardware_flops_per_token(self, seq_len: ArrayLike, recompute: ArrayLike) -> FloatArray:
        """FLOPs the hardware executes per token, recomputation included.

        ``recompute`` is an index into :data:`RECOMPUTE` (0 none, 1 selective: attention forward again,
        2 full: the whole forward again, 8 N for a dense model).
        """
        s = np.asarray(seq_len, dtype=np.float64)
        r = np.asarray(recompute)
        extra = np.where(
            r == 2, self.forward_flops_per_token(s), np.where(r == 1, self.attn_flops_per_ctx * s / 2, 0.0)
        )
        return self.model_flops_per_token(s) + extra

    def training_flops(self, tokens: float, seq_len: float) -> float:
        """Model FLOPs of a whole run over ``tokens`` tokens (the 6 N D rule plus attention)."""
        return float(tokens * self.model_flops_per_token(seq_len))

    # --- memory ----------------------------------------------------------------------------------------

    def state_bytes_per_device(
        self,
        tp: ArrayLike,
        pp: ArrayLike,
        dp: ArrayLike,
        ep: ArrayLike,
        zero: ArrayLike,
        states: ModelStateBytes = ADAM_BYTES,
    ) -> FloatArray:
        """Weights, gradients and optimizer states on one device.

        Dense parameters are split over ``tp x pp``; routed experts over ``ep x tp x pp``. ZeRO stage 1
        shards optimizer states over the data-parallel ranks that hold the same parameters, stage 2 also
        gradients, stage 3 (FSDP) also weights. Experts are replicated over ``dp / ep`` ranks.
        """
        t, p, d, e, z = (np.asarray(x, dtype=np.float64) for x in (tp, pp, dp, ep, zero))
        dense = (self.params_total - self.expert_params_total) / (t * p)
        experts = self.expert_params_total / (e * t * p)
        d_exp = np.maximum(d / e, 1.0)

        def shard(params: FloatArray, ranks: FloatArray) -> FloatArray:
            w = np.where(z >= 3, states.weights / ranks, states.weights)
            g = np.where(z >= 2, states.gradients / ranks, states.gradients)
            o = np.where(z >= 1, states.optimizer / ranks, states.optimizer)
            out: FloatArray = params * (w + g + o)
            return out

        result: FloatArray = shard(dense, d) + shard(experts, d_exp)
        return result

    def activation_bytes_per_device(
        self, micro_tokens: ArrayLike, seq_len: ArrayLike, tp: ArrayLike, cp: ArrayLike, recompute: ArrayLike
    ) -> FloatArray:
        """Activation memory held on the first pipeline stage of a 1F1B schedule.

        The first stage keeps ``pp`` micro-batches in flight over ``L / pp`` layers: ``L`` layer-micro-batches
        whatever ``pp``. Per layer per token (bf16, sequence parallel): ``(34 h + 5 a s) / t`` bytes without
        recomputation, ``34 h / t`` selective, ``2 h / t`` full. Context parallelism splits the tokens by ``cp``.
        """
        m, s, t, c = (np.asarray(x, dtype=np.float64) for x in (micro_tokens, seq_len, tp, cp))
        r = np.asarray(recompute)
        h, a = float(self.hidden_size), float(self.num_heads)
        per_token = np.where(r == 2, 2.0 * h, np.where(r == 1, 34.0 * h, 34.0 * h + 5.0 * a * s / c))
        result: FloatArray = self.num_layers * (m / c) * per_token / t
        return result
