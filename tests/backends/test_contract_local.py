"""The backend contract (legato.testing.BackendContract) on the local backend."""

from __future__ import annotations

from legato.backends.local import LocalBackend
from legato.testing import BackendContract


class TestLocalBackend(BackendContract):
    def make_backend(self) -> LocalBackend:
        return LocalBackend(gpus=[])
