"""DLPack as PyTorch 2.13 has it: ``torch.utils.dlpack.to_dlpack``/``from_dlpack``,
``torch.from_dlpack`` of capsules and of objects with ``__dlpack__`` (NumPy, PyTorch,
manygrad), and ``Tensor.__dlpack__``/``__dlpack_device__``; memory is shared both ways."""

import gc
import textwrap

import numpy as np
import pytest

import manygrad as mg
from manygrad import backend, compat
from manygrad.utils import dlpack as mgdl

torch = pytest.importorskip("torch")
tdl = torch.utils.dlpack

DTYPES = ["float32", "float64", "float16", "bfloat16", "complex64", "complex128", "int8",
          "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
          "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
          "float8_e8m0fnu"]  # fmt: skip


def _torch_of(name):
    src = torch.tensor([0.5, 2.0, -1.0, 4.0]).reshape(2, 2)
    if name == "bool":
        return src > 0
    if name.startswith("uint") or name.startswith("int"):
        return src.abs().to(getattr(torch, name))
    if name == "float8_e8m0fnu":
        src = src.abs()
    return src.to(getattr(torch, name))


def _bytes(x) -> bytes:
    if isinstance(x, torch.Tensor):
        x = x.contiguous()
        return (x if x.dtype == torch.bool else x.view(torch.uint8)).numpy().tobytes()
    return x.detach().cpu().numpy().tobytes()


def _host(t):
    return backend.to_numpy(t._data)


def test_capsule_round_trip_shares_memory(device):
    t = mg.arange(6.0, device=device).reshape(2, 3)
    c = mgdl.to_dlpack(t)
    assert type(c).__name__ == type(tdl.to_dlpack(torch.ones(1))).__name__ == "PyCapsule"
    u = mg.from_dlpack(c)
    assert u.device == t.device and u.shape == (2, 3) and u.dtype == mg.float32
    u[0, 0] = 7.0
    t[1, 2] = -1.0
    assert t[0, 0].item() == 7.0 and u[1, 2].item() == -1.0
    for lib in (torch, mg):  # a capsule is consumed once
        cap = lib.utils.dlpack.to_dlpack(lib.ones(2))
        lib.from_dlpack(cap)
        with pytest.raises(RuntimeError, match="consumed only once"):
            lib.from_dlpack(cap)


def test_fake_gpu_round_trip_has_no_copies_or_syncs():
    backend.fake_stats.reset()
    t = mg.zeros(4, device="fakegpu:1")
    u = mgdl.from_dlpack(mgdl.to_dlpack(t))
    v = mg.from_dlpack(t)
    assert u.device == v.device == mg.device("fakegpu:1")
    u.add_(1.0)
    v.add_(1.0)
    s = backend.fake_stats
    assert (s.h2d, s.d2h, s.syncs) == (0, 0, 0)
    assert t.tolist() == [2.0] * 4


def test_dlpack_device(device):
    t = mg.ones(2, device=device)
    kind, idx = t.__dlpack_device__()
    want = {"cpu": (1, 0), "fakegpu": (12, 0), "fakegpu:1": (12, 1), "cuda": (2, 0)}[device]
    assert (int(kind), idx) == want
    assert kind == getattr(mgdl.DLDeviceType, kind.name)
    tk = torch.ones(2).__dlpack_device__()
    assert int(tk[0]) == int(mg.ones(2).__dlpack_device__()[0]) and tk[0].name == "kDLCPU"
    if device.startswith("fakegpu"):  # never passes for host memory elsewhere
        with pytest.raises((BufferError, RuntimeError, ValueError)):
            np.from_dlpack(t)


def test_numpy_and_torch_objects_share_memory():
    a = np.arange(4.0)
    m = mg.from_dlpack(a)
    m[0] = 10.0
    a[1] = 11.0
    assert a[0] == 10.0 and m[1].item() == 11.0
    x = torch.arange(4.0)
    m = mg.from_dlpack(x)
    m[0] = 20.0
    x[1] = 21.0
    assert x[0].item() == 20.0 and m[1].item() == 21.0
    m = mg.from_dlpack(tdl.to_dlpack(x))  # a torch capsule
    m[2] = 22.0
    assert x[2].item() == 22.0
    t = mg.arange(4.0)
    for other in (np.from_dlpack(t), torch.from_dlpack(t), tdl.from_dlpack(mgdl.to_dlpack(t))):
        other[3] = 30.0
        assert t[3].item() == 30.0
        t[3] = 0.0
        assert float(other[3]) == 0.0


