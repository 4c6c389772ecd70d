"""Model work accounting with numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fivelayer.catalog import CatalogSet
from fivelayer.models.work import ModelWork, numeric_format


def test_llama_2_70b_fp8_weights_and_kv(catalog: CatalogSet) -> None:
    work = ModelWork.of(catalog.language_model("llama-2-70b"))
    fp8 = numeric_format("fp8")
    # 68.98e9 parameters (published 69B) at one byte each: about 69 GB.
    assert work.weight_bytes(fp8) == pytest.approx(69e9, rel=0.01)
    # KV cache per token: 2 (K and V) x 80 layers x 8 KV heads x 128 dims x 1 byte.
    assert work.kv_bytes_per_token(fp8) == 2 * 80 * 8 * 128 * 1 == 163_840
    assert float(work.kv_bytes(1000, fp8)) == 163_840_000


def test_linear_flops_are_twice_the_multiplied_parameters(catalog: CatalogSet) -> None:
    model = catalog.language_model("llama-3.1-70b")
    work = ModelWork.of(model)
    # Everything but the 128256 x 8192 input embedding is multiplied once per token.
    assert work.linear_flops_per_token() == 2 * (model.params_total() - 128256 * 8192)


def test_attention_flops_per_token_by_hand(catalog: CatalogSet) -> None:
    work = ModelWork.of(catalog.language_model("llama-3.1-70b"))
    # QK^T and AV: 2 x 2 FLOPs x 64 heads x 128 dims per context token, in each of 80 layers.
    assert float(work.attention_flops_per_token(1000)) == 4 * 64 * 128 * 80 * 1000
    assert float(work.prefill_attention_flops(1000)) == 4 * 64 * 128 * 80 * 1000 * 1000 / 2


def test_mla_cache_is_the_latent(catalog: CatalogSet) -> None:
    work = ModelWork.of(catalog.language_model("deepseek-r1"))
    # DeepSeek-V3/R1 cache (kv_lora_rank 512 + rope dim 64) per layer, 61 layers, 1 byte in fp8: 35,136 B.
    assert work.kv_bytes_per_token(numeric_format("fp8")) == (512 + 64) * 61


def test_mla_decodes_absorbed_and_prefills_naive(catalog: CatalogSet) -> None:
    work = ModelWork.of(catalog.language_model("deepseek-r1"))
    # DeepSeek-V3/R1 config.json: 128 heads, kv_lora_rank 512, qk_nope 128, qk_rope 64, v_head_dim 128, 61 layers.
    # Decode over the latent: 2 x 128 x (2 x 512 + 64) per context token per layer = 278,528.
    assert float(work.attention_flops_per_token(1000)) == 2 * 128 * (2 * 512 + 64) * 61 * 1000
    # Prefill with decompressed keys and values: 2 x 128 x (128 + 64 + 128) = 81,920, 3.4x less.
    assert float(work.prefill_attention_flops_per_token(1000)) == 2 * 128 * (128 + 64 + 128) * 61 * 1000
    assert float(work.prefill_attention_flops(1000)) == 2 * 128 * (128 + 64 + 128) * 61 * 1000 * 1000 / 2


def test_sliding_window_layers_stop_growing(catalog: CatalogSet) -> None:
    model = catalog.language_model("gemma-3-27b")
    work = ModelWork.of(model)
    fmt = numeric_format("bf16")
    window = model.attention.sliding_window
    assert window is not None
    short, long_ = work.kv_bytes([window, 10 * window], fmt)
    global_layers = sum(model.is_global_layer(i) for i in range(model.num_layers))
    per_global_token = 2 * model.attention.kv_heads * model.head_dim * 2 * global_layers
    # Past the window only the global layers grow.
    assert long_ - short == pytest.approx(per_global_token * 9 * window)


def test_moe_experts_touched(catalog: CatalogSet) -> None:
    work = ModelWork.of(catalog.language_model("mixtral-8x7b"))
    # One token touches exactly its 2 experts; many tokens touch all 8.
    touched = work.distinct_experts(np.array([1, 10_000]))
    assert touched[0] == pytest.approx(2.0)
    assert touched[1] == pytest.approx(8.0)
    assert work.active_matmul_params < work.params_total


def test_precision_formats() -> None:
    assert numeric_format("MXFP4").weight_bytes == pytest.approx(4.25 / 8)
    assert numeric_format("int4").compute == "bf16"  # weight-only
    with pytest.raises(Exception, match="Unknown precision 'fp7'"):
        numeric_format("fp7")
