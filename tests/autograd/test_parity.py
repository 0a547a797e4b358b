"""Autograd cases written once against PyTorch's API and run on PyTorch and on manygrad:
the numbers must match (float64). Each case returns the arrays to compare."""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((4, 2))
V = RNG.standard_normal(4)


def t(lib, a, grad=True):
    return lib.tensor(a, dtype=lib.float64, requires_grad=grad)


def custom_function(lib):
    class MyExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            y = x.exp() * scale
            ctx.save_for_backward(y)
            ctx.flags = ctx.needs_input_grad
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y, None

    x = t(lib, A)
    y = MyExp.apply(x, 2.0)
    (y * y).sum().backward()
    return [y, x.grad, np.array(y.grad_fn is not None)]


def needs_input_grad(lib):
    seen = []

    class F(lib.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, k):
            seen.append(tuple(ctx.needs_input_grad))
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            return (g if ctx.needs_input_grad[0] else None), None, None

    a, b = t(lib, A), t(lib, A, grad=False)
    F.apply(a, b, 3).sum().backward()
    return [np.array(seen[0]), a.grad]


def multi_output_function(lib):
    class Split(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_non_differentiable()
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = t(lib, A)
    a, b = Split.apply(x)
    (a.sum() + (b * b).sum()).backward()
    return [x.grad]


def double_backward(lib):
    x = t(lib, A)
    y = (x.tanh() * x.sin()).sum()
    (g,) = lib.autograd.grad(y, x, create_graph=True)
    (h,) = lib.autograd.grad(g.pow(2).sum(), x)
    return [g, h]


def hvp(lib):
    x, v = t(lib, V), lib.tensor(V[::-1].copy())
    f = lambda z: (z**3).sum() + (z.exp() * z).sum()  # noqa: E731
    _, hv = lib.autograd.functional.hvp(f, x, v)
    H = lib.autograd.functional.hessian(f, x)
    J = lib.autograd.functional.jacobian(lambda z: z.sin() * z.sum(), x)
    _, jv = lib.autograd.functional.jvp(lambda z: z.exp(), x, v)
    _, vj = lib.autograd.functional.vjp(lambda z: z.exp(), x, v)
    return [hv, H, J, jv, vj]


def gradient_penalty(lib):
    lib.manual_seed(0)
    D = lib.nn.Sequential(lib.nn.Conv2d(1, 2, 3, padding=1), lib.nn.LeakyReLU(0.2),
                          lib.nn.Flatten(), lib.nn.Linear(2 * 16, 1)).double()  # fmt: skip
    rng = np.random.default_rng(1)
    w = [rng.standard_normal(tuple(p.shape)) for p in D.parameters()]
    with lib.no_grad():
        for p, a in zip(D.parameters(), w):
            p.copy_(lib.tensor(a))
    x = t(lib, np.linspace(-1, 1, 2 * 16).reshape(2, 1, 4, 4))
    out = D(x)
    (g,) = lib.autograd.grad(out.sum(), x, create_graph=True)
    gp = ((g.reshape(2, -1).norm(2, dim=1) - 1) ** 2).mean()
    gp.backward()
    return [gp] + [p.grad for p in D.parameters()]


def manual_sgd(lib):
    w = t(lib, B)
    x = lib.tensor(A)
    losses = []
    for _ in range(3):
        loss = (x @ w).pow(2).mean()
        loss.backward()
        with lib.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
        losses.append(loss.item())
    return [np.array(losses), w, np.array([w.requires_grad, w.is_leaf])]


def inplace_accumulation(lib):
    x = t(lib, A)
    acc = lib.zeros(3, 4, dtype=lib.float64)
    for k in range(3):
        acc += x * (k + 1)
    acc.sum().backward()
    return [acc, x.grad, np.array(acc.requires_grad)]


def nonleaf_inplace(lib):
    x = t(lib, A)
    y = x * 2
    y.mul_(3)
    y[0] = x[1] * 5
    y.relu_()
    (y * y).sum().backward()
    return [y, x.grad]


def version_counter(lib):
    x = t(lib, A)
    raised = []
    for inplace in (lambda y: y.add_(1), lambda y: y.relu_().mul_(2)):
        y = x.exp() if not raised else (x * 1).relu_()
        v0 = y._version
        inplace(y)
        try:
            y.sum().backward()
            raised.append(False)
        except RuntimeError as e:
            raised.append("modified by an inplace operation" in str(e))
    return [np.array([v0, y._version]), np.array(raised)]


def views(lib):
    x = t(lib, A)
    y = x * 1
    v = y.view(-1)
    row = y[1]
    row.mul_(10)
    vs = v._version
    (y * lib.arange(12, dtype=lib.float64).reshape(3, 4)).sum().backward()
    return [v, np.array(vs == y._version), x.grad]


def tensor_hooks(lib):
    x = t(lib, A)
    seen = []
    x.register_hook(lambda g: seen.append(g.clone()))
    y = x * 3
    y.retain_grad()
    h = y.register_hook(lambda g: g * 2)
    z = y.sin()
    z.sum().backward()
    h.remove()
    return [x.grad, y.grad, seen[0]]


def module_hooks(lib):
    lib.manual_seed(0)
    m = lib.nn.Linear(4, 2).double()
    with lib.no_grad():
        m.weight.copy_(lib.tensor(B.T.copy()))
        m.bias.zero_()
    got = {}
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    m.register_forward_hook(lambda mod, args, out: out + 1)
    m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 3,))
    m.register_full_backward_hook(lambda mod, gi, go: got.update(gi=gi[0].clone(), go=go[0]))
    x = t(lib, A)
    out = m(x)
    out.sum().backward()
    return [out, got["gi"], got["go"], x.grad, m.weight.grad]


