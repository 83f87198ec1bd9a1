"""The generative example (examples/generative): its models, its pipeline, and its main job.

The models are trained on scikit-learn's bundled digits when the tests start (nothing is
downloaded); select these tests with ``-m models``. The main job runs twice on 50 prompts with
one store (the second run is answered from the cache), and a ``legato map`` of the pipeline is
killed with SIGKILL part-way and finished by ``legato resume``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from harness import WAIT
from legato.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "generative"
if str(EXAMPLE.parent) not in sys.path:
    sys.path.insert(0, str(EXAMPLE.parent))

from generative import digits, prompts, summary  # noqa: E402
from generative import models as gm  # noqa: E402
from generative import pipeline as gp  # noqa: E402

pytestmark = pytest.mark.models

PROMPTS = 50


@pytest.fixture(scope="module")
def mixture() -> Any:
    return gm.MixtureSampler().build()


@pytest.fixture(scope="module")
def kernel() -> Any:
    return gm.KernelSampler().build()


@pytest.fixture(scope="module")
def scorer() -> Any:
    return gm.Scorer().build()


# ---------------------------------------------------------------------------------------------
# The models, one at a time


@pytest.mark.parametrize("sampler", ["mixture", "kernel"])
def test_a_generator_gives_the_same_image_for_the_same_inputs_and_others_for_others(
    request: pytest.FixtureRequest, sampler: str
) -> None:
    generate = request.getfixturevalue(sampler)

    first, again, other_index, other_seed = (generate(0, 3, 7), generate(0, 3, 7),
                                            generate(1, 3, 7), generate(0, 3, 8))

    assert first == again  # seeded by its inputs: cacheable
    assert len(first) == 64
    assert all(isinstance(v, int) and 0 <= v <= 255 for v in first)
    assert first != other_index
    assert first != other_seed


@pytest.mark.parametrize("sampler", ["mixture", "kernel"])
def test_generators_draw_the_requested_digit(request: pytest.FixtureRequest, scorer: Any,
                                             sampler: str) -> None:
    generate = request.getfixturevalue(sampler)
    images = [generate(i, digit, 1) for digit in range(10) for i in range(6)]
    wanted = [digit for digit in range(10) for _ in range(6)]

    probability, novelty = scorer.parts(images, wanted)

    # Measured: mean probabilities of 0.9-0.96; a generator ignoring the digit gets 0.1.
    assert probability.mean() > 0.8
    assert novelty.mean() > 0.7  # new images, not copies of training ones


def test_kernel_sampler_chooses_its_bandwidth_by_held_out_likelihood(kernel: Any) -> None:
    assert len(kernel.bandwidths) == 10
    assert set(kernel.bandwidths) <= {0.1, 0.15, 0.2, 0.3, 0.45}


def test_scorer_gives_a_copy_of_a_training_image_zero(scorer: Any) -> None:
    data = digits.load()
    copies = [digits.as_image(data.images[i]) for i in range(5)]
    labels = [int(data.labels[i]) for i in range(5)]

    probability, novelty = scorer.parts(copies, labels)

    assert probability.min() > 0.5  # the classifier knows them
    assert np.allclose(novelty, 0.0, atol=0.01)
    assert max(scorer(copies, labels)) < 0.01


def test_scorer_is_batched_and_a_batch_scores_as_its_images_alone(scorer: Any,
                                                                  mixture: Any) -> None:
    images = [mixture(i, i % 10, 5) for i in range(12)]
    wanted = [i % 10 for i in range(12)]

    together = scorer(images, wanted)
    alone = [scorer([image], [digit])[0] for image, digit in zip(images, wanted, strict=True)]

    assert together == pytest.approx(alone, abs=1e-3)
    assert gm.Scorer.options.batch is not None
    assert scorer(images, [(d + 5) % 10 for d in wanted]) < together  # the wrong digit: low


def test_nearby_stays_near_the_best_and_narrows_each_round(mixture: Any) -> None:
    nearby = gm.Nearby().build()
    image = mixture(0, 4, 2)
    space = digits.latent_space()
    start = space.encode(digits.as_pixels([image]))[0]

    def spread(rounds: int) -> float:
        best = gm.Best(image=image, score=0.5, generator="mixture", rounds=rounds)
        codes = space.encode(digits.as_pixels([nearby(i, best, 4, 2) for i in range(20)]))
        return float(np.linalg.norm(codes - start, axis=1).mean())

    assert spread(0) > spread(1) > spread(2) > 0.0


# ---------------------------------------------------------------------------------------------
# The pipeline's own steps


def test_select_keeps_the_best_of_the_first_candidates_of_each_generator() -> None:
    a = [[i] * 64 for i in range(gp.ARM)]
    b = [[100 + i] * 64 for i in range(gp.ARM)]
    a_scores, b_scores = [0.2] * gp.ARM, [0.3] * gp.ARM
    a_scores[1] = 0.7

    chosen = gp.select(a, a_scores, b, b_scores)

    assert (chosen.image, chosen.score, chosen.generator) == (a[1], 0.7, "mixture")
    # Only the first CANDIDATES of each count: a better score further on is the alone arm's.
    late = [0.0] * gp.CANDIDATES + [0.99] * (gp.ARM - gp.CANDIDATES)
    assert gp.select(a, late, b, b_scores).generator == "kernel"


def test_keep_best_counts_rounds_and_improvements() -> None:
    best = gm.Best(image=[0] * 64, score=0.5, generator="kernel")

    worse = gp.keep_best(best, [[1] * 64], [0.4])
    better = gp.keep_best(worse, [[2] * 64, [3] * 64], [0.9, 0.8])

    assert (worse.score, worse.rounds, worse.improved) == (0.5, 1, 0)
    assert (better.image, better.score, better.rounds, better.improved) == (
        [2] * 64, 0.9, 2, 1)
    assert better.generator == "kernel"
    assert gp.good_enough(better) is (gp.THRESHOLD <= 0.9)


def test_the_pipeline_checks_and_draws_its_loop() -> None:
    gp.generate.check()
    drawn = gp.generate.to_mermaid()
    assert "loop_refine" in drawn
    assert f"at most {gp.ROUNDS}" in drawn


def test_stage_names_drop_the_map_wrappers() -> None:
    assert summary.stage("map_scorer_2[*]/scorer") == "scorer"
    assert summary.stage("loop_refine[*]/map_scorer[*]/scorer") == "refine/scorer"
    assert summary.stage("loop_refine[*]/until/good_enough") == "refine/good_enough"
    assert summary.stage("select") == "select"


# ---------------------------------------------------------------------------------------------
# The main job through the CLI, twice on one store


def run_main(out_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE / "main.py"), "--prompts", str(PROMPTS),
         "--out-dir", str(out_dir)],
        capture_output=True, text=True, timeout=600, check=False,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any],
                                                                  dict[str, Any], str]:
    """The main job run twice into one directory: (dir, first summary, second, its stdout)."""
    pytest.importorskip("legato.cli")
    out_dir = tmp_path_factory.mktemp("generative")
    found = []
    for _ in range(2):
        finished = run_main(out_dir)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        found.append(json.loads((out_dir / "summary.json").read_text()))
    return out_dir, found[0], found[1], finished.stdout


def test_main_job_combined_selection_beats_every_generator_alone(
    two_runs: tuple[Path, dict[str, Any], dict[str, Any], str],
) -> None:
    out_dir, first, _, stdout = two_runs

    assert first["items"] == first["prompts"] == PROMPTS
    for generator, alone in first["generators"].items():
        assert first["best_score_mean"] > alone, generator
    assert 0.0 < first["accept_rate"] <= 1.0
    assert 1.0 <= first["rounds_mean"] <= gp.ROUNDS
    assert {"mixture_sampler", "kernel_sampler", "scorer", "refine/nearby",
            "refine/scorer"} <= set(first["latency"])
    assert first["latency"]["scorer"]["calls"] == 2 * gp.ARM * PROMPTS
    assert (out_dir / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "best score mean" in stdout


def test_main_job_rerun_is_answered_from_the_cache(
    two_runs: tuple[Path, dict[str, Any], dict[str, Any], str],
) -> None:
    _, first, second, _ = two_runs
    cached = ("mixture_sampler", "kernel_sampler", "scorer", "refine/nearby", "refine/scorer")

    assert first["run"] != second["run"]
    assert all(second["latency"][s]["cached"] == second["latency"][s]["calls"] > 0
               for s in cached)
    assert second["cache_hits"] == sum(second["latency"][s]["calls"] for s in cached)
    for key in ("best_score_mean", "generators", "accept_rate", "rounds_mean"):
        assert second[key] == first[key], key


# ---------------------------------------------------------------------------------------------
# SIGKILL part-way, then legato resume

GATED = '''
"""The example's pipeline behind a gate: prompts of style seed GATE and up wait for
<workdir>/open; every prompt that passes is logged to <workdir>/calls.log."""

import sys
import time
from pathlib import Path

sys.path.insert(0, {examples!r})

import legato as lg
from generative.pipeline import Outcome, generate

GATE = 2


@lg.component(cpus=0)
def gate(digit: int, seed: int, workdir: str) -> int:
    with Path(workdir, "calls.log").open("a") as log:
        log.write(f"{{seed * 10 + digit}}\\n")
    while seed >= GATE and not Path(workdir, "open").exists():
        time.sleep(0.01)
    return digit


@lg.pipeline
def gated(digit: int, seed: int, workdir: str) -> Outcome:
    return generate(gate(digit, seed, workdir), seed)
'''


def test_a_run_killed_with_sigkill_resumes_with_nothing_lost(
    tmp_path: Path, two_runs: tuple[Path, dict[str, Any], dict[str, Any], str],
) -> None:
    pipeline_file, work = tmp_path / "gated.py", tmp_path / "work"
    pipeline_file.write_text(textwrap.dedent(GATED).format(examples=str(EXAMPLE.parent)))
    work.mkdir()
    data, out, store_path = tmp_path / "prompts.jsonl", tmp_path / "out.jsonl", tmp_path / "s.db"
    data.write_text("".join(json.dumps({**p, "workdir": str(work)}) + "\n"
                            for p in prompts.prompts(PROMPTS)))
    finished_before = 20  # style seeds 0 and 1: the prompts the gate lets through
    command = [sys.executable, "-m", "legato.cli", "map", f"{pipeline_file}:gated", str(data),
               "-o", str(out), "--store", str(store_path), "--no-progress"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        run_id = first.stderr.readline().split()[1]  # "run <id>", printed before any item
        with Store.open(store_path) as store:
            deadline = time.monotonic() + 30 * WAIT  # the models are trained first
            while len([i for i in store.items(run_id) if i.status == "ok"]) < finished_before:
                assert first.poll() is None, first.stderr.read()
                assert time.monotonic() < deadline, "the first run never recorded its items"
                time.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=WAIT)
            assert first.returncode == -signal.SIGKILL
            finished = {i.index for i in store.items(run_id) if i.status == "ok"}
        assert finished == set(range(finished_before))
    finally:
        if first.poll() is None:
            first.kill()
        first.stderr.close()

    (work / "open").touch()
    resumed = subprocess.run([sys.executable, "-m", "legato.cli", "resume", run_id,
                              "--store", str(store_path), "--no-progress"],
                             capture_output=True, text=True, timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stderr

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(line["index"] for line in lines) == list(range(PROMPTS))  # each once
    calls = Counter(int(line) for line in (work / "calls.log").read_text().split())
    for index in finished:
        assert calls[index] == 1, f"prompt {index} was finished, yet computed again"
    # The same outcomes as the main job's uninterrupted run of the same prompts.
    uninterrupted = summary.read_results(two_runs[0] / "results.jsonl")
    assert [line["output"] for line in sorted(lines, key=lambda r: r["index"])] == uninterrupted
    with Store.open(store_path) as store:
        run = store.run(run_id)
        assert (run.status, run.done, run.failed) == ("ok", PROMPTS, 0)
