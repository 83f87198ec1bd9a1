"""The example's test set: synthetic callers, made with eSpeak NG.

Each utterance of :data:`voice_agent.domain.TEST_UTTERANCES` is spoken by one of several voices
(US and British English, male and female variants) at one of several speaking rates, padded
with a little room tone, and given a low level of background noise: synthetic speech is
otherwise digitally silent between words, which a recogniser trained on real recordings does not
expect. Most files stay at eSpeak's 22.05 kHz; some are written at 16 kHz or 44.1 kHz, so
loading has real resampling to do.

Written files, in the chosen directory:

* ``wav/uNN.wav``: the recordings;
* ``data.jsonl``: one ``{"path": ...}`` per line, the pipeline's input (nothing else: every key
  of a line becomes a pipeline input);
* ``truth.jsonl``: the same lines in the same order with the ground truth (``text``, ``intent``)
  and how each was made (``voice``, ``wpm``, ``rate``).

Run ``python examples/voice_agent/dataset.py [DIR]`` to make it on its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

if __package__ in (None, ""):  # run as a script: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice_agent import domain
from voice_agent.speech import Synthesizer, write_wav

VOICES: tuple[str, ...] = ("en-us", "en", "en+f3", "en+m3", "en-us+f2", "en-us+m7")
SPEEDS: tuple[int, ...] = (140, 160, 175, 190)
#: Sample rates of the written files, in turn (eSpeak speaks at 22050 Hz). Five, so that the
#: rates do not line up with the six voices.
RATES: tuple[int, ...] = (22_050, 16_000, 22_050, 44_100, 22_050)
#: Standard deviation of the added Gaussian noise (full scale 1.0): about -50 dBFS.
NOISE = 0.003
#: Room tone before and after the speech, in seconds.
PADDING = 0.3

DEFAULT_DIR = Path(__file__).resolve().parent / "data"


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples
    common = gcd(rate, target)
    return resample_poly(samples, target // common, rate // common)


def generate(
    directory: str | Path = DEFAULT_DIR,
    utterances: Sequence[domain.Utterance] = domain.TEST_UTTERANCES,
    *,
    noise: float = NOISE,
    seed: int = 0,
) -> Path:
    """Synthesise ``utterances`` into ``directory``; returns the path of ``data.jsonl``.

    The voice, speaking rate and file sample rate of utterance ``i`` cycle through
    :data:`VOICES`, :data:`SPEEDS` and :data:`RATES`, so any prefix of the set mixes them.
    """
    directory = Path(directory).resolve()
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    synthesizer = Synthesizer()
    inputs: list[dict[str, Any]] = []
    truths: list[dict[str, Any]] = []
    for index, utterance in enumerate(utterances):
        voice = VOICES[index % len(VOICES)]
        wpm = SPEEDS[(index // len(VOICES)) % len(SPEEDS)]
        rate = RATES[index % len(RATES)]
        speech = synthesizer(utterance.text, voice=voice, wpm=wpm).astype(np.float32) / 32768
        pad = np.zeros(int(PADDING * synthesizer.rate), dtype=np.float32)
        signal = np.concatenate([pad, speech, pad])
        signal = signal + rng.normal(0.0, noise, signal.size).astype(np.float32)
        signal = _resample(signal, synthesizer.rate, rate)
        path = write_wav(directory / "wav" / f"u{index + 1:02d}.wav", signal, rate)
        inputs.append({"path": str(path)})
        truths.append({"path": str(path), "text": utterance.text, "intent": utterance.intent,
                       "voice": voice, "wpm": wpm, "rate": rate})
    write_jsonl(directory / "truth.jsonl", truths)
    return write_jsonl(directory / "data.jsonl", inputs)


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write one JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read one JSON object per line (blank lines skipped)."""
    with open(path) as lines:
        return [json.loads(line) for line in lines if line.strip()]


if __name__ == "__main__":
    target = generate(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR)
    print(f"wrote {len(read_jsonl(target))} recordings; inputs in {target}")
