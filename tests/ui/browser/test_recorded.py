"""A recorded run in the browser: the runs list, the run's graph coloured by each node's
outcome, its failures with traceback and inputs, its timeline's bars, and a 404 page."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import browser_pipelines as bp
import pytest

import legato as lg

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fresh_pipelines")]


@pytest.fixture
def recorded(store: Any, engine: lg.Engine) -> str:
    """A run of ``mixed`` on one item, recorded; ``lookup`` was cached by a run of ``warm``."""
    assert list(bp.warm.map([{"x": 4}], store=store, engine=engine)) == [40]
    results = list(bp.mixed.map([{"x": 4}], store=store, engine=engine, on_error="collect",
                                run_id="mixedrun0001"))
    assert isinstance(results[0], lg.Failure)
    return "mixedrun0001"


def test_runs_list_shows_a_recorded_run(page: Any, ui: Any, recorded: str) -> None:
    from playwright.sync_api import expect

    base = ui()
    page.goto(f"{base}/runs")
    row = page.locator(f'tr[data-run="{recorded}"]')
    expect(row).to_be_visible()
    expect(row.locator("td").nth(1)).to_have_text("mixed")
    expect(row.locator(".badge")).to_have_attribute("data-status", "failed")
    expect(page.locator('tr[data-run] td:nth-child(2)', has_text="warm")).to_have_count(1)

    # the pipeline filter narrows the list and rides in the URL
    page.get_by_label("Pipeline").select_option("warm")
    expect(page).to_have_url(re.compile(r"/runs\?pipeline=warm$"))
    expect(page.locator("tr[data-run]")).to_have_count(1)
    expect(row).to_have_count(0)

    # a link opens the run's page without a reload
    page.get_by_label("Pipeline").select_option("")
    page.locator(f'tr[data-run="{recorded}"] a').click()
    expect(page).to_have_url(f"{base}/runs/{recorded}")
    expect(page.locator("h1")).to_contain_text("mixed")


def test_run_page_colours_each_node_by_its_outcome(page: Any, ui: Any, recorded: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{ui()}/runs/{recorded}")
    expected = {"prepare": "ok", "flaky": "retried", "lookup": "cached", "explode": "failed"}
    for node, status in expected.items():
        expect(page.locator(f'svg.graph [data-node="{node}"]')).to_have_attribute(
            "data-status", status)
    expect(page.locator('[data-node="flaky"]')).to_contain_text("1 retried")

    # failures: grouped by type, expandable to the traceback and the item's inputs
    group = page.locator('details.failure-group[data-failure-type="ValueError"]')
    expect(group).to_contain_text("explode")
    if group.get_attribute("open") is None:
        group.locator("summary").first.click()
    failure = group.locator("details.failure").first
    failure.locator("summary").click()
    expect(failure.locator("pre").first).to_contain_text("cannot combine 5, 8 and 40")
    expect(failure.locator("pre").first).to_contain_text("Traceback")
    expect(failure.locator("pre").nth(1)).to_contain_text('"x": 4')


def test_timeline_has_a_bar_per_node_execution(page: Any, ui: Any, recorded: str,
                                               store_url: str) -> None:
    from playwright.sync_api import expect

    path = store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        (executions,) = db.execute("SELECT count(*) FROM nodes WHERE run_id = ?",
                                   (recorded,)).fetchone()
    assert executions >= 5  # prepare, flaky twice, lookup (cached), explode

    page.goto(f"{ui()}/runs/{recorded}/timeline")
    canvas = page.locator("canvas.timeline")
    expect(canvas).to_have_attribute("data-bars", str(executions))
    expect(canvas).not_to_have_attribute("data-drawn", "0")
    for node in ("prepare", "flaky", "lookup", "explode"):
        expect(page.locator("ul.legend.nodes")).to_contain_text(node)

    # one lane per node, on demand
    page.get_by_label("Aggregate: one lane per node").check()
    expect(page).to_have_url(re.compile(r"/timeline\?aggregate=1$"))
    expect(canvas).to_have_attribute("data-bars", str(executions))


def test_unknown_run_is_a_404_page(page: Any, ui: Any, store: Any, engine: lg.Engine) -> None:
    from playwright.sync_api import expect

    list(bp.warm.map([{"x": 1}], store=store, engine=engine))  # a store with a run in it
    response = page.goto(f"{ui()}/runs/nosuchrun")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Run nosuchrun not found")


def test_runs_list_pages_older_and_newer(page: Any, ui: Any, store: Any,
                                         engine: lg.Engine) -> None:
    from playwright.sync_api import expect

    for x in range(55):  # more than a page (50)
        list(bp.warm.map([{"x": x}], store=store, engine=engine, run_id=f"page{x:04d}"))
    page.goto(f"{ui()}/runs")
    rows = page.locator("tr[data-run]")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-run", "page0054")
    newer = page.get_by_role("button", name="← Newer")
    older = page.get_by_role("button", name="Older →")
    expect(newer).to_be_disabled()

    older.click()
    expect(page).to_have_url(re.compile(r"/runs\?before="))
    expect(rows).to_have_count(5)
    expect(rows.first).to_have_attribute("data-run", "page0004")
    expect(older).to_be_disabled()

    newer.click()
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-run", "page0054")
    page.go_back()  # the history keeps each page
    expect(rows).to_have_count(5)
