"""autograd.graph.saved_tensors_hooks / save_on_cpu / disable_saved_tensors_hooks: what ops
keep for backward goes through the hooks, gradients stay PyTorch's, in-place changes are
still caught, and hooks can move what is kept off the device."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.autograd.graph import (
    disable_saved_tensors_hooks,
    save_on_cpu,
    saved_tensors_hooks,
)

torch = pytest.importorskip("torch")


def _model(lib, x, w):
    h = (x @ w).tanh()
    return (h.softmax(-1) * h.exp()).sum()


def test_hooks_see_what_ops_keep_and_gradients_are_unchanged(device):
    x0, w0 = (
        np.random.default_rng(0).standard_normal((3, 4)),
        np.random.default_rng(1).standard_normal((4, 5)),
    )
    packed, unpacked = [], []

    def pack(t):
        packed.append(tuple(t.shape))
        return t.detach().clone()  # NOTE: a copy: backward must use what unpack returns

    def unpack(t):
        unpacked.append(tuple(t.shape))
        return t

    x = mg.tensor(x0, device=device, requires_grad=True)
    w = mg.tensor(w0, device=device, requires_grad=True)
    with saved_tensors_hooks(pack, unpack):
        loss = _model(mg, x, w)
    assert (3, 4) in packed and (4, 5) in packed
    loss.backward()
    assert sorted(unpacked) == sorted(packed)
    xt, wt = torch.tensor(x0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    _model(torch, xt, wt).backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.cpu().numpy(), wt.grad.numpy(), rtol=1e-12)


def test_unpack_result_is_what_backward_uses():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with saved_tensors_hooks(lambda t: t, lambda t: t * 0 + 10.0):
        y = x * x  # keeps x twice: d(x*x)/dx = 2x, computed from the unpacked values
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0])


def test_custom_functions_go_through_the_hooks():
    calls = []

    class Cube(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

    x = mg.tensor([1.0, -2.0], requires_grad=True)
    with saved_tensors_hooks(lambda t: calls.append("pack") or t.detach().clone(),
                             lambda t: calls.append("unpack") or t):  # fmt: skip
        y = Cube.apply(x)
    y.sum().backward()
    assert calls[-2:] == ["pack", "unpack"]
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])


def test_in_place_changes_are_still_caught():
    b = mg.randn(3, requires_grad=True)
    c = b * 1
    with saved_tensors_hooks(lambda t: t, lambda t: t):
        e = c.sin()  # keeps its input (exp would keep only its output)
        f = c + 1  # keeps nothing
    c.add_(1)
    with pytest.raises(mg.ManygradError, match="modified by an inplace operation"):
        e.sum().backward(retain_graph=True)
    f.sum().backward()  # add kept nothing: the change is harmless


def test_save_on_cpu_moves_what_is_kept_to_the_host():
    a = mg.randn(3, 4, device="fakegpu", requires_grad=True)
    with save_on_cpu():
        z = (a.exp() * a).sum()
    node = z.grad_fn
    kept = [v for n in _walk(node) for v in n.__dict__.get("_packed", ({}, None))[0].values()]
    assert kept and all(p[1][1].device.type == "cpu" for p in kept if p[0] in ("array", "tensor"))
    z.backward()
    want = (a.detach().exp() * (1 + a.detach())).cpu().numpy()
    np.testing.assert_allclose(a.grad.cpu().numpy(), want, rtol=1e-6)
    with disable_saved_tensors_hooks("no hooks in this block"):
        with pytest.raises(RuntimeError, match="no hooks in this block"):
            with save_on_cpu():
                pass


def _walk(node):
    seen, out, todo = set(), [], [node]
    while todo:
        n = todo.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        out.append(n)
        todo.extend(e[0] for e in getattr(n, "_edges", ()) if e is not None)
    return out


def test_an_array_kept_twice_is_packed_once():
    torch = pytest.importorskip("torch")
    counts = {}
    for lib in (torch, mg):
        x = lib.randn(5, 3, requires_grad=True)
        w = lib.randn(4, 3, requires_grad=True)
        seen = []

        def pack(t, seen=seen):
            seen.append(t.shape)
            return t.clone()

        with lib.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = lib.nn.functional.linear(x, w)
        y.sum().backward()
        counts[lib.__name__] = sorted(tuple(s) for s in seen)
        np.testing.assert_allclose(x.grad.numpy(), w.sum(0).expand(5, 3).detach().numpy(),
                                   rtol=1e-6)  # fmt: skip
    # PyTorch keeps x and w.t(); manygrad x (once, though it also keeps its 2-d form) and w
    assert len(counts["manygrad"]) == len(counts["torch"]) == 2
    assert counts["manygrad"][1] == (5, 3)
