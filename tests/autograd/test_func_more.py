"""mg.func.jvp, linearize, stack_module_state (model ensembling with vmap and
functional_call, as PyTorch's tutorial) and functionalize, against torch.func."""

import copy

import numpy as np
import pytest

import manygrad as mg
from manygrad import func as MF

torch = pytest.importorskip("torch")
TF = torch.func
pytestmark = pytest.mark.filterwarnings(  # NOTE: torch.func.linearize traces with make_fx
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning",
    "ignore:Attempted to insert a get_attr Node:UserWarning",
)
RNG = np.random.default_rng(0)


def _np(x):
    if isinstance(x, (tuple, list)):
        return [_np(v) for v in x]
    if isinstance(x, dict):
        return {k: _np(v) for k, v in x.items()}
    return x.detach().cpu().numpy() if isinstance(x, mg.Tensor) else x.detach().numpy()


def _close(got, want, rtol=1e-10, atol=1e-12):
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w, rtol, atol)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _close(got[k], want[k], rtol, atol)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# name, function (works on both libraries), primal shapes
FUNCS = [
    ("elementwise", lambda a: (a * a).sin() * a.exp(), [(3, 4)]),
    ("two inputs", lambda a, b: (a @ b.mT).softmax(-1), [(3, 4), (2, 4)]),
    ("tuple out", lambda a, b: (a.tanh().sum(0), a * b), [(3, 4), (3, 4)]),
    ("dict out", lambda a: {"m": a.mean(-1), "s": (a**3).sum()}, [(2, 5)]),
    ("nested primals", lambda ab, c: ab[0] * ab[1] + c.cos(), [((3,), (3,)), (3,)]),
]  # fmt: skip


