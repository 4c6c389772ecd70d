"""The web app in Debian's Chromium (Playwright): edit, run, see the result change, errors, downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interfaces.web.browser import ARTIFACTS, chromium


@pytest.fixture(scope="module")
def browser() -> object:
    with chromium() as b:
        yield b


def _total(page: object, key: str) -> str:
    return str(page.locator(f"#total-{key}").inner_text())  # type: ignore[attr-defined]


def test_edit_run_error_download(browser: object, live_server: str, tmp_path: Path) -> None:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda req: None if req.url.startswith(live_server) else outside.append(req.url))
    try:
        page.goto(live_server + "/")
        page.locator("#run").click()
        page.wait_for_selector("#total-accelerators")
        first = _total(page, "accelerators")
        first_cost = _total(page, "capex_usd")

        # Change the accelerator and the number of users, run again: the numbers change.
        page.select_option("#f-deployments-0-hardware", "h100-sxm")
        page.fill("#f-applications-0-users", "5000000")
        page.locator("#run").click()
        page.wait_for_selector("#total-accelerators")
        assert _total(page, "accelerators") != first
        assert _total(page, "capex_usd") != first_cost
        assert page.locator("#f-deployments-0-hardware").input_value() == "h100-sxm"
        page.wait_for_selector("#chart-sankey[data-rendered=true]", timeout=30_000)
        for chart in ("chart-capex", "chart-annual-cost", "chart-unit-cost", "chart-hourly"):
            page.wait_for_selector(f"#{chart}[data-rendered=true]", timeout=30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-app-result.png"), full_page=False)

        # Download the edited scenario.
        with page.expect_download() as download_info:
            page.locator("#download-scenario").click()
        saved = tmp_path / "scenario.yaml"
        download_info.value.save_as(saved)
        text = saved.read_text(encoding="utf-8")
        assert "accelerator: h100-sxm" in text
        assert "5000000" in text

        # An invalid value: a clear message next to the field, no traceback.
        page.fill("#f-applications-0-users", "-5")
        page.locator("#run").click()
        message = page.locator("#f-applications-0-users-error")
        message.wait_for()
        assert "greater than 0" in message.inner_text()
        assert "Traceback" not in page.content()
        page.screenshot(path=str(ARTIFACTS / "web-app-error.png"), full_page=False)

        # An unknown unit in a price names the field.
        page.fill("#f-applications-0-users", "5000000")
        page.fill("#f-economics-electricity-price", "0.07 bananas")
        page.locator("#run").click()
        page.locator("#f-economics-electricity-price-error").wait_for()
        assert outside == []
    finally:
        context.close()


def test_predict_page(browser: object, live_server: str) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    try:
        page.goto(live_server + "/predict")
        page.fill("#f-count", "16")
        page.locator("#run").click()
        page.wait_for_selector("#prediction")
        assert "throughput" in page.locator("#prediction").inner_text()
        page.fill("#f-count", "0")
        page.locator("#run").click()
        page.locator("#f-count-error").wait_for()
    finally:
        page.close()
