"""Products and distances: einsum, tensordot, outer/inner/dot, mv, addmm & co, cross,
cdist, dist. Compositions of matmul, mul and sums, so gradients of any order follow."""

from __future__ import annotations

from .. import backend
from ..autograd import Function, autocast_fp32, autocast_lower
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from ._common import check_same_dtype
from .elementwise import _promote, _zero_grad_of, mul, where
from .elementwise import abs as _abs
from .indexing import _dim
from .linalg import matmul
from .movement import narrow, permute, reshape, squeeze, stack, unsqueeze
from .reduce import amax, amin, sum

# ---------------------------------------------------------------------------- einsum

_POOL = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # NOTE: stands for dims under '...' (inputs use a-z)


def _parse(eq: str, ops) -> tuple[list[str], str]:
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise ShapeError(f"einsum: {len(terms)} operand terms in {eq!r} for {len(ops)} tensors")
    nell = 0
    out_terms = []
    for t, x in zip(terms, ops):
        if "..." in t:
            k = x.ndim - (len(t) - 3)
            nell = max(nell, k)
            t = t.replace("...", _POOL[len(_POOL) - k :] if k else "")
        if len(t) != x.ndim:
            raise ShapeError(f"einsum: term {t!r} has {len(t)} letters for a tensor of "
                             f"{x.ndim} dims (shape {tuple(x.shape)})")  # fmt: skip
        out_terms.append(t)
    ell = _POOL[len(_POOL) - nell :] if nell else ""
    if arrow:
        rhs = rhs.replace("...", ell)
    else:
        letters = "".join(out_terms)
        rhs = ell + "".join(
            sorted(c for c in set(letters) if c.islower() and letters.count(c) == 1)
        )
    return out_terms, rhs


def _undiag(x: Tensor, t: str) -> tuple[Tensor, str]:
    """Repeated letters in one term (``ii``) pick the diagonal."""
    from .shaping import diagonal

    while True:
        rep = next((c for c in t if t.count(c) > 1), None)
        if rep is None:
            return x, t
        i = t.index(rep)
        j = t.index(rep, i + 1)
        x = diagonal(x, 0, i, j)
        t = t[:i] + t[i + 1 : j] + t[j + 1 :] + rep


def _sum_out(x: Tensor, t: str, keep: set) -> tuple[Tensor, str]:
    drop = [i for i, c in enumerate(t) if c not in keep]
    if drop:
        x = sum(x, tuple(drop))
        t = "".join(c for c in t if c in keep)
    return x, t


def _contract(a, ta, b, tb, keep):
    a, ta = _sum_out(a, ta, keep | set(tb))
    b, tb = _sum_out(b, tb, keep | set(ta))
    batch = [c for c in ta if c in tb and c in keep]
    con = [c for c in ta if c in tb and c not in keep]
    ao = [c for c in ta if c not in tb]
    bo = [c for c in tb if c not in ta]
    size = {}
    for c in batch:
        size[c] = max(a.shape[ta.index(c)], b.shape[tb.index(c)])
    for t, x in ((ta, a), (tb, b)):
        for c in t:
            size.setdefault(c, x.shape[t.index(c)])
    a = permute(a, *[ta.index(c) for c in batch + ao + con])
    b = permute(b, *[tb.index(c) for c in batch + con + bo])
    bs = tuple(size[c] for c in batch)
    a = a.expand(*bs, *a.shape[len(batch) :]) if tuple(a.shape[: len(batch)]) != bs else a
    b = b.expand(*bs, *b.shape[len(batch) :]) if tuple(b.shape[: len(batch)]) != bs else b

    def n(cs):
        p = 1
        for c in cs:
            p *= size[c]
        return p

    out = matmul(reshape(a, n(batch), n(ao), n(con)), reshape(b, n(batch), n(con), n(bo)))
    return reshape(out, *[size[c] for c in batch + ao + bo]), "".join(batch + ao + bo)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _from_sublists(args) -> tuple[str, tuple]:
    """``(a, [0, 1], b, [1, 2], [0, 2])`` as ``("ab,bc->ac", (a, b))``: subscripts are
    integers in [0, 52) and ``...`` (Ellipsis); the output sublist is optional."""

    def letters(sub) -> str:
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, int) and 0 <= s < len(_LETTERS):
                out.append(_LETTERS[s])
            else:
                raise ValueError(f"einsum: sublist subscripts must be integers in [0, 52) or "
                                 f"Ellipsis, got {s!r}")  # fmt: skip
        return "".join(out)

    ops, terms = [], []
    rest = list(args)
    while len(rest) >= 2 and isinstance(rest[0], Tensor):
        ops.append(rest.pop(0))
        terms.append(letters(rest.pop(0)))
    if len(rest) > 1 or (rest and isinstance(rest[0], Tensor)):
        raise ValueError("einsum: the sublist form is einsum(op1, sublist1, op2, sublist2, ..., "
                         "[output_sublist])")  # fmt: skip
    eq = ",".join(terms) + ("->" + letters(rest[0]) if rest else "")
    return eq, tuple(ops)


