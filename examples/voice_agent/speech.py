"""Audio in and out: loading and resampling recordings, and speech synthesis with eSpeak NG.

Loading uses ``soundfile`` (libsndfile, bundled in its wheel), so any WAV, FLAC or OGG file
works, at any rate and bit depth; it comes out as 16 kHz mono 16-bit PCM, what the recogniser's
acoustic model was trained on. Bad recordings fail here, with the file named in the error.

Synthesis drives the eSpeak NG shared library that the ``espeakng-loader`` wheel ships (with its
voice data) through ``ctypes``: no system package, nothing to download. eSpeak keeps global state,
so one process has one engine, shared behind a lock.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

#: The recogniser's sample rate (the pocketsphinx en-us acoustic model is 16 kHz).
TARGET_RATE = 16_000
#: Below this, speech has lost too much of its band to be recognised (telephone audio is 8 kHz).
MIN_RATE = 8_000
#: Shortest recording worth decoding, in seconds.
MIN_SECONDS = 0.2
#: A recording whose loudest sample is below this (full scale is 1.0, so -40 dBFS) is silent.
SILENCE_PEAK = 0.01


class AudioError(ValueError):
    """A recording that cannot be used: unreadable, empty, silent, or at an unusable rate."""


@dataclass(frozen=True, eq=False)
class Audio:
    """A mono recording ready for recognition.

    Attributes:
        samples: 16-bit PCM samples, one channel.
        rate: Samples per second (``TARGET_RATE`` after :func:`load`).
        source: Where the recording came from, for error messages.
    """

    samples: np.ndarray
    rate: int
    source: str

    @property
    def seconds(self) -> float:
        """Duration of the recording."""
        return len(self.samples) / self.rate

    def __repr__(self) -> str:
        return f"Audio({self.source!r}, {self.seconds:.2f} s at {self.rate} Hz)"


def load(path: str | Path, *, rate: int = TARGET_RATE) -> Audio:
    """Read an audio file, mix it down to mono and resample it to ``rate``.

    Raises:
        FileNotFoundError: There is no such file.
        AudioError: The file is not audio, or is empty, too short, silent or sampled too slowly.
    """
    source = str(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{source}: no such audio file")
    try:
        data, file_rate = soundfile.read(source, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as exc:
        raise AudioError(f"{source}: not a readable audio file ({exc.error_string})") from None
    except (RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{source}: not a readable audio file ({exc})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{source}: the recording is empty (0 samples)")
    if file_rate < MIN_RATE:
        raise AudioError(
            f"{source}: sample rate {file_rate} Hz is too low for speech recognition "
            f"(need at least {MIN_RATE} Hz)"
        )
    mono = data.mean(axis=1)
    if mono.shape[0] / file_rate < MIN_SECONDS:
        raise AudioError(
            f"{source}: the recording is too short ({mono.shape[0] / file_rate:.3f} s; "
            f"need at least {MIN_SECONDS} s)"
        )
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise AudioError(f"{source}: the recording is silent (peak level {peak:.4f})")
    if file_rate != rate:
        common = gcd(file_rate, rate)
        mono = resample_poly(mono, rate // common, file_rate // common)
    pcm = (np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16)
    return Audio(samples=pcm, rate=rate, source=source)


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> Path:
    """Write 16-bit PCM ``samples`` (int16, or floats in [-1, 1]) to a WAV file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return path


# ---------------------------------------------------------------------------------------------
# eSpeak NG through ctypes (the API of espeak-ng's speak_lib.h)

_AUDIO_OUTPUT_SYNCHRONOUS = 2  # espeak_Synth returns once every sample went to the callback
_INITIALIZE_DONT_EXIT = 0x8000  # report a missing data directory instead of calling exit()
_RATE = 1  # espeak_PARAMETER: words per minute
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The process's one eSpeak NG engine (the library has global state)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {data_path.decode()})")
        # Some voice variants (the female ones) breathe: random noise from a generator that is
        # seeded from the clock unless told otherwise. Seed it, so runs can be repeated.
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_ng_SetRandSeed(0)
        self.rate = rate
        self._lib = lib
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _collect(self, wav: ctypes._Pointer, count: int, _events: int) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # 0: go on synthesising

    def synthesize(self, text: str, voice: str, wpm: int) -> np.ndarray:
        with self.lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(_RATE, wpm, 0)
            self._chunks = []
            encoded = text.encode()
            status = self._lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != _EE_OK:
                raise RuntimeError(f"eSpeak NG could not synthesise {text!r} (error {status})")
            chunks, self._chunks = self._chunks, []
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def _get_engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


class Synthesizer:
    """Text to speech with eSpeak NG.

    Args:
        voice: An eSpeak voice, optionally with a variant: ``"en-us"``, ``"en+f3"``, ``"en+m3"``.
        wpm: Speaking rate in words per minute (eSpeak's default is 175).
    """

    def __init__(self, voice: str = "en-us", wpm: int = 175) -> None:
        self.voice = voice
        self.wpm = wpm
        self._engine = _get_engine()

    @property
    def rate(self) -> int:
        """Sample rate of the synthesised audio (22050 Hz for eSpeak NG)."""
        return self._engine.rate

    def __call__(
        self, text: str, *, voice: str | None = None, wpm: int | None = None
    ) -> np.ndarray:
        """Speak ``text``; returns 16-bit PCM samples at :attr:`rate`."""
        return self._engine.synthesize(text, voice or self.voice, wpm or self.wpm)
