"""Debian's Chromium driven by Playwright, for the browser tests. Never downloads a browser.

Tests skip (with the reason) only where /usr/bin/chromium is absent and CI is not set; under CI they run
(and fail if Chromium is missing: `.ci/run` installs it).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Where the browser tests save their screenshots (ignored by git: build/ is in .gitignore).
ARTIFACTS = Path(
    os.environ.get("FIVELAYER_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "build" / "test-artifacts")
)


def require_chromium() -> None:
    """Skip when Chromium is absent outside CI; under CI a missing Chromium is a failure."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing under CI; .ci/run must apt-get install chromium")
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); browser tests run under CI")


@contextmanager
def chromium() -> Iterator[Any]:
    """A Playwright Chromium browser: Debian's binary, headless, no background networking."""
    require_chromium()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