def _make(lib, shapes, device=None, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for s in shapes:
        if isinstance(s[0], tuple):
            out.append(tuple(_make(lib, s, device, seed + 7)))
        else:
            a = rng.standard_normal(s)
            out.append(mg.tensor(a, device=device) if lib is mg else torch.tensor(a))
    return tuple(out)


@pytest.mark.parametrize("name,fn,shapes", FUNCS, ids=[f[0] for f in FUNCS])
def test_jvp_and_linearize_equal_torchs(name, fn, shapes, device):
    pm, pt = _make(mg, shapes, device), _make(torch, shapes)
    tm, tt = _make(mg, shapes, device, seed=1), _make(torch, shapes, seed=1)
    out_t, jv_t = TF.jvp(fn, pt, tt)
    out_m, jv_m = MF.jvp(fn, pm, tm)
    _close(_np(out_m), _np(out_t))
    _close(_np(jv_m), _np(jv_t))
    lin_out, jvp_fn = MF.linearize(fn, *pm)
    _close(_np(lin_out), _np(out_t))
    _close(_np(jvp_fn(*tm)), _np(jv_t))
    tm2, tt2 = _make(mg, shapes, device, seed=2), _make(torch, shapes, seed=2)
    _close(_np(jvp_fn(*tm2)), _np(TF.jvp(fn, pt, tt2)[1]))  # the graph is reused
    leaves = [out_m] if isinstance(out_m, mg.Tensor) else MF._leaves(out_m)
    assert not any(t.requires_grad for t in leaves + MF._leaves(jv_m))


def test_jvp_aux_strict_and_independent_outputs():
    x, v = RNG.standard_normal(3), RNG.standard_normal(3)

    def f(lib):
        return lambda a: ((a.sin(), lib.ones(2)), {"aux": a * 2})

    (o_t, j_t, aux_t) = TF.jvp(f(torch), (torch.tensor(x),), (torch.tensor(v),), has_aux=True)
    (o_m, j_m, aux_m) = MF.jvp(f(mg), (mg.tensor(x),), (mg.tensor(v),), has_aux=True)
    _close(_np(j_m), _np(j_t))  # the independent output's tangent: zeros
    _close(_np(aux_m), _np(aux_t))
    assert not aux_m["aux"].requires_grad
    for lib, jvp in ((torch, TF.jvp), (mg, MF.jvp)):
        with pytest.raises(RuntimeError, match="independent of the inputs"):
            jvp(lambda a, lib=lib: lib.ones(2), (lib.ones(2),), (lib.ones(2),), strict=True)


BAD_JVP = [
    ("primals not a tuple", lambda lib: (lambda a: a, lib.ones(2), (lib.ones(2),)),
     "Expected primals to be a tuple"),
    ("structure", lambda lib: (lambda a: a, (lib.ones(2),), [lib.ones(2)]),
     "same python structure"),
    ("not tensors", lambda lib: (lambda a: a * 2, (2.0,), (1.0,)), "only contain Tensors"),
    ("non-tensor output", lambda lib: (lambda a: 3, (lib.ones(2),), (lib.ones(2),)),
     "return only tensors"),
    ("aux not a pair", lambda lib: (lambda a: a, (lib.ones(2),), (lib.ones(2),)),
     "should be a tuple: \\(output, aux\\)"),
]  # fmt: skip


@pytest.mark.parametrize("make,match", [(m, r) for _, m, r in BAD_JVP],
                         ids=[b[0] for b in BAD_JVP])  # fmt: skip
def test_jvp_refuses_what_torch_refuses(make, match):
    kw = {"has_aux": True} if "aux" in match else {}
    with pytest.raises(RuntimeError, match=match):
        TF.jvp(*make(torch), **kw)
    with pytest.raises(RuntimeError, match=match):
        MF.jvp(*make(mg), **kw)


def test_linearize_checks_its_tangents_as_torch():
    _, fn_t = TF.linearize(torch.sin, torch.zeros(3, dtype=torch.float64))
    _, fn_m = MF.linearize(mg.sin, mg.zeros(3, dtype=mg.float64))
    for bad_t, bad_m, match in [
        (torch.ones(4, dtype=torch.float64), mg.ones(4, dtype=mg.float64), "tangent:0 with shape"),
        (torch.ones(3), mg.ones(3), "tangent:0 with dtype"),
    ]:
        with pytest.raises(RuntimeError, match=match):
            fn_t(bad_t)
        with pytest.raises(RuntimeError, match=match):
            fn_m(bad_m)
    with pytest.raises(RuntimeError, match="same argspec as the primals"):
        fn_m(mg.ones(3, dtype=mg.float64), mg.ones(3, dtype=mg.float64))


def test_jvp_composes_with_grad_both_ways(device):
    x, v = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    xm, vm, xt, vt = (mg.tensor(x, device=device), mg.tensor(v, device=device),
                      torch.tensor(x), torch.tensor(v))  # fmt: skip
    cube = lambda a: (a**3).sin().sum()  # noqa: E731
    # forward-over-reverse: a Hessian-vector product
    _close(_np(MF.jvp(MF.grad(cube), (xm,), (vm,))[1]), _np(TF.jvp(TF.grad(cube), (xt,), (vt,))[1]))
    # reverse-over-forward
    want = TF.grad(lambda a: TF.jvp(lambda b: b.sin() * b, (a,), (vt,))[1].sum())(xt)
    got = MF.grad(lambda a: MF.jvp(lambda b: b.sin() * b, (a,), (vm,))[1].sum())(xm)
    _close(_np(got), _np(want))
    # outside any transform, primals that require grad give differentiable results
    xr = mg.tensor(x, device=device, requires_grad=True)
    _, jv = MF.jvp(lambda a: a.exp(), (xr,), (vm,))
    jv.sum().backward()
    _close(_np(xr.grad), x * 0 + np.exp(x) * v)


class _Net(mg.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn, self.fc2 = mg.nn.Linear(4, 8), mg.nn.BatchNorm1d(8), mg.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(mg.relu(self.bn(self.fc1(x))))


class _TNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 8)
        self.bn = torch.nn.BatchNorm1d(8)
        self.fc2 = torch.nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.bn(self.fc1(x))))


def _ensembles(n, device):
    torch.manual_seed(0)
    tms = [_TNet().double().eval() for _ in range(n)]
    mms = []
    for t in tms:
        with torch.no_grad():  # non-trivial running statistics in the buffers
            t.bn.running_mean.normal_()
            t.bn.running_var.uniform_(0.5, 2.0)
        m = _Net().to(mg.float64).eval()
        m.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in t.state_dict().items()})
        mms.append(m.to(device))
    return tms, mms


