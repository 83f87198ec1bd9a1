"""Write the README's screenshots of the web UI: docs/screenshots/{runs,run,timeline,service}.png.

It records real runs of a small demo pipeline (fetch, a batched embedding, a classifier that
sometimes fails or is retried, a cached lookup, a map over chunks) into a store of its own,
serves that pipeline with ``legato serve``'s app (the UI mounted at ``/ui``), sends it requests
for a few seconds, and photographs the pages in Debian's Chromium with Playwright.

    python scripts/screenshots.py [--out docs/screenshots]

Needs ``bash scripts/ui-tools.sh`` and the dev extra (playwright, fastapi, uvicorn, httpx).
The components sleep a few milliseconds to look like work; nothing here is a test.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

import legato as lg

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
WORDS = ("the", "model", "reads", "a", "ticket", "and", "decides", "where", "it", "goes",
         "next", "with", "a", "short", "reply")


def _work(low_ms: float, high_ms: float, seed: Any) -> None:
    time.sleep(random.Random(str(seed)).uniform(low_ms, high_ms) / 1000)


@lg.component
def fetch(doc: int) -> str:
    _work(4, 14, ("fetch", doc))
    rng = random.Random(doc)
    return " ".join(rng.choice(WORDS) for _ in range(12 + doc % 20))


@lg.component(batch=lg.Batch(max_size=16, max_wait_ms=8))
def embed(text: list[str]) -> list[list[float]]:
    time.sleep(0.006 + 0.0008 * len(text))
    return [[len(t) / 100.0, t.count("e") / 10.0] for t in text]


_tries: dict[int, int] = {}
_lock = threading.Lock()


@lg.component(retries=lg.Retry(attempts=3))
def classify(text: str, vector: list[float], doc: int) -> str:
    _work(3, 12, ("classify", doc))
    with _lock:
        _tries[doc] = _tries.get(doc, 0) + 1
        tries = _tries[doc]
    if doc % 37 == 5:
        raise ValueError(f"ticket {doc}: no language detected in {text[:24]!r}")
    if doc % 11 == 3 and tries == 1:
        raise ConnectionError("classifier endpoint reset the connection")
    return ("billing", "outage", "question", "feedback")[doc % 4]


@lg.component(cache=True)
def lookup(label: str) -> str:
    _work(20, 30, label)
    return f"queue-{label}"


@lg.component
def chunk(text: str) -> list[str]:
    words = text.split()
    return [" ".join(words[i:i + 8]) for i in range(0, len(words), 8)]


@lg.component
def score(part: str, label: str) -> float:
    _work(1, 5, (part, label))
    return len(part) / 50.0


@lg.component
def route(scores: list[float], queue: str) -> str:
    return f"{queue}:{sum(scores):.2f}"


class Triage(NamedTuple):
    label: str
    route: str


@lg.pipeline
def triage(doc: int) -> Triage:
    text = fetch(doc)
    label = classify(text, embed(text), doc)
    scores = lg.map(score, chunk(text), label)
    return Triage(label=label, route=route(scores, lookup(label)))


@lg.component(batch=lg.Batch(max_size=8, max_wait_ms=4))
def answer(question: list[str]) -> list[str]:
    time.sleep(0.004 + 0.0005 * len(question))
    return [q.upper() for q in question]


@lg.pipeline
def support(question: str) -> str:
    return answer(question)


def record(store_url: str, blobs: Path) -> str:
    """Record the demo runs; the id of the triage run to photograph."""
    from legato.store import Store

    with Store.open(store_url, blobs=blobs) as store:
        list(triage.map(range(20), store=store, on_error="collect"))
        run_id = "demo-triage-0001"
        list(triage.map(range(240), store=store, on_error="collect", window=48,
                        run_id=run_id))
        list(triage.map([5, 42], store=store, on_error="collect"))  # both fail
    return run_id


def photograph(out: Path) -> None:
    import httpx
    from playwright.sync_api import sync_playwright

    from legato.serve import app, running

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store_url = f"sqlite:///{Path(tmp) / 'legato.db'}"
        run_id = record(store_url, Path(tmp) / "blobs")
        api = app(support, store=store_url, drain_timeout=10)
        with running(api) as url, httpx.Client(base_url=url, timeout=30) as client, \
                sync_playwright() as playwright:
            assert api.state.service.wait_ready(30), api.state.service.error
            stop = threading.Event()

            def load(seed: int) -> None:
                rng = random.Random(seed)
                with httpx.Client(base_url=url, timeout=30) as caller:
                    while not stop.is_set():
                        caller.post("/v1/pipelines/support", json={"question": rng.choice(WORDS)})
                        stop.wait(rng.uniform(0.0, 0.02))

            senders = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(6)]
            for sender in senders:
                sender.start()
            serve_run = next(r["id"] for r in client.get("/ui/api/runs").json()["runs"]
                             if r["pipeline"] == "support")
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1360, "height": 860})
            try:
                page.goto(f"{url}/ui/runs/{serve_run}/service")
                page.wait_for_function(
                    "() => document.querySelectorAll('figure[data-chart=\"rate\"] path.line')"
                    ".length && Number(document.querySelector('[data-metric=\"rate\"]')"
                    ".dataset.value) > 0")
                stop.wait(8)  # a few seconds of history in the charts
                page.screenshot(path=str(out / "service.png"))

                page.goto(f"{url}/ui/runs")
                page.wait_for_selector(f'tr[data-run="{run_id}"]')
                page.screenshot(path=str(out / "runs.png"))

                page.goto(f"{url}/ui/runs/{run_id}")
                page.wait_for_selector('svg.graph [data-node="classify"][data-status="failed"]')
                page.locator("details.failure-group").first.locator("summary").first.click()
                page.locator("details.failure").first.locator("summary").click()
                page.set_viewport_size({"width": 1360, "height": 1180})
                page.evaluate("() => window.scrollTo(0, 0)")
                page.screenshot(path=str(out / "run.png"))
                page.set_viewport_size({"width": 1360, "height": 860})

                page.goto(f"{url}/ui/runs/{run_id}/timeline")
                page.wait_for_function("() => (window.__legatoTimeline?.frames.length ?? 0) > 0")
                canvas = page.locator("canvas.timeline")
                box = canvas.bounding_box()
                assert box is not None
                page.evaluate(f"() => window.__legatoTimeline.zoom(3, {box['width'] * 0.3})")
                page.wait_for_timeout(300)
                page.mouse.move(box["x"] + box["width"] * 0.35, box["y"] + 26 + 22 * 0.5)
                page.wait_for_timeout(200)
                page.screenshot(path=str(out / "timeline.png"))
            finally:
                stop.set()
                for sender in senders:
                    sender.join(30)
                browser.close()
    for name in ("runs", "run", "timeline", "service"):
        print(out / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "screenshots")
    photograph(parser.parse_args().out)


if __name__ == "__main__":
    main()
