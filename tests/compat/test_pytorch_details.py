"""Details of PyTorch's API that its own documentation examples use, compared with PyTorch:
conjugating transposes, NumPy-style keyword names, weighted covariance, sublist einsum,
broadcasting masked_scatter, rounding to negative decimals and more."""

import warnings

import numpy as np
import pytest
import torch

import manygrad as mg

C = np.array([[1 + 2j, 3j], [2 - 1j, 1]])


def _np(t):
    t = t.resolve_conj() if isinstance(t, torch.Tensor) else t
    return t.detach().cpu().numpy()


@pytest.mark.parametrize(
    "name,fn",
    [("mH", lambda t: t.mH), ("H", lambda t: t.H), ("adjoint", lambda t: t.adjoint()),
     ("product", lambda t: t @ t.mH)],
)  # fmt: skip
def test_conjugate_transposes(name, fn, device):
    t, m = torch.tensor(C, requires_grad=True), mg.tensor(C, device=device, requires_grad=True)
    np.testing.assert_allclose(_np(fn(m)), _np(fn(t)))
    fn(t).abs().sum().backward()
    fn(m).abs().sum().backward()
    np.testing.assert_allclose(_np(m.grad), _np(t.grad), rtol=1e-12)


def test_vdot_conjugates_and_isreal(device):
    a, b = [1 + 2j, 3 - 1j], [2 + 1j, 4 + 0j]
    assert mg.vdot(mg.tensor(a, device=device), mg.tensor(b, device=device)).item() == (
        torch.vdot(torch.tensor(a), torch.tensor(b)).item()
    )
    assert mg.isreal(mg.tensor([1, 1 + 1j, 2 + 0j], device=device)).tolist() == [True, False, True]
    t, m = torch.tensor(a, requires_grad=True), mg.tensor(a, device=device, requires_grad=True)
    torch.vdot(t, torch.tensor(b)).abs().backward()
    mg.vdot(m, mg.tensor(b, device=device)).abs().backward()
    np.testing.assert_allclose(_np(m.grad), _np(t.grad), rtol=1e-12)


def test_numpy_keyword_names(device):
    x = np.random.default_rng(0).standard_normal((3, 4))
    t, m = torch.tensor(x), mg.tensor(x, device=device)
    cases = [
        lambda lib, v: v.sum(axis=0),
        lambda lib, v: lib.sum(v, axis=1, keepdims=True),
        lambda lib, v: v.mean(axis=1, keepdims=True),
        lambda lib, v: v.max(axis=0).values,
        lambda lib, v: lib.cat([v, v], axis=1),
        lambda lib, v: lib.stack([v, v], axis=2),
        lambda lib, v: v.argmax(axis=1),
        lambda lib, v: lib.softmax(v, axis=1),
        lambda lib, v: v.unsqueeze(axis=0),
        lambda lib, v: lib.std(v, axis=0, keepdims=True),
        lambda lib, v: v.cumsum(axis=1),
        lambda lib, v: v.sort(axis=1).values,
    ]
    for case in cases:
        np.testing.assert_allclose(_np(case(mg, m)), _np(case(torch, t)), rtol=1e-12)
    with pytest.raises(TypeError, match="both dim and its alias axis"):
        m.sum(dim=0, axis=0)


def test_allclose_equal_nan_and_round_decimals(device):
    nan = float("nan")
    a = mg.tensor([1.0, nan], device=device)
    assert mg.allclose(a, a.clone(), equal_nan=True) and not mg.allclose(a, a.clone())
    assert a.allclose(a.clone(), equal_nan=True)
    v = [1200.1234567, -1250.0, 0.5, 1.5, 2.675]
    for d in (-3, -1, 0, 2):
        got = mg.round(mg.tensor(v, device=device), decimals=d)
        np.testing.assert_array_equal(_np(got), _np(torch.round(torch.tensor(v), decimals=d)))


def test_heaviside_gives_plus_zero(device):
    got = mg.heaviside(mg.tensor([-1.5, 0, 2.0], device=device), mg.tensor([0.5], device=device))
    want = torch.heaviside(torch.tensor([-1.5, 0, 2.0]), torch.tensor([0.5]))
    np.testing.assert_array_equal(np.signbit(_np(got)), np.signbit(_np(want)))
    np.testing.assert_array_equal(_np(got), _np(want))


@pytest.mark.parametrize(
    "kw",
    [{"fweights": True}, {"aweights": True}, {"fweights": True, "aweights": True},
     {"fweights": True, "aweights": True, "correction": 0}, {"aweights": True, "correction": 2}],
)  # fmt: skip
def test_cov_weights(kw, device):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6))
    fw, aw = np.array([1, 2, 1, 3, 1, 1]), rng.random(6)

    def args(lib, **dev):
        out = {"correction": kw["correction"]} if "correction" in kw else {}
        if "fweights" in kw:
            out["fweights"] = lib.tensor(fw, **dev)
        if "aweights" in kw:
            out["aweights"] = lib.tensor(aw, **dev)
        return out

    t, m = torch.tensor(x, requires_grad=True), mg.tensor(x, device=device, requires_grad=True)
    tc, mc = torch.cov(t, **args(torch)), mg.cov(m, **args(mg, device=device))
    np.testing.assert_allclose(_np(mc), _np(tc), rtol=1e-10)
    tc.sum().backward()
    mc.sum().backward()
    np.testing.assert_allclose(_np(m.grad), _np(t.grad), rtol=1e-10, atol=1e-12)
    with pytest.raises(TypeError, match="fweights must be integral"):
        mg.cov(m, fweights=mg.tensor(aw, device=device))


