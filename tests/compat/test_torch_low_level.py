"""PyTorch's lower-level names (compat/torch_low_level.py, nn/grad.py, layouts) against
PyTorch itself."""

import numpy as np
import pytest
import torch

import manygrad as mg
from devicematrix import DEVICES

R = np.random.default_rng(0)


def _t(a, grad=False, device="cpu"):
    return mg.tensor(a, requires_grad=grad, device=device), torch.tensor(a, requires_grad=grad)


def _close(m, t, tol=1e-10):
    np.testing.assert_allclose(np.asarray(m.detach().cpu().numpy()), t.detach().numpy(), rtol=tol,
                               atol=tol)  # fmt: skip


@pytest.mark.parametrize("device", DEVICES)
def test_native_layer_norm(device):
    x = R.standard_normal((2, 3, 4, 5))
    w, b = R.standard_normal((4, 5)), R.standard_normal((4, 5))
    (mx, tx), (mw, tw), (mb, tb) = _t(x, True, device), _t(w, True, device), _t(b, True, device)
    got = mg.native_layer_norm(mx, [4, 5], mw, mb, 1e-5)
    want = torch.native_layer_norm(tx, [4, 5], tw, tb, 1e-5)
    for a, b_ in zip(got, want):
        assert tuple(a.shape) == tuple(b_.shape)
        _close(a, b_)
    got[0].sum().backward()
    want[0].sum().backward()
    for a, b_ in ((mx, tx), (mw, tw), (mb, tb)):
        _close(a.grad, b_.grad, 1e-8)


@pytest.mark.parametrize("training", [True, False])
def test_native_batch_norm(training):
    x = R.standard_normal((6, 3, 5))
    rm, rv = R.standard_normal(3), R.random(3) + 0.5
    (mx, tx), (mrm, trm), (mrv, trv) = _t(x), _t(rm), _t(rv)
    w = R.standard_normal(3)
    got = mg.native_batch_norm(mx, mg.tensor(w), None, mrm, mrv, training, 0.1, 1e-5)
    want = torch.native_batch_norm(tx, torch.tensor(w), None, trm, trv, training, 0.1, 1e-5)
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, b)
    _close(mrm, trm)
    _close(mrv, trv)


def test_native_group_norm():
    x = R.standard_normal((4, 6, 5))
    (mx, tx), (mw, tw) = _t(x), _t(R.standard_normal(6))
    got = mg.native_group_norm(mx, mw, None, 4, 6, 5, 3, 1e-5)
    want = torch.native_group_norm(tx, tw, None, 4, 6, 5, 3, 1e-5)
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, b)


def test_native_dropout():
    x = mg.tensor(R.standard_normal((50, 40)))
    out, keep = mg.native_dropout(x, 0.3, True)
    assert keep.dtype is mg.bool and 0.6 < float(keep.float().mean()) < 0.8
    np.testing.assert_allclose(out.numpy(), (x * keep).numpy() / 0.7, rtol=1e-12)
    out, keep = mg.native_dropout(x, 0.3, False)
    assert bool(keep.all()) and np.array_equal(out.numpy(), x.numpy())
    out, keep = mg.native_dropout(x, 1.0, True)
    assert not bool(keep.any()) and not bool(out.any())


@pytest.mark.parametrize("cell, gates", [("lstm_cell", 4), ("gru_cell", 3),
                                         ("rnn_tanh_cell", 1), ("rnn_relu_cell", 1)])  # fmt: skip
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("device", DEVICES)
def test_recurrent_cells(cell, gates, bias, device):
    n, i, h = 3, 5, 4
    arrays = [R.standard_normal((n, i)), R.standard_normal((n, h)), R.standard_normal((n, h)),
              R.standard_normal((gates * h, i)), R.standard_normal((gates * h, h)),
              R.standard_normal(gates * h), R.standard_normal(gates * h)]  # fmt: skip
    pairs = [_t(a, True, device) for a in arrays]
    m, t = [p[0] for p in pairs], [p[1] for p in pairs]

    def call(lib, v):
        hx = (v[1], v[2]) if cell == "lstm_cell" else v[1]
        b = (v[5], v[6]) if bias else (None, None)
        out = getattr(lib, cell)(v[0], hx, v[3], v[4], *b)
        return out if isinstance(out, tuple) else (out,)

    got, want = call(mg, m), call(torch, t)
    for a, b in zip(got, want):
        _close(a, b)
    sum(o.sum() * (k + 1) for k, o in enumerate(got)).backward()
    sum(o.sum() * (k + 1) for k, o in enumerate(want)).backward()
    for k, (a, b) in enumerate(zip(m, t)):
        if b.grad is None:
            assert a.grad is None, k
        else:
            _close(a.grad, b.grad, 1e-9)


