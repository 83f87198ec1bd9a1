"""The generative pipeline: two generators fan out, one scorer judges, a bounded loop refines.

    prompt (digit, seed) ─┬─ map MixtureSampler x8 ─ map Scorer ─┐
                          └─ map KernelSampler  x8 ─ map Scorer ─┴─ select ─ loop(refine) ─ outcome
    refine(best):  map Nearby x4 ─ map Scorer ─ keep_best     until good_enough, 3 rounds at most

Per prompt, each generator makes :data:`ARM` candidates, all scored in batches. The combined
selection takes the first :data:`CANDIDATES` of each generator (the same budget as one
generator alone: :data:`ARM` candidates), keeps the best, and refines it in a bounded loop
until its score reaches :data:`THRESHOLD` or :data:`ROUNDS` rounds have run. Each generator's
best of all its :data:`ARM` candidates is reported beside it: what that generator gives alone,
measured in the same run on the same prompts.

Run it with ``legato map examples/generative/pipeline.py:generate prompts.jsonl -o out.jsonl``,
or ``python examples/generative/main.py`` for the whole job with its summary and picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from pydantic import BaseModel

_EXAMPLES = str(Path(__file__).resolve().parent.parent)
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)

import legato as lg  # noqa: E402
from generative.digits import Image, rng  # noqa: E402
from generative.models import (  # noqa: E402
    Best,
    KernelSampler,
    MixtureSampler,
    Nearby,
    Scorer,
)

CANDIDATES = 4
"""Candidates of each generator in the combined pool."""
ARM = 2 * CANDIDATES
"""Candidates of each generator in all: its alone arm, the combined pool's budget."""
NEARBY = 4
"""Candidates per refinement round."""
ROUNDS = 3
"""Refinement rounds at most."""
THRESHOLD = 0.97
"""A prompt is accepted when its best candidate scores this much."""


class Outcome(BaseModel):
    """What the pipeline made of one prompt."""

    digit: int
    seed: int
    image: Image
    """The best candidate, after refinement."""
    score: float
    generator: str
    """The generator its starting candidate came from."""
    rounds: int
    improved: int
    accepted: bool
    alone: dict[str, float]
    """Per generator, the best score of its :data:`ARM` candidates."""
    samples: dict[str, Image]
    """Per generator, one of its candidates picked at random (for the picture)."""


def _best(images: list[Image], scores: list[float]) -> tuple[Image, float]:
    index = int(np.argmax(scores))
    return images[index], scores[index]


@lg.component(executor="inline", cpus=0)
def select(mixture: list[Image], mixture_scores: list[float], kernel: list[Image],
           kernel_scores: list[float]) -> Best:
    """The best of the combined pool: the first CANDIDATES of each generator."""
    pool = {"mixture": _best(mixture[:CANDIDATES], mixture_scores[:CANDIDATES]),
            "kernel": _best(kernel[:CANDIDATES], kernel_scores[:CANDIDATES])}
    generator = max(pool, key=lambda name: pool[name][1])
    image, score = pool[generator]
    return Best(image=image, score=score, generator=generator)


@lg.component(executor="inline", cpus=0)
def keep_best(best: Best, nearby: list[Image], scores: list[float]) -> Best:
    """The better of the best so far and this round's best candidate."""
    image, score = _best(nearby, scores)
    if score > best.score:
        return best.model_copy(update={"image": image, "score": score, "rounds": best.rounds + 1,
                                       "improved": best.improved + 1})
    return best.model_copy(update={"rounds": best.rounds + 1})


@lg.component(executor="inline", cpus=0)
def good_enough(best: Best) -> bool:
    """Whether the refinement can stop: the best candidate reaches THRESHOLD."""
    return best.score >= THRESHOLD


@lg.pipeline
def refine(best: Best, digit: int, seed: int) -> Best:
    """One refinement round: NEARBY candidates near the best, scored; the better one kept."""
    nearby = lg.map(Nearby(), list(range(NEARBY)), best=best, digit=digit, seed=seed)
    scores = lg.map(Scorer(), nearby, digit=digit)
    return keep_best(best, nearby, scores)


@lg.component(executor="inline", cpus=0)
def outcome(digit: int, seed: int, best: Best, mixture: list[Image],
            mixture_scores: list[float], kernel: list[Image],
            kernel_scores: list[float]) -> Outcome:
    """The prompt's result, with each generator's best alone and a random sample of each."""
    pick = rng(seed, digit, 99)
    return Outcome(
        digit=digit, seed=seed, image=best.image, score=best.score, generator=best.generator,
        rounds=best.rounds, improved=best.improved, accepted=best.score >= THRESHOLD,
        alone={"mixture": max(mixture_scores), "kernel": max(kernel_scores)},
        samples={"mixture": mixture[int(pick.integers(ARM))],
                 "kernel": kernel[int(pick.integers(ARM))]},
    )


@lg.pipeline
def generate(digit: int, seed: int) -> Outcome:
    """Make an image of ``digit`` in the style ``seed``: fan out, score, select, refine."""
    indices = list(range(ARM))
    mixture = lg.map(MixtureSampler(), indices, digit=digit, seed=seed)
    kernel = lg.map(KernelSampler(), indices, digit=digit, seed=seed)
    mixture_scores = lg.map(Scorer(), mixture, digit=digit)
    kernel_scores = lg.map(Scorer(), kernel, digit=digit)
    first = select(mixture, mixture_scores, kernel, kernel_scores)
    best = lg.loop(refine, first, until=good_enough, max_iterations=ROUNDS, digit=digit,
                   seed=seed)
    return outcome(digit, seed, best, mixture, mixture_scores, kernel, kernel_scores)