def test_einsum_sublist_form(device):
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    ta, tb, ma, mb = (
        torch.tensor(a),
        torch.tensor(b),
        mg.tensor(a, device=device),
        mg.tensor(b, device=device),
    )
    np.testing.assert_allclose(
        _np(mg.einsum(ma, [0, 1], mb, [1, 2], [0, 2])),
        _np(torch.einsum(ta, [0, 1], tb, [1, 2], [0, 2])),
    )
    np.testing.assert_allclose(_np(mg.einsum(ma, [0, 1], mb, [1, 2])), a @ b)
    c = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_allclose(
        _np(
            mg.einsum(
                mg.tensor(c, device=device),
                [..., 1],
                mg.ones(4, dtype=mg.float64, device=device),
                [1],
                [...],
            )
        ),  # fmt: skip
        c.sum(-1),
    )
    with pytest.raises(ValueError, match="sublist"):
        mg.einsum(ma, [0, 99], mb, [99, 2])


def test_masked_scatter_broadcasts_input_and_mask(device):
    mask = np.array([[0, 0, 0, 1, 1], [1, 1, 0, 1, 1]], bool)
    src = np.arange(10.0).reshape(2, 5)
    w = np.arange(10.0).reshape(2, 5)
    res = []
    for lib, kw in ((torch, {}), (mg, {"device": device})):
        x = lib.zeros(5, dtype=lib.float64, requires_grad=True, **kw)
        s = lib.tensor(src, requires_grad=True, **kw)
        y = x.masked_scatter(lib.tensor(mask, **kw), s)
        (y * lib.tensor(w, **kw)).sum().backward()
        res.append([_np(y), _np(x.grad), _np(s.grad)])
    for have, want in zip(res[1], res[0]):
        np.testing.assert_array_equal(have, want)


def test_xlog1py_nan_and_numbers(device):
    nan = float("nan")
    y = [1.0, nan, -2.0]
    got = mg.special.xlog1py(mg.zeros(3, device=device), mg.tensor(y, device=device))
    want = torch.special.xlog1py(torch.zeros(3), torch.tensor(y))
    np.testing.assert_array_equal(_np(got), _np(want))
    assert mg.special.xlog1py(mg.tensor([2.0], device=device), 4).item() == pytest.approx(
        torch.special.xlog1py(torch.tensor([2.0]), 4).item()
    )
    assert mg.special.xlog1py(2, mg.tensor([4.0], device=device)).item() == pytest.approx(
        torch.special.xlog1py(2, torch.tensor([4.0])).item()
    )


def test_histogramdd_edges_are_a_tuple():
    h = mg.histogramdd(mg.rand(5, 2), bins=3)
    t = torch.histogramdd(torch.rand(5, 2), bins=3)
    assert type(h.bin_edges) is type(t.bin_edges) is tuple


def test_typename_is_storage_and_asarray():
    assert mg.typename(mg.nn.Parameter) == "manygrad.nn.parameter.Parameter"
    assert mg.typename(3) == torch.typename(3) == "int"
    assert mg.typename(mg.ones(1)) == torch.typename(torch.ones(1))
    assert mg.is_storage(mg.ones(2).untyped_storage()) and not mg.is_storage(mg.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about its changed default
        for lib in (torch, mg):
            a = lib.tensor([1.0, 2.0], requires_grad=True)
            b = a + 2
            assert lib.asarray(b) is b and lib.asarray(b, requires_grad=True) is b
            d = lib.asarray(b, requires_grad=False)
            assert not d.requires_grad and d.grad_fn is None
            f = lib.asarray(a, dtype=lib.float64)
            assert f.requires_grad and f.grad_fn is not None
            assert lib.asarray([1.0, 2.0], requires_grad=True).requires_grad


def test_post_accumulate_grad_hook_can_step_in_place():
    got = []
    for lib in (torch, mg):
        v = lib.zeros(3, requires_grad=True)
        v.register_post_accumulate_grad_hook(lambda p: p.add_(p.grad, alpha=-0.01))
        v.backward(lib.tensor([1.0, 2.0, 3.0]))
        got.append(_np(v))
    np.testing.assert_allclose(got[1], got[0])


def test_set_grad_enabled_as_a_call_and_grad_fn_names():
    got = []
    for lib in (torch, mg):
        x = lib.ones(2, requires_grad=True)
        lib.set_grad_enabled(False)
        a = (x * 2).requires_grad
        lib.set_grad_enabled(True)
        b = (x * 2).requires_grad
        with lib.set_grad_enabled(False):
            c = (x * 2).requires_grad

        @lib.set_grad_enabled(False)
        def f(x=x):
            return (x * 2).requires_grad

        d, e = (x * 2).requires_grad, f()
        with lib.no_grad():
            with lib.enable_grad():
                g = (x * 2).requires_grad
        got.append((a, b, c, d, e, g, (x + 1).grad_fn.name(), (x * 2).grad_fn.name(),
                    x.exp().grad_fn.name()))  # fmt: skip
    assert got[1] == got[0]
    assert mg.is_grad_enabled()


def test_complex_python_data_infers_complex():
    for v in ([1.2, 3j], [[1, 2j], [3.0, 4]], [True, 1j], [1, 2.5]):
        assert str(mg.tensor(v).dtype).split(".")[-1] == str(torch.tensor(v).dtype).split(".")[-1]
