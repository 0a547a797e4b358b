"""Autograd behaviour beyond the PyTorch parity cases: the errors users get for misuse,
the less common Function contract pieces, hooks' lifecycles, checkpointing details."""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import AutogradError
from manygrad.utils.checkpoint import checkpoint, checkpoint_sequential

torch = pytest.importorskip("torch")


def x34(lib=mg):
    return lib.tensor(np.arange(12.0).reshape(3, 4) / 7, dtype=lib.float64, requires_grad=True)


# ---------------------------------------------------------------------------- Function


class AddOneInPlace(mg.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        x.add_(1)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g


def test_mark_dirty_rebases_the_input():
    x = x34()
    y = x * 2
    z = AddOneInPlace.apply(y)
    assert z is y and y.grad_fn is not None and y._version == 2  # as PyTorch: add_ and mark_dirty
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * (2 * x.detach().numpy() + 1))


def test_mark_non_differentiable_and_materialize_grads():
    seen = []

    class SortVals(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            idx = mg.argmax(x, dim=1)
            ctx.mark_non_differentiable(idx)
            return x * 3, idx

        @staticmethod
        def backward(ctx, g, gidx):
            seen.append(gidx)
            return g * 3

    x = x34()
    y, idx = SortVals.apply(x)
    assert not idx.requires_grad and y.requires_grad
    y.sum().backward()
    assert seen == [None]
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 3.0))


