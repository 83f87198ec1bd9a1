"""The voice agent's main job: make the test set, run the agent over it with legato, score it.

    python examples/voice_agent/main.py [--regenerate]
    python examples/voice_agent/main.py --serve [--concurrency 32] [--rounds 3]

1. Synthesises the test set into ``examples/voice_agent/data/`` unless it is there already.
2. Runs ``legato map examples/voice_agent/agent.py:agent data/data.jsonl -o out/results.jsonl
   --events out/events.jsonl`` as a subprocess (it draws its own progress bar).
3. Prints what came out: word error rate of the recogniser, intent accuracy, latency per stage
   (p50/p95 of each node, from the events file) and end to end, and where the spoken replies
   are. The same figures go to ``out/summary.json``.

With ``--serve``, steps 2 and 3 are the served agent instead: ``legato serve
examples/voice_agent/agent.py:agent`` on 127.0.0.1 and a free port, as a subprocess; once its
``/readyz`` answers 200, ``client.py`` uploads every recording ``--rounds`` times,
``--concurrency`` at a time, and prints latency, throughput, intent accuracy and the embedding
batch sizes; then the service gets SIGTERM, drains, and must exit 0. The figures go to
``out/served.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console
from rich.table import Table

from voice_agent import client, dataset
from voice_agent.evaluate import (
    Latency,
    accuracy,
    end_to_end,
    latency_by_node,
    word_error_rate,
    work_per_item,
)

HERE = Path(__file__).resolve().parent
AGENT = HERE / "agent.py"
DATA_DIR = HERE / "data"
OUT_DIR = HERE / "out"
READY_TIMEOUT_S = 180.0  # models load in a few seconds; a service not ready by then has failed
STOP_TIMEOUT_S = 60.0


def legato_command() -> list[str]:
    """The ``legato`` CLI of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "legato"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("legato")
    if found is None:
        raise SystemExit("the legato CLI is not installed: pip install -e . (from the repo root)")
    return [found]


