"""``POST /v1/pipelines/{name}/stream``: a request's progress as server-sent events, a
generator component's chunks as they are yielded, the result or the problem last."""

from __future__ import annotations

import json
from typing import Any

import serve_pipelines
from serve_pipelines import failing, talk
from serve_support import Serving


def _events(lines: Any) -> Any:
    """(event, data) pairs of a text/event-stream, as they arrive."""
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield kind, json.loads(line.removeprefix("data: "))


def test_a_stream_sends_nodes_and_chunks_as_they_happen_then_the_result(
    serving: Serving,
) -> None:
    serve_pipelines.SPOKEN.clear()
    server = serving(talk)
    seen: list[tuple[str, Any]] = []
    try:
        with server.client.stream("POST", "/v1/pipelines/talk/stream",
                                  json={"text": "  Hello There World "}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            for kind, data in _events(response.iter_lines()):
                seen.append((kind, data))
                if kind == "chunk" and data["value"] == "there":
                    # two words are out while the generator still runs: streamed, not batched
                    assert not any(k == "result" for k, _ in seen)
                    serve_pipelines.SPOKEN.set()
    finally:
        serve_pipelines.SPOKEN.set()
    chunks = [(d["index"], d["value"]) for k, d in seen if k == "chunk"]
    assert chunks == [(0, "hello"), (1, "there"), (2, "world")]
    nodes = [d["node"] for k, d in seen if k == "node"]
    assert nodes == ["normalise", "speak", "count_words"]
    assert next(d for k, d in seen if k == "node" and d["node"] == "normalise")["output"] == {
        "out": "hello there world"}
    assert seen[-1] == ("result", {"words": ["hello", "there", "world"], "count": 3})


def test_a_stream_ends_with_the_problem_when_a_component_fails(serving: Serving) -> None:
    server = serving(failing)
    with server.client.stream("POST", "/v1/pipelines/failing/stream",
                              json={"x": 3}) as response:
        events = list(_events(response.iter_lines()))
    kind, data = events[-1]
    assert kind == "error"
    assert data["status"] == 500
    assert data["node"] == "explode"


def test_a_stream_refuses_a_bad_body_before_streaming(serving: Serving) -> None:
    server = serving(talk)
    response = server.client.post("/v1/pipelines/talk/stream", json={"txt": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
