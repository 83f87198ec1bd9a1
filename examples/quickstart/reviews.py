"""A small review-analysis pipeline: legato's first example, with no model to install.

Each review is split into sentences; every sentence is scored by a lexicon "model" (a class
component, loaded once and kept warm); the scores are combined; negative reviews get a reply
drafted, positive ones do not (a branch).

    legato map examples/quickstart/reviews.py:analyse examples/quickstart/reviews.jsonl \
        -o out/reviews.jsonl
"""

from __future__ import annotations

import re
from typing import NamedTuple

import legato as lg

POSITIVE = {"great", "good", "love", "excellent", "fast", "friendly", "perfect", "happy", "nice"}
NEGATIVE = {"bad", "slow", "broken", "rude", "terrible", "late", "cold", "refund", "never"}


@lg.component(executor="inline")
def sentences(text: str) -> list[str]:
    """Split a review into sentences."""
    return [s.strip() for s in re.split(r"[.!?]+", text) if s.strip()]


@lg.component(memory="10MiB", instances=1)
class Lexicon:
    """A stand-in for a sentiment model: built once per instance, then kept warm."""

    def __init__(self, positive: frozenset[str] = frozenset(POSITIVE),
                 negative: frozenset[str] = frozenset(NEGATIVE)) -> None:
        self.weights = {w: 1.0 for w in positive} | {w: -1.0 for w in negative}

    def __call__(self, sentence: str) -> float:
        words = re.findall(r"[a-z']+", sentence.lower())
        hits = [self.weights[w] for w in words if w in self.weights]
        return sum(hits) / len(hits) if hits else 0.0


class Verdict(NamedTuple):
    score: float
    negative: bool


@lg.component(executor="inline")
def combine(scores: list[float]) -> Verdict:
    """Average the sentence scores; below zero is a negative review."""
    score = sum(scores) / len(scores) if scores else 0.0
    return Verdict(round(score, 3), score < 0)


@lg.component
def draft_reply(text: str, score: float) -> str:
    """Draft an apology that quotes the worst part of the review."""
    first = sentences(text)[0] if text.strip() else text
    return f"We are sorry to read '{first}'. (score {score}) A manager will contact you today."


class Analysis(NamedTuple):
    score: float
    sentences: int
    reply: str | None


@lg.component(executor="inline")
def count(items: list[str]) -> int:
    return len(items)


@lg.pipeline
def analyse(text: str) -> Analysis:
    """Score a review sentence by sentence and draft a reply to the negative ones."""
    parts = sentences(text)
    verdict = combine(lg.map(Lexicon(), parts))
    reply = lg.branch(verdict.negative, draft_reply, None, text, verdict.score)
    return Analysis(score=verdict.score, sentences=count(parts), reply=reply)
