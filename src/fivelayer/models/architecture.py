"""Model records: the architecture needed for FLOP and byte accounting, and parameter counts from it.

Language models (``kind: llm``) give their transformer shape; parameter counts are computed from it and
checked against the published totals. Models of other fields (``kind: sample``: protein structure,
weather, perception...) give the work and memory of one sample directly.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import Field, model_validator

from fivelayer.core.provenance import Record, Strict
from fivelayer.core.quantities import Bytes, Flop

__all__ = ["FFN", "Attention", "DomainModel", "LanguageModel", "MoE", "Model"]


class Attention(Strict):
    """Attention shape. ``kind`` is ``mha`` (KV heads = heads), ``gqa``/``mqa`` or ``mla`` (DeepSeek)."""

    kind: Literal["mha", "gqa", "mqa", "mla"]
    num_heads: int = Field(ge=1)
    num_kv_heads: int | None = Field(default=None, ge=1)
    head_dim: int | None = Field(default=None, ge=1)
    qkv_bias: bool = False
    out_bias: bool = False
    #: Per-head RMSNorm on queries and keys (Qwen3, Gemma 3).
    qk_norm: bool = False
    # Multi-head latent attention (DeepSeek-V2/V3): low-rank queries and a compressed KV latent.
    q_lora_rank: int | None = Field(default=None, ge=1)
    kv_lora_rank: int | None = Field(default=None, ge=1)
    qk_nope_head_dim: int | None = Field(default=None, ge=1)
    qk_rope_head_dim: int | None = Field(default=None, ge=1)
    v_head_dim: int | None = Field(default=None, ge=1)
    #: Sliding-window length of local layers, in tokens.
    sliding_window: int | None = Field(default=None, ge=1)
    #: With a sliding window: one full-attention layer every ``global_every`` layers (the rest local).
    #: ``None`` with a window means every layer is local.
    global_every: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _shape(self) -> Attention:
        if self.kind == "mla":
            needed = ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim")
            missing = [n for n in needed if getattr(self, n) is None]
            if missing:
                raise ValueError(f"mla attention needs {', '.join(missing)}")
        elif self.kind == "mha" and self.num_kv_heads not in (None, self.num_heads):
            raise ValueError("mha attention has as many KV heads as query heads; use kind: gqa")
        elif self.kind == "mqa" and self.num_kv_heads not in (None, 1):
            raise ValueError("mqa attention has one KV head")
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        return self

    @property
    def kv_heads(self) -> int:
        if self.kind == "mha":
            return self.num_heads
        if self.kind == "mqa":
            return 1
        return self.num_kv_heads or self.num_heads


class FFN(Strict):
    """Dense feed-forward block: ``gated`` (SwiGLU/GeGLU, three matrices) or ``mlp`` (two matrices)."""

    kind: Literal["gated", "mlp"]
    intermediate_size: int = Field(ge=1)
    bias: bool = False


class MoE(Strict):
    """Mixture of experts in the feed-forward blocks."""

    num_experts: int = Field(ge=2)
    experts_per_token: int = Field(ge=1)
    expert_intermediate_size: int = Field(ge=1)
    num_shared_experts: int = Field(default=0, ge=0)
    #: Intermediate size of each shared expert (defaults to the routed experts' size).
    shared_intermediate_size: int | None = Field(default=None, ge=1)
    #: The first ``first_dense_layers`` layers use the dense FFN instead of experts (DeepSeek-V3: 3).
    first_dense_layers: int = Field(default=0, ge=0)
    #: One MoE layer every ``moe_every`` layers, the others dense (Llama 4 Maverick: 2).
    moe_every: int = Field(default=1, ge=1)
    expert_bias: bool = False

    @model_validator(mode="after")
    def _routing(self) -> MoE:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")
        return self


class LanguageModel(Record):
    """A decoder-only transformer language model."""

    kind: Literal["llm"] = "llm"
    developer: str
    family: str
    release_date: dt.date
    open_weights: bool
    num_layers: int = Field(ge=1)
    hidden_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    max_context_tokens: int = Field(ge=1)
    tied_embeddings: bool = False
    position_embedding: Literal["rope", "learned", "alibi", "none"] = "rope"
    #: BLOOM normalises the embedding output; counted as one extra LayerNorm.
    embedding_norm: bool = False
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    attention: Attention
    ffn: FFN
    moe: MoE | None = None
    #: Native (released) precision of the weights.
    native_precision: str = "bf16"
    #: Parameters outside the decoder stack counted in the published total (vision encoder, MTP head).
    extra_params: float = Field(default=0.0, ge=0)
    published_params_total: float = Field(gt=0)
    published_params_active: float | None = Field(default=None, gt=0)
    #: Whether the publisher's active count leaves out the input embedding table (gpt-oss model card does).
    published_active_excludes_input_embedding: bool = False

    @model_validator(mode="after")
    def _shape(self) -> LanguageModel:
        a = self.attention
        if a.kind != "mla" and a.head_dim is None and self.hidden_size % a.num_heads:
            raise ValueError("hidden_size is not a multiple of num_heads; give attention.head_dim")
        if self.moe is not None and self.moe.first_dense_layers >= self.num_layers:
            raise ValueError("moe.first_dense_layers must be fewer than num_layers")
        return self

    # --- shape helpers -------------------------------------------------------------------------------

    @property
    def head_dim(self) -> int:
        a = self.attention
        return a.head_dim or self.hidden_size // a.num_heads

    def is_moe_layer(self, layer: int) -> bool:
        """Whether layer ``layer`` (0-based) routes to experts."""
        m = self.moe
        if m is None or layer < m.first_dense_layers:
            return False
        return (layer - m.first_dense_layers) % m.moe_every == m.moe_every - 1

    @property
    def num_moe_layers(self) -> int:
        return sum(self.is_moe_layer(i) for i in range(self.num_layers))

    def is_global_layer(self, layer: int) -> bool:
        """Whether layer ``layer`` attends to the whole context (not a sliding window)."""
        a = self.attention
        if a.sliding_window is None:
            return True
        if a.global_every is None:
            return False
        return layer % a.global_every == a.global_every - 1

    # --- parameter counts ----------------------------------------------------------------------------

    def attention_params(self) -> int:
        """Parameters of one attention block (projections, biases and per-head norms; not the layer norm)."""
        a, h = self.attention, self.hidden_size
        if a.kind == "mla":
            assert a.kv_lora_rank and a.qk_nope_head_dim and a.qk_rope_head_dim and a.v_head_dim
            qk_dim = a.qk_nope_head_dim + a.qk_rope_head_dim
            if a.q_lora_rank:
                q = h * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * a.num_heads * qk_dim
            else:
                q = h * a.num_heads * qk_dim
            kv = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank
            kv += a.kv_lora_rank * a.num_heads * (a.qk_nope_head_dim + a.v_head_dim)
            return q + kv + a.num_heads * a.v_head_dim * h
        d, nq, nkv = self.head_dim, a.num_heads, a.kv_heads
        params = h * d * (nq + 2 * nkv) + nq * d * h
        if a.qkv_bias:
            params += d * (nq + 2 * nkv)
        if a.out_bias:
            params += h
        if a.qk_norm:
            params += 2 * d
        return params

    def dense_ffn_params(self) -> int:
        f, h = self.ffn, self.hidden_size
        matrices = 3 if f.kind == "gated" else 2
        params = matrices * h * f.intermediate_size
        if f.bias:
            params += f.intermediate_size * (matrices - 1) + h
        return params

    def expert_params(self) -> int:
        """Parameters of one routed expert (gated FFN)."""
        assert self.moe is not None
        m, h = self.moe, self.hidden_size
        matrices = 3 if self.ffn.kind == "gated" else 2
        params = matrices * h * m.expert_intermediate_size
        if m.expert_bias:
            params += m.expert_intermediate_size * (matrices - 1) + h
        return params

    def shared_expert_params(self) -> int:
        assert self.moe is not None
        m = self.moe
        size = m.shared_intermediate_size or m.expert_intermediate_size
        matrices = 3 if self.ffn.kind == "gated" else 2
        return m.num_shared_experts * matrices * self.hidden_size * size

    def router_params(self) -> int:
        assert self.moe is not None
        return self.hidden_size * self.moe.num_experts + (self.moe.num_experts if self.moe.expert_bias else 0)

    def norm_params(self) -> int:
        """Normalisation weights of the whole stack (two per layer, one final, and an embedding norm)."""
        per = self.hidden_size * (2 if self.norm == "layernorm" else 1)
        return per * (2 * self.num_layers + 1 + int(self.embedding_norm))

    def embedding_params(self) -> int:
        """Token embeddings, the output head (unless tied) and learned position embeddings."""
        params = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        if self.position_embedding == "learned":
            params += self.max_context_tokens * self.hidden_size
        return params

    def params_total(self) -> float:
        """All parameters: embeddings, every layer with every expert, norms, plus ``extra_params``."""
        total = self.embedding_params() + self.norm_params() + self.num_layers * self.attention_params()
        moe_layers = self.num_moe_layers
        total += (self.num_layers - moe_layers) * self.dense_ffn_params()
        if self.moe is not None:
            per_moe = self.moe.num_experts * self.expert_params() + self.shared_expert_params()
            total += moe_layers * (per_moe + self.router_params())
        return float(total + self.extra_params)

    def params_active(self) -> float:
        """Parameters of the language model used for one text token: the decoder stack with
        ``experts_per_token`` routed experts per MoE layer. ``extra_params`` (a vision encoder, an MTP head)
        are not active for text, as publishers count active parameters (Llama 4: 17B)."""
        active = self.params_total() - self.extra_params
        if self.moe is None:
            return active
        m = self.moe
        return active - self.num_moe_layers * (m.num_experts - m.experts_per_token) * self.expert_params()

    def params_active_as_published(self) -> float:
        """Active parameters counted the way the publisher counts them (see the flag above)."""
        if self.published_active_excludes_input_embedding:
            return self.params_active() - self.vocab_size * self.hidden_size
        return self.params_active()

    def decoder_params_active(self) -> float:
        """Active parameters that take part in matrix products per token, excluding the input embedding."""
        return (
            self.params_active()
            - self.extra_params
            - self.vocab_size * self.hidden_size * (0 if self.tied_embeddings else 1)
            - (self.max_context_tokens * self.hidden_size if self.position_embedding == "learned" else 0)
        )


class DomainModel(Record):
    """A model outside language (protein structure, molecules, weather, perception, robot policy).

    Its work is given per *sample*, which ``sample`` describes (one protein, one forecast step, one frame).
    """

    kind: Literal["sample"] = "sample"
    developer: str
    domain: Literal[
        "protein-structure", "molecule-design", "weather", "driving-perception", "robot-policy", "vision", "other"
    ]
    release_date: dt.date
    open_weights: bool
    params: float = Field(gt=0)
    sample: str
    flops_per_sample: Flop
    #: Activation memory per sample at inference, beyond the weights.
    memory_bytes_per_sample: Bytes
    native_precision: str = "fp32"
    #: Total compute of the published training run, where reported.
    training_flops: Flop | None = None


Model = Annotated[LanguageModel | DomainModel, Field(discriminator="kind")]