@pytest.mark.parametrize("name", DTYPES)
def test_dtypes_both_ways_match_torch(name):
    t = _torch_of(name)
    m = mg.from_dlpack(t)
    assert m.dtype == getattr(mg, name) and _bytes(m) == _bytes(t)
    back = torch.from_dlpack(m)
    assert back.dtype == t.dtype and _bytes(back) == _bytes(t)
    back = tdl.from_dlpack(mgdl.to_dlpack(m))
    assert back.dtype == t.dtype and _bytes(back) == _bytes(t)
    versioned = m.__dlpack__(max_version=(1, 0))
    assert tdl.from_dlpack(versioned).dtype == t.dtype


def test_views_shapes_and_strides_match_torch():
    x = torch.arange(12.0).reshape(3, 4)
    for view in (x.t(), x[1:, ::2], x[2, 1]):
        m = mg.from_dlpack(view)
        assert tuple(m.shape) == tuple(view.shape) and m.stride() == view.stride()
        assert m.tolist() == view.tolist()
    assert mg.from_dlpack(torch.empty(0, 3)).shape == (0, 3)
    m = mg.from_dlpack(x.t())
    m[0, 1] = -5.0
    assert x[1, 0].item() == -5.0
    mt = mg.arange(12.0).reshape(3, 4)
    for view in (mt.t(), mt[1:, ::2], mt[2, 1]):
        assert torch.from_dlpack(view).tolist() == view.tolist()


def test_requires_grad_as_torch():
    for lib in (torch, mg):
        w = lib.ones(2, requires_grad=True)
        with pytest.raises(BufferError):
            w.__dlpack__()
        with pytest.raises(BufferError):
            lib.from_dlpack(w)
        assert lib.utils.dlpack.from_dlpack(lib.utils.dlpack.to_dlpack(w)).shape == (2,)
    assert mg.from_dlpack(mg.ones(2, requires_grad=True).detach()).requires_grad is False


def test_from_dlpack_device_and_copy(device):
    a = np.arange(3.0)
    c = mg.from_dlpack(a, copy=True)
    c[0] = 9.0
    assert a[0] == 0.0
    tc = torch.from_dlpack(a, copy=True)
    tc[0] = 9.0
    assert a[0] == 0.0
    moved = mg.from_dlpack(a, device=device)
    assert moved.device == mg.device(device) and moved.tolist() == [0.0, 1.0, 2.0]
    if device != "cpu":
        with pytest.raises(BufferError, match="copy=False"):
            mg.from_dlpack(a, device=device, copy=False)


def test_memory_outlives_the_producer():
    m = mg.from_dlpack(np.arange(5.0) * 2)
    gc.collect()
    assert m.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    m = mgdl.from_dlpack(tdl.to_dlpack(torch.arange(3.0)))
    gc.collect()
    assert m.tolist() == [0.0, 1.0, 2.0]


def test_bad_arguments_name_the_fix():
    with pytest.raises(TypeError):
        tdl.to_dlpack(np.arange(3))
    with pytest.raises(TypeError, match="expected a manygrad Tensor, got ndarray"):
        mgdl.to_dlpack(np.arange(3))
    with pytest.raises(TypeError, match="expected an object with __dlpack__"):
        mg.from_dlpack([1, 2])


def test_names_and_import_paths():
    assert mg.from_dlpack is mgdl.from_dlpack and mg.to_dlpack is mgdl.to_dlpack
    assert torch.from_dlpack is tdl.from_dlpack
    assert [int(v) for v in mgdl.DLDeviceType] == [int(v) for v in tdl.DLDeviceType]
    assert [v.name for v in mgdl.DLDeviceType] == [v.name for v in tdl.DLDeviceType]


def test_torch_script_under_compat(tmp_path):
    p = tmp_path / "script.py"
    p.write_text(
        textwrap.dedent("""
        import numpy as np
        import torch
        import torch.utils.dlpack
        from torch.utils.dlpack import from_dlpack, to_dlpack
        t = torch.arange(4.0)
        u = torch.from_dlpack(torch.utils.dlpack.to_dlpack(t))
        u[0] = 5.0
        a = np.zeros(2)
        torch.from_dlpack(a)[1] = 3.0
        result = (float(t[0]), float(a[1]), from_dlpack(to_dlpack(t)).shape,
                  type(t).__module__)
    """)
    )
    got = compat.run_script(str(p), [])["result"]
    assert got == (5.0, 3.0, (4,), "manygrad.tensor")