def test_once_differentiable_refuses_a_second_derivative():
    class Cube(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        @mg.autograd.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x * x

    x = x34()
    (g,) = mg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    with pytest.raises(AutogradError, match="CubeBackward.*not differentiable twice"):
        g.sum().backward()


@pytest.mark.parametrize(
    "ret, match",
    [
        (lambda g: (g, g), "CountBackward returned an incorrect number of gradients"),
        (lambda g: g[:2], r"CountBackward returned an invalid gradient at index 0"),
        (lambda g: "x", "CountBackward returned a str"),
    ],
)
def test_user_function_bad_gradients_name_the_function(ret, match):
    class Count(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return ret(g)

    with pytest.raises((AutogradError, TypeError), match=match):
        Count.apply(x34()).sum().backward()


def test_gradient_for_a_non_tensor_argument_is_refused():
    class Scale(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, g):
            return g, g

    with pytest.raises(AutogradError, match="position 1.*not a Tensor"):
        Scale.apply(x34(), 2.0).sum().backward()


def test_saved_tensor_modified_in_place_is_named():
    class Keep(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x

    x = x34()
    h = x * 1
    y = Keep.apply(h)
    h.mul_(2)
    with pytest.raises(AutogradError, match="saved tensor 0 of KeepBackward.*version 1"):
        y.sum().backward()


# ---------------------------------------------------------------------------- errors


def test_unused_input_needs_allow_unused():
    x, w = x34(), x34()
    with pytest.raises(AutogradError, match="allow_unused=True"):
        mg.autograd.grad((x * 2).sum(), [x, w])
    gx, gw = mg.autograd.grad((x * 2).sum(), [x, w], allow_unused=True)
    assert gw is None and np.all(gx.numpy() == 2)
    (gm,) = mg.autograd.grad((x * 2).sum(), [w], materialize_grads=True)
    assert np.all(gm.numpy() == 0)


def test_in_place_on_a_leaf_and_on_its_view_is_refused_with_the_fix():
    w = x34()
    with pytest.raises(AutogradError, match="mul_: a leaf Variable.*no_grad"):
        w.mul_(2)
    with pytest.raises(AutogradError, match="view of a leaf Variable"):
        w[0].add_(1)
    with mg.no_grad():
        w[0].add_(1)
    assert w._version == 1 and w.requires_grad and w.is_leaf


def test_version_error_names_the_op_that_saved_it_and_the_in_place_op():
    x = x34()
    y = x.sigmoid()
    y.mul_(3)
    with pytest.raises(AutogradError, match=r"by mul_\(\).*output 0 of SigmoidBackward"):
        y.sum().backward()


def test_in_place_int_tensor_with_float_result_is_refused():
    t = mg.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="can't be cast"):
        t += 0.5


# ---------------------------------------------------------------------------- hooks


def test_leaf_hook_replaces_gradient_and_post_accumulate_hook_sees_grad():
    x = x34()
    order = []
    x.register_hook(lambda g: g * 10)
    x.register_post_accumulate_grad_hook(lambda t: order.append(t.grad.numpy().copy()))
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((3, 4), 20.0))
    np.testing.assert_allclose(order[0], x.grad.numpy())


def test_hook_handle_removes_and_works_as_context_manager():
    x = x34()
    calls = []
    with x.register_hook(lambda g: calls.append(1)):
        (x * 1).sum().backward()
    (x * 1).sum().backward()
    assert calls == [1]


def test_global_module_hooks():
    from manygrad.nn.module import (
        register_module_forward_hook,
        register_module_full_backward_hook,
    )

    lin = mg.nn.Linear(4, 2)
    names = []
    h1 = register_module_forward_hook(lambda m, a, o: names.append(type(m).__name__))
    h2 = register_module_full_backward_hook(lambda m, gi, go: names.append("bw"))
    try:
        lin(mg.randn(3, 4, requires_grad=True)).sum().backward()
    finally:
        h1.remove()
        h2.remove()
    lin(mg.randn(3, 4)).sum()
    assert names == ["Linear", "bw"]


def test_backward_inputs_accumulates_only_there():
    x, w = x34(), x34()
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None and np.allclose(w.grad.numpy(), x.detach().numpy())


# ---------------------------------------------------------------------------- checkpoint


def test_checkpoint_keeps_dropout_random_state_and_frees_activations():
    mg.manual_seed(0)
    lin = mg.nn.Linear(6, 6).double()
    drop = mg.nn.Dropout(0.5)
    x = mg.randn(4, 6, dtype=mg.float64, requires_grad=True)

    def block(z):
        return drop(lin(z).tanh()) * z

    mg.manual_seed(1)
    y = checkpoint(block, x, use_reentrant=False)
    y.pow(2).sum().backward()
    gx, gw = x.grad.numpy().copy(), lin.weight.grad.numpy().copy()
    x.grad = lin.weight.grad = lin.bias.grad = None
    mg.manual_seed(1)
    block(x).pow(2).sum().backward()
    np.testing.assert_allclose(gx, x.grad.numpy())
    np.testing.assert_allclose(gw, lin.weight.grad.numpy())


def test_checkpoint_sequential_matches_plain_run():
    mg.manual_seed(0)
    model = mg.nn.Sequential(*[mg.nn.Linear(5, 5) for _ in range(4)]).double()
    x = mg.randn(3, 5, dtype=mg.float64, requires_grad=True)
    checkpoint_sequential(model, 2, x).sum().backward()
    want = [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]
    model.zero_grad()
    x.grad = None
    model(x).sum().backward()
    got = [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b)


def test_checkpoint_grad_reaches_parameters_through_autograd_grad():
    lin = mg.nn.Linear(3, 3).double()
    x = mg.randn(2, 3, dtype=mg.float64)
    y = checkpoint(lambda z: lin(z).relu(), x)
    (gw,) = mg.autograd.grad(y.sum(), [lin.weight])
    assert gw.shape == (3, 3) and lin.weight.grad is None


# ---------------------------------------------------------------------------- devices


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_in_place_graph_and_double_backward_on_every_device(device):
    x = mg.tensor(np.linspace(-1, 1, 6), dtype=mg.float64, device=device, requires_grad=True)
    y = x * 1
    y[2:4] = x[:2] ** 2
    y.mul_(x)
    (g,) = mg.autograd.grad(y.sum(), x, create_graph=True)
    (h,) = mg.autograd.grad(g.sum(), x)
    tx = torch.tensor(np.linspace(-1, 1, 6), requires_grad=True)
    ty = tx * 1
    ty[2:4] = tx[:2] ** 2
    ty.mul_(tx)
    (tg,) = torch.autograd.grad(ty.sum(), tx, create_graph=True)
    (th,) = torch.autograd.grad(tg.sum(), tx)
    np.testing.assert_allclose(g.detach().cpu().numpy(), tg.detach().numpy())
    np.testing.assert_allclose(h.cpu().numpy(), th.numpy())


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_in_place_on_a_view_of_a_view_rewrites_the_base_history(device):
    w = np.arange(6.0).reshape(2, 3)
    x = mg.tensor(w, device=device, requires_grad=True)
    y = x * 1
    v = y.t()[1:]  # columns 1 and 2 of y, through a transpose and a slice
    v.mul_(10)
    assert y._version == v._version == 1
    (y * mg.tensor(w, device=device)).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [[0, 10, 20], [3, 40, 50]])


