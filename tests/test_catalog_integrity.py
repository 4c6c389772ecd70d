"""Integrity of the shipped catalog: every record sourced, in range, and the required ids present.

The required ids are those of the foundation issue; parameter counts are recomputed from each model's
architecture and compared with the published total (within 2 %).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from fivelayer.catalog import KINDS, CatalogSet, default_catalog
from fivelayer.chips import Accelerator
from fivelayer.models import DomainModel, LanguageModel

REQUIRED = {
    "accelerators": [
        "a100-sxm-80gb",
        "v100-sxm-32gb",
        "h100-sxm",
        "h100-pcie",
        "h100-nvl",
        "h800-sxm",
        "h200-sxm",
        "h200-nvl",
        "gh200",
        "b200",
        "b300",
        "gb200",
        "gb300",
        "mi300x",
        "mi325x",
        "mi355x",
        "gaudi2",
        "gaudi3",
        "tpu-v5e",
        "tpu-v5p",
        "tpu-v6e",
        "l40s",
    ],
    "systems": ["dgx-a100", "dgx-h100", "dgx-h200", "dgx-b200", "gb200-nvl72", "gb300-nvl72"],
    "models": [
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3-8b",
        "llama-3-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "llama-3.3-70b",
        "llama-4-scout",
        "llama-4-maverick",
        "mixtral-8x7b",
        "mixtral-8x22b",
        "deepseek-v3",
        "deepseek-r1",
        "qwen3-8b",
        "qwen3-14b",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "qwen3-235b-a22b",
        "qwen3-coder-480b-a35b",
        "gpt-oss-20b",
        "gpt-oss-120b",
        "gemma-3-12b",
        "gemma-3-27b",
        "gpt-3-175b",
        "opt-175b",
        "bloom-176b",
    ],
    "applications": [
        "customer-service-assistant",
        "coding-agent",
        "general-chat",
        "drug-discovery-platform",
        "autonomous-driving-fleet",
        "industrial-robotics",
    ],
    "facilities": [],
    "grid-regions": [],
    "components": [],
    "supply-options": [],
}
MINIMUM = {
    "accelerators": 20,
    "systems": 8,
    "models": 30,
    "grid-regions": 20,
    "facilities": 4,
    "applications": 6,
    "components": 0,
    "supply-options": 0,
}
DOMAINS = ["protein-structure", "molecule-design", "weather", "driving-perception", "robot-policy"]

ALL_RECORDS = [(kind, record) for kind, cat in default_catalog() for record in cat]


def _ids(records: list[tuple[str, Any]]) -> list[str]:
    return [f"{kind}/{record.id}" for kind, record in records]


@pytest.mark.parametrize("kind", list(KINDS))
def test_required_ids_and_minimum_counts(catalog: CatalogSet, kind: str) -> None:
    ids = set(catalog.kind(kind).ids())
    missing = [i for i in REQUIRED[kind] if i not in ids]
    assert not missing, f"{kind} missing {missing}"
    assert len(ids) >= MINIMUM[kind]


@pytest.mark.parametrize(("kind", "record"), ALL_RECORDS, ids=_ids(ALL_RECORDS))
def test_every_record_is_sourced_and_dated(kind: str, record: Any) -> None:
    assert record.sources
    for source in record.sources:
        assert source.url or source.citation
        assert dt.date(2015, 1, 1) <= source.retrieved <= dt.date.today()
    assert dt.date(2000, 1, 1) <= record.as_of <= dt.date.today()
    for field, basis in record.estimates.items():
        assert len(basis) > 10, f"{record.id}: estimate of {field} needs a stated basis"


ACCELERATORS = list(default_catalog().accelerators)


@pytest.mark.parametrize("chip", ACCELERATORS, ids=[c.id for c in ACCELERATORS])
def test_accelerator_numbers_are_physical(chip: Accelerator) -> None:
    flops = chip.peak_flops
    assert "bf16" in flops or "fp16" in flops, "every AI accelerator has a 16-bit rate"
    # Narrower formats are never slower than wider ones on the same chip.
    order = ["fp32", "tf32", "bf16", "fp8", "fp4"]
    present = [flops[p] for p in order if p in flops]
    assert present == sorted(present)
    # Arithmetic intensity at the bf16 ridge point lies between 50 and 2,000 FLOP/byte for every real chip.
    ridge = chip.peak("bf16") / chip.memory_bandwidth_bytes_per_s
    assert 50 < ridge < 2000
    assert 0 < chip.idle_power_w < 0.4 * chip.tdp_w
    assert 1_000 <= chip.price_usd <= 200_000
    assert 2016 <= chip.launch_year <= 2026


def test_known_datasheet_values(catalog: CatalogSet) -> None:
    # NVIDIA H200 datasheet: 141 GB HBM3e, 4.8 TB/s, 700 W, FP8 3,958 TFLOPS with sparsity (1,979 dense).
    h200 = catalog.accelerators.get("h200-sxm")
    assert (h200.memory_bytes, h200.memory_bandwidth_bytes_per_s, h200.tdp_w) == (141e9, 4.8e12, 700.0)
    assert h200.peak_flops["fp8"] == pytest.approx(1979e12)
    # AMD Instinct MI300X: 192 GB HBM3 at 5.3 TB/s, 750 W.
    mi300x = catalog.accelerators.get("mi300x")
    assert mi300x.memory_bytes == pytest.approx(192e9)
    assert mi300x.memory_bandwidth_bytes_per_s == pytest.approx(5.3e12)
    assert mi300x.tdp_w == 750.0


SYSTEMS = list(default_catalog().systems)


@pytest.mark.parametrize("system", SYSTEMS, ids=[s.id for s in SYSTEMS])
def test_system_is_consistent_with_its_accelerator(catalog: CatalogSet, system: Any) -> None:
    chip = catalog.accelerators.get(system.accelerator)
    # The wall power covers the accelerators at TDP plus the host.
    assert system.max_power_w >= system.accelerator_count * chip.tdp_w * 0.95
    assert system.host_power_w > 0
    assert system.price_usd >= system.accelerator_count * chip.price_usd * 0.5


LANGUAGE = [m for m in default_catalog().models if isinstance(m, LanguageModel)]


@pytest.mark.parametrize("model", LANGUAGE, ids=[m.id for m in LANGUAGE])
def test_parameter_counts_match_published_totals(model: LanguageModel) -> None:
    assert model.params_total() == pytest.approx(model.published_params_total, rel=0.02)
    if model.published_params_active is not None:
        assert model.params_active_as_published() == pytest.approx(model.published_params_active, rel=0.02)
    if model.moe is None:
        assert model.params_active() == model.params_total() - model.extra_params
    else:
        assert model.params_active() < model.params_total()


def test_llama_3_1_70b_by_hand(catalog: CatalogSet) -> None:
    """80 layers x (attention 8192*128*(64+2*8) + 64*128*8192, FFN 3*8192*28672) + 2 * 128256*8192 + norms."""
    m = catalog.language_model("llama-3.1-70b")
    attention = 8192 * 128 * (64 + 16) + 64 * 128 * 8192
    ffn = 3 * 8192 * 28672
    norms = 8192 * (2 * 80 + 1)
    assert m.params_total() == 80 * (attention + ffn) + 2 * 128256 * 8192 + norms == 70_553_706_496


def test_deepseek_v3_is_a_mixture_of_experts_with_mla(catalog: CatalogSet) -> None:
    m = catalog.language_model("deepseek-v3")
    assert m.attention.kind == "mla"
    assert m.moe is not None and m.moe.first_dense_layers == 3
    assert m.num_moe_layers == m.num_layers - 3
    # DeepSeek-V3 technical report: 671B total, 37B activated per token.
    assert m.params_total() == pytest.approx(671e9, rel=0.02)
    assert m.params_active() == pytest.approx(37e9, rel=0.02)


def test_domain_models_cover_every_field(catalog: CatalogSet) -> None:
    domains = {m.domain for m in catalog.models if isinstance(m, DomainModel)}
    assert set(DOMAINS) <= domains


def test_applications_reference_real_models(catalog: CatalogSet) -> None:
    for app in catalog.applications:
        model = catalog.models.get(app.default_model)
        expected = LanguageModel if app.modality == "llm" else DomainModel
        assert isinstance(model, expected), app.id


def test_grid_regions_in_physical_range(catalog: CatalogSet) -> None:
    for region in catalog.grid_regions:
        assert 0 < region.carbon_intensity_g_per_kwh < 1200, region.id
        assert 0.01 < region.electricity_price_usd_per_kwh < 0.6, region.id


def test_facility_designs_cover_every_cooling_kind(catalog: CatalogSet) -> None:
    kinds = {f.cooling for f in catalog.facilities}
    assert kinds == {"air", "rear-door", "direct-to-chip", "immersion"}
    for design in catalog.facilities:
        assert 1.0 < design.pue < 2.5
        assert 0.8 < design.power_chain_efficiency <= 1.0


def test_sustained_rates_of_amd_cdna3(catalog: CatalogSet) -> None:
    """AMD's measured max-achievable FLOP/s (ROCm blog "Measuring Max-Achievable FLOPs - Part 2", Table 1):
    MI300X FP8 1,273 and BF16 708 TFLOP/s; MI325X FP8 1,519 TFLOP/s; both 2,614.9 TFLOP/s FP8 on the datasheet."""
    mi300x = catalog.accelerators.get("mi300x")
    mi325x = catalog.accelerators.get("mi325x")
    assert mi300x.peak("fp8") == mi325x.peak("fp8") == pytest.approx(2614.9e12)
    assert mi300x.sustained("fp8") == pytest.approx(1273e12)
    assert mi300x.sustained("bf16") == pytest.approx(708e12)
    assert mi325x.sustained("fp8") == pytest.approx(1519e12)
    # int8 is not measured: its peak (2,614.9) scaled by the nearest listed precision's ratio (fp8: 1273/2614.9).
    assert mi300x.sustained("int8") == pytest.approx(1273e12)
    # fp4 runs at the fp8 rate on CDNA3 (no fp4 units), so at the sustained fp8 rate.
    assert mi300x.sustained("fp4") == pytest.approx(1273e12)
    # A chip without measurements sustains its datasheet peak.
    h200 = catalog.accelerators.get("h200-sxm")
    assert h200.sustained("fp8") == h200.peak("fp8")


def test_sustained_rate_above_peak_is_refused(catalog: CatalogSet) -> None:
    from pydantic import ValidationError

    data = catalog.accelerators.get("mi300x").model_dump()
    data["sustained_flops"] = {"fp8": 3000e12}
    with pytest.raises(ValidationError, match=r"sustained_flops.fp8 .* at most peak_flops.fp8"):
        Accelerator.model_validate(data)
    data["sustained_flops"] = {"fp4": 1000e12}
    with pytest.raises(ValidationError, match=r"peak_flops\.fp4 is not"):
        Accelerator.model_validate(data)
