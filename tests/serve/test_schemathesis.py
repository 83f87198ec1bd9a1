"""Property-based: Schemathesis generates requests from ``/openapi.json`` of served test
pipelines (JSON bodies, multipart uploads, headers); the server answers none with a 5xx."""

from __future__ import annotations

from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from serve_pipelines import greet, scaled, upload  # noqa: E402

import legato as lg  # noqa: E402
from legato.backends.local import LocalBackend  # noqa: E402
from legato.serve import app, running  # noqa: E402


def test_no_request_gets_a_server_error() -> None:
    with lg.Engine(LocalBackend()) as engine:
        api = app(greet, scaled, upload, engine=engine, open_docs=True, drain_timeout=5)
        with running(api) as url:
            assert api.state.service.wait_ready(30)
            schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
            operations = [result.ok() for result in schema.get_all_operations()]
            assert {op.path for op in operations} >= {
                "/v1/pipelines/greet", "/v1/pipelines/scaled", "/v1/pipelines/upload"}
            for operation in operations:

                @given(case=operation.as_strategy())
                @settings(max_examples=50, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                def answers_without_a_server_error(case: Any) -> None:
                    case.call_and_validate(checks=[not_a_server_error], timeout=30)

                answers_without_a_server_error()
