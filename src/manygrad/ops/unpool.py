"""max_unpool1d/2d/3d (the partial inverse of max pooling: each value goes back to the
position its index names, zeros elsewhere), the ``*_with_indices`` names of max pooling,
and pdist. Compositions of differentiable ops (scatter, gather, norm)."""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .. import backend, creation
from ..autograd import Function
from ..cpu import _sortscan
from ..errors import ShapeError
from ..tensor import Tensor
from .pool import max_pool1d, max_pool2d
from .reduce import norm
from .scatter import scatter


def _ntuple(v, n: int, what: str) -> tuple:
    v = (v,) * n if isinstance(v, int) else tuple(v)
    if len(v) != n:
        raise ValueError(f"max_unpool: {what} must be an int or a tuple of {n}, got {v}")
    return v


def _unpool(op: str, nd: int, input: Tensor, indices: Tensor, kernel_size, stride, padding,
            output_size) -> Tensor:  # fmt: skip
    if input.ndim not in (nd + 1, nd + 2) or tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(f"{op}: expected input of {nd + 1} or {nd + 2} dims and indices of "
                         f"the same shape, got {tuple(input.shape)} and "
                         f"{tuple(indices.shape)}")  # fmt: skip
    k = _ntuple(kernel_size, nd, "kernel_size")
    s = k if stride is None else _ntuple(stride, nd, "stride")
    p = _ntuple(padding, nd, "padding")
    spatial = tuple(input.shape[-nd:])
    size = tuple((n - 1) * si - 2 * pi + ki for n, si, pi, ki in zip(spatial, s, p, k))
    if output_size is not None:
        size = tuple(output_size)[-nd:]
    lead = tuple(input.shape[:-nd])
    flat = 1
    for v in size:
        flat *= v
    out = creation.zeros(*lead, flat, dtype=input.dtype, device=input.device)
    src = input.reshape(*lead, -1)
    idx = indices.reshape(*lead, -1)
    # NOTE: written, not added: overlapping windows (kernel > stride, fractional pooling)
    # pick one input position twice, and PyTorch puts its value there once
    return scatter(out, len(lead), idx, src).reshape(*lead, *size)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:  # fmt: skip
    """Values of (N, C, L) put back at the flat positions ``indices`` (from max_pool1d with
    ``return_indices=True``), zeros elsewhere."""
    return _unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:  # fmt: skip
    """The partial inverse of max_pool2d (SegNet's decoder).

    Example: ``y, i = F.max_pool2d(x, 2, return_indices=True); F.max_unpool2d(y, i, 2)``
    """
    return _unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0,
                 output_size=None) -> Tensor:  # fmt: skip
    """The partial inverse of 3-d max pooling (indices into D * H * W)."""
    return _unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding, output_size)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = True):  # fmt: skip
    """``max_pool1d(..., return_indices=True)``: (values, indices)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = True):  # fmt: skip
    """``max_pool2d(..., return_indices=True)``: (values, indices)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


class Pdist(Function):
    """pdist on the CPU in one C pass each way (``cpu/_sortscan.pdist2`` for p = 2,
    ``pdist`` for the other p >= 0): the values of the tensor formula in ``pdist`` and
    PyTorch's gradients, without its (pairs, M) arrays."""

    def reference(self, x, p):
        """The tensor formula (for gradients of gradients)."""
        return _pdist_formula(x, p)

    def forward(self, x, p):
        self.inputs, self.x, self.p = (x, p), x, p
        self.d = _sortscan.pdist2(x) if p == 2 else _sortscan.pdist(x, p)
        return self.d

    def backward(self, g):
        if self.p == 2:
            return _sortscan.pdist2(self.x, g, self.d), None
        return _sortscan.pdist(self.x, self.p, g, self.d), None


def _pdist_formula(input: Tensor, p) -> Tensor:
    n = input.shape[0]
    # NOTE: the pairs (i < j) row by row, made on the device (Python lists of 160 rows'
    # pairs took 3 ms)
    xp = backend.array_module(input._data)
    with backend.device_scope(input._device):
        ri, ci = (Tensor._wrap(i.astype("int64"), input._device) for i in xp.triu_indices(n, 1))
    return norm(input[ri] - input[ci], p, -1)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    """p-norm distances between all pairs of rows of (N, M): the N(N-1)/2 upper-triangle
    entries of the distance matrix, row by row.

    Example: ``F.pdist(mg.randn(5, 3))``  # shape (10,)
    """
    if input.ndim != 2:
        raise ShapeError(f"pdist: expected a 2-d input (N, M), got shape {tuple(input.shape)}")
    n = input.shape[0]
    if n < 2:
        return creation.zeros(0, dtype=input.dtype, device=input.device)
    if input._data.__class__ is backend.np.ndarray and _sortscan.available():
        # NOTE: 160 rows of 96 float32 values took 4.9 ms (PyTorch 0.2): two row gathers,
        # a difference and a norm over 12,720 x 96 values; the gradient's scatter-adds more
        # (p = 1: 1.5 ms, p = inf 2.7)
        if input._data.dtype.char in "fd" and p >= 0 and input.shape[1]:
            return Pdist.apply(input, float(p))
    return _pdist_formula(input, p)


from ._common import public  # noqa: E402

__all__ = public(globals())
