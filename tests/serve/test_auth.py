"""API keys: 401 with WWW-Authenticate without a right key; probes open; docs and metrics
follow open_docs; the key file reloads; no key means loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_pipelines import greet
from serve_support import Serving

from legato.errors import ConfigError
from legato.serve.auth import Keys
from legato.serve.config import ServeOptions
from legato.serve.server import bind_host

BODY = {"a": 1, "text": "x"}


def test_a_request_without_a_right_key_is_401_and_with_one_200(serving: Serving) -> None:
    server = serving(greet, api_keys=("s3cret", "other"))
    missing = server.client.post("/v1/pipelines/greet", json=BODY)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"] == "application/problem+json"
    assert "x-request-id" in missing.headers
    wrong = server.client.post("/v1/pipelines/greet", json=BODY,
                               headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    for key in ("s3cret", "other"):
        right = server.client.post("/v1/pipelines/greet", json=BODY,
                                   headers={"Authorization": f"Bearer {key}"})
        assert right.status_code == 200


def test_probes_need_no_key_and_docs_need_one_unless_open(serving: Serving) -> None:
    closed = serving(greet, api_keys=("k",))
    assert closed.client.get("/healthz").status_code == 200
    assert closed.client.get("/readyz").status_code == 200
    for path in ("/docs", "/openapi.json", "/metrics", "/v1/pipelines"):
        assert closed.client.get(path).status_code == 401, path
    opened = serving(greet, api_keys=("k",), open_docs=True)
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert opened.client.get(path).status_code == 200, path
    assert opened.client.get("/v1/pipelines").status_code == 401


def test_keys_come_from_the_environment(serving: Serving,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATO_API_KEYS", "one, two")
    server = serving(greet)
    assert server.client.post("/v1/pipelines/greet", json=BODY).status_code == 401
    assert server.client.post("/v1/pipelines/greet", json=BODY,
                              headers={"Authorization": "Bearer two"}).status_code == 200


def test_the_key_file_is_read_again_on_reload(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    file = tmp_path / "keys"
    file.write_text("# comment\nfirst\n\n")
    keys = Keys(file=file)
    assert keys.accepts(b"Bearer first")
    assert not keys.accepts(b"Bearer second")
    file.write_text("second\n")
    assert keys.reload() == 1
    assert keys.accepts(b"bearer second")
    assert not keys.accepts(b"Bearer first")
    assert not keys.accepts(None)
    assert not keys.accepts(b"Basic second")
    file.unlink()
    with pytest.raises(ConfigError, match="cannot read"):
        keys.reload()
    assert keys.accepts(b"Bearer second")  # a failed reload keeps the keys


def test_without_keys_the_server_binds_to_loopback_unless_insecure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGATO_API_KEYS", raising=False)
    said: list[str] = []
    assert bind_host(ServeOptions(host="0.0.0.0"), Keys(), tell=said.append) == "127.0.0.1"
    assert "--insecure" in said[-1]
    assert bind_host(ServeOptions(host="0.0.0.0", insecure=True), Keys(),
                     tell=said.append) == "0.0.0.0"
    assert "WARNING" in said[-1]
    assert bind_host(ServeOptions(host="0.0.0.0"), Keys(["k"]), tell=said.append) == "0.0.0.0"
