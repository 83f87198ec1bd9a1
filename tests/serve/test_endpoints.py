"""Typed endpoints: the round trip, request ids, 422 naming fields, 500 naming the node,
uploads, the listing and the OpenAPI document."""

from __future__ import annotations

import base64

from serve_pipelines import failing, greet, scaled, upload
from serve_support import Serving


def test_round_trip_answers_the_named_outputs(serving: Serving) -> None:
    server = serving(greet)
    response = server.client.post("/v1/pipelines/greet", json={"a": 40, "text": "hi"})
    assert response.status_code == 200
    assert response.json() == {"total": 42, "shout": "HI!"}
    response = server.client.post("/v1/pipelines/greet", json={"a": 1, "text": "x", "b": 10})
    assert response.json() == {"total": 11, "shout": "X!"}


def test_a_single_output_is_answered_under_its_name(serving: Serving) -> None:
    server = serving(scaled)
    response = server.client.post("/v1/pipelines/scaled", json={"values": [1, 2.5], "factor": 2})
    assert response.status_code == 200
    assert response.json() == {"out": [2.0, 5.0]}


def test_every_response_has_a_request_id_and_the_clients_is_echoed(serving: Serving) -> None:
    server = serving(greet)
    mine = server.client.post("/v1/pipelines/greet", json={"a": 1, "text": "x"},
                              headers={"X-Request-Id": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    for response in (server.client.post("/v1/pipelines/greet", json={}),
                     server.client.get("/healthz"), server.client.get("/nowhere")):
        assert len(response.headers["x-request-id"]) == 32


def test_422_names_each_bad_field(serving: Serving) -> None:
    server = serving(greet)
    response = server.client.post("/v1/pipelines/greet", json={"a": "many", "extra": 1})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"a", "text", "extra"}
    assert "'a'" in problem["detail"]
    assert "'text'" in problem["detail"]


def test_a_body_that_is_not_json_is_422(serving: Serving) -> None:
    server = serving(greet)
    response = server.client.post("/v1/pipelines/greet", content=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_bad_timeout_header_is_422_naming_it(serving: Serving) -> None:
    server = serving(greet)
    response = server.client.post("/v1/pipelines/greet", json={"a": 1, "text": "x"},
                                  headers={"X-Request-Timeout": "soon"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "X-Request-Timeout"


def test_a_failed_component_is_500_naming_the_node_and_error(serving: Serving) -> None:
    server = serving(failing)
    response = server.client.post("/v1/pipelines/failing", json={"x": 3})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["node"] == "explode"
    assert problem["error_type"] == "ValueError"
    assert problem["error"] == "cannot take 3"
    assert "traceback" not in problem


def test_debug_adds_the_traceback(serving: Serving) -> None:
    server = serving(failing, debug=True)
    problem = server.client.post("/v1/pipelines/failing", json={"x": 3}).json()
    assert "ValueError: cannot take 3" in problem["traceback"]


def test_multipart_uploads_reach_bytes_and_path_ports(serving: Serving) -> None:
    server = serving(upload)
    response = server.client.post(
        "/v1/pipelines/upload",
        files={"data": ("a.bin", b"\x00\x01\x02\xff"), "document": ("d.txt", b"first\nsecond")},
        data={"label": "hey"})
    assert response.status_code == 200, response.text
    assert response.json() == {"size": 4, "line": "first", "label": "HEY!"}


def test_a_json_body_carries_bytes_as_base64(serving: Serving) -> None:
    server = serving(upload)
    body = {"data": base64.b64encode(b"12345").decode(),
            "document": base64.b64encode(b"top\n").decode()}
    response = server.client.post("/v1/pipelines/upload", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"size": 5, "line": "top", "label": "X!"}


def test_listing_gives_each_pipelines_schemas(serving: Serving) -> None:
    server = serving(greet, upload)
    listed = {p["name"]: p for p in server.client.get("/v1/pipelines").json()["pipelines"]}
    assert set(listed) == {"greet", "upload"}
    assert listed["greet"]["inputs"]["required"] == ["a", "text"]
    assert listed["greet"]["inputs"]["properties"]["a"]["type"] == "integer"
    assert set(listed["greet"]["outputs"]["properties"]) == {"total", "shout"}
    assert listed["upload"]["files"] == ["data", "document"]


def test_openapi_documents_the_typed_endpoints(serving: Serving) -> None:
    server = serving(greet, upload, open_docs=True)
    document = server.client.get("/openapi.json").json()
    post = document["paths"]["/v1/pipelines/greet"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert document["components"]["schemas"][ref.rsplit("/", 1)[1]]["required"] == ["a", "text"]
    assert "multipart/form-data" in (
        document["paths"]["/v1/pipelines/upload"]["post"]["requestBody"]["content"])
    assert server.client.get("/docs").status_code == 200
