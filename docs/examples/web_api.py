"""Call the web app's JSON API in-process (no server): plan the default scenario, then predict inference.

Run: python docs/examples/web_api.py
The printed output is checked by tests/interfaces/report/test_examples.py against web_api.out.
"""

from __future__ import annotations

import asyncio
import json

import httpx

from fivelayer.interfaces.web import create_app


async def main() -> None:
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://fivelayer.local") as client:
        plan = (await client.post("/api/plan", json={})).json()
        print(f"plan: {plan['kind']} of {plan['scenario']!r}, {len(plan['deployments'])} deployments")
        bad = await client.get("/api/catalog/accelerators/h200-sx")
        print(f"unknown id: {bad.status_code} {bad.json()['error']}")
        case = {"accelerator": "h200-sxm", "count": 8, "model": "llama-3.1-70b", "mode": "offline"}
        predicted = (await client.post("/api/predict", json=case)).json()
        print(f"predict: {json.dumps({k: predicted[k] for k in ('accelerator', 'model', 'count')})}")
        huge = await client.post("/api/predict", json={**case, "count": 10**30})
        print(f"huge count: {huge.status_code}")


if __name__ == "__main__":
    asyncio.run(main())
