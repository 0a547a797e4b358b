"""``MaskedTensor``: a data tensor and a bool mask of the same shape, as
``torch.masked.MaskedTensor``; the elements where the mask is False are left out of every
op (printed as ``--``)."""

from __future__ import annotations

import warnings

from .. import backend
from .. import dtypes as D
from ..tensor import Tensor
from ._tensor_ops import MaskedOps

_DATA_DTYPES = ("float16", "float32", "float64", "bool", "int8", "int16", "int32", "int64")


def _mg():
    import manygrad

    return manygrad


def _validate(data, mask) -> None:
    if isinstance(data, MaskedTensor) or not isinstance(data, Tensor):
        raise TypeError(f"MaskedTensor: data must be a Tensor, got {type(data).__name__}")
    if isinstance(mask, MaskedTensor) or not isinstance(mask, Tensor):
        raise TypeError(f"MaskedTensor: mask must be a Tensor, got {type(mask).__name__}")
    if mask.dtype is not D.bool_:
        raise TypeError(f"MaskedTensor: mask must have dtype bool, got {mask.dtype}; pass "
                        "mask.bool()")  # fmt: skip
    if data.dtype.name not in _DATA_DTYPES:
        raise TypeError(f"{data.dtype} is not supported in MaskedTensor; supported data "
                        f"dtypes: {', '.join(_DATA_DTYPES)}")  # fmt: skip
    if data.ndim != mask.ndim:
        raise ValueError(f"MaskedTensor: data.dim() must equal mask.dim(), got {data.ndim} "
                         f"and {mask.ndim}")  # fmt: skip
    if tuple(data.shape) != tuple(mask.shape):
        raise ValueError(f"MaskedTensor: data.size() must equal mask.size(), got "
                         f"{tuple(data.shape)} and {tuple(mask.shape)}")  # fmt: skip
    if data.device != mask.device:
        raise RuntimeError(f"MaskedTensor: data is on {data.device} but mask on "
                           f"{mask.device}; move the mask: mask.to(data.device)")  # fmt: skip