def test_sym_helpers_and_switches():
    for name, args in [("sym_int", (3.7,)), ("sym_int", (-3.7,)), ("sym_float", (2,)),
                       ("sym_max", (2, 5)), ("sym_min", (2, 5)), ("sym_not", (True,)),
                       ("sym_ite", (False, 1, 2)), ("sym_sqrt", (9,)), ("sym_sum", ([1, 2, 3],))]:  # fmt: skip
        assert getattr(mg, name)(*args) == getattr(torch, name)(*args), name
    assert isinstance(mg.set_flush_denormal(False), bool)
    assert mg.init_num_threads() is None
    assert mg.get_device_module("cpu") is mg.cpu
    assert mg.get_device_module("cuda") is mg.cuda


def test_layouts():
    x = mg.zeros(2, 3)
    assert isinstance(x.layout, mg.layout) and x.layout is mg.strided
    assert x.layout == "strided" and repr(x.layout) == "manygrad.strided"
    assert x.to_sparse().layout == mg.sparse_coo
    for name in ("sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "jagged"):
        assert isinstance(getattr(mg, name), mg.layout)
        assert str.__str__(getattr(mg, name)) == repr(getattr(torch, name)).split(".")[1]


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("device", DEVICES)
def test_nn_grad_conv_input_and_weight(nd, device):
    x = R.standard_normal((2, 4) + (7,) * nd)
    w = R.standard_normal((6, 2) + (3,) * nd)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    ty = getattr(torch.nn.functional, f"conv{nd}d")(torch.tensor(x), torch.tensor(w), **kw)
    gy = R.standard_normal(tuple(ty.shape))
    (mw, tw), (mg_y, tg_y), (mx, tx) = (
        _t(w, True, device),
        _t(gy, True, device),
        _t(x, True, device),
    )
    a = getattr(mg.nn.grad, f"conv{nd}d_input")(x.shape, mw, mg_y, **kw)
    b = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, tw, tg_y, **kw)
    _close(a, b)
    c = getattr(mg.nn.grad, f"conv{nd}d_weight")(mx, w.shape, mg_y, **kw)
    d = getattr(torch.nn.grad, f"conv{nd}d_weight")(tx, w.shape, tg_y, **kw)
    _close(c, d)
    ((a * a).sum() + (c * c).sum()).backward()  # differentiable, as PyTorch's
    ((b * b).sum() + (d * d).sum()).backward()
    for m, t in ((mw, tw), (mg_y, tg_y), (mx, tx)):
        _close(m.grad, t.grad, 1e-8)


def test_tensor_storage_and_identity_methods():
    a, ta = mg.randn(3, 4), torch.zeros(3, 4)
    with pytest.warns(UserWarning, match="TypedStorage is deprecated"):
        st = a.storage()
    with pytest.warns(UserWarning):
        tst = ta.storage()
    assert st.size() == tst.size() == 12 and st.element_size() == tst.element_size() == 4
    assert st.data_ptr() == a.data_ptr()
    for m, t in ((a, ta), (a.view(3, 4), ta.view(3, 4)), (a[1:], ta[1:]), (a.t(), ta.t())):
        assert a.is_set_to(m) == ta.is_set_to(t)
    assert (a.sparse_dim(), a.dense_dim()) == (ta.sparse_dim(), ta.dense_dim()) == (0, 2)
    assert a.to_sparse_coo().layout == mg.sparse_coo
    assert a.output_nr == ta.output_nr == 0
    x = R.standard_normal((3, 4))
    mx, tx = mg.tensor(x), torch.tensor(x)
    mx.map_(mg.tensor([1.0, 2.0, 3.0, 4.0], dtype=mg.float64), lambda u, v: u * v + 1)
    tx.map_(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64), lambda u, v: u * v + 1)
    _close(mx, tx)


def test_as_subclass_is_an_alias_with_history():
    class Tagged(mg.Tensor):
        def tag(self):
            return "tagged"

    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * 2).as_subclass(Tagged)
    assert type(y) is Tagged and y.tag() == "tagged" and y.grad_fn is not None
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * x.detach().numpy())
    leaf = x.as_subclass(Tagged)
    with mg.no_grad():
        leaf.add_(1)  # shares memory with x
    np.testing.assert_allclose(x.detach().numpy(), [2.0, 3.0, 4.0])
    with pytest.raises(TypeError, match="subclass of Tensor"):
        x.as_subclass(int)