def test_stack_module_state_matches_torchs(device):
    tms, mms = _ensembles(3, device)
    tp, tb = TF.stack_module_state(tms)
    mp, mb = MF.stack_module_state(mms)
    assert list(mp) == list(tp) and list(mb) == list(tb)
    for got, want in [(mp[k], tp[k]) for k in tp] + [(mb[k], tb[k]) for k in tb]:
        assert got.is_leaf and got.requires_grad == want.requires_grad
        assert got.device == mg.device(device)
        np.testing.assert_array_equal(_np(got), _np(want))
    assert mp["fc1.weight"] is not mms[0].fc1.weight  # new leaves, not the models' own


def test_model_ensembling_with_vmap_and_functional_call_as_torchs_tutorial(device):
    tms, mms = _ensembles(3, device)
    tp, tb = TF.stack_module_state(tms)
    mp, mb = MF.stack_module_state(mms)
    base_t = copy.deepcopy(tms[0]).to("meta")
    base_m = copy.deepcopy(mms[0])

    def f_t(params, buffers, x):
        return TF.functional_call(base_t, (params, buffers), (x,))

    def f_m(params, buffers, x):
        return MF.functional_call(base_m, (params, buffers), (x,))

    one = RNG.standard_normal((5, 4))  # the same minibatch for every model
    want = TF.vmap(f_t, in_dims=(0, 0, None))(tp, tb, torch.tensor(one))
    got = MF.vmap(f_m, in_dims=(0, 0, None))(mp, mb, mg.tensor(one, device=device))
    assert tuple(got.shape) == (3, 5, 2)
    _close(_np(got), _np(want))
    for k, m in enumerate(mms):  # each slice is that model's own prediction
        _close(_np(got[k]), _np(m(mg.tensor(one, device=device))))
    many = RNG.standard_normal((3, 5, 4))  # a minibatch per model
    _close(_np(MF.vmap(f_m)(mp, mb, mg.tensor(many, device=device))),
           _np(TF.vmap(f_t)(tp, tb, torch.tensor(many))))  # fmt: skip
    want.square().sum().backward()
    got.square().sum().backward()
    for k in tp:  # the stacked parameters train as one tensor each
        _close(_np(mp[k].grad), _np(tp[k].grad))


def test_stack_module_state_refuses_as_torch():
    for lib, stack in ((torch, TF.stack_module_state), (mg, MF.stack_module_state)):
        with pytest.raises(RuntimeError, match="Expected at least one model, got 0"):
            stack([])
        with pytest.raises(RuntimeError, match="same training/eval mode"):
            stack([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2).eval()])
        with pytest.raises(RuntimeError, match="same class"):
            stack([lib.nn.Linear(2, 2), lib.nn.Bilinear(2, 2, 2)])
        a, b = lib.nn.Linear(2, 2), lib.nn.Linear(2, 2)
        b.bias.requires_grad_(False)
        with pytest.raises(RuntimeError, match="Expected bias from each model to have the same"):
            stack([a, b])


def _mutating(lib):
    def f(a, b):
        a.view(-1).add_(1)  # an input mutated through a view
        c = b * 2
        c.mul_(3)  # an intermediate mutated
        return a.sum() + c.sum(), c

    return f


def test_functionalize_keeps_values_mutations_and_gradients(device):
    x, y = RNG.standard_normal((2, 3)), RNG.standard_normal(3)
    at, bt = torch.tensor(x), torch.tensor(y, requires_grad=True)
    am, bm = mg.tensor(x, device=device), mg.tensor(y, device=device, requires_grad=True)
    want = TF.functionalize(_mutating(torch))(at, bt)
    fm = MF.functionalize(_mutating(mg))
    got = fm(am, bm)
    assert fm.__name__ == "f"
    a2 = mg.tensor(x, device=device)
    _close(_np(got), _np(_mutating(mg)(a2, bm)), rtol=0, atol=0)  # identical to f's
    _close(_np(got), _np(want))
    _close(_np(am), _np(a2), rtol=0, atol=0)  # the input mutation reached the caller's tensor
    _close(_np(am), _np(at))
    want[0].backward()
    got[0].backward()
    _close(_np(bm.grad), _np(bt.grad))
    for lib, functionalize in ((torch, TF.functionalize), (mg, MF.functionalize)):
        assert functionalize(_mutating(lib), remove="mutations_and_views") is not None
        with pytest.raises(RuntimeError, match="received invalid argument for remove=views"):
            functionalize(_mutating(lib), remove="views")
