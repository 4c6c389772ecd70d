"""A live server for the API and browser tests: the app on 127.0.0.1, a free port, stopped after the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.interfaces.web.browser import free_port


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    import httpx
    import uvicorn

    from fivelayer.interfaces.web import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(max_body_bytes=64 * 1024, run_timeout_s=60.0),
        host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="off",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fivelayer-test-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    httpx.get(base + "/api/scenarios/default", timeout=30)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
