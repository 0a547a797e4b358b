"""``Tensor.set_``, ``as_strided_``, ``map2_``, ``unsafe_split_with_sizes`` and
``module_load`` against PyTorch: memory shared after ``set_``, windows, errors."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


def _both(fn):
    return fn(torch), fn(mg)


def test_set_shares_memory_both_ways(device):
    def run(lib):
        dev = "cpu" if lib is torch else device
        y = lib.arange(12.0, device=dev)
        x = lib.zeros(3, device=dev)
        x.set_(y)
        x[0] = 100.0
        y[1] = -5.0
        return y.cpu().numpy(), x.cpu().numpy(), tuple(x.shape)

    (ty, tx, ts), (my, mx, ms) = _both(run)
    np.testing.assert_array_equal(my, ty)
    np.testing.assert_array_equal(mx, tx)
    assert ms == ts


@pytest.mark.parametrize("offset, size, stride", [(2, (2, 3), (3, 1)), (1, (3, 2), (1, 4)),
                                                  (0, (4,), None), (5, (2, 2), (0, 1))])  # fmt: skip
def test_set_window(device, offset, size, stride):
    def run(lib):
        dev = "cpu" if lib is torch else device
        y = lib.arange(12.0, device=dev)
        x = lib.zeros(1, device=dev)
        x.set_(y, offset, size, stride) if stride else x.set_(y, offset, size)
        got = x.cpu().numpy().copy()
        x.mul_(2) if stride != (0, 1) else None  # NOTE: writes through overlapping views
        return got, y.cpu().numpy()

    (tw, ty), (mw, my) = _both(run)
    np.testing.assert_array_equal(mw, tw)
    np.testing.assert_array_equal(my, ty)


def test_set_empty_storage_and_errors():
    for lib in (torch, mg):
        x = lib.ones(3)
        assert tuple(x.set_().shape) == (0,)
        x = lib.zeros(2)
        assert tuple(x.set_(lib.arange(5.0).untyped_storage()).shape) == (5,)
        p = lib.zeros(3, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            p.set_(lib.ones(3))
        with lib.no_grad():
            p.set_(lib.ones(4))
        assert p.requires_grad and tuple(p.shape) == (4,)
        with pytest.raises(RuntimeError):
            lib.zeros(2).set_(lib.zeros(2, dtype=lib.float64))


def test_as_strided_map2_and_aliases():
    def run(lib):
        z = lib.arange(6.0)
        z.as_strided_((2, 2), (1, 2), 1)
        a = lib.arange(4.0).reshape(2, 2)
        a.map2_(lib.full((2,), 2.0), lib.full((2, 1), 3.0), lambda u, v, w: u + v * w)
        parts = lib.arange(10.0).unsafe_split_with_sizes([3, 7])
        m = lib.ones(2).module_load(lib.zeros(2))
        return z.numpy(), a.numpy(), [p.numpy() for p in parts], m.numpy()

    t, m = _both(run)
    np.testing.assert_array_equal(m[0], t[0])
    np.testing.assert_array_equal(m[1], t[1])
    for a, b in zip(m[2], t[2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m[3], t[3])
    with pytest.raises(TypeError, match="dtype"):
        mg.ones(2).map2_(mg.ones(2, dtype=mg.int64), mg.ones(2), lambda a, b, c: a)
