"""``Parameter``: a tensor that a ``Module`` registers as one of its learnable weights."""

from __future__ import annotations

from .. import backend
from .._inference_mark import INFERENCE_META, InferenceMark
from ..errors import ManygradError
from ..tensor import _NEW_META, Tensor


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
        # NOTE: made under inference_mode or of an inference tensor, it is one, as in PyTorch
        mark = _NEW_META[0]
        if data is None:
            arr = backend.xp_of(backend.CPU).empty((0,), dtype="float32")
            dev = backend.CPU
        elif isinstance(data, Tensor):
            arr, dev, mark = data._data, data._device, data._meta
        else:
            t = Tensor(data)
            arr, dev = t._data, t._device
        self._data = arr
        self._device = dev
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        self._vc = self._base = None
        self._meta = INFERENCE_META if mark.__class__ is InferenceMark else None
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
        with backend.device_scope(self._device):  # NOTE: CuPy copies on the current GPU
            p = Parameter(Tensor._wrap(xp.array(self._data, copy=True), self._device),
                          self.requires_grad)  # fmt: skip
            if self.grad is not None and self.grad.is_sparse:
                p.grad = self.grad.clone()
            elif self.grad is not None:
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


# ---------------------------------------------------------------------- lazy placeholders
# NOTE: PyTorch refuses every use of a placeholder through __torch_function__; manygrad has
# no such dispatch, so the placeholder classes refuse Tensor methods and operators here. Its
# array stays a real 0-element one, so that Module.to()/double()/cuda() convert its dtype and
# device before materialize(), as in PyTorch.
_ALLOWED = frozenset({"size", "copy_", "is_complex", "is_floating_point", "half", "float",
                      "double", "char", "short", "int", "long", "cuda", "cpu", "to",
                      "get_device"})  # fmt: skip
_OWN = frozenset({"materialize", "share_memory_", "cls_to_become", "persistent"})
_KEEP = frozenset({"__init__", "__repr__", "__hash__"})


class UninitializedError(ManygradError, ValueError, RuntimeError):
    """A lazy module's parameter or buffer was used before its shape was known."""


def _use_error(cls, what: str) -> UninitializedError:
    return UninitializedError(
        f"Attempted to use an uninitialized parameter in {what}. This error happens when you "
        f"are using a `LazyModule` or explicitly manipulating `nn.parameter.{cls.__name__}` "
        "objects. When using LazyModules call `forward` with a dummy batch to initialize the "
        "parameters before using them"
    )


def _plain(t: Tensor) -> Tensor:
    p = Tensor._wrap(t._data, t._device)
    p.requires_grad = t.requires_grad
    return p


