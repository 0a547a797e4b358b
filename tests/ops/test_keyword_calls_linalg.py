"""Matrix products, linear algebra and Tensor methods called with PyTorch's keyword names
only (``torch.mm(input=a, mat2=b)``, ``torch.linalg.norm(input=x, ord=2)``,
``x.copy_(src=y)``, ``x.uniform_(to=2.0, generator=g)``), against the same call in PyTorch.

The signatures are checked for every function in ``tests/test_torch_keywords.py``; here the
keyword calls are run, so that a renamed argument that the body still reads by its old name
fails, and the arguments PyTorch has beyond the renames (``generator=``, ``sparse_grad=``,
``dense_dim=``, ...) are seen to do what PyTorch does with them, or to be refused."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import keyword_call_both

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
A = _RNG.standard_normal((3, 3))
S = A @ A.T + 3 * np.eye(3)  # symmetric positive-definite
L = np.linalg.cholesky(S)
U = np.triu(A) + 3 * np.eye(3)  # upper triangular, well conditioned
B = _RNG.standard_normal((3, 2))
TALL, TALL_B = _RNG.standard_normal((4, 3)), _RNG.standard_normal((4, 2))
A3, B3 = _RNG.standard_normal((2, 3, 4)), _RNG.standard_normal((2, 4, 2))
V, W = _RNG.standard_normal(4), _RNG.standard_normal(4)
X, WEIGHT, BIAS = _RNG.standard_normal((5, 4)), _RNG.standard_normal((2, 4)), np.ones(2)
T6 = np.eye(6).reshape(2, 3, 6) + 0.1 * _RNG.standard_normal((2, 3, 6))  # an invertible map
QR_A, QR_TAU = (t.numpy() for t in torch.geqrf(torch.tensor(TALL)))
LU, PIV = (t.numpy() for t in torch.linalg.lu_factor(torch.tensor(A)))

# (name of the namespace, function, arrays by keyword, other keywords)
CASES = [
    # products
    ("", "matmul", dict(input=A, other=B), {}),
    ("linalg", "matmul", dict(input=A3, other=B3), {}),
    ("", "mm", dict(input=A, mat2=B), {}),
    ("", "bmm", dict(input=A3, mat2=B3), {}),
    ("", "dot", dict(input=V, tensor=W), {}),
    ("nn.functional", "linear", dict(input=X, weight=WEIGHT, bias=BIAS), {}),
    # norms
    ("linalg", "norm", dict(input=A), dict(ord=2)),
    ("linalg", "vector_norm", dict(input=A), dict(ord=3, dim=1, keepdim=True)),
    ("linalg", "matrix_norm", dict(input=A), dict(ord="nuc", keepdim=True)),
    ("linalg", "cond", dict(input=A), dict(p="fro")),
    # factorizations and their solvers
    ("linalg", "cholesky", dict(input=S), dict(upper=True)),
    ("linalg", "cholesky_ex", dict(input=S), dict(upper=False, check_errors=True)),
    ("", "cholesky", dict(input=S), {}),
    ("", "cholesky_inverse", dict(input=L), dict(upper=False)),
    ("", "cholesky_solve", dict(input=B, input2=L), dict(upper=False)),
    ("linalg", "solve_triangular", dict(input=U, B=B), dict(upper=True, left=True)),
    ("", "triangular_solve", dict(input=B, A=U), dict(upper=True, transpose=True)),
    ("", "lu_solve", dict(input=B, LU_data=LU, LU_pivots=PIV), {}),
    ("linalg", "ldl_factor", dict(input=S), dict(hermitian=False)),
    ("linalg", "ldl_factor_ex", dict(input=S), dict(hermitian=True, check_errors=False)),
    ("", "geqrf", dict(input=TALL), {}),
    ("", "orgqr", dict(input=QR_A, input2=QR_TAU), {}),
    ("linalg", "householder_product", dict(input=QR_A, tau=QR_TAU), {}),
    # spectra
    ("linalg", "eigvalsh", dict(input=S), dict(UPLO="U")),
    ("linalg", "eigvals", dict(input=S), {}),
    ("", "svd", dict(input=TALL), dict(some=True, compute_uv=False)),
    # determinants, inverses, powers
    ("", "det", dict(input=A), {}),
    ("linalg", "det", dict(A=A), {}),
    ("", "slogdet", dict(input=A), {}),
    ("linalg", "slogdet", dict(A=A), {}),
    ("", "logdet", dict(input=S), {}),
    ("", "inverse", dict(input=A), {}),
    ("linalg", "inv", dict(A=A), {}),
    ("", "matrix_power", dict(input=A), dict(n=-2)),
    ("linalg", "matrix_power", dict(input=A), dict(n=3)),
    ("linalg", "tensorinv", dict(input=T6), dict(ind=2)),
    ("linalg", "tensorsolve", dict(input=T6, other=B), dict(dims=None)),
    # least squares and rank
    ("linalg", "lstsq", dict(input=TALL, b=TALL_B), dict(rcond=None, driver="gelsd")),
    ("linalg", "pinv", dict(input=TALL), dict(hermitian=False, rtol=1e-8)),
    ("linalg", "matrix_rank", dict(input=A), dict(hermitian=False, atol=0.5, rtol=0.0)),
]


@pytest.mark.filterwarnings("ignore:.*deprecated")  # torch.cholesky, lu_solve, ...
@pytest.mark.parametrize(
    "space, name, arrays, kw",
    CASES,
    ids=[f"{s or 'torch'}.{n}-{'-'.join(a)}" for s, n, a, _ in CASES],
)
def test_keyword_call_matches_pytorch(space, name, arrays, kw):
    got, want = keyword_call_both(space, name, arrays, kw)
    assert len(got) == len(want) if isinstance(want, list) else True
    for g, w in zip(got, want) if isinstance(want, list) else [(got, want)]:
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9, atol=1e-11)


def test_the_old_names_are_gone():
    # NOTE: a keyword call with manygrad's former names must fail, not bind by chance
    with pytest.raises(TypeError):
        mg.matmul(a=mg.tensor(A), b=mg.tensor(B))
    with pytest.raises(TypeError):
        mg.linalg.solve_triangular(A=mg.tensor(U), B=mg.tensor(B), upper=True)
    with pytest.raises(TypeError):
        mg.dot(mg.tensor(V), other=mg.tensor(W))


def test_positional_calls_are_unchanged():
    a, b, s = mg.tensor(A), mg.tensor(B), mg.tensor(S)
    assert mg.matmul(a, b).tolist() == mg.matmul(input=a, other=b).tolist()
    assert mg.linalg.norm(a, 2).tolist() == mg.linalg.norm(input=a, ord=2).tolist()
    assert mg.linalg.eigvalsh(s, "U").tolist() == mg.linalg.eigvalsh(input=s, UPLO="U").tolist()
    tall, tall_b = mg.tensor(TALL), mg.tensor(TALL_B)
    pos = mg.linalg.lstsq(tall, tall_b, None).solution
    assert pos.tolist() == mg.linalg.lstsq(input=tall, b=tall_b, rcond=None).solution.tolist()


# ------------------------------------------------------------------ Tensor methods
def _pair(a):
    return mg.tensor(a), torch.tensor(a)


def test_methods_take_pytorch_keywords():
    (x, tx), (y, ty) = _pair(X), _pair(X[::-1].copy())
    idx = np.array([[0, 3], [1, 1], [2, 0], [3, 2], [0, 0]])
    pairs = [
        (x.clone().copy_(src=y), tx.clone().copy_(ty)),  # NOTE: PyTorch binds src as other
        (x.clone().copy_(other=y), tx.clone().copy_(other=ty)),
        (x.clone().copy_(y, non_blocking=True), tx.clone().copy_(ty, non_blocking=True)),
        (x.view(size=(4, 5)), tx.view(size=(4, 5))),
        (x.view(dtype=mg.int64), tx.view(dtype=torch.int64)),
        (x[:1].expand(size=(3, 4)), tx[:1].expand(size=(3, 4))),
        (x.repeat(repeats=(2, 1)), tx.repeat(repeats=(2, 1))),
        (x.max(other=y), tx.max(other=ty)),
        (x.min(other=y), tx.min(other=ty)),
        (x.gather(dim=1, index=mg.tensor(idx), sparse_grad=False),
         tx.gather(dim=1, index=torch.tensor(idx), sparse_grad=False)),
        (x.clone().addcmul_(tensor1=x, tensor2=y, value=0.5),
         tx.clone().addcmul_(tensor1=tx, tensor2=ty, value=0.5)),
        (x.clone().addcdiv_(tensor1=x, tensor2=y + 9, value=2),
         tx.clone().addcdiv_(tensor1=tx, tensor2=ty + 9, value=2)),
        (x.sigmoid().logit_(eps=0.3), tx.sigmoid().logit_(eps=0.3)),
        (x.to_dense(dtype=mg.float32), tx.to_dense(dtype=torch.float32)),
        (x.to_sparse(dense_dim=1).to_dense(), tx.to_sparse(dense_dim=1).to_dense()),
        (x.clone().resize_(size=(2, 3)), tx.clone().resize_(size=(2, 3))),
        (x.clone().resize_as_(the_template=y[:2]), tx.clone().resize_as_(the_template=ty[:2])),
    ]  # fmt: skip
    for got, want in pairs:
        assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-15)
    assert [t.tolist() for t in x.split(split_size=2, dim=1)] == [
        t.tolist() for t in tx.split(split_size=2, dim=1)
    ]
    assert x.to_sparse(dense_dim=1).sparse_dim() == tx.to_sparse(dense_dim=1).sparse_dim() == 1
    with pytest.warns(UserWarning, match="deprecated"):  # as PyTorch: a reshape only
        assert x.resize_as(tensor=y.reshape(4, 5)).shape == (4, 5)
    assert x.record_stream(s=None) is None  # nothing to record: memory lives while referenced


def test_gather_with_sparse_grad_gives_a_sparse_gradient():
    idx = np.array([[0, 3], [1, 1], [2, 0], [3, 2], [0, 0]])  # a repeated pick adds up
    x, tx = mg.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    x.gather(dim=1, index=mg.tensor(idx), sparse_grad=True).pow(2).sum().backward()
    tx.gather(dim=1, index=torch.tensor(idx), sparse_grad=True).pow(2).sum().backward()
    assert x.grad.is_sparse and tx.grad.is_sparse
    np.testing.assert_allclose(x.grad.to_dense().numpy(), tx.grad.to_dense().numpy())


def test_method_keywords_refused_where_manygrad_cannot_honour_them():
    x = mg.tensor(X)
    with pytest.raises(RuntimeError, match="Sparse with blocksize argument given"):
        x.to_sparse(layout=mg.sparse_coo, blocksize=(1, 1))  # as PyTorch
    with pytest.raises(RuntimeError, match="without blocksize argument"):
        x.to_sparse(layout=mg.sparse_bsr)  # as PyTorch: the block layouts need a blocksize
    with pytest.raises(TypeError, match="sparse_dim or dense_dim"):
        x.to_sparse(1, dense_dim=1)
    with pytest.raises(ValueError, match="dense_dim"):
        x.to_sparse(dense_dim=2)  # as PyTorch: in 0..ndim-1
    with pytest.raises(TypeError, match="one of size, dtype"):
        x.view(4, 5, size=(4, 5))
    with pytest.raises(TypeError, match="not both"):
        x.max(1, other=x)
    with pytest.raises(TypeError, match="twice"):
        x.clone().copy_(x, other=x)
    with pytest.warns(DeprecationWarning, match="device"):
        assert x.is_pinned(device="cuda") is False
    with pytest.warns(DeprecationWarning, match="device"), pytest.raises(RuntimeError, match="cpu"):
        x.pin_memory(device="cpu")


# ------------------------------------------------------------------ random fills
FILLS = [
    ("uniform_", (0.5,), dict(to=2.0)),
    ("normal_", (), dict(mean=1.0, std=2.0)),
    ("exponential_", (), dict(lambd=3.0)),
    ("random_", (2,), dict(to=10)),
]


@pytest.mark.parametrize("name, args, kw", FILLS, ids=[f[0] for f in FILLS])
def test_random_fill_with_a_generator(name, args, kw):
    def fill(seed):
        g = mg.Generator().manual_seed(seed)
        return getattr(mg.zeros(1000), name)(*args, **kw, generator=g).numpy()

    mg.manual_seed(0)
    ref = mg.rand(5).numpy()
    mg.manual_seed(0)
    first = fill(7)
    np.testing.assert_array_equal(mg.rand(5).numpy(), ref)  # the device's stream untouched
    mg.manual_seed(1)
    np.testing.assert_array_equal(fill(7), first)  # the same seed: the same values
    assert not np.array_equal(fill(8), first)  # the generator, not the device's stream, draws
    mg.manual_seed(7)  # NOTE: as in PyTorch, a generator draws as the device's stream would
    np.testing.assert_array_equal(getattr(mg.zeros(1000), name)(*args, **kw).numpy(), first)
    lo = args[0] if args else None
    if name in ("uniform_", "random_"):  # PyTorch's bounds: [from, to)
        assert lo <= first.min() and first.max() < kw["to"]
    if name == "exponential_":
        assert first.min() >= 0 and abs(first.mean() - 1 / 3) < 0.05


def test_uniform_fill_draws_what_rand_draws_from_the_generator():
    got = mg.zeros(6).uniform_(-1.0, to=3.0, generator=mg.Generator().manual_seed(3))
    want = mg.rand(6, generator=mg.Generator().manual_seed(3)) * 4.0 - 1.0
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_random_fill_refuses_a_generator_of_another_kind():
    with pytest.raises(TypeError, match="generator"):
        mg.zeros(3).normal_(generator=3)
    with pytest.raises(TypeError, match="generator"):
        mg.zeros(3).uniform_(generator=torch.Generator())
