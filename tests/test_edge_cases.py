"""Edge cases of the CPU fast paths and the lower-level names, against PyTorch (CPU build):
inputs or weights changed in place between forward and backward (GroupNorm, LSTM, GRU),
empty batches and zero-length sequences, map_ on tensors that require grad, sym_* types.
"""

import warnings

import numpy as np
import pytest
import torch

import manygrad as mg


def _grads_or_error(run):
    """The gradients ``run`` returns, or None when it raised PyTorch's in-place error."""
    try:
        return run()
    except RuntimeError as e:
        assert "inplace" in str(e) or "in-place" in str(e), e
        return None


# ---------------------------------------------------------------- GroupNorm


def _gn_case():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, 4, 5)).astype(np.float32),
            rng.standard_normal(4).astype(np.float32))  # fmt: skip


def _gn_reference():
    x, w = _gn_case()
    a, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = torch.nn.functional.group_norm(a * 1, 2, wt)
    (y * y.detach()).sum().backward()
    return a.grad.numpy(), wt.grad.numpy()


def test_group_norm_input_changed_in_place_after_forward():
    # the backward re-reads the saved input (self.inputs[0]), which the version check does
    # not see: PyTorch raises; manygrad returned silently wrong gradients
    x, w = _gn_case()

    def run():
        a, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        h = a * 1
        y = mg.nn.functional.group_norm(h, 2, wt)
        h.add_(5.0)
        (y * y.detach()).sum().backward()
        return a.grad.numpy(), wt.grad.numpy()

    got = _grads_or_error(run)
    if got is not None:
        for g, r in zip(got, _gn_reference()):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


def test_group_norm_weight_changed_in_place_after_forward():
    # self.w = weight.reshape(-1).astype(cdt, copy=False) is a view of the weight
    x, w = _gn_case()

    def run():
        a, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        y = mg.nn.functional.group_norm(a, 2, wt)
        with mg.no_grad():
            wt.mul_(3.0)
        (y * y.detach()).sum().backward()
        return (a.grad.numpy(),)

    got = _grads_or_error(run)
    if got is not None:
        np.testing.assert_allclose(got[0], _gn_reference()[0], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- LSTM / GRU


def _pair(mode, **kw):
    torch.manual_seed(0)
    t = getattr(torch.nn, mode)(3, 4, **kw).double()
    m = getattr(mg.nn, mode)(3, 4, **kw).double()
    for n, p in t.named_parameters():
        with mg.no_grad():
            getattr(m, n).copy_(mg.tensor(p.detach().numpy()))
    return t, m


X = np.random.default_rng(0).standard_normal((6, 2, 3))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_input_changed_in_place_after_forward(mode):
    # LSTMSeq/GRUSeq keep x in self.inputs (a tuple) and read it for the input weights'
    # gradient; the engine's version check does not see it
    t, m = _pair(mode)
    tx = torch.tensor(X, requires_grad=True)
    to, _ = t(tx * 1)
    to.pow(2).sum().backward()
    want = t.weight_ih_l0.grad.numpy()

    def run():
        xx = mg.tensor(X, requires_grad=True) * 1
        o, _ = m(xx)
        xx.mul_(2)
        o.pow(2).sum().backward()
        return m.weight_ih_l0.grad.numpy()

    got = _grads_or_error(run)
    if got is not None:
        np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_weight_changed_in_place_after_forward(mode):
    t, m = _pair(mode)
    tx = torch.tensor(X, requires_grad=True)
    to, _ = t(tx)
    to.pow(2).sum().backward()
    want = tx.grad.numpy()

    def run():
        x = mg.tensor(X, requires_grad=True)
        o, _ = m(x)
        with mg.no_grad():
            m.weight_hh_l0.mul_(2)
        o.pow(2).sum().backward()
        return x.grad.numpy()

    got = _grads_or_error(run)
    if got is not None:
        np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_zero_batch(mode):
    # PyTorch: out (5, 0, 4), h_n (1, 0, 4), x.grad (5, 0, 3); manygrad's backward raised
    # "cannot reshape array of size 0 into shape (0)" (_rnn_seq._input_grads: reshape(-1, 0))
    _, m = _pair(mode)
    x = mg.zeros(5, 0, 3, dtype=mg.float64, requires_grad=True)
    o, h = m(x)
    hn = h[0] if mode == "LSTM" else h
    (o.sum() + hn.sum()).backward()
    assert tuple(o.shape) == (5, 0, 4) and tuple(hn.shape) == (1, 0, 4)
    assert tuple(x.grad.shape) == (5, 0, 3)
    assert float(m.weight_hh_l0.grad.abs().sum()) == 0.0


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_rnn_zero_steps_is_refused(mode):
    # PyTorch: "Expected sequence length to be larger than 0 in RNN"; manygrad returned
    # h_n/c_n from np.empty (uninitialised memory)
    _, m = _pair(mode)
    with pytest.raises((RuntimeError, ValueError)):
        m(mg.zeros(0, 2, 3, dtype=mg.float64))


# ---------------------------------------------------------------- conv1d NCL rows


@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_empty_batch_backward(bias):
    # _conv1d_rows.backward: sum() over no blocks is the int 0 -> "'int' object has no
    # attribute 'reshape'"; PyTorch gives zero gradients
    x = mg.zeros(0, 3, 10, requires_grad=True)
    w = mg.randn(4, 3, 3, requires_grad=True)
    b = mg.randn(4, requires_grad=True) if bias else None
    y = mg.conv1d(x, w, b)
    assert tuple(y.shape) == (0, 4, 8)
    y.sum().backward()
    assert tuple(x.grad.shape) == (0, 3, 10)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3), np.float32))
    if bias:
        np.testing.assert_array_equal(b.grad.numpy(), np.zeros(4, np.float32))


