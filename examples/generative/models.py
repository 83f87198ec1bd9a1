"""The example's models, each a class component trained when it starts and kept warm.

* :class:`MixtureSampler` (generator A, parametric): per digit, a Gaussian mixture of a few
  full-covariance components fitted in the shared latent space; a sample is a latent point
  drawn from the mixture, decoded to pixels.
* :class:`KernelSampler` (generator B, non-parametric): per digit, a Gaussian kernel density
  over the training images' latent codes, its bandwidth chosen by held-out likelihood; a sample
  is a training code plus kernel noise, decoded.
* :class:`Nearby` (the refinement step): the best candidate so far, resampled near itself, a
  little closer each round.
* :class:`Scorer` (neither generator): a digit classifier (an RBF support-vector machine with
  calibrated probabilities) gives the probability that an image shows the requested digit; a
  novelty term (distance to the nearest training image, over the typical distance between
  neighbouring training images, capped at 1) multiplies it, so a copy of a training image
  scores 0 however clearly it shows its digit. Batched: one call scores a list of images.

Every sampler draws from a random generator seeded by its inputs (:func:`digits.rng`), so the
same inputs give the same image in any process: the components are declared ``cache=True``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

# legato loads the pipeline file by its path: make the package ``generative`` importable.
_EXAMPLES = str(Path(__file__).resolve().parent.parent)
if _EXAMPLES not in sys.path:
    sys.path.insert(0, _EXAMPLES)

import legato as lg  # noqa: E402
from generative.digits import (  # noqa: E402
    LATENT,
    Image,
    as_image,
    as_pixels,
    latent_space,
    load,
    rng,
)

#: Random streams, one per sampler, so two samplers never draw the same numbers.
MIXTURE, KERNEL, NEARBY = 1, 2, 3


class Best(BaseModel):
    """The best candidate of a prompt so far: the state the refinement loop carries."""

    model_config = ConfigDict(frozen=True)

    image: Image
    score: float
    generator: str
    """Which generator made the candidate it started from: ``mixture`` or ``kernel``."""
    rounds: int = 0
    """Refinement rounds run so far."""
    improved: int = 0
    """Rounds that found a better candidate."""


@lg.component(cache=True, cpus=0.5, version="2")
class MixtureSampler:
    """Generator A: a Gaussian mixture per digit, sampled in the latent space.

    Args:
        components: Mixture components per digit (strokes drawn in different ways).
    """

    def __init__(self, components: int = 4) -> None:
        from sklearn.mixture import GaussianMixture

        digits, space = load(), latent_space()
        self._space = space
        self._mixtures = []
        for digit in range(10):
            codes = space.encode(digits.of(digit))
            mixture = GaussianMixture(components, covariance_type="full", random_state=0)
            mixture.fit(codes)
            factors = np.linalg.cholesky(mixture.covariances_)
            self._mixtures.append((mixture.weights_ / mixture.weights_.sum(), mixture.means_,
                                   factors))

    def __call__(self, index: int, digit: int, seed: int) -> Image:
        """Candidate ``index`` for the prompt (``digit``, ``seed``)."""
        weights, means, factors = self._mixtures[digit]
        draw = rng(seed, digit, index, MIXTURE)
        k = int(draw.choice(len(weights), p=weights))
        code = means[k] + factors[k] @ draw.standard_normal(LATENT)
        return as_image(self._space.decode(code[None])[0])


@lg.component(cache=True, cpus=0.5, version="2")
class KernelSampler:
    """Generator B: a Gaussian kernel density per digit over the training images' codes.

    Args:
        bandwidths: The kernel widths to choose from, per digit, by the likelihood of a fifth
            of its images held out from the rest.
    """

    def __init__(self, bandwidths: tuple[float, ...] = (0.1, 0.15, 0.2, 0.3, 0.45)) -> None:
        from sklearn.neighbors import KernelDensity

        digits, space = load(), latent_space()
        self._space = space
        self._codes: list[np.ndarray] = []
        self.bandwidths: list[float] = []
        for digit in range(10):
            codes = space.encode(digits.of(digit))
            order = rng(digit, KERNEL).permutation(len(codes))
            held, kept = codes[order[: len(codes) // 5]], codes[order[len(codes) // 5:]]
            likelihood = [KernelDensity(bandwidth=h).fit(kept).score(held) for h in bandwidths]
            self._codes.append(codes)
            self.bandwidths.append(bandwidths[int(np.argmax(likelihood))])

    def __call__(self, index: int, digit: int, seed: int) -> Image:
        """Candidate ``index`` for the prompt (``digit``, ``seed``)."""
        codes, width = self._codes[digit], self.bandwidths[digit]
        draw = rng(seed, digit, index, KERNEL)
        code = codes[int(draw.integers(len(codes)))] + width * draw.standard_normal(LATENT)
        return as_image(self._space.decode(code[None])[0])


@lg.component(cache=True, cpus=0.5, version="2")
class Nearby:
    """The refinement step: the best candidate's latent code plus Gaussian noise.

    Args:
        spread: The noise's standard deviation in the first round.
        shrink: What each later round multiplies it by (the search narrows).
    """

    def __init__(self, spread: float = 0.3, shrink: float = 0.6) -> None:
        self._space = latent_space()
        self._spread, self._shrink = spread, shrink

    def __call__(self, index: int, best: Best, digit: int, seed: int) -> Image:
        """Candidate ``index`` near ``best`` in round ``best.rounds + 1``."""
        draw = rng(seed, digit, best.rounds, index, NEARBY)
        width = self._spread * self._shrink ** best.rounds
        code = self._space.encode(as_pixels([best.image]))[0]
        return as_image(self._space.decode((code + width * draw.standard_normal(LATENT))[None])[0])


@lg.component(cache=True, cpus=1, version="2", batch=lg.Batch(max_size=64, max_wait_ms=5))
class Scorer:
    """How good a candidate is: P(requested digit) times novelty, in [0, 1].

    Args:
        C: The support-vector machine's regularisation (larger: a tighter fit).
    """

    def __init__(self, C: float = 10.0) -> None:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        digits = load()
        self._classifier = CalibratedClassifierCV(SVC(C=C, gamma="scale"), ensemble=False)
        self._classifier.fit(digits.images, digits.labels)
        self._training = digits.images
        self._squares = (digits.images ** 2).sum(axis=1)
        nearest = self._nearest(digits.images, exclude_self=True)
        self.typical_distance = float(np.median(nearest))

    def _nearest(self, images: np.ndarray, *, exclude_self: bool = False) -> np.ndarray:
        """Each image's distance to its nearest training image."""
        squared = ((images ** 2).sum(axis=1)[:, None] + self._squares[None, :]
                   - 2.0 * images @ self._training.T)
        if exclude_self:
            np.fill_diagonal(squared, np.inf)
        return np.sqrt(np.maximum(squared.min(axis=1), 0.0))

    def parts(self, images: list[Image], digits: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per image: the probability of its digit, and its novelty (0 for a training image)."""
        pixels = as_pixels(images)
        probability = self._classifier.predict_proba(pixels)[np.arange(len(pixels)), digits]
        novelty = np.minimum(1.0, self._nearest(pixels) / self.typical_distance)
        return probability, novelty

    def __call__(self, image: list[Image], digit: list[int]) -> list[float]:
        """One score per image (a batch: lists of images and of their requested digits): the
        probability that it shows its digit, times its novelty."""
        probability, novelty = self.parts(image, digit)
        return [round(float(s), 4) for s in probability * novelty]
