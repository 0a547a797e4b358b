"""Devices: naming, moves, mixed-device errors, CUDA availability messages."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import DeviceError


def test_device_names():
    assert str(mg.device("cuda:1")) == "cuda:1" and mg.device("cuda").index == 0
    assert mg.device("cpu") == "cpu" and mg.device("cuda:0") == mg.device("cuda")
    with pytest.raises(DeviceError, match="unknown device 'tpu'"):
        mg.device("tpu")
    with pytest.raises(DeviceError, match="bad device index"):
        mg.device("cuda:x")


def test_move_round_trip(device):
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    y = x.to(device)
    assert y.device == mg.device(device) and y.requires_grad
    (y * 2).sum().backward()
    assert x.grad.device == mg.device("cpu") and x.grad.tolist() == [[2.0, 2.0]]
    assert y.cpu().tolist() == [[1.0, 2.0]]


def test_mixed_devices_name_op_devices_and_fix():
    a = mg.ones(2)
    b = mg.ones(2, device="fakegpu")
    with pytest.raises(DeviceError, match=r"mul: .*cpu and fakegpu.*\.to\("):
        a * b


@pytest.mark.skipif(mg.cuda.is_available(), reason="this machine has a working GPU")
def test_cuda_request_without_gpu_says_why():
    assert mg.cuda.device_count() == 0
    why = mg.cuda.why_unavailable()
    assert "CuPy" in why or "driver" in why or "GPU" in why
    with pytest.raises(DeviceError, match="CUDA was requested"):
        mg.zeros(2, device="cuda")
    with pytest.raises(DeviceError, match="pip install|driver|GPU"):
        mg.ones(2).cuda()


def test_numpy_only_on_cpu():
    x = mg.ones(2, device="fakegpu")
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        x.numpy()
    assert isinstance(x.cpu().numpy(), np.ndarray)


def test_one_gpu_needs_no_device_switch(monkeypatch):
    """With one visible GPU, that GPU is always current: ops enter no CuPy device context."""
    from manygrad import backend

    class _NoDevice:
        class cuda:  # noqa: N801
            @staticmethod
            def Device(i):  # noqa: N802
                raise AssertionError("entered a CuPy device context")

    monkeypatch.setattr(backend, "_cupy", _NoDevice)
    monkeypatch.setattr(backend, "_ONE_GPU", [True])
    assert backend.device_scope(backend.Device("cuda", 0)) is backend._NULL_SCOPE
    monkeypatch.setattr(backend, "_ONE_GPU", [False])
    with pytest.raises(AssertionError, match="device context"):
        backend.device_scope(backend.Device("cuda", 1))
