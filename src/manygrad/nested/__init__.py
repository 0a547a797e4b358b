"""``manygrad.nested``: nested tensors (a batch of tensors of different sizes), as
``torch.nested``.

Build one with ``nested_tensor`` (copies), ``as_nested_tensor`` (keeps the gradient path
to the components), ``narrow`` or ``nested_tensor_from_jagged``. Two layouts:

- ``mg.jagged`` (one ragged dim, ``(B, j1, D...)``): the components packed into one
  ``values()`` tensor with ``offsets()`` (and ``lengths()`` after ``narrow``);
  elementwise and last-dim ops run once over the packed values;
- ``mg.strided`` (the default): a list of components that may differ in any dim; ``nt.shape``
  is refused and ``nt.size(i)`` raises for an irregular dim, as in PyTorch.

Supported: ``unbind``, ``to_padded_tensor``, ``size``/``shape``/``dim``/``dtype``/
``device``/``layout``/``requires_grad``/``grad``; elementwise unary functions and methods
(``F.relu``, ``F.gelu``, ``F.silu``, ``mg.sigmoid``, ``nt.tanh()``, ``nt.exp()``, ``-nt``,
``F.dropout``, ...); ``+ - * / **`` with a nested tensor of the same structure, a number,
or a dense tensor over the dims after the ragged one; ``F.linear``/``nn.Linear``,
``F.layer_norm``/``nn.LayerNorm``, ``softmax``/``log_softmax``, ``sum``/``mean`` over one
dim; ``transpose`` (``(B, j, H, D) -> (B, H, j, D)``); ``F.scaled_dot_product_attention``
on nested query/key/value (each sequence attends within itself); ``@``; ``to``, ``clone``,
``detach``. Other ops raise ``NotImplementedError`` naming the op and ``to_padded_tensor``.

Example:
    >>> nt = mg.nested.nested_tensor([mg.randn(2, 4), mg.randn(3, 4)], layout=mg.jagged)
    >>> y = mg.nn.Linear(4, 8)(nt).relu()          # (2, j1, 8)
    >>> dense = y.to_padded_tensor(0.0)            # (2, 3, 8)
"""

from __future__ import annotations

import itertools

from .. import dtypes as D
from ..sparse import jagged, strided
from ..tensor import Tensor
from . import _functional
from ._tensor import NestedInt, NestedTensor, NestedUnsupportedError

__all__ = [
    "NestedTensor",
    "as_nested_tensor",
    "nested_tensor",
    "nested_tensor_from_jagged",
    "narrow",
    "to_padded_tensor",
]


def _mg():
    import manygrad

    return manygrad


def _check_layout(layout, op: str):
    layout = strided if layout is None else layout
    if layout not in (strided, jagged):
        raise RuntimeError(f"{op}: layout must be mg.strided or mg.jagged, got {layout}")
    return strided if layout == strided else jagged


def _components(tensor_list, op: str) -> list:
    if isinstance(tensor_list, Tensor) or not isinstance(tensor_list, (list, tuple)):
        raise TypeError(f"{op}: expected a list of tensors, got {type(tensor_list).__name__}")
    comps = [t if isinstance(t, Tensor) else _mg().tensor(t) for t in tensor_list]
    for i, c in enumerate(comps[1:], 1):
        if c.ndim != comps[0].ndim:
            raise RuntimeError(
                f"All Tensors given to nested_tensor must have the same dimension. Found "
                f"dimension {c.ndim} for Tensor at index {i} and dimension {comps[0].ndim} "
                "for Tensor at index 0."
            )
    return comps


def _pack(comps: list, layout, op: str) -> NestedTensor:
    mg = _mg()
    if layout is strided:
        return NestedTensor._strided(comps)
    if not comps:
        raise RuntimeError(f"{op}: the jagged layout needs at least one component")
    if comps[0].ndim == 0 or any(c.shape[1:] != comps[0].shape[1:] for c in comps):
        raise RuntimeError(
            "Cannot represent given tensor list as a nested tensor with the jagged layout. "
            "Note that the jagged layout only allows for a single ragged dimension. For "
            "example: (B, *, D_0, D_1, ..., D_N), with ragged * dim."
        )
    values = mg.cat(comps, 0) if len(comps) > 1 else comps[0].view_as(comps[0])
    offs = [0, *itertools.accumulate(c.shape[0] for c in comps)]
    offsets = mg.tensor(offs, dtype=mg.int64, device=values.device)
    return NestedTensor._jagged(values, offsets, offs)


