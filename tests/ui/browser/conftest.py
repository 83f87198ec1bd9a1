"""Browser tests: Playwright (Python) driving Debian's Chromium (``/usr/bin/chromium``,
installed by ``scripts/ui-tools.sh``; Playwright never downloads a browser of its own) against
the real UI app on uvicorn (127.0.0.1, a free port) over a real SQLite store with runs recorded
by real pipelines.

Every test gets a fresh browser context and writes a screenshot of where it ended to
``tests/ui/browser/artefacts/<test>.png`` (gitignored; CI keeps them as artefacts). Without
``/usr/bin/chromium`` the tests are skipped, saying how to install it; CI installs it.
Waits are Playwright's own (``expect``, ``wait_for_function``) with a deadline, never sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTEFACTS = Path(__file__).with_name("artefacts")
VIEWPORT = {"width": 1360, "height": 900}
WAIT_MS = 15_000  # the longest any browser-side wait may take (never reached when it works)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for one test module (skipped without it). Not for the
    session: Playwright's sync API keeps an asyncio loop running on the main thread while it
    is open, and later tests that call ``asyncio.run`` would fail."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's Chromium with "
                    "`bash scripts/ui-tools.sh` (CI does)")
    pytest.importorskip("playwright", reason="pip install playwright (the dev extra has it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new page in a fresh context; its screenshot goes to ``artefacts/`` afterwards."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    opened.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        ARTEFACTS.mkdir(exist_ok=True)
        name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
        try:
            opened.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
        finally:
            context.close()
    assert not errors, f"the page raised: {errors}"


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store of the test's own."""
    return f"sqlite:///{tmp_path / 'legato.db'}"


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Any]:
    """The store open for writing: pipelines record into it."""
    from legato.store import Store

    with Store.open(store_url, blobs=tmp_path / "blobs") as opened:
        yield opened


UI = Callable[..., str]


@pytest.fixture
def ui(store_url: str) -> Iterator[UI]:
    """``ui(engine=...)``: the UI app over the test's store, served on a free port in a
    background thread; returns its base URL. Stopped after the test."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from legato.ui.server import start as start_ui

    handles: list[Any] = []

    def start(**options: Any) -> str:
        handle = start_ui(store_url, port=0, **options)
        handles.append(handle)
        return str(handle.url)

    yield start
    for handle in handles:
        handle.stop()


@pytest.fixture
def fresh_pipelines() -> Iterator[None]:
    """The test pipelines' gate closed and attempts forgotten; the gate opened at the end."""
    import browser_pipelines

    browser_pipelines.reset()
    yield
    browser_pipelines.GATE.set()

