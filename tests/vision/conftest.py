"""The oracle for manygrad.vision: the real torchvision (0.28, PyPI's wheel), on the CPU
build of PyTorch.

PyPI's torchvision wheel is built for CUDA: its compiled ops (``torchvision::nms``, ...)
cannot load without the CUDA libraries, and its import then fails where it registers
their fake (meta) kernels. Its pure-Python parts (transforms, models, datasets, utils,
the box ops and the Python ``roi_align``) are what the tests compare with, so the import
skips those registrations.
"""

from __future__ import annotations

import pytest


def _import_torchvision():
    pytest.importorskip(
        "torch", reason="PyTorch (CPU build) is the test oracle: pip install torch==2.13.0"
    )
    import torch.library

    orig = torch.library.register_fake

    def register_fake(op, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            return lambda fn: fn
        return orig(op, *args, **kwargs)

    torch.library.register_fake = register_fake
    try:
        return pytest.importorskip(
            "torchvision", reason="torchvision is the oracle here: pip install torchvision==0.28.0"
        )
    finally:
        torch.library.register_fake = orig


@pytest.fixture(scope="session")
def tv():
    """The real torchvision module (skips when it is not installed)."""
    return _import_torchvision()


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """PyTorch's CPU threads wait on each other on a busy 2-core machine (a ResNet-18 eval
    ran 10x slower with two): the oracle runs on one thread in these tests."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "set_num_threads"):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