@pytest.mark.parametrize(
    "call",
    [
        lambda lib, t: t.floor_(),
        lambda lib, t: t.round_(),
        lambda lib, t: t.sin_(),
        lambda lib, t: t.scatter_(
            1, lib.tensor([[0, 1], [1, 0]]), lib.ones(2, 2, dtype=lib.float64)
        ),
        lambda lib, t: t.index_add_(0, lib.tensor([1, 1]), lib.ones(2, 3, dtype=lib.float64)),
        lambda lib, t: t.index_fill_(1, lib.tensor([2]), -1.0),
        lambda lib, t: t.masked_scatter_(t > 0.3, lib.zeros(6, dtype=lib.float64)),
        lambda lib, t: t.nan_to_num_(),
        lambda lib, t: t.clamp_min_(0.2),
    ],
)
def test_more_in_place_ops_match_pytorch(call):
    a = np.linspace(-1, 1, 6).reshape(2, 3)
    got, want = call(mg, mg.tensor(a)), call(torch, torch.tensor(a))
    np.testing.assert_allclose(got.numpy(), want.numpy())


def test_remaining_in_place_and_window_methods_match_pytorch():
    a = np.arange(12.0).reshape(3, 4)
    for dim, size, step in [(1, 2, 1), (0, 2, 1), (1, 3, 2)]:
        np.testing.assert_allclose(mg.tensor(a).unfold(dim, size, step).numpy(),
                                   torch.tensor(a).unfold(dim, size, step).numpy())  # fmt: skip
    idx = (mg.tensor([0, 1]), mg.tensor([1, 2]))
    got = mg.zeros(2, 3).index_put_(idx, mg.tensor([5.0, 6.0]), accumulate=True)
    want = torch.zeros(2, 3).index_put_((torch.tensor([0, 1]), torch.tensor([1, 2])),
                                        torch.tensor([5.0, 6.0]), accumulate=True)  # fmt: skip
    np.testing.assert_allclose(got.numpy(), want.numpy())
    got = mg.zeros(2, 3).put_(mg.tensor([0, 5]), mg.tensor([1.0, 2.0]))
    want = torch.zeros(2, 3).put_(torch.tensor([0, 5]), torch.tensor([1.0, 2.0]))
    np.testing.assert_allclose(got.numpy(), want.numpy())
    assert mg.ones(2, 3).transpose_(0, 1).shape == (3, 2)
    assert mg.tensor([1.0, 2.0]).apply_(lambda v: v * 3).tolist() == [3.0, 6.0]
    assert (mg.zeros(1000).exponential_(2.0).numpy() > 0).all()
    r = mg.zeros(1000, dtype=mg.int64).random_(3, 7).numpy()
    assert r.min() >= 3 and r.max() <= 6
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.unfold(0, 2, 1).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])