def einsum(equation: str, *operands) -> Tensor:
    """Sums of products over the letters of ``equation`` (NumPy's and PyTorch's notation,
    with ``...`` and implicit outputs), contracted pairwise from the left with matmul.

    Example: ``mg.einsum("bij,bjk->bik", a, b)``
    """
    if isinstance(equation, Tensor):  # the sublist form: einsum(a, [0, 1], b, [1, 2], [0, 2])
        equation, operands = _from_sublists((equation, *operands))
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    terms, rhs = _parse(equation, operands)
    xs = []
    for x, t in zip(operands, terms):
        xs.append(_undiag(x, t))
    for i in range(len(xs)):  # letters used nowhere else are summed right away
        rest = set(rhs) | {c for j, (_, t) in enumerate(xs) if j != i for c in t}
        xs[i] = _sum_out(*xs[i], rest)
    x, t = xs[0]
    for i in range(1, len(xs)):
        keep = set(rhs) | {c for _, tt in xs[i + 1 :] for c in tt}
        x, t = _contract(x, t, *xs[i], keep)
    x, t = _sum_out(x, t, set(rhs))
    missing = [c for c in rhs if c not in t]
    if missing:
        raise ShapeError(f"einsum: output letters {missing} appear in no operand")
    return permute(x, *[t.index(c) for c in rhs]) if t != rhs else x


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sum of products over the last ``dims`` dims of ``a`` and the first of ``b`` (or over
    the dims listed in a pair of lists)."""
    if isinstance(dims, int):
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    da = [_dim(d, a.ndim, "tensordot") for d in da]
    db = [_dim(d, b.ndim, "tensordot") for d in db]
    if len(da) != len(db):
        raise ShapeError(f"tensordot: both dimension lists should have same length, got {da} "
                         f"and {db}")  # fmt: skip
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            # NOTE: as PyTorch, a contracted dim of size 1 broadcasts against the other side
            if a.shape[i] == 1:
                b = sum(b, j, keepdim=True)
            elif b.shape[j] == 1:
                a = sum(a, i, keepdim=True)
            else:
                raise ShapeError(
                    f"tensordot: contracted dimensions need to match, but first has size "
                    f"{a.shape[i]} in dim {i} and second has size {b.shape[j]} in dim {j}"
                )
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    ta = [next(letters) for _ in range(a.ndim)]
    tb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(da, db):
        tb[j] = ta[i]
    out = [c for i, c in enumerate(ta) if i not in da] + [
        c for j, c in enumerate(tb) if j not in db
    ]
    return einsum(f"{''.join(ta)},{''.join(tb)}->{''.join(out)}", a, b)


# ---------------------------------------------------------------------------- products


def _need(x: Tensor, nd: int, op: str, what: str):
    if x.ndim != nd:
        raise ShapeError(f"{op}: {what} must have {nd} dims, got shape {tuple(x.shape)}")


def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    _need(input, 1, "outer", "input")
    _need(vec2, 1, "outer", "vec2")
    return mul(unsqueeze(input, 1), unsqueeze(vec2, 0))


ger = outer


def inner(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Sum of products over the last dims (a product with a scalar if either is 0-d)."""
    if input.ndim == 0 or other.ndim == 0:
        return mul(input, other)
    return tensordot(input, other, ([-1], [-1]))


def dot(input: Tensor, tensor: Tensor) -> Tensor:  # noqa: A002
    """The dot product of two 1-d tensors."""
    _need(input, 1, "dot", "input")
    _need(tensor, 1, "dot", "tensor")
    if input._data.dtype != tensor._data.dtype:
        check_same_dtype("dot", ("input", input), ("tensor", tensor))
    return matmul(input, tensor)


