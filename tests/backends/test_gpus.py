"""GPUs on the local backend: found with ``nvidia-smi`` (a fake one here, on a PATH of the
test's own) and narrowed by ``CUDA_VISIBLE_DEVICES``; placed by the engine, so that a worker
process sees only its devices; and checked, so that a request no device can hold is reported
before anything runs. No real GPU is needed: the devices are declared."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import legato as lg
from legato.backends.local import LocalBackend, detect_gpus
from legato.engine import Gpu

GiB = 2**30
MiB = 2**20
QUERY = "--query-gpu=index,memory.total --format=csv,noheader,nounits"


def _fake_nvidia_smi(folder: Path, body: str) -> Path:
    """An ``nvidia-smi`` in ``folder`` that runs ``body`` (sh) when asked the expected query."""
    script = folder / "nvidia-smi"
    script.write_text(f'#!/bin/sh\n[ "$*" = "{QUERY}" ] || exit 64\n{body}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.fixture
def two_gpus(tmp_path: Path) -> Path:
    """A PATH folder whose nvidia-smi lists a 16 GiB GPU 0 and an 80 GiB GPU 1."""
    return _fake_nvidia_smi(tmp_path, "printf '0, 16384\\n1, 81559\\n'")


BOTH = (Gpu(0, 16384 * MiB), Gpu(1, 81559 * MiB))

# -- detection ------------------------------------------------------------------------------


def test_detect_gpus_reads_index_and_memory_from_nvidia_smi(two_gpus: Path) -> None:
    assert detect_gpus({"PATH": str(two_gpus)}) == BOTH


@pytest.mark.parametrize(("visible", "expected"), [
    ("1", (BOTH[1],)),
    ("0,1", BOTH),
    (" 1 , 0 ", BOTH),
    ("0,7", (BOTH[0],)),  # a device that is not there is left out
    ("", ()),
    ("-1", ()),
    (" -1 ", ()),
])
def test_cuda_visible_devices_narrows_the_gpus_found(
    two_gpus: Path, visible: str, expected: tuple[Gpu, ...]
) -> None:
    assert detect_gpus({"PATH": str(two_gpus), "CUDA_VISIBLE_DEVICES": visible}) == expected


def test_no_nvidia_smi_means_no_gpus(tmp_path: Path) -> None:
    assert detect_gpus({"PATH": str(tmp_path)}) == ()


def test_an_nvidia_smi_that_fails_means_no_gpus(tmp_path: Path) -> None:
    folder = _fake_nvidia_smi(tmp_path, "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    assert detect_gpus({"PATH": str(folder)}) == ()


def test_lines_nvidia_smi_prints_that_are_not_gpus_are_skipped(tmp_path: Path) -> None:
    folder = _fake_nvidia_smi(tmp_path, "printf '0, 16384\\n[N/A]\\n1, [N/A]\\n'")
    assert detect_gpus({"PATH": str(folder)}) == (Gpu(0, 16384 * MiB),)


def test_the_local_backend_detects_gpus_unless_told_which(
    two_gpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{two_gpus}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    detected = LocalBackend()
    assert tuple(detected.gpus()) == BOTH
    assert detected.capacity()["gpus"] == 2
    with lg.Engine(detected) as engine:
        assert engine.capacity()["gpu_memory"] == 81559 * MiB  # what one placement can get
    told = LocalBackend(gpus=[Gpu(3, GiB)])
    assert tuple(told.gpus()) == (Gpu(3, GiB),)
    told.close()


# -- placement ------------------------------------------------------------------------------
# process components live at module level: worker processes import them by name


@lg.component(executor="process", gpus=0.5, cpus=0)
class HalfGpuModel:
    """Stays loaded (and holds half a GPU) in its worker; says which devices it sees."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def __call__(self, x: int) -> str | None:
        return os.environ.get("CUDA_VISIBLE_DEVICES")


@lg.component(executor="process", gpus=1, cpus=0)
class WholeGpuModel:
    def __call__(self, x: int) -> str | None:
        return os.environ.get("CUDA_VISIBLE_DEVICES")


@lg.component(executor="process", gpus=1, cpus=0)
def whole_gpu_task(x: int) -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


@lg.component(executor="process", gpus=2, cpus=0)
def two_gpu_task(x: int) -> str | None:
    return os.environ.get("CUDA_VISIBLE_DEVICES")


@pytest.fixture
def gpu_engine() -> Iterator[lg.Engine]:
    """An engine over two declared 16 GiB GPUs."""
    with lg.Engine(LocalBackend(gpus=[Gpu(0, 16 * GiB), Gpu(1, 16 * GiB)])) as engine:
        yield engine


def _runs(target: Callable[..., object]) -> lg.Pipeline:
    @lg.pipeline
    def p(x: int) -> str | None:
        return target(x)  # type: ignore[return-value]

    return p


def test_two_half_gpu_models_share_one_device_and_a_whole_gpu_goes_to_the_other(
    gpu_engine: lg.Engine,
) -> None:
    assert _runs(HalfGpuModel(tag="a")).run(x=0, engine=gpu_engine) == "0"
    assert _runs(HalfGpuModel(tag="b")).run(x=0, engine=gpu_engine) == "0"  # packed beside a
    assert gpu_engine.usage().used["gpus"] == 1.0  # both still loaded, holding their halves
    assert _runs(WholeGpuModel()).run(x=0, engine=gpu_engine) == "1"


def test_a_process_function_sees_only_the_devices_it_was_given(gpu_engine: lg.Engine) -> None:
    assert _runs(two_gpu_task).run(x=0, engine=gpu_engine) == "0,1"
    assert _runs(HalfGpuModel(tag="a")).run(x=0, engine=gpu_engine) == "0"  # stays loaded
    assert _runs(whole_gpu_task).run(x=0, engine=gpu_engine) == "1"  # the whole free one
    assert gpu_engine.usage().used["gpus"] == 0.5  # the function gave its device back


# -- the check --------------------------------------------------------------------------------


def test_the_check_reports_gpu_memory_no_device_has(
    gpu_engine: lg.Engine, where: Callable[[str], str]
) -> None:
    @lg.component(gpus=0.5, gpu_memory="20GiB")
    def huge(x: int) -> int:
        return x

    @lg.pipeline
    def p(x: int) -> int:
        return huge(x)  # huge

    with pytest.raises(lg.GraphError) as caught:
        p.check(engine=gpu_engine)
    message = str(caught.value)
    assert ("can never be placed: gpu_memory=20.0GiB is more than the largest GPU's 16.0GiB"
            in message)
    assert where("# huge") in message


def test_the_check_reports_more_gpus_than_there_are(gpu_engine: lg.Engine) -> None:
    @lg.component(gpus=3)
    def greedy(x: int) -> int:
        return x

    with pytest.raises(lg.GraphError, match="can never be placed: gpus=3 is more than the 2 GPUs"):
        _runs(greedy).check(engine=gpu_engine)


def test_the_check_accepts_gpu_memory_that_one_device_has(gpu_engine: lg.Engine) -> None:
    @lg.component(gpus=0.5, gpu_memory="16GiB")
    def fits(x: int) -> int:
        return x

    _runs(fits).check(engine=gpu_engine)
