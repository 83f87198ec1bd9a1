"""A voice agent for a shop's help line, as a legato pipeline of real offline models.

    recording ─ load_audio ─ recognizer ─┬─ sentiment ─────────┐
                                         ├─ intent_classifier ─┼─ choose_reply ─ speak ─ reply.wav
                                         └─ embed ─────────────┘

* ``load_audio``: reads any WAV/FLAC/OGG, mixes to mono, resamples to 16 kHz (soundfile, SciPy).
* ``Recognizer``: CMU PocketSphinx, its bundled US English acoustic model, and a trigram
  language model of the shop's domain built at start-up with ``pocketsphinx.lm``.
* ``Sentiment``: VADER, a lexicon and rule-based sentiment model.
* ``IntentClassifier``: TF-IDF features and logistic regression (scikit-learn), trained at
  start-up on the example requests of :mod:`voice_agent.domain`.
* ``Embed``: all-MiniLM-L6-v2 sentence embeddings, int8 ONNX on onnxruntime, batched.
* ``ChooseReply``: the written reply of the intent nearest in meaning to what was said.
* ``Speak``: eSpeak NG speech synthesis to a WAV file; ``wav_bytes`` reads it back, so a served
  agent answers with the audio itself (base64 in the JSON response).

Run it with ``legato map examples/voice_agent/agent.py:agent data.jsonl -o out.jsonl``, or
``python examples/voice_agent/main.py`` for the whole job with its evaluation; serve it with
``legato serve examples/voice_agent/agent.py:agent`` (the recording is a file upload: its input
is a path), or ``python examples/voice_agent/main.py --serve`` to see it answer many callers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np

# The example's modules form the package ``voice_agent``, next to this file. legato loads this
# file by its path, so make that package importable first.
_EXAMPLES = str(Path(__file__).resolve().parent.parent)
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)

import legato as lg  # noqa: E402
from voice_agent import domain  # noqa: E402
from voice_agent.embeddings import MiniLM  # noqa: E402
from voice_agent.speech import Audio, Synthesizer, load, write_wav  # noqa: E402

#: Where ``Speak`` writes the agent's spoken replies, unless ``$VOICE_AGENT_REPLY_DIR`` is set.
REPLY_DIR = Path(__file__).resolve().parent / "out" / "replies"


class RecognitionError(RuntimeError):
    """The recogniser heard no words in a recording."""


# ---------------------------------------------------------------------------------------------
# Components


@lg.component
def load_audio(path: Path) -> Audio:
    """Read a recording and prepare it for recognition: mono, 16-bit, 16 kHz.

    Fails with an error naming the file when it is not audio, is empty, too short, silent, or
    sampled below 8 kHz.
    """
    return load(path)


def build_language_model(sentences: list[str], directory: Path) -> tuple[Path, Path]:
    """Write a trigram ARPA language model and a pronunciation dictionary for ``sentences``.

    The model is estimated with ``pocketsphinx.lm`` (fixed-discount back-off); the dictionary is
    the CMU dictionary entries of the corpus's words. Returns ``(lm_path, dict_path)``.
    """
    from pocketsphinx import get_model_path
    from pocketsphinx.lm import ArpaBoLM

    model = ArpaBoLM(text="\n".join(sentences), add_start=True, case="lower")
    model.compute()
    lm_path = directory / "domain.lm"
    model.write_file(str(lm_path))
    words = {word for sentence in sentences for word in sentence.lower().split()}
    dict_path = directory / "domain.dict"
    found: set[str] = set()
    with open(get_model_path("en-us/cmudict-en-us.dict")) as cmudict, open(dict_path, "w") as out:
        for line in cmudict:
            word = line.split(maxsplit=1)[0]
            base = word.split("(", 1)[0]  # alternative pronunciations are "word(2)"
            if base in words:
                out.write(line)
                found.add(base)
    if missing := words - found:
        raise ValueError(f"no pronunciation for {sorted(missing)} in the CMU dictionary")
    return lm_path, dict_path


@lg.component(cpus=1, memory="120MiB", executor="process")
class Recognizer:
    """Speech to text with CMU PocketSphinx and a language model of the shop's domain.

    It runs in a warm worker process (``executor="process"``): PocketSphinx holds the GIL while
    it decodes, so in a thread it would stall every other stage of the agent. Alone in its
    process it uses one core, and the rest of the pipeline has the other.

    Args:
        language_weight: How much the language model counts against the acoustics (PocketSphinx
            defaults to 6.5; a small closed-domain model earns more trust).
    """

    def __init__(self, language_weight: float = 10.0) -> None:
        from pocketsphinx import Decoder, get_model_path

        with tempfile.TemporaryDirectory(prefix="voice-agent-lm-") as directory:
            lm_path, dict_path = build_language_model(domain.corpus(), Path(directory))
            self._decoder = Decoder(
                hmm=get_model_path("en-us/en-us"),
                lm=str(lm_path),
                dict=str(dict_path),
                samprate=16_000,
                lw=language_weight,
                loglevel="FATAL",
            )
        self._lock = threading.Lock()  # one decoder, one utterance at a time

    def __call__(self, audio: Audio) -> str:
        """The words heard in ``audio`` (16 kHz), lower case, separated by spaces."""
        if audio.rate != 16_000:
            raise ValueError(f"{audio.source}: the recogniser takes 16 kHz audio, got {audio.rate}")
        with self._lock:
            # Start every recording from the same cepstral-mean estimate: otherwise it drifts
            # from one utterance to the next, and results depend on the order of the items.
            self._decoder.reinit_feat()
            self._decoder.start_utt()
            self._decoder.process_raw(audio.samples.tobytes(), full_utt=True)
            self._decoder.end_utt()
            hypothesis = self._decoder.hyp()
        text = hypothesis.hypstr.strip() if hypothesis is not None else ""
        if not text:
            raise RecognitionError(f"{audio.source}: no words recognised")
        return text


@lg.component(cpus=0.25, memory="20MiB")
class Sentiment:
    """VADER sentiment: the compound score, from -1 (very negative) to +1 (very positive)."""

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def __call__(self, text: str) -> float:
        """Sentiment of ``text``."""
        return float(self._analyzer.polarity_scores(text)["compound"])


class Intent(NamedTuple):
    """The classifier's best guess and its probability."""

    label: str
    confidence: float


