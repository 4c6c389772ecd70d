"""The JSON API: plan / yield / predict, the catalog, and 4xx with a message for every kind of bad input."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture(scope="module")
def client(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=60) as c:
        yield c


def test_plan_of_the_default_scenario(client: httpx.Client) -> None:
    r = client.post("/api/plan", json={})
    assert r.status_code == 200
    data = r.json()
    assert data["kind"] == "plan"
    assert data["totals"]["accelerators"] > 0
    assert {"sankey", "deployments", "applications", "assumptions"} <= set(data)


def test_plan_follows_the_scenario(client: httpx.Client) -> None:
    default = client.get("/api/scenarios/default").json()["yaml"]
    base = client.post("/api/plan", json={"scenario_yaml": default}).json()["totals"]["accelerators"]
    smaller = default.replace("users: 50_000_000", "users: 5_000_000")
    assert smaller != default
    fewer = client.post("/api/plan", json={"scenario_yaml": smaller}).json()["totals"]["accelerators"]
    assert fewer < base


def test_yield_with_a_budget(client: httpx.Client) -> None:
    r = client.post("/api/yield", json={"budget": "1e9 USD"})
    assert r.status_code == 200
    assert r.json()["totals"]["capex_usd"] <= 1e9


def test_predict(client: httpx.Client) -> None:
    r = client.post("/api/predict", json={"accelerator": "h200-sxm", "count": 8, "model": "llama-3.1-70b"})
    assert r.status_code == 200
    assert r.json()["throughput_tokens_per_s"] > 0


def test_openapi_document(client: httpx.Client) -> None:
    doc = client.get("/api/openapi.json").json()
    assert {"/api/plan", "/api/yield", "/api/predict", "/api/catalog/{kind}/{record_id}"} <= set(doc["paths"])


def test_bad_json_is_400_with_a_message(client: httpx.Client) -> None:
    r = client.post("/api/plan", content=b'{"scenario_yaml": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]


def test_wrong_shape_is_422(client: httpx.Client) -> None:
    r = client.post("/api/predict", json={"accelerator": "h200-sxm"})
    assert r.status_code == 422
    assert "model" in r.json()["error"]


def test_unknown_ids(client: httpx.Client) -> None:
    r = client.get("/api/catalog/accelerators/h200-sx")
    assert r.status_code == 404
    assert "Did you mean 'h200-sxm'" in r.json()["error"]
    r = client.get("/api/catalog/gadgets")
    assert r.status_code == 404
    r = client.post("/api/predict", json={"accelerator": "h100-sxn", "model": "llama-3.1-70b"})
    assert r.status_code == 422
    assert "h100-sxm" in r.json()["error"]
    default = client.get("/api/scenarios/default").json()["yaml"]
    r = client.post("/api/plan", json={"scenario_yaml": default.replace("dgx-h200", "dgx-h2000")})
    assert r.status_code == 422
    assert "deployments[0].system" in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/predict", {"accelerator": "h200-sxm", "model": "llama-3.1-70b", "count": 10**30}),
        ("/api/predict", {"accelerator": "h200-sxm", "model": "llama-3.1-70b", "output_tokens": 10**12}),
        ("/api/yield", {"budget": "1e300 USD"}),
    ],
)
def test_huge_numbers_are_refused(client: httpx.Client, path: str, body: dict[str, object]) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422
    assert r.json()["error"]


def test_huge_numbers_in_a_scenario(client: httpx.Client) -> None:
    default = client.get("/api/scenarios/default").json()["yaml"]
    r = client.post("/api/plan", json={"scenario_yaml": default.replace("users: 200_000", "users: 1.0e+300")})
    assert r.status_code == 422
    assert "applications[1].users" in r.json()["error"]
    assert "out of range" in r.json()["error"]
    r = client.post("/api/plan", content=b'{"scenario": {"seed": 1e999}}', headers={"content-type": "application/json"})
    assert r.status_code in (400, 422)
    assert r.json()["error"]


def test_oversized_body_is_413(client: httpx.Client) -> None:
    r = client.post("/api/plan", json={"scenario_yaml": "#" * 200_000})
    assert r.status_code == 413
    assert "too large" in r.json()["error"]


def test_bad_yaml_is_422_with_the_line(client: httpx.Client) -> None:
    r = client.post("/api/plan", json={"scenario_yaml": "name: [unclosed\nsite: {"})
    assert r.status_code == 422
    assert "YAML" in r.json()["error"]


def test_pages_and_assets_are_local(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "http://" not in page.text.replace(f"{client.base_url}", "") or "cdn" not in page.text
    assert "cdn." not in page.text
    assert client.get("/static/plotly.min.js").status_code == 200
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/nope.js").status_code == 404