def checkpointing(lib):
    from importlib import import_module

    ck = import_module(lib.__name__ + ".utils.checkpoint")
    lib.manual_seed(0)
    lin = lib.nn.Linear(4, 4).double()
    rng = np.random.default_rng(2)
    with lib.no_grad():
        lin.weight.copy_(lib.tensor(rng.standard_normal((4, 4))))
        lin.bias.copy_(lib.tensor(rng.standard_normal(4)))
    x = t(lib, A)
    f = lambda z: lin(z).tanh() * z  # noqa: E731
    y = ck.checkpoint(f, x, use_reentrant=False)
    y.pow(2).sum().backward()
    return [y, x.grad, lin.weight.grad, lin.bias.grad]


def anomaly(lib):
    x = t(lib, np.array([0.0, 1.0]))
    msg = ""
    with lib.autograd.detect_anomaly():
        y = x.sqrt() * 0
        y = (y * 0).sum()
        try:
            (x.sqrt() - x.sqrt()).div(x).sum().backward()
        except RuntimeError as e:
            msg = str(e)
    return [np.array("returned nan" in msg), np.array("DivBackward" in msg)]


def func_transforms(lib):
    fn = lib.func
    x = t(lib, V, grad=False)
    f = lambda z: (z.sin() * z).sum()  # noqa: E731
    g = fn.grad(f)(x)
    g2 = fn.grad(lambda z: fn.grad(f)(z).sum())(x)
    gv, val = fn.grad_and_value(f)(x)
    jr = fn.jacrev(lambda z: z.exp() * 2)(x)
    hs = fn.hessian(f)(x)
    out, vjp_fn = fn.vjp(lambda z: z.cos(), x)
    (vj,) = vjp_fn(lib.ones_like(out))
    lin = lib.nn.Linear(4, 2).double()
    params = {"weight": lib.tensor(B.T.copy()), "bias": lib.zeros(2, dtype=lib.float64)}
    fc = fn.functional_call(lin, params, (lib.tensor(A),))
    vm = fn.vmap(lambda r: (r * r).sum())(lib.tensor(A))
    return [g, g2, gv, val, jr, hs, vj, fc, vm]


CASES = [custom_function, needs_input_grad, multi_output_function, double_backward, hvp,
         gradient_penalty, manual_sgd, inplace_accumulation, nonleaf_inplace,
         version_counter, views, tensor_hooks, module_hooks, checkpointing, anomaly,
         func_transforms]  # fmt: skip


def _np(v):
    if isinstance(v, np.ndarray):
        return v
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_matches_pytorch(case):
    want = case(torch)
    got = case(mg)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        if a is None or b is None:  # NOTE: a gradient that is None on one side is 0 on the other
            assert not np.any(_np(b if a is None else a)), f"{case.__name__}: result {i}"
            continue
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-7, atol=1e-9,
                                   err_msg=f"{case.__name__}: result {i}")  # fmt: skip
