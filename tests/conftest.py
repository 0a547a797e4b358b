"""Test set-up: the device matrix every op test runs on.

``cpu`` always; ``fakegpu`` (NumPy arrays that behave like CuPy's: no implicit host
conversion, counted syncs) always; ``cuda`` when CuPy sees a working GPU. Set
``MANYGRAD_TEST_DEVICES=cuda`` (comma-separated) to choose devices, as
``scripts/gpu-check.sh`` does.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import manygrad as mg  # noqa: E402


def _devices():
    chosen = os.environ.get("MANYGRAD_TEST_DEVICES")
    if chosen:
        return [d.strip() for d in chosen.split(",") if d.strip()]
    devs = ["cpu", "fakegpu"]
    if mg.cuda.is_available():
        devs.append("cuda")
    return devs


DEVICES = _devices()


def pytest_report_header(config):
    why = "" if mg.cuda.is_available() else f" (cuda skipped: {mg.cuda.why_unavailable()})"
    return f"manygrad devices under test: {', '.join(DEVICES)}{why}"


@pytest.fixture(params=DEVICES)
def device(request):
    """Each device of the matrix in turn."""
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    mg.manual_seed(0)
    mg.backend.fake_stats.reset()
    yield
