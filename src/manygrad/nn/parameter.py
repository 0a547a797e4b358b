"""``Parameter``: a tensor that a ``Module`` registers as one of its learnable weights."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A ``Tensor`` that is a module's parameter; it requires grad by default.

    Assigning a ``Parameter`` to a module attribute registers it, so that it shows up in
    ``module.parameters()`` and ``module.state_dict()``. Built from a tensor, it shares that
    tensor's array (no copy).

    Args:
        data: the initial value (a Tensor); an empty float tensor when None.
        requires_grad: whether the parameter takes part in autograd (default True).

    Example:
        >>> w = mg.nn.Parameter(mg.randn(3, 4))
    """

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            arr = backend.xp_of(backend.CPU).empty((0,), dtype="float32")
            dev = backend.CPU
        elif isinstance(data, Tensor):
            arr, dev = data._data, data._device
        else:
            t = Tensor(data)
            arr, dev = t._data, t._device
        self._data = arr
        self._device = dev
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        self._vc = self._base = self._meta = None
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, proto):
        return (_rebuild, (Tensor._wrap(self._data, self._device), self.requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        xp = backend.array_module(self._data)
        p = Parameter(Tensor._wrap(xp.array(self._data, copy=True), self._device),
                      self.requires_grad)  # fmt: skip
        if self.grad is not None:
            p.grad = Tensor._wrap(xp.array(self.grad._data, copy=True), self._device)
        memo[id(self)] = p
        return p


def _rebuild(data: Tensor, requires_grad: bool) -> Parameter:
    return Parameter(data, requires_grad)


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a module attribute.

    Args:
        data: the tensor.
        persistent: whether the buffer is part of ``state_dict()`` (default True).
    """

    __slots__ = ("persistent",)

    def __init__(self, data: Tensor, *, persistent: bool = True):
        t = data if isinstance(data, Tensor) else Tensor(data)
        self._data, self._device = t._data, t._device
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        self._vc = self._base = self._meta = None
        self.persistent = persistent
