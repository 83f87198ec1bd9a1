"""Many callers at once: send the test set's recordings to a served voice agent, concurrently.

    legato serve examples/voice_agent/agent.py:agent --port 8000     # in one shell
    python examples/voice_agent/client.py http://127.0.0.1:8000      # in another

Every recording of the test set (``data/truth.jsonl``) is uploaded ``--rounds`` times, at most
``--concurrency`` requests in flight (an ``httpx.AsyncClient`` with that many keep-alive
connections, one coroutine a connection, each sending its next recording once answered). It
prints the latency per request (p50/p99, from upload to answer), the throughput, the intent
accuracy of the answers against the ground truth, and the batch sizes the embedding model saw.

Where the batch sizes come from: the server's ``Embed`` component appends each batch's size to
the file named by ``$VOICE_AGENT_BATCH_LOG``, one line a call (``agent.Embed``). Start the
server with that variable set and give the client the same file (``--batch-log``): it reads
the lines written during its run. This is the model's own count of what it was given, not an
estimate; it needs the client on the server's machine (``main.py --serve`` does exactly that).
Without ``--batch-log`` the batch sizes are not shown.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice_agent import dataset

HERE = Path(__file__).resolve().parent
PIPELINE = "agent"
REQUEST_TIMEOUT_S = 120.0
RETRIES = 5  # a request refused with 429 is tried again this many times at most


@dataclass
class Answer:
    """One request: which recording, how long it took, and what came back (or the error)."""

    index: int
    seconds: float  # from the first upload to the answer, waits after a 429 included
    status: int
    body: dict[str, Any]
    refused: int = 0  # times it got 429 before this answer


@dataclass
class Summary:
    """What one client run saw."""

    requests: int
    seconds: float
    answers: list[Answer]
    batch_sizes: Counter[int] = field(default_factory=Counter)
    intent_accuracy: float | None = None

    @property
    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 200]

    @property
    def failed(self) -> list[Answer]:
        return [a for a in self.answers if a.status != 200]

    def latency_ms(self, q: float) -> float:
        """The q-th percentile (nearest rank) of the answered requests' latencies, in ms."""
        ordered = sorted(a.seconds for a in self.ok)
        if not ordered:
            return float("nan")
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000

    @property
    def per_second(self) -> float:
        return len(self.ok) / self.seconds if self.seconds else 0.0

    def lines(self) -> list[str]:
        """The summary, as printed."""
        out = [f"{len(self.ok)}/{self.requests} requests answered in {self.seconds:.1f} s: "
               f"{self.per_second:.1f} requests/s; latency p50 {self.latency_ms(50):.0f} ms, "
               f"p99 {self.latency_ms(99):.0f} ms, slowest {self.latency_ms(100):.0f} ms"]
        if refused := sum(a.refused for a in self.answers):
            out.append(f"the server refused {refused} uploads at first (429, queue full); "
                       "they were sent again after its Retry-After")
        if self.intent_accuracy is not None:
            out.append(f"intent accuracy of the answers: {self.intent_accuracy:.1%}")
        if self.batch_sizes:
            calls = sum(self.batch_sizes.values())
            texts = sum(size * n for size, n in self.batch_sizes.items())
            sizes = ", ".join(f"{size}: {n}" for size, n in sorted(self.batch_sizes.items()))
            out.append(f"embed batches: {calls} calls for {texts} texts, mean "
                       f"{texts / calls:.2f} texts a call (size: calls) {sizes}")
        for answer in self.failed[:5]:
            out.append(f"  request for recording {answer.index} failed ({answer.status}): "
                       f"{answer.body.get('detail', answer.body)}")
        return out


async def call(client: Any, url: str, wav: Path) -> tuple[int, dict[str, Any], int]:
    """Upload one recording; the HTTP status, the JSON body (a problem on error), and how many
    times the server refused it first (429: its queue was full; the client waits the
    ``Retry-After`` it was given and tries again, at most RETRIES times)."""
    files = {"path": (wav.name, wav.read_bytes(), "audio/wav")}
    for refused in range(RETRIES + 1):
        response = await client.post(f"{url}/v1/pipelines/{PIPELINE}", files=files)
        if response.status_code != 429 or refused == RETRIES:
            break
        await asyncio.sleep(float(response.headers.get("retry-after", "1")))
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:300]}
    return response.status_code, body, refused


async def run(url: str, recordings: list[Path], *, concurrency: int = 32, rounds: int = 3,
              batch_log: Path | None = None, truth: list[str] | None = None) -> Summary:
    """Send every recording ``rounds`` times, ``concurrency`` at a time; the summary.

    ``truth``: the expected intent of each recording, to score the answers; ``batch_log``: the
    server's ``$VOICE_AGENT_BATCH_LOG`` file, to read the embedding batches of this run."""
    import httpx

    work = iter([(i, path) for _ in range(rounds) for i, path in enumerate(recordings)])
    answers: list[Answer] = []
    before = batch_log.stat().st_size if batch_log is not None and batch_log.exists() else 0

    async def caller(client: httpx.AsyncClient) -> None:
        for index, path in work:  # a shared iterator: the callers take turns at the next
            began = time.perf_counter()
            status, body, refused = await call(client, url, path)
            answers.append(Answer(index, time.perf_counter() - began, status, body, refused))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        started = time.perf_counter()
        await asyncio.gather(*(caller(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    summary = Summary(rounds * len(recordings), seconds, answers)
    if batch_log is not None and batch_log.exists():
        with batch_log.open() as log:
            log.seek(before)
            summary.batch_sizes = Counter(int(line) for line in log if line.strip())
    if truth is not None and summary.ok:
        summary.intent_accuracy = sum(
            a.body.get("intent") == truth[a.index] for a in summary.ok) / len(summary.ok)
    return summary


def reply_audio(answer: Answer) -> bytes:
    """The spoken reply of an answered request: WAV bytes (the server's JSON carries bytes as
    URL-safe base64; this reads the standard alphabet too)."""
    return base64.urlsafe_b64decode(answer.body["reply_audio"])


def main(argv: list[str] | None = None) -> int:
    """Run the client against a served agent and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--data-dir", type=Path, default=HERE / "data",
                        help="the test set (default: %(default)s; made if missing)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=3, help="times each recording is sent")
    parser.add_argument("--batch-log", type=Path, default=None,
                        help="the server's $VOICE_AGENT_BATCH_LOG, to show embed batch sizes")
    args = parser.parse_args(argv)
    recordings, truth = test_set(args.data_dir)
    summary = asyncio.run(run(args.url.rstrip("/"), recordings, concurrency=args.concurrency,
                              rounds=args.rounds, batch_log=args.batch_log, truth=truth))
    print("\n".join(summary.lines()))
    return 0 if not summary.failed else 1


def test_set(data_dir: Path) -> tuple[list[Path], list[str]]:
    """The recordings of the test set in ``data_dir`` (synthesised if missing), and the intent
    each one asks for."""
    truth_file = data_dir / "truth.jsonl"
    if not truth_file.exists():
        dataset.generate(data_dir)
    rows = dataset.read_jsonl(truth_file)
    return [Path(row["path"]) for row in rows], [row["intent"] for row in rows]


if __name__ == "__main__":
    sys.exit(main())
