"""The backend contract (legato.testing.BackendContract) on the Ray backend, joined to the
session's local Ray instance (see conftest's ``ray_cluster``)."""

from __future__ import annotations

from typing import Any

import cloudpickle
import pytest

from legato.backends.ray import RayBackend  # imports Ray on first use only
from legato.testing import BackendContract, parts

pytest.importorskip("ray")

pytestmark = pytest.mark.ray


class TestRayBackend(BackendContract):
    # every call runs in a Ray worker or actor, whatever executor its component declares

    @pytest.fixture(autouse=True)
    def _cluster(self, ray_cluster: Any) -> None:
        """The session's Ray instance, started before the backend joins it.

        The suite's components travel to Ray's workers by value: a worker may import
        ``legato`` from another checkout than this one (an editable install on its path ahead
        of this one's), where ``legato.testing.parts`` may not be the same, or not exist.
        """
        cloudpickle.register_pickle_by_value(parts)

    def make_backend(self) -> RayBackend:
        return RayBackend()  # joins the session's instance
