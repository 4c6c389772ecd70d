"""Catalog machinery: lookups, aliases, did-you-mean, user records, and the errors for bad records."""

from __future__ import annotations

from pathlib import Path

import pytest

from fivelayer.catalog import CatalogSet, default_catalog
from fivelayer.core.catalog import lookup_key
from fivelayer.core.errors import CatalogError, UnknownIdError

CHIP = """\
accelerators:
  - id: {id}
    name: Test chip
    vendor: Example
    family: test
    form_factor: pcie
    launch_year: 2025
    peak_flops: {{bf16: 500 TFLOP/s, fp8: 1000 TFLOP/s}}
    memory_type: HBM3
    memory_bytes: {memory}
    memory_bandwidth_bytes_per_s: 3 TB/s
    tdp_w: 600 W
    idle_power_w: 60 W
    scale_up: {{link: none, bandwidth_bytes_per_s: 64 GB/s, domain_size: 1}}
    scale_out_bandwidth_bytes_per_s: 50 GB/s
    price_usd: 10000 USD
    sources: [{{citation: test fixture, retrieved: 2026-11-28}}]
    as_of: 2026-01-01
"""


def write(tmp_path: Path, text: str, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lookup_is_case_insensitive_and_accepts_aliases(catalog: CatalogSet) -> None:
    assert catalog.accelerators.get("H200-SXM").id == "h200-sxm"
    assert catalog.accelerators.get("H200 SXM5 141GB").id == "h200-sxm"
    assert catalog.models.get("meta-llama/Llama-3.1-70B-Instruct").id == "llama-3.1-70b"


def test_unknown_id_suggests_the_nearest(catalog: CatalogSet) -> None:
    with pytest.raises(UnknownIdError, match="Did you mean 'h200-sxm'") as info:
        catalog.accelerators.get("h200-sx")
    assert info.value.suggestions[0] == "h200-sxm"


def test_lookup_key() -> None:
    assert lookup_key("  GB200 NVL72 ") == "gb200-nvl72"


def test_user_file_adds_a_record(tmp_path: Path) -> None:
    cat = default_catalog().with_file(write(tmp_path, CHIP.format(id="my-chip", memory="96 GB")))
    chip = cat.accelerators.get("MY-CHIP")
    assert chip.memory_bytes == 96e9
    assert cat.accelerators.origin("my-chip").endswith("mine.yaml")
    assert "my-chip" not in default_catalog().accelerators  # the shipped catalog is untouched


def test_user_file_replaces_a_shipped_record(tmp_path: Path) -> None:
    cat = default_catalog().with_file(write(tmp_path, CHIP.format(id="h200-sxm", memory="150 GB")))
    assert cat.accelerators.get("h200-sxm").memory_bytes == 150e9
    assert default_catalog().accelerators.get("h200-sxm").memory_bytes == 141e9


def test_duplicate_ids_in_one_file_are_rejected(tmp_path: Path) -> None:
    text = CHIP.format(id="dup", memory="96 GB")
    text += text.split("accelerators:\n", 1)[1]
    with pytest.raises(CatalogError, match="duplicate accelerator id 'dup'"):
        _ = len(default_catalog().with_file(write(tmp_path, text)).accelerators)


def test_extra_field_is_rejected_with_file_line_and_field(tmp_path: Path) -> None:
    text = CHIP.format(id="x1", memory="96 GB").replace(
        "    vendor: Example\n", "    vendor: Example\n    colour: red\n"
    )
    with pytest.raises(CatalogError) as info:
        default_catalog().with_file(write(tmp_path, text))
    message = str(info.value)
    assert "mine.yaml line 5" in message
    assert "accelerators[0].colour" in message
    assert "unknown field" in message
    assert "did you mean" not in message  # nothing is close to 'colour'


def test_misspelt_field_names_the_nearest_known_one(tmp_path: Path) -> None:
    text = CHIP.format(id="x3", memory="96 GB").replace(
        "    tdp_w: 600 W\n", "    tdp_w: 600 W\n    sustained_flop: {fp8: 800 TFLOP/s}\n"
    )
    with pytest.raises(
        CatalogError,
        match=r"line 13 \(accelerators\[0\]\.sustained_flop\): unknown field; did you mean 'sustained_flops'\?",
    ):
        default_catalog().with_file(write(tmp_path, text))


def test_wrong_unit_names_field_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, CHIP.format(id="x2", memory="96 W"))
    with pytest.raises(CatalogError, match=r"line 10 \(accelerators\[0\]\.memory_bytes\).*'96 W' is not a byte"):
        default_catalog().with_file(path)


def test_record_without_sources_is_rejected(tmp_path: Path) -> None:
    text = CHIP.format(id="x3", memory="96 GB").replace(
        "    sources: [{citation: test fixture, retrieved: 2026-11-28}]\n", "    sources: []\n"
    )
    with pytest.raises(CatalogError, match="sources"):
        default_catalog().with_file(write(tmp_path, text))


def test_source_needs_url_or_citation(tmp_path: Path) -> None:
    text = CHIP.format(id="x4", memory="96 GB").replace("citation: test fixture, ", "")
    with pytest.raises(CatalogError, match="a source needs a url or a citation"):
        default_catalog().with_file(write(tmp_path, text))


def test_bad_id_shape_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="lower-case words and digits"):
        default_catalog().with_file(write(tmp_path, CHIP.format(id="My_Chip", memory="96 GB")))


def test_idle_above_tdp_is_rejected(tmp_path: Path) -> None:
    text = CHIP.format(id="x5", memory="96 GB").replace("idle_power_w: 60 W", "idle_power_w: 900 W")
    with pytest.raises(CatalogError, match="idle_power_w"):
        default_catalog().with_file(write(tmp_path, text))


def test_unknown_kind_in_user_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="write the kind as 'accelerators:'"):
        default_catalog().with_file(write(tmp_path, "accelerator: []\n"))
    with pytest.raises(CatalogError, match="Unknown catalog kind 'gizmos'"):
        default_catalog().with_file(write(tmp_path, "gizmos: []\n"))


def test_missing_user_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such file"):
        default_catalog().with_file(tmp_path / "absent.yaml")


def test_alias_clash_is_rejected(tmp_path: Path) -> None:
    text = CHIP.format(id="x6", memory="96 GB").replace(
        "    vendor: Example\n", "    aliases: [H200]\n    vendor: Example\n"
    )
    with pytest.raises(CatalogError, match="alias 'H200' of 'x6' is already used by 'h200-sxm'"):
        default_catalog().with_file(write(tmp_path, text))
