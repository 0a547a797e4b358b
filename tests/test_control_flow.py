"""mg.cond and mg.while_loop (also in mg._higher_order_ops) against torch.cond and
torch.while_loop in eager mode: values, gradients through what ran, and the refusals."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)


def _np(t):
    return t.detach().cpu().numpy() if isinstance(t, mg.Tensor) else t.detach().numpy()


# pred as (value, dtype or None for a Python constant)
PREDS = [(True, "bool"), (False, "bool"), ([True], "bool"), (0.5, "float"), (0, "int"),
         (True, None), (0, None)]  # fmt: skip


DTYPES = {"bool": (torch.bool, mg.bool), "float": (torch.float32, mg.float32),
          "int": (torch.int64, mg.int64)}  # fmt: skip


def _pred(lib, value, dtype, device=None):
    if dtype is None:
        return value
    if lib is torch:
        return torch.tensor(value, dtype=DTYPES[dtype][0])
    return mg.tensor(value, dtype=DTYPES[dtype][1], device=device)


def _branches(lib, lin):
    def true_fn(x, y):
        return (lin(x).sin() * y.sum(), {"n": x.cos()})

    def false_fn(x, y):
        return (lin(x) * 2 + y.mean(), {"n": (x * y[0]).exp()})

    return true_fn, false_fn


@pytest.mark.parametrize("value,dtype", PREDS, ids=[f"{v}-{d}" for v, d in PREDS])
def test_cond_takes_torchs_branch_with_its_gradients(value, dtype, device):
    torch.manual_seed(0)
    tl = torch.nn.Linear(3, 3).double()
    ml = mg.nn.Linear(3, 3).to(mg.float64)
    ml.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in tl.state_dict().items()})
    ml.to(device)
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    xm = mg.tensor(x, device=device, requires_grad=True)
    ym = mg.tensor(y, device=device, requires_grad=True)
    want = torch.cond(_pred(torch, value, dtype), *_branches(torch, tl), (xt, yt))
    got = mg.cond(_pred(mg, value, dtype, device), *_branches(mg, ml), [xm, ym])
    np.testing.assert_allclose(_np(got[0]), _np(want[0]), rtol=1e-12)
    np.testing.assert_allclose(_np(got[1]["n"]), _np(want[1]["n"]), rtol=1e-12)
    (want[0].sum() + want[1]["n"].sum()).backward()
    (got[0].sum() + got[1]["n"].sum()).backward()
    for g, w in [(xm, xt), (ym, yt), (ml.weight, tl.weight), (ml.bias, tl.bias)]:
        np.testing.assert_allclose(_np(g.grad), _np(w.grad), rtol=1e-10)  # captured params too


def test_cond_is_torchs_higher_order_op_too():
    from manygrad.compat import importer

    assert mg._higher_order_ops.cond is mg.cond
    assert mg._higher_order_ops.while_loop is mg.while_loop
    assert importer.target_name("torch._higher_order_ops") == "manygrad._higher_order_ops"
    out = mg.cond(mg.tensor(False), lambda: mg.ones(2), lambda: mg.zeros(2))  # no operands
    np.testing.assert_array_equal(out.numpy(), np.zeros(2))
    assert mg.cond(True, lambda a, n: a * n, lambda a, n: a, (mg.ones(1), 3)).item() == 3


def _refusals(lib):
    ones = lib.ones(3)

    def mutate(a):
        a.add_(1)
        return a * 2

    return [
        ("pred None", lambda: lib.cond(None, lambda a: a + 1, lambda a: a * 1, (ones,)),
         "Expected pred to be bool or tensor"),
        ("pred of two", lambda: lib.cond(lib.tensor([True, False]), lambda a: a + 1,
                                         lambda a: a * 1, (ones,)),
         "Expected pred to be bool or single-element tensor"),
        ("not callable", lambda: lib.cond(lib.tensor(True), 1, lambda a: a, (ones,)),
         "Expect both branches to be callable"),
        ("operands a tensor", lambda: lib.cond(lib.tensor(True), lambda a: a + 1,
                                               lambda a: a * 1, ones),
         "Expect operands to be a tuple"),
        ("operands with an int", lambda: lib.cond(lib.tensor(True), lambda a, n: a + n,
                                                  lambda a, n: a * 1, (ones, 2)),
         "consists of tensor leaves"),
        ("returns its input", lambda: lib.cond(lib.tensor(True), lambda a: a, lambda a: a + 1,
                                               (ones,)), "aliasing"),
        ("returns a view", lambda: lib.cond(lib.tensor(True), lambda a: a[:2],
                                            lambda a: a[:2] + 1, (ones,)), "aliasing"),
        ("mutates", lambda: lib.cond(lib.tensor(True), mutate, lambda a: a * 2, (ones,)),
         "mutation"),
        ("returns a float", lambda: lib.cond(lib.tensor(True), lambda a: 1.5, lambda a: 2.5,
                                             (ones,)), "float"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(len(_refusals(mg))), ids=[c[0] for c in _refusals(mg)])
def test_cond_refuses_what_torch_refuses(case):
    name, fn_t, match = _refusals(torch)[case]
    _, fn_m, _ = _refusals(mg)[case]
    with pytest.raises(Exception, match=match):
        fn_t()
    with pytest.raises(RuntimeError, match=match):
        fn_m()


def _counter(lib):
    return (lambda i, a: i < 3), (lambda i, a: (i + 1, a * 2 + a.sin()))


@pytest.mark.parametrize("start", [0, 3, 5])
def test_while_loop_equals_torchs_with_gradients(start, device):
    x = RNG.standard_normal(4)
    xt = torch.tensor(x, requires_grad=True)
    xm = mg.tensor(x, device=device, requires_grad=True)
    it, at = torch.while_loop(*_counter(torch), (torch.tensor(start), xt))
    im, am = mg.while_loop(*_counter(mg), (mg.tensor(start, device=device), xm))
    assert im.item() == it.item() and am is not xm  # no iteration: copies, as in PyTorch
    np.testing.assert_allclose(_np(am), _np(at), rtol=1e-12)
    (at * at).sum().backward()
    (am * am).sum().backward()
    # NOTE: when no iteration runs, PyTorch 2.13's gradient is that of one iteration (its
    # WhileLoopAutogradOp runs the body backward anyway); the result is x itself, so 2x
    want = _np(xt.grad) if start < 3 else 2 * x
    np.testing.assert_allclose(_np(xm.grad), want, rtol=1e-12)


def test_while_loop_carries_ints_lists_and_dicts_as_torch():
    z = np.ones(2)
    for lib in (torch, mg):
        i, a = lib.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, a * 2), (0, lib.tensor(z)))
        assert i == 3 and _np(a).tolist() == [8.0, 8.0]
        out = lib.while_loop(lambda i, a: i < 2, lambda i, a: [i + 1, a + 1],
                             [lib.tensor(0), lib.tensor(z)])  # fmt: skip
        assert isinstance(out, list) and _np(out[1]).tolist() == [3.0, 3.0]
        i, d = lib.while_loop(lambda i, d: i < 2, lambda i, d: (i + 1, {"a": d["a"] * 3}),
                              (lib.tensor(0), {"a": lib.tensor(z)}))  # fmt: skip
        assert _np(d["a"]).tolist() == [9.0, 9.0]


def _loop_refusals(lib):
    z, i0 = lib.ones(2), lib.tensor(0)

    def mutate(i, a):
        a.mul_(2)
        return i + 1, a * 1

    return [
        ("not callable", lambda: lib.while_loop(1, lambda i: (i,), (i0,)),
         "Expect cond_fn and body_fn to be callable"),
        ("a float carried", lambda: lib.while_loop(lambda i, a: i < 3,
                                                   lambda i, a: (i + 1, a), (i0, 1.5)),
         "can only be of|tensor or int leaves"),
        ("cond not 0-d bool", lambda: lib.while_loop(lambda i, a: (i < 3).reshape(1),
                                                     lambda i, a: (i + 1, a * 2), (i0, z)),
         "scalar tensor or a bool"),
        ("body drops a value", lambda: lib.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1,),
                                                      (i0, z)), "same number of outputs"),
        ("body changes a shape", lambda: lib.while_loop(lambda i, a: i < 3,
                                                        lambda i, a: (i + 1, lib.cat([a, a])),
                                                        (i0, z)), "same metadata"),
        ("body changes a dtype", lambda: lib.while_loop(lambda i, a: i < 3,
                                                        lambda i, a: (i + 1, a.double()),
                                                        (i0, z)), "same metadata"),
        ("body returns its input", lambda: lib.while_loop(lambda i, a: i < 3,
                                                          lambda i, a: (i + 1, a), (i0, z)),
         "aliasing"),
        ("body mutates", lambda: lib.while_loop(lambda i, a: i < 3, mutate, (i0, z)),
         "mutation"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(len(_loop_refusals(mg))),
                         ids=[c[0] for c in _loop_refusals(mg)])  # fmt: skip
def test_while_loop_refuses_what_torch_refuses(case):
    _, fn_t, match = _loop_refusals(torch)[case]
    _, fn_m, _ = _loop_refusals(mg)[case]
    with pytest.raises(Exception, match=match):
        fn_t()
    with pytest.raises(RuntimeError, match=match):
        fn_m()
    with pytest.raises(RuntimeError, match="carried_inputs must be a tuple or list"):
        mg.while_loop(lambda i: i < 3, lambda i: (i + 1,), mg.tensor(0))
