"""Training compute and memory, with numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fivelayer.catalog import CatalogSet
from fivelayer.models.training import ADAM_BYTES, TrainingWork


def test_dense_model_is_six_n_per_token_plus_attention(catalog: CatalogSet) -> None:
    work = TrainingWork.of(catalog.language_model("llama-2-7b"))
    # Llama 2 7B: 6,738,415,616 parameters, of which the 32,000 x 4,096 input embedding is a lookup.
    n = 6_738_415_616 - 32_000 * 4096
    assert work.active_matmul_params == pytest.approx(n)
    # Attention forward per context token: 4 x 32 heads x 128 x 32 layers = 524,288 FLOPs; mean context s/2.
    attn = 4 * 32 * 128 * 32 * 4096 / 2
    assert float(work.model_flops_per_token(4096)) == pytest.approx(6 * n + 3 * attn)
    # 2.0T tokens: 6 N D = 6 x 6.607e9 x 2e12 = 7.93e22 FLOPs of matrix products, 8.6e22 with attention.
    assert work.training_flops(2e12, 4096) == pytest.approx(2e12 * (6 * n + 3 * attn))
    assert 6 * n * 2e12 == pytest.approx(7.928e22, rel=1e-3)


def test_recomputation_adds_the_forward_pass(catalog: CatalogSet) -> None:
    work = TrainingWork.of(catalog.language_model("llama-3.1-70b"))
    model = float(work.model_flops_per_token(8192))
    forward = float(work.forward_flops_per_token(8192))
    assert float(work.hardware_flops_per_token(8192, 0)) == pytest.approx(model)
    assert float(work.hardware_flops_per_token(8192, 2)) == pytest.approx(model + forward)  # "8 N"
    assert model == pytest.approx(3 * forward)


def test_moe_trains_its_active_parameters(catalog: CatalogSet) -> None:
    model = catalog.language_model("deepseek-v3")
    work = TrainingWork.of(model)
    # 37.6e9 active of 671e9; the 129,280 x 7,168 input embedding is a lookup.
    assert work.active_matmul_params == pytest.approx(model.params_active() - 129_280 * 7168, rel=1e-6)
    # MLA trains unabsorbed: 2 x 128 heads x (128 + 64 + 128) per context token per layer, 61 layers.
    assert work.attn_flops_per_ctx == pytest.approx(2 * 128 * 320 * 61)


def test_adam_states_are_sixteen_bytes_per_parameter(catalog: CatalogSet) -> None:
    work = TrainingWork.of(catalog.language_model("llama-2-7b"))
    assert ADAM_BYTES.total == 16.0
    p = work.params_total
    assert float(work.state_bytes_per_device(1, 1, 1, 1, 0)) == pytest.approx(16 * p)
    # ZeRO-1 over 8 ranks: 2 + 2 + 12/8 = 5.5 bytes per parameter; ZeRO-3: 16/8 = 2.
    assert float(work.state_bytes_per_device(1, 1, 8, 1, 1)) == pytest.approx(5.5 * p)
    assert float(work.state_bytes_per_device(1, 1, 8, 1, 3)) == pytest.approx(2.0 * p)
    # Tensor x pipeline parallel split everything: 16 / (4 x 2) = 2 bytes per parameter.
    assert float(work.state_bytes_per_device(4, 2, 1, 1, 0)) == pytest.approx(2.0 * p)


def test_expert_parallel_shards_the_experts(catalog: CatalogSet) -> None:
    work = TrainingWork.of(catalog.language_model("mixtral-8x7b"))
    dense = work.params_total - work.expert_params_total
    got = float(work.state_bytes_per_device(1, 1, 8, 8, 0))
    assert got == pytest.approx(16 * (dense + work.expert_params_total / 8))


def test_activation_memory(catalog: CatalogSet) -> None:
    work = TrainingWork.of(catalog.language_model("llama-2-7b"))
    h, layers, heads, s = 4096, 32, 32, 4096
    # Full recomputation keeps the 2-byte layer input: 2 x 4,096 x 32 layers x 4,096 tokens = 1.07 GB.
    assert float(work.activation_bytes_per_device(s, s, 1, 1, 2)) == pytest.approx(2 * h * layers * s)
    assert 2 * h * layers * s == 1_073_741_824
    # Selective: 34 h per layer per token; none: 34 h + 5 a s (Korthikanti et al. 2022); tp divides.
    assert float(work.activation_bytes_per_device(s, s, 2, 1, 1)) == pytest.approx(34 * h * layers * s / 2)
    none = float(work.activation_bytes_per_device(s, s, 1, 1, 0))
    assert none == pytest.approx((34 * h + 5 * heads * s) * layers * s)
    arr = work.activation_bytes_per_device(s, s, np.array([1.0, 2.0, 4.0]), 1, 1)
    assert np.allclose(arr[0] / arr, [1, 2, 4])
