"""Which gradient arrays the engine keeps as they come and which it copies: a gradient a
tensor receives must never share memory with one another tensor, an op or the caller can
still see (accumulation adds into it in place)."""

import numpy as np
import torch

import manygrad as mg


def test_retained_view_gradients_stay_apart():
    for lib in (mg, torch):
        x = lib.ones(4, 4, requires_grad=True)
        y = x.reshape(16)
        y.retain_grad()
        for _ in range(2):
            (y * 2).sum().backward()
        assert x.grad.tolist() == [[4.0] * 4] * 4
        assert y.grad.tolist() == [4.0] * 16


def test_a_gradient_kept_by_its_function_is_copied():
    class Keep(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            ctx.buf = (g * 3.0).numpy().reshape(-1)  # a new array the node keeps
            return mg.from_numpy(ctx.buf).reshape(g.shape)

    x = mg.ones(3, 2, requires_grad=True)
    y = Keep.apply(x)
    y.sum().backward(retain_graph=True)
    # the node's own array must not be x.grad's storage
    assert x.grad.tolist() == [[3.0, 3.0]] * 3
    y.sum().backward()
    assert x.grad.tolist() == [[6.0, 6.0]] * 3


def test_slices_of_one_gradient_go_to_separate_tensors():
    a = mg.ones(2, 3, requires_grad=True)
    b = mg.ones(2, 3, requires_grad=True)
    c = mg.cat([a, b])  # backward hands out two slices of one gradient
    for _ in range(2):
        (c * mg.arange(12.0).reshape(4, 3)).sum().backward()
    want = np.arange(12.0).reshape(4, 3) * 2
    np.testing.assert_array_equal(a.grad.numpy(), want[:2])
    np.testing.assert_array_equal(b.grad.numpy(), want[2:])
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())


def test_conv_input_gradient_accumulates_like_torch():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    ws = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    grads = []
    for lib in (mg, torch):
        x = lib.tensor(xs, requires_grad=True)
        w = lib.tensor(ws)
        for k in range(3):
            (lib.nn.functional.conv2d(x, w, padding=1) * (k + 1)).sum().backward()
        grads.append(x.grad.detach().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-4)


SECOND_BACKWARD = {
    # PyTorch's nodes that save no tensors allow a second backward without retain_graph
    "reshape": (lambda x: x.reshape(16), True),
    "t": (lambda x: x.t(), True),
    "add": (lambda x: x + 1, True),
    "sub": (lambda x: x - x, True),
    "cat": (lambda x: (torch if isinstance(x, torch.Tensor) else mg).cat([x, x]), True),
    "slice": (lambda x: x[1:], True),
    "sum": (lambda x: x.sum(0), True),
    "mean": (lambda x: x.mean(), True),
    "expand": (lambda x: x[None].expand(2, 4, 4), True),
    "to double": (lambda x: x.double(), True),
    "clone": (lambda x: x.clone(), True),
    "flip": (lambda x: x.flip(0), True),
    "repeat": (lambda x: x.repeat(2, 1), True),
    # ... and those that save one refuse it
    "mul": (lambda x: x * x, False),
    "exp": (lambda x: x.exp(), False),
    "relu": (lambda x: x.relu(), False),
}


def test_second_backward_through_nodes_that_keep_nothing():
    for name, (f, allowed) in SECOND_BACKWARD.items():
        outcome = []
        for lib in (mg, torch):
            x = lib.ones(4, 4, requires_grad=True)
            y = f(x)
            try:
                for _ in range(2):
                    (y * 1.0).sum().backward()
                outcome.append(x.grad.tolist())
            except RuntimeError:
                outcome.append("refused")
        assert outcome[0] == outcome[1], name
        assert (outcome[1] != "refused") == allowed, name


def test_parameter_view_made_once_serves_every_step():
    # a common pattern: a transposed or reshaped parameter made outside the loop
    w = mg.randn(3, 4, requires_grad=True)
    wt = w.t()
    opt = mg.optim.SGD([w], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (mg.ones(2, 4) @ wt).square().sum().backward()
        opt.step()
    assert w.grad is not None and mg.isfinite(w.grad).all()


def test_transposed_gradient_of_a_new_array_is_made_row_major():
    # a gradient that is a transposed view of an array made for it reaches the tensor
    # row-major (complex optimizer steps refuse other layouts), like any other gradient
    from manygrad.autograd import Function

    class TransposedGrad(Function):
        complex_ok = True

        def forward(self, x):
            return x.copy()

        def backward(self, g):
            return (g.T * 1.0).T  # a new array, seen transposed

    for dt in (mg.float32, mg.complex64):
        w = mg.ones(3, 4, dtype=dt, requires_grad=True)
        TransposedGrad.apply(w).sum().backward()
        assert w.grad.is_contiguous()
        np.testing.assert_array_equal(w.grad.numpy(), np.ones((3, 4)))
    opt = mg.optim.Adam([w], lr=0.1)
    opt.step()  # refused non-contiguous complex gradients