@lg.component(cpus=0.5, memory="50MiB")
class IntentClassifier:
    """What the caller wants, as one of :data:`voice_agent.domain.INTENTS`.

    A scikit-learn pipeline (TF-IDF of words and word pairs, then logistic regression) trained
    when the component starts, on the example requests in :data:`voice_agent.domain.TRAINING`.
    """

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        texts = [text for sentences in domain.TRAINING.values() for text in sentences]
        labels = [label for label, sentences in domain.TRAINING.items() for _ in sentences]
        self._model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            LogisticRegression(C=10.0, max_iter=1000),
        )
        self._model.fit(texts, labels)

    def __call__(self, text: str) -> Intent:
        """The intent of ``text`` and the classifier's probability for it."""
        probabilities = self._model.predict_proba([text])[0]
        best = int(np.argmax(probabilities))
        label = str(self._model.classes_[best])
        return Intent(label=label, confidence=round(float(probabilities[best]), 3))


@lg.component(cpus=1, memory="200MiB", batch=lg.Batch(max_size=16, max_wait_ms=5))
class Embed:
    """all-MiniLM-L6-v2 sentence embeddings (384 floats, unit length), a batch at a time."""

    def __init__(self, threads: int = 1, batch_log: str | None = None) -> None:
        self._model = MiniLM(threads=threads)
        log = batch_log or os.environ.get("VOICE_AGENT_BATCH_LOG")
        self._batch_log = Path(log) if log else None

    def __call__(self, texts: list[str]) -> list[list[float]]:
        """One embedding per text. With a batch log (``batch_log`` or
        ``$VOICE_AGENT_BATCH_LOG``), each call appends its batch size to it, one line a call:
        how ``examples/voice_agent/client.py`` shows what batching did for the callers."""
        if self._batch_log is not None:
            with self._batch_log.open("a") as log:
                log.write(f"{len(texts)}\n")
        return self._model.encode(texts).tolist()