class MaskedTensor(MaskedOps):
    """A tensor whose elements are valid where ``mask`` is True, as
    ``torch.masked.MaskedTensor``.

    Args:
        data: the values (float16/32/64, bool, int8/16/32/64); copied.
        mask: a bool tensor of ``data``'s shape; copied.
        requires_grad: make the MaskedTensor a leaf that records gradients (default False).

    Example:
        >>> mt = MaskedTensor(mg.tensor([1.0, 2.0]), mg.tensor([True, False]))
        >>> mt.sum()  # MaskedTensor(  1.0000, True)
    """

    __slots__ = ("_masked_data", "_masked_mask", "__weakref__")
    __hash__ = object.__hash__

    def __init__(self, data, mask, requires_grad: bool = False):
        _validate(data, mask)
        if data.requires_grad:
            warnings.warn(
                "It is not recommended to create a MaskedTensor with a tensor that "
                "requires_grad (the MaskedTensor does not pass gradients to it). To avoid "
                "this, you can use data.detach().clone(), or as_masked_tensor(data, mask) "
                "to keep the gradient path",
                UserWarning,
                stacklevel=2,
            )
        self._masked_data = data.detach().clone()
        self._masked_mask = mask.clone()
        if requires_grad:
            self._masked_data.requires_grad_(True)

    @classmethod
    def _make(cls, data: Tensor, mask: Tensor) -> MaskedTensor:
        """A MaskedTensor around ``data`` as it is (its autograd history kept), no copies."""
        _validate(data, mask)
        mt = cls.__new__(cls)
        mt._masked_data, mt._masked_mask = data, mask
        return mt

    # ------------------------------------------------------------------ data and mask
    def get_data(self) -> Tensor:
        """The data (masked-out elements included) as a Tensor whose gradient flows back
        to this MaskedTensor."""
        return self._masked_data.view_as(self._masked_data)

    def get_mask(self) -> Tensor:
        """The bool mask."""
        return self._masked_mask

    def to_tensor(self, value) -> Tensor:
        """A plain Tensor with the masked-out elements set to ``value`` (differentiable).

        Example: ``mt.to_tensor(0.0)``.
        """
        return self._masked_data.masked_fill(~self._masked_mask, value)

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self):
        return self._masked_data.shape

    def size(self, dim: int | None = None):
        return self._masked_data.size(dim)

    @property
    def ndim(self) -> int:
        return self._masked_data.ndim

    def dim(self) -> int:
        return self._masked_data.ndim

    def numel(self) -> int:
        return self._masked_data.numel()

    @property
    def dtype(self):
        return self._masked_data.dtype

    @property
    def device(self):
        return self._masked_data.device

    @property
    def is_cuda(self) -> bool:
        return self._masked_data.is_cuda

    @property
    def layout(self):
        return _mg().strided

    @property
    def is_sparse(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self._masked_data.is_floating_point()

    def is_complex(self) -> bool:
        return False

    def is_contiguous(self, memory_format=None) -> bool:
        return self._masked_data.is_contiguous()

    def __len__(self) -> int:
        return len(self._masked_data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ------------------------------------------------------------------ autograd
    @property
    def requires_grad(self) -> bool:
        return self._masked_data.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self._masked_data.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> MaskedTensor:
        self._masked_data.requires_grad_(requires_grad)
        return self

    @property
    def grad(self):
        """The gradient, as a MaskedTensor with this tensor's mask (None before backward)."""
        g = self._masked_data.grad
        return None if g is None else MaskedTensor._make(g, self._masked_mask)

    @grad.setter
    def grad(self, value) -> None:
        self._masked_data.grad = value._masked_data if isinstance(value, MaskedTensor) else value

    @property
    def grad_fn(self):
        return self._masked_data.grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._masked_data.is_leaf

    def retain_grad(self) -> None:
        self._masked_data.retain_grad()

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Backpropagate from this MaskedTensor (one element, unless ``gradient`` is given)."""
        if isinstance(gradient, MaskedTensor):
            gradient = gradient._masked_data
        if inputs is not None:
            inputs = [i._masked_data if isinstance(i, MaskedTensor) else i for i in inputs]
        self._masked_data.backward(gradient, retain_graph, create_graph, inputs)

    def detach(self) -> MaskedTensor:
        return MaskedTensor._make(self._masked_data.detach(), self._masked_mask)

    # ------------------------------------------------------------------ copies and casts
    def clone(self) -> MaskedTensor:
        return MaskedTensor._make(self._masked_data.clone(), self._masked_mask.clone())

    def contiguous(self) -> MaskedTensor:
        return MaskedTensor._make(self._masked_data.contiguous(), self._masked_mask.contiguous())

    def to(self, *args, **kwargs) -> MaskedTensor:
        """The data cast or moved as ``Tensor.to``; the mask moves with it (stays bool)."""
        data = self._masked_data.to(*args, **kwargs)
        if data is self._masked_data:
            return self
        mask = self._masked_mask
        if mask.device != data.device:
            mask = mask.to(data.device)
        return MaskedTensor._make(data, mask)

    def cpu(self) -> MaskedTensor:
        return self.to("cpu")

    def cuda(self, device=None) -> MaskedTensor:
        return self.to("cuda" if device is None else device)

    def float(self) -> MaskedTensor:
        return self.to(D.float32)

    def double(self) -> MaskedTensor:
        return self.to(D.float64)

    def half(self) -> MaskedTensor:
        return self.to(D.float16)

    def long(self) -> MaskedTensor:
        return self.to(D.int64)

    def int(self) -> MaskedTensor:
        return self.to(D.int32)

    def bool(self) -> MaskedTensor:
        return self.to(D.bool_)

    def item(self):
        """The one element, which must be masked in."""
        if self.numel() != 1 or not bool(self._masked_mask.reshape(())):
            raise ValueError(
                "MaskedTensor.item(): expected one masked-in element, got shape "
                f"{tuple(self.shape)} with mask {self._masked_mask.tolist()}"
            )
        return self._masked_data.item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        return bool(self.item())

    def __array__(self, dtype=None, copy=None):
        raise TypeError("a MaskedTensor has no array form; convert mt.to_tensor(fill_value)")

    def numpy(self, *args, **kwargs):
        raise RuntimeError(".numpy() is not supported for MaskedTensor; call "
                           "mt.to_tensor(fill_value).numpy() or mt.get_data().numpy()")  # fmt: skip

    def tolist(self):
        raise RuntimeError(".tolist() is not supported for MaskedTensor; call "
                           "mt.to_tensor(fill_value).tolist()")  # fmt: skip

    def __repr__(self) -> str:
        data = backend.to_numpy(self._masked_data.detach()._data).tolist()
        mask = backend.to_numpy(self._masked_mask._data).tolist()
        if self.ndim == 0:
            text = _fmt(data) if mask else "--"
            return f"MaskedTensor({text}, {mask})"
        body = "\n".join("  " + line for line in _str(data, mask, self.ndim).split("\n"))
        return "MaskedTensor(\n" + body + "\n)"


def _fmt(v) -> str:
    return f"{v:8.4f}" if isinstance(v, float) else str(v)


def _str(data, mask, ndim: int) -> str:
    if ndim == 1:
        items = [_fmt(v) for v in data]
        width = max([len(s) if m else 8 for s, m in zip(items, mask)], default=0)
        return "[" + ", ".join(s if m else "--".rjust(width) for s, m in zip(items, mask)) + "]"
    subs = [_str(d, m, ndim - 1) for d, m in zip(data, mask)]
    subs = ["\n".join("  " + line for line in s.split("\n")) for s in subs]
    return "[\n" + ",\n".join(subs) + "\n]"


def is_masked_tensor(obj, /) -> bool:
    """Whether ``obj`` is a MaskedTensor.

    Example: ``is_masked_tensor(masked_tensor(x, x > 0))`` is True.
    """
    return isinstance(obj, MaskedTensor)


def masked_tensor(data, mask, requires_grad: bool = False) -> MaskedTensor:
    """A new MaskedTensor (a leaf: copies of ``data`` and ``mask``), as ``torch.tensor``.

    Args:
        data: a Tensor of values.
        mask: a bool Tensor of ``data``'s shape; False marks an element masked out.
        requires_grad: record gradients into the MaskedTensor (default False).

    Example: ``mt = masked_tensor(x, x > 0, requires_grad=True)``.
    """
    return MaskedTensor(data, mask, requires_grad)


def as_masked_tensor(data, mask) -> MaskedTensor:
    """A MaskedTensor that keeps ``data``'s autograd history: gradients flow back to
    ``data`` (as a plain Tensor gradient).

    Example: ``mt = as_masked_tensor(layer(x), keep)``.
    """
    _validate(data, mask)
    return MaskedTensor._make(data.clone(), mask.clone())
