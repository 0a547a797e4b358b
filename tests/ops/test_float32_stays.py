"""float32 stays float32 through var, std, mean and kl_div (values and gradients), also for
0-d results, where NumPy < 2's scalar promotion would give float64."""

import pytest

import manygrad as mg

F = mg.nn.functional


def _grad_dtype(fn, *shapes):
    xs = [mg.rand(*s, requires_grad=True) for s in shapes]
    out = fn(*xs)
    out.sum().backward()
    return out.dtype, [x.grad.dtype for x in xs]


@pytest.mark.parametrize(
    "fn, shapes",
    [
        (lambda x: x.var(), [(5,)]),
        (lambda x: x.std(), [(4, 3)]),
        (lambda x: x.var(dim=0), [(4, 3)]),
        (lambda x: x.std(dim=1, correction=0), [(4, 3)]),
        (lambda x: x.mean(), [(6,)]),
        (lambda x: mg.var(x.reshape(())), [(1,)]),
        (lambda x, t: F.kl_div(x.log(), t), [(4, 3), (4, 3)]),
        (lambda x, t: F.kl_div(x.log(), t, reduction="batchmean"), [(4, 3), (4, 3)]),
        (lambda x, t: F.kl_div(x, t, log_target=True, reduction="sum"), [(3,), (3,)]),
        (lambda x, t: F.kl_div(x.reshape(()), t.reshape(())), [(1,), (1,)]),
    ],
)
def test_float32_in_float32_out(fn, shapes):
    out, grads = _grad_dtype(fn, *shapes)
    assert out == mg.float32
    assert all(g == mg.float32 for g in grads)
