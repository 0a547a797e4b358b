"""Test set-up: the ``device`` fixture over the device matrix (see devicematrix.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import manygrad as mg  # noqa: E402
from devicematrix import DEVICES  # noqa: E402


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


@pytest.fixture
def qnnpack():
    """PyTorch's qnnpack quantized engine for one test: its int32 sums are exact, as
    manygrad's (the x86 engine saturates pairs of uint8 x int8 products at int16)."""
    import torch

    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"
    yield
    torch.backends.quantized.engine = old
