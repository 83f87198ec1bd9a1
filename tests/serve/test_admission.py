"""Admission and overload: batching across requests, 429 with a computed Retry-After past
max_queue, 504 for a deadline that cannot be met (its work never started), a client that
disconnects cancels its item."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import serve_pipelines as sp
from serve_support import Serving, until

from legato.serve.admission import Gate, ServiceRate, retry_after


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_is_the_queue_ahead_over_the_service_rate() -> None:
    assert retry_after(30, 10.0) == 3
    assert retry_after(31, 10.0) == 4  # rounded up
    assert retry_after(1, 100.0) == 1  # at least 1
    assert retry_after(50, None) == 1  # no rate observed yet


def test_service_rate_counts_completions_in_its_window() -> None:
    clock = Ticks()
    rate = ServiceRate(window=10.0, clock=clock)
    assert rate.rate() is None
    for _ in range(20):
        clock.now += 0.5
        rate.completed()
    assert rate.rate() == pytest.approx(20 / 9.5)
    clock.now += 20  # all of them out of the window
    assert rate.rate() is None


def test_gate_refuses_past_max_queue_with_the_queue_ahead() -> None:
    clock = Ticks()
    gate = Gate(2, rate=ServiceRate(clock=clock))
    assert gate.admit() is None
    assert gate.admit() is None
    refusal = gate.admit()
    assert refusal is not None
    assert refusal.queue_ahead == 2
    assert refusal.retry_after == 1
    for _ in range(4):  # 4 completions over 2 s: 2 per second
        clock.now += 0.5
        gate.release(completed=True)
        gate.admit()
    refusal = gate.admit()
    assert refusal is not None
    assert refusal.retry_after == 1
    assert gate.refused == 2


def test_concurrent_requests_are_batched_together(serving: Serving) -> None:
    sp.BATCHES.clear()
    server = serving(sp.doubled)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda x: server.client.post("/v1/pipelines/doubled", json={"x": x}), range(8)))
    assert [a.json() for a in answers] == [{"out": 2 * x} for x in range(8)]
    assert sp.BATCHES == [8]  # one batch of all 8 requests (it flushes when full)


def test_a_burst_past_max_queue_gets_429_with_retry_after(serving: Serving, gate: None) -> None:
    server = serving(sp.gated, max_queue=3, resources={"slot": 1})
    with ThreadPoolExecutor(8) as pool:
        held = [pool.submit(server.client.post, "/v1/pipelines/gated", json={"x": i})
                for i in range(3)]
        assert until(lambda: server.service.served["gated"].gate.admitted == 3)
        burst = list(pool.map(
            lambda i: server.client.post("/v1/pipelines/gated", json={"x": i}), range(10, 15)))
        assert [r.status_code for r in burst] == [429] * 5
        for refused in burst:
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["queue_ahead"] == 3
        sp.GATE.set()
        assert sorted(f.result().json()["out"] for f in held) == [0, 1, 2]


def test_a_deadline_that_cannot_be_met_is_504_and_its_work_never_starts(
        serving: Serving, gate: None) -> None:
    server = serving(sp.gated, resources={"slot": 1})
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(server.client.post, "/v1/pipelines/gated", json={"x": 1})
        assert sp.ENTERED.wait(10)  # x=1 holds the only slot
        late = server.client.post("/v1/pipelines/gated", json={"x": 2},
                                  headers={"X-Request-Timeout": "0.2"})
        assert late.status_code == 504
        assert late.json()["title"] == "Deadline exceeded"
        sp.GATE.set()
        assert first.result().json() == {"out": 1}
    assert sp.STARTED == [1]  # x=2 was withdrawn before its call started


def test_timeout_query_parameter_and_max_timeout_cap(serving: Serving, gate: None) -> None:
    server = serving(sp.gated, resources={"slot": 1}, max_timeout=0.2)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(server.client.post, "/v1/pipelines/gated?timeout=60",
                            json={"x": 1})
        assert sp.ENTERED.wait(10)
        # asks for 60 s, capped at 0.2 s: cannot be met while x=1 holds the slot
        late = server.client.post("/v1/pipelines/gated?timeout=60", json={"x": 2})
        assert late.status_code == 504
        sp.GATE.set()
        assert first.result().status_code == 504  # the cap applies to it too


def test_a_client_that_disconnects_cancels_its_item(serving: Serving, gate: None) -> None:
    server = serving(sp.gated, resources={"slot": 1})
    run = server.service.served["gated"].run
    assert run is not None
    address = urlsplit(server.url)
    body = b'{"x": 7}'
    with socket.create_connection((address.hostname, address.port)) as conn:
        conn.sendall(b"POST /v1/pipelines/gated HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert sp.ENTERED.wait(10)
    # the socket is closed: the server notices and cancels the item
    assert until(lambda: run.stats().cancelled == 1)
    assert server.service.disconnected == 1
    sp.GATE.set()
    assert until(lambda: server.service.in_flight == 0)


def test_a_bad_priority_header_is_422(serving: Serving) -> None:
    server = serving(sp.greet, priority_header="X-Priority")
    ok = server.client.post("/v1/pipelines/greet", json={"a": 1, "text": "x"},
                            headers={"X-Priority": "5"})
    assert ok.status_code == 200
    bad = server.client.post("/v1/pipelines/greet", json={"a": 1, "text": "x"},
                             headers={"X-Priority": "high"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "X-Priority"


def test_priority_header_orders_waiting_requests(serving: Serving, gate: None) -> None:
    server = serving(sp.gated, resources={"slot": 1}, priority_header="X-Priority")
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(server.client.post, "/v1/pipelines/gated", json={"x": 1})
        assert sp.ENTERED.wait(10)
        low = pool.submit(server.client.post, "/v1/pipelines/gated", json={"x": 2})
        assert until(lambda: server.service.served["gated"].gate.admitted == 2)
        high = pool.submit(server.client.post, "/v1/pipelines/gated", json={"x": 3},
                           headers={"X-Priority": "10"})
        # admitted means submitted (no await between): both wait in the engine, in order
        assert until(lambda: server.service.served["gated"].gate.admitted == 3)
        sp.GATE.set()
        assert [f.result().status_code for f in (first, low, high)] == [200] * 3
    assert sp.STARTED == [1, 3, 2]



def test_retry_after_grows_with_the_queue_ahead_at_the_observed_rate() -> None:
    clock = Ticks()
    gate = Gate(10, rate=ServiceRate(clock=clock))
    for _ in range(10):
        assert gate.admit() is None
    for _ in range(5):  # one completion every 0.5 s: 5 in 2 s, 2.5 per second
        clock.now += 0.5
        gate.release(completed=True)
        assert gate.admit() is None
    refusal = gate.admit()
    assert refusal is not None
    assert refusal.queue_ahead == 10
    assert refusal.retry_after == 4  # ceil(10 / 2.5)
