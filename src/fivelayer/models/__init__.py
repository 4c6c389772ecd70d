"""Layer 4, models: architectures, FLOPs and bytes per token, KV cache, parallelism, training compute."""

from fivelayer.models.architecture import FFN, Attention, DomainModel, LanguageModel, Model, MoE

__all__ = ["FFN", "Attention", "DomainModel", "LanguageModel", "MoE", "Model"]