def vdot(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The dot product of 1-d tensors, conjugating the first (for complex values)."""
    _need(input, 1, "vdot", "input")
    _need(other, 1, "vdot", "other")
    return dot(input.conj() if input.is_complex() else input, other)


def mv(input: Tensor, vec: Tensor) -> Tensor:  # noqa: A002
    _need(input, 2, "mv", "input")
    _need(vec, 1, "mv", "vec")
    if not isinstance(input, Tensor):  # NOTE: a sparse COO or CSR matrix
        return matmul(input, vec)
    if input._data.dtype != vec._data.dtype:
        check_same_dtype("mv", ("input", input), ("vec", vec))
    return matmul(input, vec)


def _add_scaled(input, prod, beta, alpha, op):
    # NOTE: beta=0 ignores input entirely (NaN in it does not propagate), as in PyTorch
    if isinstance(input, Tensor) and input._data.dtype != prod._data.dtype:
        check_same_dtype(op, ("input", input), ("mat1", prod))
    prod = prod if alpha == 1 else mul(prod, alpha)
    if beta == 0:
        return prod
    return (input if beta == 1 else mul(input, beta)) + prod


@autocast_lower()
def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (mat1 @ mat2)``."""
    _need(mat1, 2, "addmm", "mat1")
    _need(mat2, 2, "addmm", "mat2")
    return _add_scaled(input, matmul(mat1, mat2), beta, alpha, "addmm")


@autocast_lower()
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (mat @ vec)``."""
    return _add_scaled(input, mv(mat, vec), beta, alpha, "addmv")


@autocast_lower()
def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * outer(vec1, vec2)``."""
    return _add_scaled(input, outer(vec1, vec2), beta, alpha, "addr")


@autocast_lower()
def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (batch1 @ batch2)`` for batches of matrices."""
    _need(batch1, 3, "baddbmm", "batch1")
    _need(batch2, 3, "baddbmm", "batch2")
    return _add_scaled(input, matmul(batch1, batch2), beta, alpha, "baddbmm")


@autocast_lower()
def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * sum_b(batch1[b] @ batch2[b])``."""
    _need(batch1, 3, "addbmm", "batch1")
    _need(batch2, 3, "addbmm", "batch2")
    return _add_scaled(input, sum(matmul(batch1, batch2), 0), beta, alpha, "addbmm")


def chain_matmul(*matrices) -> Tensor:
    out = matrices[0]
    for m in matrices[1:]:
        out = matmul(out, m)
    return out


def cross(input: Tensor, other: Tensor, dim=None) -> Tensor:  # noqa: A002
    """The 3-d cross product along ``dim`` (the first dim of size 3 when None)."""
    if dim is None:
        dim = next((i for i, n in enumerate(input.shape) if n == 3), None)
        if dim is None:
            raise ShapeError(f"cross: no dim of size 3 in shape {tuple(input.shape)}")
    d = _dim(dim, input.ndim, "cross")
    if input.shape[d] != 3 or other.shape[d] != 3:
        raise ShapeError(f"cross: dim {d} must have size 3, got shapes {tuple(input.shape)} "
                         f"and {tuple(other.shape)}")  # fmt: skip
    a = [squeeze(narrow(input, d, i, 1), d) for i in range(3)]
    b = [squeeze(narrow(other, d, i, 1), d) for i in range(3)]
    c = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return stack(c, d)


class _NoGradOf(Function):
    """``y`` (a view) as a node of ``x``'s graph that passes ``x`` no gradient: ``x.grad``
    stays None, as after PyTorch's p=0 vector norms (a count of non-zeros)."""

    def forward(self, y, x):
        return y.view()

    def backward(self, g):
        return None, None

    def backward_graph(self, g):
        return None, None


def _count_node(count: Tensor, x: Tensor) -> Tensor:
    return _NoGradOf.apply(count, x) if x.requires_grad else count


def _pnorm(d: Tensor, p, dim, keepdim=False) -> Tensor:
    if p == 1:
        return sum(_abs(d), dim, keepdim)
    if p == float("inf"):
        return amax(_abs(d), dim, keepdim)
    if p == -float("inf"):
        return amin(_abs(d), dim, keepdim)
    if p == 0:
        a = _abs(d) if d.is_complex() else d  # NOTE: a complex tensor's norms are real
        return _count_node(sum((a != 0).to(a.dtype), dim, keepdim), d)
    from .pnorm import pnorm

    return pnorm(d, p, dim, keepdim)


class _EuclideanDist(Function):
    """PyTorch's matrix-product form of p=2 distances (``_euclidean_dist``): the padded rows
    ``[-2a, |a|^2, 1] . [b, 1, |b|^2]`` in one product, clamped at 0, square-rooted. Its
    rounding is PyTorch's (a point's distance to itself may come out > 0) and so is its
    gradient: ``g / d`` (0 where d is 0) applied as two products."""

    def forward(self, x1, x2):
        xp = backend.array_module(x1)
        n1, n2 = (x1 * x1).sum(-1, keepdims=True), (x2 * x2).sum(-1, keepdims=True)
        a = xp.concatenate([x1 * -2, n1, xp.ones_like(n1)], -1)
        b = xp.concatenate([x2, xp.ones_like(n2), n2], -1)
        d = xp.matmul(a, xp.swapaxes(b, -1, -2))
        xp.sqrt(xp.maximum(d, 0, out=d), out=d)  # NOTE: maximum keeps NaN, as clamp_min
        self.x1, self.x2, self.d = x1, x2, d
        return d

    def backward(self, g):
        xp = backend.array_module(g)
        with backend.quiet_float_errors():
            ratio = xp.where(self.d == 0, xp.zeros((), g.dtype), g / self.d)
        rt = xp.swapaxes(ratio, -1, -2)
        g1 = self.x1 * ratio.sum(-1, keepdims=True) - xp.matmul(ratio, self.x2)
        g2 = self.x2 * rt.sum(-1, keepdims=True) - xp.matmul(rt, self.x1)
        return g1, g2

    def backward_graph(self, g):
        x1, x2 = self.saved_input(0, self.x1), self.saved_input(1, self.x2)
        ratio = where(Tensor._wrap(self.d == 0), 0.0, g / self.saved_output(self.d))
        rt = ratio.mT
        g1 = x1 * sum(ratio, -1, True) - matmul(ratio, x2)
        return g1, x2 * sum(rt, -1, True) - matmul(rt, x1)


_CDIST_MODES = {None: 0, "use_mm_for_euclid_dist_if_necessary": 0, "use_mm_for_euclid_dist": 1,
                "donot_use_mm_for_euclid_dist": 2}  # fmt: skip


@autocast_fp32()
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode=None) -> Tensor:
    """Pairwise p-norm distances between the rows of ``x1`` (.., P, M) and ``x2`` (.., R, M).

    For p=2 with more than 25 rows on either side (``compute_mode`` default), or with
    ``compute_mode="use_mm_for_euclid_dist"``, the distances come from one matrix product,
    as PyTorch's (faster; less exact for near points); ``"donot_use_mm_for_euclid_dist"``
    always takes the differences."""
    if compute_mode not in _CDIST_MODES:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"cdist: expected (.., P, M) and (.., R, M), got {tuple(x1.shape)} "
                         f"and {tuple(x2.shape)}")  # fmt: skip
    for name, x in (("X1", x1), ("X2", x2)):
        if x.is_complex():  # NOTE: as PyTorch's (dist takes complex tensors)
            raise DTypeError(f"cdist only supports floating-point dtypes, {name} got: "
                             f"{x.dtype.name}; for p=2, view_as_real(x).flatten(-2) gives the "
                             "same distances")  # fmt: skip
    mode, r1, r2 = _CDIST_MODES[compute_mode], x1.shape[-2], x2.shape[-2]
    if p == 2 and (mode == 1 or (mode == 0 and (r1 > 25 or r2 > 25))):
        if x1.numel() and x2.numel() and x1.shape[-1]:
            return _EuclideanDist.apply(*_promote(x1, x2))  # NOTE: as the differences do
    diff = unsqueeze(x1, -2) - unsqueeze(x2, -3)
    if p == 0:  # NOTE: PyTorch's cdist gives zero gradients here, where its norms give None
        return _zero_grad_of(_zero_grad_of(_pnorm(diff, p, -1), x1), x2)
    return _pnorm(diff, p, -1)


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:  # noqa: A002
    """The p-norm of ``input - other`` (all elements).

    Complex inputs give the (real) norm of ``|input - other|``.

    Example:
        >>> mg.dist(mg.tensor([1 + 1j, 2j]), mg.tensor([1j, 0j]))   # tensor(2.2361)
    """
    d = input - other
    return _pnorm(reshape(d, -1), p, 0)


from ._common import public  # noqa: E402

__all__ = public(globals())