@lg.component(cpus=0.5, memory="100MiB")
class ChooseReply:
    """Pick the agent's answer: among the written replies for the intent, the nearest in meaning.

    The replies of :data:`voice_agent.domain.REPLIES` are embedded once, when the component
    starts, with the same MiniLM model as :class:`Embed`. A caller who sounds upset (sentiment
    below ``upset_below``) gets an apology first.
    """

    def __init__(self, upset_below: float = -0.3) -> None:
        self._replies = domain.REPLIES
        self._vectors = MiniLM(threads=1).encode([reply.text for reply in self._replies])
        self._upset_below = upset_below

    def __call__(self, embedding: list[float], intent: str, sentiment: float) -> str:
        """The reply text for an utterance with this embedding, intent and sentiment."""
        scores = self._vectors @ np.asarray(embedding, dtype=np.float32)
        same_intent = np.array([reply.intent == intent for reply in self._replies])
        if same_intent.any():
            scores = np.where(same_intent, scores, -np.inf)
        reply = self._replies[int(np.argmax(scores))].text
        if sentiment < self._upset_below:
            reply = f"{domain.APOLOGY} {reply}"
        return reply


@lg.component(cpus=0.5, memory="50MiB")
class Speak:
    """Say the reply with eSpeak NG and write it next to the others as ``<input name>.reply.wav``.

    Args:
        out_dir: Directory of the reply WAVs; by default ``$VOICE_AGENT_REPLY_DIR``, else
            :data:`REPLY_DIR`.
        voice: eSpeak NG voice of the agent.
        wpm: Speaking rate, words per minute.
    """

    def __init__(
        self, out_dir: str | None = None, voice: str = "en-us+f2", wpm: int = 165
    ) -> None:
        self._out_dir = Path(out_dir or os.environ.get("VOICE_AGENT_REPLY_DIR") or REPLY_DIR)
        self._voice = Synthesizer(voice=voice, wpm=wpm)

    def __call__(self, reply: str, path: Path) -> str:
        """Synthesise ``reply``; returns the path of the WAV written."""
        samples = self._voice(reply)
        target = self._out_dir / f"{Path(path).stem}.reply.wav"
        return str(write_wav(target, samples, self._voice.rate))


@lg.component(cpus=0)
def wav_bytes(path: str) -> bytes:
    """The WAV file at ``path``: a served agent's reply travels as these bytes (base64 in JSON)."""
    return Path(path).read_bytes()


# ---------------------------------------------------------------------------------------------
# The pipeline


class AgentResult(NamedTuple):
    """What the agent made of one recording."""

    transcript: str
    intent: str
    confidence: float
    sentiment: float
    reply: str
    reply_wav: str  # the path of the spoken reply, where the agent ran
    reply_audio: bytes  # the spoken reply: that file's WAV bytes


@lg.pipeline
def agent(path: Path) -> AgentResult:
    """Listen to the recording at ``path``, understand it, and answer it out loud.

    Served (``legato serve``), ``path`` is a file upload and ``reply_audio`` comes back as
    base64 in the JSON response."""
    audio = load_audio(path)
    text = Recognizer()(audio)
    mood = Sentiment()(text)
    intent = IntentClassifier()(text)
    vector = Embed()(text)
    reply = ChooseReply()(vector, intent.label, mood)
    wav = Speak()(reply, path)
    return AgentResult(
        transcript=text,
        intent=intent.label,
        confidence=intent.confidence,
        sentiment=mood,
        reply=reply,
        reply_wav=wav,
        reply_audio=wav_bytes(wav),
    )