def nested_tensor(
    tensor_list,
    *,
    dtype=None,
    layout=None,
    device=None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> NestedTensor:
    """A nested tensor holding copies of ``tensor_list`` (a leaf with no gradient path to
    the list).

    Args:
        tensor_list: tensors (or nested lists of numbers) of one number of dims.
        dtype, device: cast / move the components (default: those of the first).
        layout: ``mg.strided`` (default) or ``mg.jagged`` (one ragged dim, the first).
        requires_grad: record gradients into ``nt.grad`` (default False).
        pin_memory: accepted for PyTorch compatibility (default False).

    Example: ``nt = nested_tensor([mg.randn(2, 4), mg.randn(3, 4)], layout=mg.jagged)``.
    """
    layout = _check_layout(layout, "nested_tensor")
    comps = [c.detach().to(device=device, dtype=dtype).clone()
             for c in _components(tensor_list, "nested_tensor")]  # fmt: skip
    nt = _pack(comps, layout, "nested_tensor")
    if layout is jagged:
        nt._values = nt._values.detach()
    if requires_grad:
        nt.requires_grad_(True)
    return nt


def as_nested_tensor(ts, dtype=None, device=None, layout=None) -> NestedTensor:
    """A nested tensor from a list of tensors or a (B, T, ...) tensor, keeping the gradient
    path: gradients of ops on it reach the given tensors.

    Args:
        ts: a list of tensors of one number of dims, or one tensor (its dim 0 the batch).
        dtype, device: cast / move the components (default: unchanged).
        layout: ``mg.strided`` (default) or ``mg.jagged``.

    Example: ``nt = as_nested_tensor([a, b], layout=mg.jagged)``.
    """
    layout = _check_layout(layout, "as_nested_tensor")
    if isinstance(ts, NestedTensor):
        if ts.layout is not layout:
            raise RuntimeError("as_nested_tensor: changing a nested tensor's layout is not "
                               "supported; unbind() it and nest the components again")  # fmt: skip
        return ts.to(device=device, dtype=dtype) if dtype or device else ts
    if isinstance(ts, Tensor):
        if ts.ndim < 2:
            raise RuntimeError(f"as_nested_tensor: a tensor needs at least 2 dims (B, T, ...), "
                               f"got shape {tuple(ts.shape)}")  # fmt: skip
        ts = ts.to(device=device, dtype=dtype) if dtype or device else ts
        if layout is strided:
            return NestedTensor._strided(list(ts.unbind(0)))
        mg = _mg()
        b, t = ts.shape[0], ts.shape[1]
        offs = [i * t for i in range(b + 1)]
        offsets = mg.tensor(offs, dtype=mg.int64, device=ts.device)
        return NestedTensor._jagged(ts.reshape(b * t, *ts.shape[2:]), offsets, offs)
    comps = _components(ts, "as_nested_tensor")
    if dtype is not None or device is not None:
        comps = [c.to(device=device, dtype=dtype) for c in comps]
    return _pack(comps, layout, "as_nested_tensor")


def _per_batch(x, b: int, name: str) -> list:
    if isinstance(x, Tensor):
        x = x.tolist()
    x = [x] * b if isinstance(x, int) else list(x)
    if len(x) != b:
        raise RuntimeError(f"narrow: {name} needs one value per batch entry ({b}), got {len(x)}")
    return [int(v) for v in x]


def narrow(tensor: Tensor, dim: int, start, length, layout=strided) -> NestedTensor:
    """A nested tensor of ``tensor[i].narrow(dim - 1, start[i], length[i])`` for each batch
    entry ``i`` (``start``/``length`` ints or one per entry); the jagged layout views the
    input's memory through ``offsets``/``lengths``.

    Args:
        tensor: a dense (B, T, ...) tensor.
        dim: the dim to narrow; must be 1.
        start, length: ints or (B,) int tensors.
        layout: ``mg.strided`` (default) or ``mg.jagged``.

    Example: ``nt = narrow(x, 1, starts, lengths, layout=mg.jagged)``.
    """
    layout = _check_layout(layout, "narrow")
    if not isinstance(tensor, Tensor) or tensor.ndim < 2:
        raise RuntimeError("narrow: expected a dense tensor of at least 2 dims (B, T, ...)")
    if dim != 1:
        raise RuntimeError(f"narrow(): only dim=1 is supported, got dim={dim}")
    b, t = tensor.shape[0], tensor.shape[1]
    starts, lens = _per_batch(start, b, "start"), _per_batch(length, b, "length")
    if any(s < 0 or n < 0 or s + n > t for s, n in zip(starts, lens)):
        raise RuntimeError(f"narrow: start + length must lie within dim 1 of size {t}, got "
                           f"start {starts} and length {lens}")  # fmt: skip
    if layout is strided:
        return NestedTensor._strided(
            [tensor[i].narrow(0, s, n) for i, (s, n) in enumerate(zip(starts, lens))]
        )
    mg = _mg()
    offs = [s + i * t for i, s in enumerate(starts)]
    offs.append(offs[-1] + lens[-1])
    offsets = mg.tensor(offs, dtype=mg.int64, device=tensor.device)
    lengths = mg.tensor(lens, dtype=mg.int64, device=tensor.device)
    values = tensor.reshape(b * t, *tensor.shape[2:])
    return NestedTensor._jagged(values, offsets, offs, lengths, lens)


def nested_tensor_from_jagged(
    values: Tensor, offsets: Tensor | None = None, lengths: Tensor | None = None,
    jagged_dim: int | None = None, min_seqlen=None, max_seqlen=None,
) -> NestedTensor:  # fmt: skip
    """A jagged nested tensor viewing ``values`` (components packed along ``jagged_dim - 1``)
    split at ``offsets`` (B + 1 ints); with ``lengths``, component ``i`` is
    ``lengths[i]`` long from ``offsets[i]``.

    Args:
        values: the packed components.
        offsets: (B + 1,) int tensor; may be None when ``lengths`` is given.
        lengths: (B,) int tensor (default None).
        jagged_dim: the ragged dim of the result (default 1).
        min_seqlen, max_seqlen: accepted for PyTorch compatibility.

    Example: ``nt = nested_tensor_from_jagged(values, offsets)``.
    """
    mg = _mg()
    if offsets is None:
        if lengths is None:
            raise RuntimeError("nested_tensor_from_jagged(): At least one of offsets or "
                               "lengths is required.")  # fmt: skip
        lens = [int(n) for n in lengths.tolist()]
        offs = [0, *itertools.accumulate(lens)]
        offsets = mg.tensor(offs, dtype=mg.int64, device=values.device)
        lengths = None
    else:
        offs = [int(o) for o in offsets.tolist()]
    r = 1 if jagged_dim is None else jagged_dim
    if not 1 <= r <= values.ndim:
        raise RuntimeError(f"nested_tensor_from_jagged: jagged_dim must be in [1, "
                           f"{values.ndim}], got {jagged_dim}")  # fmt: skip
    lens = None if lengths is None else [int(n) for n in lengths.tolist()]
    if (
        offsets.dtype not in (D.int64, D.int32)
        or offs[-1 if lens is None else 0] > (values.shape[r - 1])
    ):
        raise RuntimeError(f"nested_tensor_from_jagged: offsets {offs} must be int64 and "
                           f"fit values of shape {tuple(values.shape)}")  # fmt: skip
    return NestedTensor._jagged(values, offsets, offs, lengths, lens, r)


def to_padded_tensor(input: NestedTensor, padding: float, output_size=None) -> Tensor:  # noqa: A002
    """``input.to_padded_tensor(padding, output_size)``: the components padded and stacked.

    Example: ``x = mg.nested.to_padded_tensor(nt, 0.0)``.
    """
    if not isinstance(input, NestedTensor):
        raise RuntimeError("to_padded_tensor: expected a nested tensor")
    return input.to_padded_tensor(padding, output_size)


def masked_select(tensor: Tensor, mask: Tensor) -> NestedTensor:
    """A jagged nested tensor of the elements of each row of ``tensor`` where ``mask`` is
    True (``mask`` broadcasts to ``tensor``'s (B, T) shape).

    Example: ``nt = masked_select(x, x > 0)``.
    """
    mask = mask.expand(*tensor.shape) if tuple(mask.shape) != tuple(tensor.shape) else mask
    if tensor.ndim != 2:
        raise RuntimeError("masked_select: expected a 2-d (B, T) tensor")
    rows = [t[m] for t, m in zip(tensor.unbind(0), mask.unbind(0))]
    return as_nested_tensor(rows, layout=jagged)


_functional.install()

_ = NestedInt, NestedUnsupportedError  # public classes, importable from here