def test_autocast_state_functions_follow_torch():
    def trace(lib):
        seen = [lib.get_autocast_dtype("cpu"), lib.is_autocast_enabled("cpu")]
        try:
            lib.set_autocast_enabled("cpu", True)
            seen.append(lib.is_autocast_enabled("cpu"))
            lib.set_autocast_dtype("cpu", lib.float16)
            x = lib.ones(2, 2)
            seen += [lib.get_autocast_dtype("cpu"), (x @ x).dtype]
            lib.set_autocast_enabled("cpu", False)
            seen += [lib.is_autocast_enabled("cpu"), (x @ x).dtype]
            with lib.autocast("cpu"):  # a block naming no dtype takes the one set
                seen += [lib.get_autocast_dtype("cpu"), (x @ x).dtype]
            with lib.autocast("cpu", dtype=lib.bfloat16):
                seen.append(lib.get_autocast_dtype("cpu"))
            seen.append(lib.get_autocast_dtype("cpu"))  # restored on exit
            seen += [lib.autocast_increment_nesting(), lib.autocast_decrement_nesting()]
            with pytest.warns(DeprecationWarning):
                seen.append(lib.is_autocast_cpu_enabled())
        finally:
            lib.set_autocast_enabled("cpu", False)
            lib.set_autocast_dtype("cpu", lib.bfloat16)
        return [str(v).split(".")[-1] for v in seen]

    assert trace(mg) == trace(torch)
    assert not mg.is_autocast_enabled("cpu") and mg.get_autocast_dtype("cpu") is mg.bfloat16


def test_legacy_constructor_shares_a_default_dtype_array():
    for arr in (np.ones(3, np.float32), np.ones((3, 3), np.float32)[:, 1], np.ones(3)):
        m, t = mg.Tensor(arr), torch.Tensor(arr)
        arr[0] = 5
        np.testing.assert_array_equal(m.numpy(), t.numpy())
        assert str(m.dtype).split(".")[1] == str(t.dtype).split(".")[1]


@pytest.mark.parametrize("fn", ["zeros", "empty", "ones", "full", "rand", "randn"])
def test_creation_layouts_as_torch(fn):
    args = ((2, 3), 1.0) if fn == "full" else (2, 3)
    for lay_m, lay_t in ((mg.strided, torch.strided), (mg.sparse_coo, torch.sparse_coo)):
        try:
            want = getattr(torch, fn)(*args, layout=lay_t)
        except (RuntimeError, NotImplementedError):
            with pytest.raises(NotImplementedError, match="layout"):
                getattr(mg, fn)(*args, layout=lay_m)
            continue
        got = getattr(mg, fn)(*args, layout=lay_m)
        assert got.layout == lay_m and tuple(got.shape) == tuple(want.shape)
        if lay_m == mg.sparse_coo:
            assert got._nnz() == want._nnz() == 0
            np.testing.assert_array_equal(got.to_dense().numpy(), want.to_dense().numpy())


@pytest.mark.parametrize("fn", ["zeros_like", "ones_like", "empty_like", "rand_like"])
def test_like_layouts_as_torch(fn):
    x, tx = mg.randn(2, 3), torch.randn(2, 3)
    assert getattr(mg, fn)(x, layout=mg.strided).layout == mg.strided
    try:
        want = getattr(torch, fn)(tx, layout=torch.sparse_coo)
    except (RuntimeError, NotImplementedError):
        with pytest.raises(NotImplementedError, match="layout"):
            getattr(mg, fn)(x, layout=mg.sparse_coo)
        return
    got = getattr(mg, fn)(x, layout=mg.sparse_coo)
    assert got.layout == mg.sparse_coo and got._nnz() == want._nnz() == 0


@pytest.mark.parametrize("data, size", [([0, 1, 1, 0], 3), ([[0, 1], [1, 1]], 2), ([0, 0], 2)])
def test_nonzero_static(data, size):
    got = mg.nonzero_static(mg.tensor(data), size=size, fill_value=-1)
    want = torch.nonzero_static(torch.tensor(data), size=size, fill_value=-1)
    assert got.tolist() == want.tolist() and got.dtype == mg.int64


def test_legacy_constructor_of_a_tensor_is_an_alias_with_history():
    got = []
    for lib in (mg, torch):
        t = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        u = lib.Tensor(t)
        assert u is not t and u.requires_grad and u.grad_fn is not None
        (u * u).sum().backward()
        got.append(t.grad.numpy())
        x = lib.zeros(3)
        lib.Tensor(x).add_(1)  # shares memory
        assert x.tolist() == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(*got)


def test_autocast_blocks_count_in_the_nesting():
    for lib in (mg, torch):
        with lib.autocast("cpu"):
            assert lib.autocast_increment_nesting() == 2
            assert lib.autocast_decrement_nesting() == 1
        assert lib.autocast_increment_nesting() == 1
        assert lib.autocast_decrement_nesting() == 0
