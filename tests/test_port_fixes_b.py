"""Behaviours that ported PyTorch programs rely on, compared with PyTorch: tensors compared
with non-operands (strings, None, lists), NumPy scalars as operands, and the properties of
F.gumbel_softmax that do not depend on its random stream."""

import numpy as np
import pytest
import torch

import manygrad as mg

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.25]], dtype=np.float32)


@pytest.mark.parametrize("other", ["a", None, [1.0, 2.0], (1,), object()])
def test_compare_with_non_operand_is_identity(other):
    t, m = torch.tensor(X), mg.tensor(X)
    assert (m == other) == (t == other)
    assert (m != other) == (t != other)
    assert (other == m) == (other == t)
    assert (m in ["a", None]) == (t in ["a", None])


def test_order_with_non_operand_raises_type_error():
    with pytest.raises(TypeError):
        _ = torch.tensor(X) < "a"
    with pytest.raises(TypeError):
        _ = mg.tensor(X) < "a"


NUMPY_SCALARS = [np.float32(1.5), np.float64(0.5), np.int64(2), np.int32(3), np.float16(2.0)]
BINARY = [
    ("mul", lambda lib, x, s: x * s),
    ("rmul", lambda lib, x, s: s * x),
    ("add", lambda lib, x, s: x + s),
    ("rsub", lambda lib, x, s: s - x),
    ("truediv", lambda lib, x, s: x / s),
    ("torch.add", lambda lib, x, s: lib.add(x, s)),
    ("pow", lambda lib, x, s: x.abs().pow(s)),
    ("rpow", lambda lib, x, s: s**x),
    ("clamp", lambda lib, x, s: lib.clamp(x, min=s)),
    ("clamp_max", lambda lib, x, s: x.clamp(max=s)),
    ("gt", lambda lib, x, s: x > s),
    ("eq", lambda lib, x, s: x == s),
    ("where", lambda lib, x, s: lib.where(x > 0, x, s)),
    ("masked_fill", lambda lib, x, s: x.masked_fill(x > 1, s)),
    ("full", lambda lib, x, s: lib.full((2,), s)),
]


@pytest.mark.parametrize("scalar", NUMPY_SCALARS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("name,fn", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_numpy_scalar_operand_matches_pytorch(name, fn, scalar, dtype):
    data = X if dtype == "float32" else (X * 4).astype(np.int64)
    want = fn(torch, torch.tensor(data), scalar)
    got = fn(mg, mg.tensor(data), scalar)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_numpy_scalar_operand_gradient_matches_pytorch():
    scale = np.float32(2.5)
    t = torch.tensor(X, requires_grad=True)
    m = mg.tensor(X, requires_grad=True)
    (t * scale + t.pow(np.int64(3)) / np.float64(4.0)).sum().backward()
    (m * scale + m.pow(np.int64(3)) / np.float64(4.0)).sum().backward()
    assert m.grad.dtype == mg.float32
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-6)


# NOTE: F.gumbel_softmax draws from each framework's own stream; what is compared here does
# not depend on the draws: shapes, dtypes, one-hot rows, normalization, and samples of logits
# whose margin (200) is beyond any Gumbel draw's reach.
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("dim", [-1, 0, 1])
def test_gumbel_softmax_properties_match_pytorch(hard, dim):
    logits = np.random.default_rng(0).standard_normal((4, 5, 6)).astype(np.float32)
    weights = np.random.default_rng(1).standard_normal((4, 5, 6)).astype(np.float32)
    out = {}
    for lib in (torch, mg):
        x = lib.tensor(logits, requires_grad=True)
        y = lib.nn.functional.gumbel_softmax(x, tau=0.5, hard=hard, dim=dim)
        (y * lib.tensor(weights)).sum().backward()
        out[lib] = (y, x.grad)
    (ty, tg), (my, mgr) = out[torch], out[mg]
    assert tuple(my.shape) == tuple(ty.shape) and my.dtype == mg.float32
    assert my.requires_grad
    np.testing.assert_allclose(
        my.detach().sum(dim).numpy(), ty.detach().sum(dim).numpy(), rtol=1e-5
    )
    if hard:
        np.testing.assert_array_equal(np.unique(my.detach().numpy()), [0.0, 1.0])
    # the gradient through a softmax sums to zero along its dim, in both frameworks
    np.testing.assert_allclose(mgr.sum(dim).numpy(), tg.sum(dim).numpy(), atol=1e-5)


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_of_decisive_logits_matches_pytorch(hard):
    idx = np.array([2, 0, 4, 1])
    logits = np.full((4, 5), -100.0, dtype=np.float32)
    logits[np.arange(4), idx] = 100.0
    want = torch.nn.functional.gumbel_softmax(torch.tensor(logits), tau=2.0, hard=hard)
    got = mg.nn.functional.gumbel_softmax(mg.tensor(logits), tau=2.0, hard=hard)
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-6)