def run_agent(data: Path, out_dir: Path) -> tuple[int, float]:
    """Run ``legato map`` on ``data``, writing into ``out_dir``.

    Returns the CLI's exit status and its wall time in seconds.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results, events = out_dir / "results.jsonl", out_dir / "events.jsonl"
    for stale in (results, events):
        stale.unlink(missing_ok=True)
    arguments = ["map", f"{_shorten(str(AGENT))}:agent", _shorten(str(data)),
                 "-o", _shorten(str(results)), "--events", _shorten(str(events))]
    command = [*legato_command(), *arguments]
    print("$ legato", " ".join(arguments), flush=True)
    environment = {**os.environ, "VOICE_AGENT_REPLY_DIR": str(out_dir / "replies")}
    started = time.perf_counter()
    status = subprocess.run(command, check=False, env=environment).returncode
    return status, time.perf_counter() - started


def _shorten(part: str) -> str:
    """A path relative to the working directory when it lies under it."""
    try:
        return str(Path(part).relative_to(Path.cwd()))
    except ValueError:
        return part


def summarise(truth_file: Path, results_file: Path, events_file: Path) -> dict[str, Any]:
    """Score the results against the ground truth and summarise the events file."""
    truth = dataset.read_jsonl(truth_file)
    results = {row["index"]: row for row in dataset.read_jsonl(results_file)}
    events = dataset.read_jsonl(events_file) if events_file.exists() else []
    done = [i for i in range(len(truth)) if "output" in results.get(i, {})]
    failed = {i: results.get(i, {}).get("error", "no result") for i in range(len(truth))
              if i not in done}
    outputs = [results[i]["output"] for i in done]
    references = [truth[i]["text"] for i in done]
    nodes = latency_by_node(events)
    return {
        "utterances": len(truth),
        "completed": len(done),
        "failed": failed,
        "word_error_rate": word_error_rate(references, [o["transcript"] for o in outputs]),
        "intent_accuracy": accuracy([truth[i]["intent"] for i in done],
                                    [o["intent"] for o in outputs]),
        "latency": {node: vars(latency) for node, latency in nodes.items()},
        "work_per_item": vars(work_per_item(events, items=done)),
        "end_to_end": vars(end_to_end(events, items=done)),
        "replies": sorted({str(Path(o["reply_wav"]).parent) for o in outputs}),
        "examples": [
            {"said": truth[i]["text"], "heard": o["transcript"], "intent": o["intent"],
             "sentiment": o["sentiment"], "reply": o["reply"]}
            for i, o in zip(done[:3], outputs[:3], strict=True)
        ],
    }


def show(summary: dict[str, Any], console: Console) -> None:
    """Print the summary as tables."""
    console.print()
    console.print(
        f"[bold]{summary['completed']}/{summary['utterances']} utterances answered[/]   "
        f"word error rate [bold]{summary['word_error_rate']:.1%}[/]   "
        f"intent accuracy [bold]{summary['intent_accuracy']:.1%}[/]"
    )
    for index, error in summary["failed"].items():
        console.print(f"  [red]item {index} failed:[/] {error}")
    table = Table(title="latency per stage (legato events)", title_justify="left")
    for column in ("stage", "items", "p50 ms", "p95 ms", "busy s"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for node, values in summary["latency"].items():
        latency = Latency(**values)
        table.add_row(node, str(latency.count), f"{latency.p50 * 1000:.0f}",
                      f"{latency.p95 * 1000:.0f}", f"{latency.total:.2f}")
    table.add_section()
    for name, key in (("work per item (sum of its stages)", "work_per_item"),
                      ("end to end per item, queueing included", "end_to_end")):
        latency = Latency(**summary[key])
        table.add_row(name, str(latency.count), f"{latency.p50 * 1000:.0f}",
                      f"{latency.p95 * 1000:.0f}", "")
    console.print(table)
    examples = Table(title="a few answers", title_justify="left")
    for column in ("said", "heard", "intent", "mood", "reply"):
        examples.add_column(column, overflow="fold")
    for row in summary["examples"]:
        examples.add_row(row["said"], row["heard"], row["intent"], f"{row['sentiment']:+.2f}",
                         row["reply"])
    console.print(examples)
    for directory in summary["replies"]:
        console.print(f"spoken replies: [bold]{_shorten(directory)}/[/]")
    console.print(
        f"legato map took {summary['map_seconds']:.1f} s; the whole job "
        f"{summary['job_seconds']:.1f} s"
    )


def serve_and_call(data_dir: Path, out_dir: Path, *, concurrency: int, rounds: int,
                   console: Console) -> int:
    """Start ``legato serve`` on the agent, run the client against it, stop it with SIGTERM.

    Returns 0 when every request was answered and the service exited 0 (drained)."""
    recordings, truth = client.test_set(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    batch_log = out_dir / "embed-batches.log"
    batch_log.unlink(missing_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    arguments = ["serve", f"{_shorten(str(AGENT))}:agent", "--host", "127.0.0.1",
                 "--port", str(port), "--max-queue", str(concurrency)]
    environment = {**os.environ, "VOICE_AGENT_REPLY_DIR": str(out_dir / "served-replies"),
                   "VOICE_AGENT_BATCH_LOG": str(batch_log)}
    print("$ legato", " ".join(arguments), flush=True)
    started = time.perf_counter()
    server = subprocess.Popen([*legato_command(), *arguments], env=environment)
    summary = None
    try:
        _wait_until_ready(url, server)
        console.print(f"ready after {time.perf_counter() - started:.1f} s; sending "
                      f"{len(recordings)} recordings x {rounds} rounds, {concurrency} at a time")
        summary = asyncio.run(client.run(url, recordings, concurrency=concurrency,
                                         rounds=rounds, batch_log=batch_log, truth=truth))
    finally:
        status = _stop(server)
    console.print(f"service stopped (SIGTERM): exit status {status}")
    if summary is None:
        return 1
    print("\n".join(summary.lines()), flush=True)  # plain lines: no wrapping at 80 columns
    (out_dir / "served.json").write_text(json.dumps({
        "url": url, "requests": summary.requests, "answered": len(summary.ok),
        "seconds": summary.seconds, "per_second": summary.per_second,
        "p50_ms": summary.latency_ms(50), "p99_ms": summary.latency_ms(99),
        "intent_accuracy": summary.intent_accuracy,
        "refused_then_retried": sum(a.refused for a in summary.answers),
        "embed_batch_sizes": {str(k): v for k, v in sorted(summary.batch_sizes.items())},
        "exit_status": status,
    }, indent=2) + "\n")
    return 0 if status == 0 and not summary.failed else 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    """Poll ``/readyz`` until it answers 200 (models warm), at most READY_TIMEOUT_S."""
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"legato serve exited with status {server.returncode} before "
                             "it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"legato serve was not ready within {READY_TIMEOUT_S:.0f} s")


def _stop(server: subprocess.Popen[bytes]) -> int:
    """SIGTERM (the service drains its in-flight requests); its exit status. A service still
    running after STOP_TIMEOUT_S is killed."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    try:
        return server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return -signal.SIGKILL


def main(argv: list[str] | None = None) -> int:
    """Make the data if needed, run the agent, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--regenerate", action="store_true", help="synthesise the test set anew")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="test set directory (default: %(default)s)")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR,
                        help="results, events, summary and spoken replies (default: %(default)s)")
    parser.add_argument("--serve", action="store_true",
                        help="serve the agent over HTTP and call it concurrently (client.py)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help="with --serve: requests in flight (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="with --serve: times each recording is sent (default: %(default)s)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    console = Console()
    data_dir, out_dir = args.data_dir.resolve(), args.out_dir.resolve()

    data, truth = data_dir / "data.jsonl", data_dir / "truth.jsonl"
    if args.regenerate or not data.exists() or not truth.exists():
        data = dataset.generate(data_dir)
        console.print(f"synthesised {len(dataset.read_jsonl(data))} utterances into "
                      f"{_shorten(str(data_dir))}/")
    if args.serve:
        return serve_and_call(data_dir, out_dir, concurrency=args.concurrency,
                              rounds=args.rounds, console=console)

    status, map_seconds = run_agent(data, out_dir)
    results = out_dir / "results.jsonl"
    if not results.exists():
        console.print(f"[red]legato map exited with status {status} and wrote no results[/]")
        return status or 1

    summary = summarise(truth, results, out_dir / "events.jsonl")
    summary["map_seconds"] = map_seconds
    summary["job_seconds"] = time.perf_counter() - started
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    show(summary, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