class UninitializedTensorMixin:
    """What ``UninitializedParameter`` and ``UninitializedBuffer`` share: no shape yet, only
    a dtype and a device; ``materialize(shape)`` turns the object itself into the real one."""

    __slots__ = ()
    cls_to_become: type = Tensor

    def materialize(self, shape, device=None, dtype=None) -> None:
        """Give the placeholder ``shape`` (uninitialised values, as ``empty``), on ``device``
        and of ``dtype`` (default: its own), and make it a ``cls_to_become`` in place.

        Example:
            >>> p = mg.nn.UninitializedParameter(); p.materialize((3, 4)); type(p).__name__
            'Parameter'
        """
        from ..creation import empty

        new = empty(shape, device=self._device if device is None else device,
                    dtype=self.dtype if dtype is None else dtype)  # fmt: skip
        self._data, self._device, self._meta = new._data, new._device, None
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise UninitializedError(
            "Can't access the shape of an uninitialized parameter or buffer. This error "
            "usually happens in `load_state_dict` when trying to load an uninitialized "
            "parameter into an initialized one. Call `forward` to initialize the parameters "
            "before accessing their attributes."
        )

    def share_memory_(self):
        raise UninitializedError(
            "Can't share memory on an uninitialized parameter or buffer. Call `forward` to "
            "initialize the parameters before calling `module.share_memory()`."
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    def __reduce_ex__(self, proto):
        return (type(self), (self.requires_grad,))

    def __deepcopy__(self, memo):
        if id(self) not in memo:
            memo[id(self)] = self._copy()
        return memo[id(self)]

    def __getattribute__(self, name: str):
        if name[0] == "_" or name in _OWN:
            return object.__getattribute__(self, name)
        if name in _ALLOWED:  # NOTE: run on a plain alias, so that nothing inside is refused
            return _on_alias(self, name)
        if callable(getattr(type(self), name, None)):
            raise _use_error(type(self), f"Tensor.{name}")
        return object.__getattribute__(self, name)


def _on_alias(t, name: str):
    alias = _plain(t)
    method = getattr(alias, name)

    def call(*args, **kwargs):
        out = method(*args, **kwargs)
        return t if out is alias else out  # e.g. cpu() of a CPU placeholder: itself

    return call


def _refuse(name: str):
    def refused(self, *args, **kwargs):
        raise _use_error(type(self), f"Tensor.{name}")

    refused.__name__ = name
    return refused


for _name in {n for k in Tensor.__mro__[:-1] for n, v in vars(k).items()
              if n[:2] == n[-2:] == "__" and callable(v) and n not in _KEEP}:  # fmt: skip
    setattr(UninitializedTensorMixin, _name, _refuse(_name))
UninitializedTensorMixin.__hash__ = Tensor.__hash__


def _placeholder(t: Tensor, requires_grad: bool, device, dtype) -> None:
    from ..creation import empty

    arr = empty(0, device=device, dtype=dtype)
    t._data, t._device = arr._data, arr._device
    t.grad = t.grad_fn = None
    t.requires_grad = False
    t._vc = t._base = t._meta = None
    if requires_grad:
        Tensor.requires_grad_(t, True)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    """A ``Parameter`` whose shape is not known yet (a lazy module's, before its first call).

    Any use but converting its dtype or device raises an error; ``materialize(shape)`` makes
    it an ordinary ``Parameter`` (the same object).

    Args:
        requires_grad: whether the materialized parameter requires grad (default True).
        device, dtype: those of the materialized parameter (default: the defaults).

    Example:
        >>> w = mg.nn.UninitializedParameter(); w.materialize((4, 3))
    """

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad: bool = True, device=None, dtype=None) -> None:
        _placeholder(self, requires_grad, device, dtype)

    def _copy(self):
        return type(self)(self.requires_grad, self._device, self.dtype)


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    """A buffer whose shape is not known yet (a lazy norm's running statistics, before its
    first call); ``materialize(shape)`` makes it an ordinary ``Tensor`` (the same object).

    Args:
        requires_grad: default False.
        device, dtype: those of the materialized buffer (default: the defaults).
        persistent: whether it is part of ``state_dict()`` (default True).

    Example:
        >>> b = mg.nn.UninitializedBuffer(); b.materialize((4,))
    """

    __slots__ = ()
    cls_to_become = Tensor

    def __init__(self, requires_grad: bool = False, device=None, dtype=None,
                 persistent: bool = True) -> None:  # fmt: skip
        _placeholder(self, requires_grad, device, dtype)
        self._meta = {"persistent": persistent}  # NOTE: no slot, so that the class can change

    @property
    def persistent(self) -> bool:
        return self._meta["persistent"]

    @persistent.setter
    def persistent(self, value: bool) -> None:
        self._meta["persistent"] = bool(value)

    def _copy(self):
        return type(self)(self.requires_grad, self._device, self.dtype, self.persistent)


def is_lazy(param) -> bool:
    """Whether ``param`` is an ``UninitializedParameter`` or ``UninitializedBuffer``.

    Example:
        >>> mg.nn.parameter.is_lazy(mg.nn.LazyLinear(3).weight)
        True
    """
    return isinstance(param, UninitializedTensorMixin)
