"""The data every model of the example learns from: scikit-learn's bundled handwritten digits.

1,797 images of 8x8 pixels, digits 0 to 9, about 180 of each (``sklearn.datasets.load_digits``:
bundled with scikit-learn, nothing is downloaded). Pixels are scaled to [0, 1] for the models. An
image travels between components as an 8-bit grayscale picture: a flat list of 64 ints from 0
to 255 (:data:`Image`). Equal images have equal bytes (cache keys are digests of a value's
bytes), and an image is small enough (about 100 bytes) for the run store to keep it in its
row rather than in a file of its own.

The generators and the refinement step share one latent space: a PCA of all images
(:func:`latent_space`), where a digit is a point of :data:`LATENT` coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

#: An 8x8 image as 64 grey levels from 0 (white) to 255 (black ink), row by row.
Image = list[int]
LEVELS = 255

#: Coordinates of the shared latent space (a PCA of the images).
LATENT = 20
SIDE = 8


@dataclass(frozen=True)
class Digits:
    """The images (``n x 64``, in [0, 1]) and their labels (``n``)."""

    images: NDArray[np.float64]
    labels: NDArray[np.int64]

    def of(self, digit: int) -> NDArray[np.float64]:
        """The images of one digit."""
        return self.images[self.labels == digit]


@cache
def load() -> Digits:
    """The bundled digits, pixels scaled from 0..16 to [0, 1] (read once per process)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return Digits(images=np.asarray(bunch.data, dtype=float) / 16.0,
                  labels=np.asarray(bunch.target, dtype=np.int64))


@cache
def latent_space() -> LatentSpace:
    """The PCA of all images that the generators sample in (fitted once per process)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=LATENT, random_state=0).fit(load().images)
    return LatentSpace(mean=pca.mean_, components=pca.components_)


@dataclass(frozen=True)
class LatentSpace:
    """A linear map between images and :data:`LATENT` coordinates (a fitted PCA)."""

    mean: NDArray[np.float64]
    components: NDArray[np.float64]

    def encode(self, images: NDArray[np.float64]) -> NDArray[np.float64]:
        """Latent coordinates of images (``n x 64`` -> ``n x LATENT``)."""
        return np.asarray((images - self.mean) @ self.components.T)

    def decode(self, codes: NDArray[np.float64]) -> NDArray[np.float64]:
        """Images of latent coordinates, clipped to [0, 1] (``n x LATENT`` -> ``n x 64``)."""
        return np.clip(codes @ self.components + self.mean, 0.0, 1.0)


def as_image(pixels: NDArray[np.float64]) -> Image:
    """One image (64 values in [0, 1]) as the grey levels components pass around."""
    return [int(v) for v in np.rint(np.clip(pixels, 0.0, 1.0).ravel() * LEVELS)]


def as_pixels(images: list[Image]) -> NDArray[np.float64]:
    """Images as the models see them: ``n x 64`` values in [0, 1]."""
    return np.asarray(images, dtype=float).reshape(len(images), -1) / LEVELS


def rng(*key: int) -> np.random.Generator:
    """A random generator seeded by ``key`` (prompt seed, digit, round, index...): the same
    key gives the same numbers in any process, so a component's output depends on its inputs
    alone and can be cached."""
    return np.random.default_rng([abs(int(k)) for k in key])
