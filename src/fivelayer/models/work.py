"""The work of a language model: bytes of weights and KV cache, FLOPs per token, experts touched.

These are pure functions of the architecture (:class:`~fivelayer.models.LanguageModel`) and a numeric
precision. They accept NumPy arrays for context lengths and token counts, so whole sweeps evaluate at once.

Worked example (tests/models/test_work.py): Llama 2 70B in fp8 stores its 68.98e9 parameters in about
69 GB, and its KV cache takes 2 (K and V) x 80 layers x 8 KV heads x 128 x 1 byte = 163,840 bytes per token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fivelayer.models.architecture import LanguageModel

__all__ = [
    "PRECISION_FORMATS",
    "ModelWork",
    "NumericFormat",
    "numeric_format",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NumericFormat:
    """How a serving precision stores weights and KV cache, and at which tensor-core rate it computes.

    ``weight_bytes`` includes block-scale overhead: MXFP4 keeps one 8-bit scale per 32 values
    (4.25 bits per value), NVFP4 one 8-bit scale per 16 values (4.5 bits); int4 AWQ/GPTQ one 16-bit
    scale per 128 values (about 4.1 bits).
    """

    name: str
    weight_bytes: float
    kv_bytes: float
    compute: Literal["fp32", "bf16", "fp8", "fp6", "fp4", "int8"]
    activation_bytes: float
    #: Tensor rate of attention (QK^T and AV), which multiplies activations by the KV cache, not by weights:
    #: fp8 where the cache is fp8 (FP8 attention kernels), else the format's own rate.
    attention_compute: Literal["fp32", "bf16", "fp8"] = "bf16"


#: Serving precisions. ``int4`` is weight-only (W4A16: computes in bf16); the others quantise activations too.
#: fp6/fp4 quantise the weights and activations of the linear layers; attention runs on the fp8 KV cache.
#: int8 (SmoothQuant-style W8A8) keeps attention in 16 bits.
PRECISION_FORMATS: dict[str, NumericFormat] = {
    "fp32": NumericFormat("fp32", 4.0, 4.0, "fp32", 4.0, "fp32"),
    "bf16": NumericFormat("bf16", 2.0, 2.0, "bf16", 2.0, "bf16"),
    "fp16": NumericFormat("fp16", 2.0, 2.0, "bf16", 2.0, "bf16"),
    "fp8": NumericFormat("fp8", 1.0, 1.0, "fp8", 1.0, "fp8"),
    "int8": NumericFormat("int8", 1.0, 1.0, "int8", 1.0, "bf16"),
    "fp6": NumericFormat("fp6", 0.75 + 1 / 32, 1.0, "fp6", 1.0, "fp8"),
    "fp4": NumericFormat("fp4", 0.5 + 1 / 32, 1.0, "fp4", 1.0, "fp8"),
    "int4": NumericFormat("int4", 0.5 + 2 / 128, 2.0, "bf16", 2.0, "bf16"),
}


def numeric_format(precision: str) -> NumericFormat:
    """The :class:`NumericFormat` of a precision name (``fp8``, ``fp4``, ``mxfp4``, ``nvfp4``, ``int4``...)."""
    key = precision.strip().lower()
    key = {"mxfp4": "fp4", "nvfp4": "fp4", "w4a16": "int4", "w8a8": "int8", "float16": "fp16"}.get(key, key)
    if key not in PRECISION_FORMATS:
        from fivelayer.core.errors import FivelayerError

        raise FivelayerError(f"Unknown precision {precision!r}. Use one of: {', '.join(PRECISION_FORMATS)}.")
    return PRECISION_FORMATS[key]


@dataclass(frozen=True)
class ModelWork:
    """The numbers of one model that the step-cost model needs, precomputed once from the architecture."""

    model_id: str
    params_total: float
    hidden_size: int
    num_layers: int
    #: Parameters multiplied per token outside routed experts (attention, dense FFN, shared experts, router,
    #: output head); the input embedding is a lookup and is excluded.
    dense_matmul_params: float
    #: Parameters of one routed expert in one layer, and how many MoE layers there are.
    expert_params: float
    num_experts: int
    experts_per_token: int
    moe_layers: int
    #: Attention FLOPs per token per context token, summed over full-attention and over local layers.
    attn_flops_per_ctx_global: float
    attn_flops_per_ctx_local: float
    #: The same for prompt tokens (prefill, and training). Equal to the above except for MLA, which prefills in
    #: its naive form (keys and values decompressed per head) and decodes in its absorbed form (over the latent).
    prefill_attn_flops_per_ctx_global: float
    prefill_attn_flops_per_ctx_local: float
    sliding_window: float
    #: KV-cache elements per token, summed over full-attention and over local (windowed) layers.
    kv_elements_global: float
    kv_elements_local: float
    max_context_tokens: int
    #: KV heads per layer (1 for MLA, whose latent is shared by all heads).
    kv_heads: int = 1
    #: Query (attention) heads per layer; 0 where unknown (no tensor-parallel check).
    num_heads: int = 0

    @classmethod
    def of(cls, model: LanguageModel) -> ModelWork:
        a = model.attention
        layers = range(model.num_layers)
        n_global = sum(model.is_global_layer(i) for i in layers)
        n_local = model.num_layers - n_global
        if a.kind == "mla":
            assert a.kv_lora_rank is not None and a.qk_rope_head_dim is not None
            # Latent cache: the compressed KV plus the decoupled rotary key, shared by all heads.
            kv_per_layer = float(a.kv_lora_rank + a.qk_rope_head_dim)
            # Decode, absorbed MLA attention: scores over (latent + rope) dims and values over the latent, per
            # head. Prefill, naive MLA: per-head keys of (nope + rope) dims and values of v dims, as DeepSeek's
            # inference code (DeepSeek-V3 repository, inference/model.py, attn_impl "naive") and serving
            # engines run prompts; the latent's up-projection of each new token is in the linear FLOPs.
            assert a.qk_nope_head_dim is not None and a.v_head_dim is not None
            attn_per_layer = 2.0 * a.num_heads * (2 * a.kv_lora_rank + a.qk_rope_head_dim)
            prefill_per_layer = 2.0 * a.num_heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim)
        else:
            kv_per_layer = 2.0 * a.kv_heads * model.head_dim
            attn_per_layer = 4.0 * a.num_heads * model.head_dim  # QK^T and AV, 2 FLOPs per multiply-add
            prefill_per_layer = attn_per_layer
        moe = model.moe
        expert = float(model.expert_params()) if moe else 0.0
        moe_layers = model.num_moe_layers
        routed_all = moe_layers * (moe.num_experts if moe else 0) * expert
        input_embedding = model.vocab_size * model.hidden_size
        learned_pos = model.max_context_tokens * model.hidden_size if model.position_embedding == "learned" else 0
        dense = model.params_total() - model.extra_params - routed_all - input_embedding - learned_pos
        if model.tied_embeddings:
            dense += input_embedding  # the tied matrix is still multiplied once, as the output head
        return cls(
            model_id=model.id,
            params_total=model.params_total(),
            hidden_size=model.hidden_size,
            num_layers=model.num_layers,
            dense_matmul_params=float(dense),
            expert_params=expert,
            num_experts=moe.num_experts if moe else 0,
            experts_per_token=moe.experts_per_token if moe else 0,
            moe_layers=moe_layers,
            attn_flops_per_ctx_global=attn_per_layer * n_global,
            attn_flops_per_ctx_local=attn_per_layer * n_local,
            prefill_attn_flops_per_ctx_global=prefill_per_layer * n_global,
            prefill_attn_flops_per_ctx_local=prefill_per_layer * n_local,
            sliding_window=float(a.sliding_window or 0),
            kv_elements_global=kv_per_layer * n_global,
            kv_elements_local=kv_per_layer * n_local,
            max_context_tokens=model.max_context_tokens,
            kv_heads=1 if a.kind == "mla" else a.kv_heads,
            num_heads=a.num_heads,
        )

    # --- memory ----------------------------------------------------------------------------------------

    def weight_bytes(self, fmt: NumericFormat) -> float:
        """Bytes of all weights (every expert) at ``fmt``; embeddings stay in 16 bits as serving stacks keep them."""
        return self.params_total * fmt.weight_bytes

    def kv_bytes_per_token(self, fmt: NumericFormat) -> float:
        """KV-cache bytes per token of context for full-attention layers plus local layers below their window."""
        return (self.kv_elements_global + self.kv_elements_local) * fmt.kv_bytes

    def kv_bytes(self, context: ArrayLike, fmt: NumericFormat) -> FloatArray:
        """KV-cache bytes of one sequence of ``context`` tokens (local layers keep only their window)."""
        ctx = np.asarray(context, dtype=np.float64)
        local_ctx = np.minimum(ctx, self.sliding_window) if self.sliding_window else ctx
        return (self.kv_elements_global * ctx + self.kv_elements_local * local_ctx) * fmt.kv_bytes

    def splits_heads(self, tp: int) -> bool:
        """Whether ``tp`` devices can share the attention heads as vLLM, SGLang and TensorRT-LLM require: the
        query heads divide evenly, and the KV heads do too or each is replicated a whole number of times."""
        if not self.num_heads:
            return True
        return self.num_heads % tp == 0 and (self.kv_heads % tp == 0 or tp % self.kv_heads == 0)

    def kv_replication(self, tp: ArrayLike) -> FloatArray:
        """How many copies of the KV cache a tensor-parallel group of ``tp`` devices keeps.

        Tensor parallelism splits KV heads across devices; with more devices than KV heads each head is
        replicated (GQA with 8 KV heads at tp 16: 2 copies; MLA's single latent: ``tp`` copies).
        """
        t = np.asarray(tp, dtype=np.float64)
        return t / np.minimum(t, float(self.kv_heads))

    # --- compute ---------------------------------------------------------------------------------------

    @property
    def active_matmul_params(self) -> float:
        """Parameters multiplied per token: the dense part plus ``experts_per_token`` routed experts per MoE layer."""
        return self.dense_matmul_params + self.moe_layers * self.experts_per_token * self.expert_params

    def linear_flops_per_token(self) -> float:
        """2 FLOPs per multiply-add over every active weight: 2 x active matmul parameters."""
        return 2.0 * self.active_matmul_params

    def attention_flops_per_token(self, context: ArrayLike) -> FloatArray:
        """Attention FLOPs of one token attending to ``context`` earlier tokens (local layers: their window)."""
        ctx = np.asarray(context, dtype=np.float64)
        local_ctx = np.minimum(ctx, self.sliding_window) if self.sliding_window else ctx
        return self.attn_flops_per_ctx_global * ctx + self.attn_flops_per_ctx_local * local_ctx

    def prefill_attention_flops_per_token(self, context: ArrayLike) -> FloatArray:
        """Attention FLOPs of one prompt token attending to ``context`` earlier tokens (prefill form)."""
        ctx = np.asarray(context, dtype=np.float64)
        local_ctx = np.minimum(ctx, self.sliding_window) if self.sliding_window else ctx
        return self.prefill_attn_flops_per_ctx_global * ctx + self.prefill_attn_flops_per_ctx_local * local_ctx

    def prefill_attention_flops(self, prompt: ArrayLike) -> FloatArray:
        """Attention FLOPs of prefilling a prompt of ``prompt`` tokens (causal: token i sees i tokens)."""
        n = np.asarray(prompt, dtype=np.float64)
        if self.sliding_window:
            w = self.sliding_window
            local = np.where(n <= w, n * n / 2, w * w / 2 + (n - w) * w)
        else:
            local = n * n / 2
        return self.prefill_attn_flops_per_ctx_global * n * n / 2 + self.prefill_attn_flops_per_ctx_local * local

    # --- mixture of experts ----------------------------------------------------------------------------

    def distinct_experts(self, tokens: ArrayLike) -> FloatArray:
        """Expected number of distinct routed experts touched in one MoE layer by ``tokens`` tokens.

        With uniform routing each token picks ``k`` of ``E`` experts, so an expert is missed by all tokens with
        probability (1 - k/E)^tokens. Real routers are less uniform; this is the usual upper estimate.
        """
        t = np.asarray(tokens, dtype=np.float64)
        if not self.num_experts:
            return np.zeros_like(t)
        e, k = float(self.num_experts), float(self.experts_per_token)
        return e * (1.0 - np.power(1.0 - k / e, t))

    def weight_bytes_read(self, tokens: ArrayLike, fmt: NumericFormat) -> FloatArray:
        """Weight bytes a step over ``tokens`` tokens streams from memory: dense part, plus experts touched."""
        experts = self.distinct_experts(tokens)
        dense_bytes = (self.params_total - self.moe_layers * self.num_experts * self.expert_params) * fmt.weight_bytes
        return dense_bytes + self.moe_layers * experts * self.expert_params * fmt.weight_bytes