# ---------------------------------------------------------------- Tensor.map_


def test_map_refuses_tensors_that_require_grad():
    # PyTorch: "Can't call map_() on Variable that requires grad"; manygrad changed the
    # values and its backward treated map_ as the identity (x.grad [2, 2, 2], silently wrong)
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    with pytest.raises(RuntimeError):
        h.map_(mg.ones(3), lambda a, b: a * a)


# ---------------------------------------------------------------- low-level names


def test_native_group_norm_empty_batch():
    # PyTorch: output (0, 4, 3), mean and rstd (0, 2); manygrad: reshape(0, 2, -1) error
    out, mean, rstd = mg.native_group_norm(mg.zeros(0, 4, 3), None, None, 0, 4, 3, 2, 1e-5)
    assert tuple(out.shape) == (0, 4, 3)
    assert tuple(mean.shape) == tuple(rstd.shape) == (0, 2)


def test_sym_max_min_promote_as_pytorch():
    # torch.sym_max(3, 2.5) is 3.0 and torch.sym_min(2, 3.5) is 2.0 (a float when either is)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for f, a, b in (("sym_max", 3, 2.5), ("sym_min", 2, 3.5)):
            want = getattr(torch, f)(a, b)
            got = getattr(mg, f)(a, b)
            assert type(got) is type(want) and got == want, (f, got, want)


# ---------------------------------------------------------------- var/std without dof, copysign


@pytest.mark.parametrize("fn", ["var", "std"])
def test_var_std_without_degrees_of_freedom(fn):
    for data, kw in (([0.7], {}), (0.7, {}), ([0.7, 0.7], {"correction": 2})):
        m = mg.tensor(data, requires_grad=True)
        t = torch.tensor(data, requires_grad=True)
        with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
            ym = getattr(mg, fn)(m, **kw)
        with pytest.warns(UserWarning):
            yt = getattr(torch, fn)(t, **kw)
        ym.backward()
        yt.backward()
        np.testing.assert_array_equal(ym.detach().numpy(), yt.detach().numpy())
        np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())


def test_copysign_gradients():
    a = [0.7, -0.3, 0.0, -0.0]
    b = [-1.0, 2.0, -3.0, 4.0]
    ma, mb = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    (mg.copysign(ma, mb) * mg.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    (torch.copysign(ta, tb) * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(ma.grad.numpy(), ta.grad.numpy())
    np.testing.assert_array_equal(mb.grad.numpy(), tb.grad.numpy())  # zeros, not None
