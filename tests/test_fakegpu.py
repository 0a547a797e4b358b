"""The fake GPU behaves like CuPy where it matters, and training makes no host sync."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import backend


def test_refuses_implicit_numpy_conversion():
    a = backend.fake_xp.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        np.exp(np.ones(3)) + a  # a NumPy operand is refused, as CuPy does
    assert not hasattr(a, "__array_interface__")
    assert type(a.sum()) is backend.FakeArray and a.sum().ndim == 0


def test_counts_syncs_and_transfers():
    backend.fake_stats.reset()
    x = mg.tensor([1.0, 2.0], device="fakegpu")
    assert backend.fake_stats.h2d == 1
    s = x.sum()
    assert backend.fake_stats.syncs == 0
    s.item()
    float(s)
    assert backend.fake_stats.syncs == 2
    x.cpu()
    assert backend.fake_stats.d2h == 1


def test_counts_array_library_calls():
    from manygrad.fakegpu import fake_xp

    a = mg.ones(4, device="fakegpu")._data
    b = mg.ones(4, device="fakegpu")._data
    cases = [
        (lambda: a + b, 1, "add"),
        (lambda: fake_xp.exp(a), 1, "exp"),
        (lambda: a.sum(), 1, "sum"),
        (lambda: fake_xp.concatenate([a, b]), 1, "concatenate"),
        (lambda: a[fake_xp.arange(2)], 2, "getitem"),
        (lambda: a[1:3].reshape(2, 1), 0, None),  # views: no call into the library
    ]
    for fn, n, name in cases:
        backend.fake_stats.reset()
        backend.fake_stats.by_name = {}
        try:
            fn()
            assert backend.fake_stats.calls == n, (name, backend.fake_stats.calls)
            if name:
                assert any(k[0] == name and k[1].startswith("test_fakegpu.py")
                           for k in backend.fake_stats.by_name), backend.fake_stats.by_name  # fmt: skip
        finally:
            backend.fake_stats.by_name = None
    backend.fake_stats.reset()
    a += b
    assert backend.fake_stats.calls == 1


def test_mlp_forward_backward_makes_no_host_sync():
    d = "fakegpu"
    w1 = mg.randn(32, 16, device=d).mul_(0.1).requires_grad_()
    b1 = mg.zeros(32, device=d, requires_grad=True)
    w2 = mg.randn(4, 32, device=d).mul_(0.1).requires_grad_()
    b2 = mg.zeros(4, device=d, requires_grad=True)
    x = mg.randn(8, 16, device=d)
    y = mg.randn(8, 4, device=d)
    backend.fake_stats.reset()
    for _ in range(3):
        h = mg.gelu(mg.linear(x, w1, b1))
        out = mg.linear(h, w2, b2)
        loss = ((out - y) ** 2).mean() + 1e-4 * (w1 * w1).sum()
        loss.backward()
        with mg.no_grad():
            for p in (w1, b1, w2, b2):
                p.sub_(p.grad * 0.1)
                p.grad = None
    assert backend.fake_stats.syncs == 0
    assert backend.fake_stats.h2d == 0 and backend.fake_stats.d2h == 0


def test_integer_index_is_a_zero_d_view():
    a = mg.backend.fake_xp.arange(6.0).reshape(2, 3)
    v = a[1, 2]
    assert v.shape == () and type(v) is mg.backend.FakeArray
    a[1, 2] = 40.0
    assert v.get() == 40.0  # a view, as CuPy's
    w = a[0][...]
    a[0, 0] = -1.0
    assert w.get()[0] == -1.0
    e = a[..., 1, 0]
    a[1, 0] = 7.0
    assert e.get() == 7.0
