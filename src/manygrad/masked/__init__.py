"""``manygrad.masked``: masked reductions and ``MaskedTensor``, as ``torch.masked``.

Masked reductions and normalizations take a bool ``mask=`` that broadcasts to the input
(False leaves an element out) and return plain Tensors:

- ``sum, prod, amax, amin, argmax, argmin, mean, median, norm, var, std, logsumexp``
  (``dim`` an int, a tuple or None for all dims; ``keepdim``; ``dtype``);
- ``cumsum, cumprod, softmax, log_softmax, softmin, normalize`` (one ``dim``);
- ``logaddexp(input, other, input_mask=, other_mask=)``.

Masked-out elements take the identity of the operation (0 for sum, 1 for prod, ``-inf``
for amax/argmax/logsumexp/softmax, ``inf`` for amin/softmin, or the dtype's extreme for
integers), so a slice with every element masked out gives that identity: 0 for ``sum``,
``-inf`` for ``amax`` and ``logsumexp``; ``mean``, ``median``, ``var``, ``std`` and
``softmax`` give ``nan`` there. ``var``/``std`` divide by ``max(count - correction, 0)``
(``correction=1`` by default, or ``unbiased=``). Integer and bool inputs sum in int64;
``argmax``/``argmin`` return the index in the input's dtype unless ``dtype=`` is given (as
PyTorch). Gradients reach the masked-in elements only.

``MaskedTensor`` (``masked_tensor(data, mask, requires_grad=False)``, the differentiable
``as_masked_tensor(data, mask)``, ``is_masked_tensor``) pairs data with a bool mask of
the same shape; ``get_data()``, ``get_mask()`` and ``to_tensor(value)`` give plain
Tensors. It supports:

- elementwise unary ops as methods and operators (``exp, log, sqrt, sigmoid, abs, neg,
  clamp, pow, ...``; ``-mt``, ``abs(mt)``, ``mt ** 2``) and their in-place forms
  (``exp_``), which keep the mask;
- binary ops (``add, sub, mul, div, maximum, eq, lt, ...``; ``mt + x``, ``mt > 0``), whose
  MaskedTensor operands must have equal masks (a ValueError otherwise); a plain Tensor or a
  number as the other operand counts as masked in. A plain Tensor must stand on the right
  (``mt + t``, not ``t + mt``);
- reductions ``sum, mean, prod, amax, amin, argmax, argmin, all, norm, var, std`` with no
  arguments (one 0-d result) or with ``dim``/``keepdim``/``dtype``; the result is masked
  out where no element was masked in;
- ``mt.softmax(dim)``, ``mt.where(condition, other)``;
- indexing and slicing (``mt[0]``, ``mt[:, 1:]``, ``mt[idx]``, ``mt[bool_mask]``),
  ``select, transpose, t, view, reshape, flatten, unsqueeze, expand, split, chunk,
  unfold``, ``clone, detach, contiguous, to, cpu, cuda, float, double, ...``;
- autograd: ``masked_tensor(..., requires_grad=True)`` is a leaf whose ``.grad`` is a
  MaskedTensor with its mask; gradients flow through the ops above, ``get_data()`` and
  ``to_tensor()``; ``as_masked_tensor(x, m)`` passes gradients on to ``x``.

Differences from PyTorch: ``MaskedTensor`` is not a ``manygrad.Tensor`` subclass, so
``isinstance(mt, mg.Tensor)`` is False and the free functions (``mg.exp(mt)``,
``mg.where(c, mt, y)``, ``F.softmax(mt, 1)``, ``mg.cat``) do not take it: call the methods
instead. The gradient of ``as_masked_tensor``'s input is a plain Tensor. Any other Tensor
method or attribute on a MaskedTensor raises a TypeError that names it.

Example:
    >>> import manygrad as mg
    >>> x = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    >>> m = mg.tensor([[True, False, True], [False, False, False]])
    >>> mg.masked.sum(x, 1, mask=m)  # tensor([4., 0.])
    >>> mt = mg.masked.masked_tensor(x, m)
    >>> mt.amax(1)  # MaskedTensor([3.0000, --])
"""

from ._ops import (
    amax,
    amin,
    argmax,
    argmin,
    cumprod,
    cumsum,
    log_softmax,
    logaddexp,
    logsumexp,
    mean,
    median,
    norm,
    normalize,
    prod,
    softmax,
    softmin,
    std,
    sum,
    var,
)
from ._tensor import MaskedTensor, as_masked_tensor, is_masked_tensor, masked_tensor

__all__ = [
    "amax",
    "amin",
    "argmax",
    "argmin",
    "as_masked_tensor",
    "cumprod",
    "cumsum",
    "is_masked_tensor",
    "log_softmax",
    "logaddexp",
    "logsumexp",
    "masked_tensor",
    "MaskedTensor",
    "mean",
    "median",
    "norm",
    "normalize",
    "prod",
    "softmax",
    "softmin",
    "std",
    "sum",
    "var",
]
