"""Load: ~2,000 requests from 64 concurrent clients (keep-alive), every one answered with its
own result, and memory flat: RSS after the load within 10 % of RSS after a warm-up."""

from __future__ import annotations

import asyncio
import gc
import os

import httpx
import pytest
from serve_pipelines import echoed
from serve_support import Serving

CLIENTS = 64


def rss() -> int:
    """This process's resident set size, in bytes (server and clients both live here)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def load(url: str, requests: int) -> list[tuple[int, str, str]]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    answers: list[tuple[int, str, str]] = []
    todo = iter(range(requests))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in todo:
                text = f"request-{i}"
                response = await client.post("/v1/pipelines/echoed", json={"text": text})
                answers.append((response.status_code, text, response.json().get("out", "")))

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return answers


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc")
def test_two_thousand_requests_at_64_clients_all_answered_memory_flat(
        serving: Serving) -> None:
    server = serving(echoed, max_queue=256)
    warm = asyncio.run(load(server.url, 500))
    assert all(status == 200 for status, _, _ in warm)
    gc.collect()
    after_warm_up = rss()
    answers = asyncio.run(load(server.url, 2000))
    gc.collect()
    after_load = rss()
    assert len(answers) == 2000
    assert [status for status, _, _ in answers] == [200] * 2000
    assert all(out == text[::-1] for _, text, out in answers)
    assert after_load <= after_warm_up * 1.10, (after_warm_up, after_load)
