"""Timelines from hand-built spans: the Chrome trace (one X event per execution, microsecond
times, a named lane per worker) and the Gantt chart (real PNG/SVG bytes, a clear error without
matplotlib)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from legato.errors import LegatoError
from legato.observe.timeline import Span, chrome_trace, gantt, lanes

T0 = 1_700_000_000.0  # an epoch time, as the store records them


def sample() -> list[Span]:
    """Two workers; item 1's ``score`` fails once and is retried on the same worker."""
    return [
        Span("embed", 0, "thread-1", T0 + 0.0, T0 + 0.5),
        Span("score", 0, "thread-2", T0 + 0.5, T0 + 0.75),
        Span("embed", 1, "thread-1", T0 + 0.5, T0 + 1.0),
        Span("score", 1, "thread-2", T0 + 1.0, T0 + 1.25, "retried", 1, "ValueError: no"),
        Span("score", 1, "thread-2", T0 + 1.25, T0 + 1.5, "ok", 2),
    ]


def executions(trace: dict) -> list[dict]:
    return [event for event in trace["traceEvents"] if event["ph"] == "X"]


def thread_names(trace: dict) -> dict[int, str]:
    return {event["tid"]: event["args"]["name"] for event in trace["traceEvents"]
            if event["ph"] == "M" and event["name"] == "thread_name"}


def test_chrome_trace_is_json_with_one_complete_event_per_execution() -> None:
    trace = json.loads(json.dumps(chrome_trace(sample(), title="run abc")))
    events = executions(trace)
    assert len(events) == 5
    assert {(e["name"], e["args"]["item"], e["args"]["attempt"]) for e in events} == {
        ("embed", 0, 1), ("embed", 1, 1), ("score", 0, 1), ("score", 1, 1), ("score", 1, 2)}
    assert all(e["pid"] == 1 for e in events)
    process = [e for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"]
    assert process[0]["args"]["name"] == "run abc"


def test_chrome_trace_times_are_microseconds_since_the_first_start() -> None:
    events = executions(chrome_trace(sample()))
    timed = sorted((e["ts"], e["dur"], e["name"], e["args"]["attempt"]) for e in events)
    expected = [(0.0, 500_000.0, "embed", 1), (500_000.0, 250_000.0, "score", 1),
                (500_000.0, 500_000.0, "embed", 1), (1_000_000.0, 250_000.0, "score", 1),
                (1_250_000.0, 250_000.0, "score", 2)]
    assert timed == [pytest.approx(row) for row in expected]


def test_chrome_trace_times_count_from_a_given_origin() -> None:
    events = executions(chrome_trace(sample(), origin=T0 - 2.0))
    assert min(e["ts"] for e in events) == pytest.approx(2_000_000.0)


def test_chrome_trace_puts_each_worker_on_its_own_named_lane() -> None:
    trace = chrome_trace(sample())
    names = thread_names(trace)
    assert sorted(names.values()) == ["thread-1", "thread-2"]
    lane_of = {(e["name"], e["args"]["item"], e["args"]["attempt"]): names[e["tid"]]
               for e in executions(trace)}
    assert lane_of == {("embed", 0, 1): "thread-1", ("embed", 1, 1): "thread-1",
                       ("score", 0, 1): "thread-2", ("score", 1, 1): "thread-2",
                       ("score", 1, 2): "thread-2"}


def test_chrome_trace_marks_failed_attempts_and_keeps_their_error() -> None:
    (failed,) = [e for e in executions(chrome_trace(sample())) if e["cat"] != "ok"]
    assert failed["cat"] == "retried"
    assert failed["args"]["error"] == "ValueError: no"
    assert "cname" in failed


def test_a_batched_call_is_one_event_listing_its_items() -> None:
    batch = [Span("embed", item, "thread-1", T0, T0 + 0.1) for item in (2, 0, 1)]
    (event,) = executions(chrome_trace(batch))
    assert event["args"]["items"] == [0, 1, 2]
    assert event["args"]["item"] == 0


def test_overlapping_calls_on_one_worker_get_extra_lanes() -> None:
    spans = [Span("fetch", 0, "async-1", T0, T0 + 1.0),
             Span("fetch", 1, "async-1", T0 + 0.2, T0 + 0.6),
             Span("fetch", 2, "async-1", T0 + 0.7, T0 + 0.9)]  # fits after item 1
    found = lanes(spans)
    assert [lane.label for lane in found] == ["async-1", "async-1 #2"]
    assert [[bar.span.item for bar in lane.bars] for lane in found] == [[0], [1, 2]]


def test_an_empty_timeline_has_no_events() -> None:
    assert executions(chrome_trace([])) == []


def test_gantt_draws_a_png() -> None:
    png = gantt(sample(), title="run abc")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 5_000


def test_gantt_draws_svg_too() -> None:
    svg = gantt(sample(), fmt="svg")
    assert b"<svg" in svg[:1000]


def test_gantt_refuses_an_unknown_format() -> None:
    with pytest.raises(LegatoError, match="png, svg or pdf, got 'gif'"):
        gantt(sample(), fmt="gif")


def test_gantt_without_matplotlib_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.patches",
                 "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(LegatoError, match=r"needs matplotlib.*legato\[plot\].*-o trace.json"):
        gantt(sample())


def test_lanes_are_ordered_by_worker_name_with_numbers_as_numbers() -> None:
    spans = [Span("a", 0, "thread-10", T0, T0 + 1), Span("a", 1, "", T0, T0 + 1),
             Span("a", 2, "thread-2", T0 + 5, T0 + 6), Span("a", 3, "process-7", T0, T0 + 1)]
    assert [lane.label for lane in lanes(spans)] == [
        "process-7", "thread-2", "thread-10", "(no worker)"]


def test_gantt_draws_one_collection_per_lane_not_one_per_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from matplotlib.axes import Axes

    spans = [Span(f"node-{i % 5}", i, f"thread-{i % 4}", T0 + i * 0.01, T0 + i * 0.01 + 0.008,
                  "failed" if i % 50 == 0 else "retried" if i % 70 == 0 else "ok")
             for i in range(2_000)]
    calls: list[int] = []  # the bars each broken_barh call draws
    draw = Axes.broken_barh

    def counted(self: Axes, xranges: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(xranges))
        return draw(self, xranges, *args, **kwargs)

    monkeypatch.setattr(Axes, "broken_barh", counted)
    gantt(spans)
    failed = sum(1 for span in spans if span.status in ("failed", "retried"))
    # per lane, its bars; then a hatched overlay per failure status it has (thread-0 and
    # thread-2 have failed and retried attempts): 8 calls for 2,000 executions
    assert len(calls) == 4 + 2 * 2
    assert sum(calls) == len(spans) + failed  # every execution drawn; failures hatched again
    from legato.observe.timeline import gantt_figure

    assert len(gantt_figure(spans).axes[0].collections) == 8
