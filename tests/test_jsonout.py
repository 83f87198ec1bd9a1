"""JSON output is strict: every line ``legato map`` writes is valid JSON. NaN and infinity
become null (one warning per run), bytes ``{"$bytes": base64}``, and a value with no JSON form
fails its item, written as a failure line, while every other item is still written."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import math
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydantic
import pytest

import legato as lg
from legato.cli.jsonout import BYTES_KEY, Encoder, dumps, jsonable

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "cli_outputs.py"


def _strict(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity (which Python's json would accept)."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in JSON text: {text}")

    return json.loads(text, parse_constant=refuse)


class Colour(enum.Enum):
    red = "r"


@dataclasses.dataclass
class Box:
    size: float
    tags: tuple[str, ...]


class Pair(NamedTuple):
    a: int
    b: bytes


class Model(pydantic.BaseModel):
    name: str
    score: float


# -- the encoder -------------------------------------------------------------------------------


def test_plain_data_numpy_pydantic_dataclasses_and_friends_as_today() -> None:
    value = {
        "box": Box(1.5, ("a",)), "pair": Pair(1, b"hi"), "model": Model(name="m", score=0.5),
        "array": np.arange(4, dtype=np.float32).reshape(2, 2), "scalar": np.int64(7),
        "when": datetime.date(2026, 1, 2), "colour": Colour.red, "path": Path("/a/b"),
        "id": uuid.UUID(int=1), "price": decimal.Decimal("1.10"), 3: [True, None],
    }
    assert jsonable(value) == {
        "box": {"size": 1.5, "tags": ["a"]},
        "pair": {"a": 1, "b": {BYTES_KEY: base64.b64encode(b"hi").decode()}},
        "model": {"name": "m", "score": 0.5},
        "array": [[0.0, 1.0], [2.0, 3.0]], "scalar": 7, "when": "2026-01-02",
        "colour": "r", "path": "/a/b", "id": str(uuid.UUID(int=1)), "price": "1.10",
        "3": [True, None],
    }


def test_bytes_become_base64_under_a_marker_and_round_trip() -> None:
    raw = bytes(range(256))
    encoded = _strict(dumps(raw))
    assert list(encoded) == [BYTES_KEY] == ["$bytes"]
    assert base64.b64decode(encoded[BYTES_KEY]) == raw
    assert jsonable(bytearray(b"ab")) == {"$bytes": "YWI="}
    assert jsonable(b"text") == {"$bytes": "dGV4dA=="}  # never guessed as text


def test_nan_and_infinity_become_null_with_one_warning_per_encoder() -> None:
    warnings: list[str] = []
    encoder = Encoder(warn=warnings.append)
    first = encoder.line(0, {"a": float("nan"), "b": [float("inf"), 1.0]})
    second = encoder.line(1, np.array([-np.inf, 2.0]))
    assert _strict(first) == {"index": 0, "output": {"a": None, "b": [None, 1.0]}}
    assert _strict(second) == {"index": 1, "output": [None, 2.0]}
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: item 0: output['a'] is nan, written as null")
    Encoder(warn=warnings.append).dumps(float("-inf"))
    assert len(warnings) == 2  # another run (encoder) warns again


def test_a_nan_inside_a_pydantic_model_or_numpy_scalar_is_null_too() -> None:
    encoder = Encoder(warn=lambda message: None)
    assert encoder.jsonable(Model(name="m", score=math.nan)) == {"name": "m", "score": None}
    assert encoder.jsonable(np.float64("nan")) is None
    assert encoder.warned


class Handle:
    pass


@pytest.mark.parametrize(("value", "message"), [
    (Handle(), "output: test_jsonout.Handle has no JSON form"),
    ({"scores": [1.0, 2.0, complex(1, 2)]}, "output['scores'][2]: complex has no JSON form"),
    (Box(1.0, (object(),)), "output.tags[0]: object has no JSON form"),
    (object, "output: type has no JSON form"),
])
def test_a_value_with_no_json_form_raises_output_error_naming_type_and_place(
    value: Any, message: str
) -> None:
    with pytest.raises(lg.OutputError) as caught:
        dumps(value)
    assert str(caught.value).startswith(message)
    assert "convert it in a component" in str(caught.value)


def test_line_names_the_item_of_a_value_with_no_json_form() -> None:
    with pytest.raises(lg.OutputError) as caught:
        Encoder().line(7, [Handle()])
    assert caught.value.item == 7
    assert str(caught.value).startswith("item 7: output[0]: test_jsonout.Handle has no JSON form")


# -- legato map, a real subprocess -------------------------------------------------------------


def test_map_writes_a_failure_line_for_a_value_with_no_json_form_and_every_other_item(
    tmp_path: Path,
) -> None:
    data, out = tmp_path / "items.jsonl", tmp_path / "out.jsonl"
    data.write_text("".join(json.dumps({"x": x}) + "\n" for x in range(6)))
    done = subprocess.run(
        [sys.executable, "-m", "legato.cli", "map", f"{FIXTURE}:outputs", str(data), "-o",
         str(out), "--no-store", "--no-progress"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr  # an item failed
    lines = [_strict(line) for line in out.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(6))
    failure = lines[1]
    assert set(failure) == {"index", "error", "node", "line"}
    assert failure["line"] == 2
    assert failure["error"].startswith("item 1: output['handle']: Opaque has no JSON form")
    assert lines[0]["output"] == {"x": 0}
    assert lines[2]["output"] == {"score": None, "x": 2}
    assert lines[3]["output"] == {"score": None, "x": 3}
    assert lines[4]["output"] == {BYTES_KEY: base64.b64encode(b"\x00\xffraw").decode()}
    assert lines[5]["output"] == {"x": 5}
    assert done.stderr.count("warning:") == 1  # once per run, not per value
    assert "item 2: output['score'] is nan" in done.stderr
    assert "5 done, 1 failed" in done.stderr
