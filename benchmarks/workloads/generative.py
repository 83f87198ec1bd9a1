"""B11: the generative example's pipeline (examples/generative) against the same steps by hand.

Per prompt (a digit and a style seed): 8 candidates from each of two generators, every one
scored, the best of the first 4 of each kept and refined in a bounded loop (4 candidates near
the best per round, scored) until it scores 0.97 or 3 rounds have run. The models are the
example's, trained once before anything is timed.

- ``legato``: ``generate.map(prompts)`` on one engine, nothing recorded (``B11``); then
  recording into a fresh SQLite store with the generators and the scorer cached, as the
  example runs (``B11-rec``: first run, every cache lookup misses), and that again on the same
  store (``B11-rerun``: every generator and scorer call answered from the cache). The scorer
  is a batched class component, so calls from many candidates and prompts meet in one
  ``predict_proba``.
- ``threadpool``: the same steps written by hand, one task per prompt on a
  ``ThreadPoolExecutor(4)``, each candidate scored by its own scorer call (no batching), nothing
  recorded. Its outcomes are checked equal to legato's.

Rows: ``B11``, legato's items/s over the hand-written version's (budget at least 1.0);
``B11-items``, both items/s; ``B11-rec``, the recorded, cached first run's items/s over the
hand-written version's; ``B11-rerun``, the rerun's time over the recorded first run's.
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from suite import Family, RowSpec, Sample

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WORKERS = 4


def _example() -> Any:
    """The example's pipeline module (imported on first use: it needs scikit-learn)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    from generative import pipeline

    return pipeline


def by_hand(prompts: list[dict[str, int]], models: dict[str, Any]) -> list[Any]:
    """The pipeline's steps with ``concurrent.futures``: a task per prompt, scorer unbatched."""
    gp = _example()
    mixture, kernel, nearby, scorer = (models[name] for name in
                                       ("mixture", "kernel", "nearby", "scorer"))

    def score(images: list[list[float]], digit: int) -> list[float]:
        return [scorer([image], [digit])[0] for image in images]

    def one(prompt: dict[str, int]) -> Any:
        digit, seed = prompt["digit"], prompt["seed"]
        a = [mixture(i, digit, seed) for i in range(gp.ARM)]
        b = [kernel(i, digit, seed) for i in range(gp.ARM)]
        a_scores, b_scores = score(a, digit), score(b, digit)
        best = gp.select(a, a_scores, b, b_scores)
        for _ in range(gp.ROUNDS):
            near = [nearby(i, best, digit, seed) for i in range(gp.NEARBY)]
            best = gp.keep_best(best, near, score(near, digit))
            if gp.good_enough(best):
                break
        return gp.outcome(digit, seed, best, a, a_scores, b, b_scores)

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(one, prompts))


def family(*, quick: bool) -> Family:
    count = 100 if quick else 500
    rows = [
        RowSpec("B11", f"generative pipeline, {count} prompts: legato's items/s over the same "
                "steps by hand (concurrent.futures, scorer unbatched)", "ratio", 1.0,
                lower_is_better=False),
        RowSpec("B11-items", f"generative pipeline, {count} prompts, not recorded",
                "items_per_s", None, lower_is_better=False),
        RowSpec("B11-rec", "B11 recorded in a SQLite store, generators and scorer cached "
                "(first run): items/s over the hand-written version's", "ratio", None,
                lower_is_better=False),
        RowSpec("B11-rerun", "B11-rec again on the same store (all cache hits): time over the "
                "first run's", "ratio", None),
    ]
    found: dict[str, Any] = {}

    def prompt_list() -> list[dict[str, int]]:
        return [{"digit": i % 10, "seed": i // 10} for i in range(count)]

    def hand() -> tuple[float, list[Any]]:
        if "hand" not in found:
            gp = _example()
            models = {"mixture": gp.MixtureSampler().build(), "kernel": gp.KernelSampler().build(),
                      "nearby": gp.Nearby().build(), "scorer": gp.Scorer().build()}
            by_hand(prompt_list()[:20], models)  # warm-up
            start = time.perf_counter()
            outcomes = by_hand(prompt_list(), models)
            found["hand"] = (count / (time.perf_counter() - start), outcomes)
        return found["hand"]  # type: ignore[no-any-return]

    def legato() -> Sample:
        import legato as lg
        from legato.backends.local import LocalBackend

        gp = _example()
        with lg.Engine(LocalBackend()) as engine, tempfile.TemporaryDirectory() as home:
            store = str(Path(home) / "legato.db")
            list(gp.generate.map(prompt_list()[:20], engine=engine, cache=False))  # warm models
            start = time.perf_counter()
            outcomes = list(gp.generate.map(prompt_list(), engine=engine, cache=False))
            plain = time.perf_counter() - start
            start = time.perf_counter()
            recorded = list(gp.generate.map(prompt_list(), engine=engine, store=store))
            first = time.perf_counter() - start
            start = time.perf_counter()
            again = list(gp.generate.map(prompt_list(), engine=engine, store=store))
            rerun = time.perf_counter() - start
        hand_rate, hand_outcomes = hand()
        if not outcomes == recorded == again == hand_outcomes:
            raise AssertionError("legato's outcomes differ from the hand-written version's")
        rate = count / plain
        return Sample({"B11": rate / hand_rate, "B11-items": rate,
                       "B11-rec": count / first / hand_rate, "B11-rerun": rerun / first},
                      notes={"B11": f"{rate:.0f} vs {hand_rate:.0f} items/s",
                             "B11-rec": f"{count / first:.0f} items/s recorded",
                             "B11-rerun": f"{rerun:.2f} s vs {first:.2f} s"})

    def threadpool() -> Sample:
        return Sample({"B11-items": hand()[0]})

    return Family("generative", rows, {"legato": legato, "threadpool": threadpool})
