"""``Tensor``: an array on a device, plus what autograd needs (``grad``, ``grad_fn``).

The maths lives in ``manygrad.ops``; methods here forward to it so that
``x.exp()`` and ``mg.exp(x)`` are the same code.
"""

from __future__ import annotations

import numpy as np

from . import _inference_mark as _infer
from . import backend
from . import dtypes as D
from ._float8 import cast_any
from ._inference_mark import INFERENCE_DETACHED, INFERENCE_META, InferenceMark
from ._meta import no_data as _meta_no_data
from ._meta import storage as _meta_storage
from ._tensor_core_methods import CoreMethods
from ._tensor_inplace import InplaceMethods, copy_source
from ._tensor_methods import TensorMethods
from .errors import AutogradError, DTypeError, ShapeError


def _check_writable(t, name: str) -> None:
    """Refuse writes into a tensor whose elements share memory (``expand`` views), and into
    an inference tensor outside ``inference_mode`` (as PyTorch).

    NOTE: NumPy's broadcast views are read-only, but CuPy has no read-only arrays: a write
    there would race silently on the GPU. PyTorch refuses it too.
    """
    if t._meta is INFERENCE_META and _NEW_META[0] is None:
        raise _infer.inplace_error(name)
    a = t._data
    if (
        0 in a.strides
        and a.size
        and t._device is not _META
        and any(s == 0 and n > 1 for s, n in zip(a.strides, a.shape))
    ):
        raise RuntimeError(
            f"{name}: more than one element of the written-to tensor (shape {tuple(t.shape)}) "
            "refers to the same memory (an expand() view); write into a copy: t = t.clone()"
        )


def _overwrite(s, v):
    from .autograd._inplace import overwrite

    return overwrite(s, v)


class Tensor(CoreMethods, TensorMethods, InplaceMethods):
    """A multi-dimensional array on ``cpu`` or ``cuda`` with reverse-mode autograd.

    Create tensors with ``mg.tensor(data)``, ``mg.zeros(...)``, ``mg.randn(...)``.
    """

    # NOTE: _vc is the version counter [version, last in-place op] (shared with views, made
    # on first need); _base the tensor a view shares memory with; _meta rarely used state
    # (hooks, output index of a multi-output node, the version a view's grad_fn is from);
    # __dict__ holds the attributes programs set on tensors (`p._optim = {...}`), as in PyTorch
    __slots__ = ("_data", "_device", "requires_grad", "_grad", "grad_fn", "_vc", "_base", "_meta",
                 "__weakref__", "__dict__")  # fmt: skip
    __array_priority__ = 1000  # NOTE: makes ndarray + Tensor defer to Tensor.__radd__

    def __init__(self, data=None, *sizes, dtype=None, device=None, requires_grad=False):
        from .creation import _legacy_tensor

        # NOTE: torch.Tensor's legacy rules: ints are sizes, integer data becomes float; a
        # tensor gives an alias of it, its autograd history included
        made = _legacy_tensor(() if data is None else (data, *sizes), dtype, device)
        self._data = made._data
        self._device = made._device
        self.grad = None
        self.grad_fn, self.requires_grad = made.grad_fn, made.requires_grad
        self._vc, self._base, self._meta = made._vc, made._base, made._meta
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(arr, dev=None) -> Tensor:
        """Fast path: wrap a raw array of a supported dtype (no copy, no checks)."""
        t = Tensor.__new__(Tensor)
        t._data = arr
        t._device = dev = dev if dev is not None else backend.device_of(arr)
        if dev is _META:
            t._data = _meta_storage(arr)  # NOTE: an op's result on meta keeps no memory
        t.requires_grad = False
        t._grad = None
        t.grad_fn = None
        t._vc = t._base = None
        t._meta = _NEW_META[0]  # NOTE: the inference mark inside inference_mode, else None
        return t

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        return Size(self._data.shape) if dim is None else self._data.shape[dim]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def dtype(self) -> D.dtype:
        return D.from_np(self._data.dtype)

    @property
    def device(self) -> backend.Device:
        return self._device

    @property
    def is_cuda(self) -> bool:
        return self._device.type == "cuda"

    @property
    def is_meta(self) -> bool:
        """Whether this tensor lives on the ``meta`` device (a shape and a dtype, no data)."""
        return self._device is _META

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f" or D.from_np(self._data.dtype).is_floating_point

    def is_complex(self) -> bool:
        return self._data.dtype.kind == "c"

    @property
    def grad(self):
        """The gradient backward accumulated into this tensor (None until then)."""
        return self._grad

    @grad.setter
    def grad(self, g) -> None:
        if g is not None:
            _check_grad(self, g)
        self._grad = g

    @property
    def data(self) -> Tensor:
        t = Tensor._wrap(self._data, self._device)
        t._meta = INFERENCE_DETACHED if self._meta.__class__ is InferenceMark else None
        return t

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(
                f"Tensor.data: expected a Tensor, got {type(value).__name__}; "
                "wrap it first: t.data = mg.as_tensor(value)"
            )
        if self.requires_grad and not (value.is_floating_point() or value.is_complex()):
            raise DTypeError(
                f"Tensor.data: a tensor that requires grad needs floating point or complex "
                f"data, got {value.dtype}; convert it first: t.data = value.float()"
            )
        self._data = value._data
        self._device = value._device

    @property
    def T(self) -> Tensor:  # noqa: N802
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        if self.ndim < 2:
            raise ShapeError(
                f"Tensor.mT: expected a matrix or a batch of matrices, got {self.ndim} dims; "
                "use .T or .unsqueeze() for fewer dims"
            )
        return self.transpose(-2, -1)

    # ------------------------------------------------------------------ host access
    def numpy(self, *, force: bool = False) -> np.ndarray:
        if force:  # as PyTorch: t.detach().cpu().numpy(), sharing memory on the host
            return backend.to_numpy(self._data)
        if self.requires_grad:
            raise AutogradError(
                "can't call numpy() on a tensor that requires grad; use t.detach().numpy()"
            )
        if self._device.type != "cpu":
            if self._device is _META:
                raise TypeError(
                    "can't convert meta device type tensor to numpy: a meta tensor has no "
                    "data; build it on a real device (mg.empty(..., device='cpu'))"
                )
            raise TypeError(
                f"can't convert a {self._device} tensor to numpy: copy it to the host first "
                "with t.cpu().numpy()"
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        # NOTE: NumPy's protocol: copy=True asks for new memory (np.array(t)), None shares
        # when it can (np.asarray(t)), False must share
        a = self.detach().numpy()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            if copy is False:
                raise ValueError(f"__array__: a {a.dtype} tensor as {dtype} needs a copy")
            return a.astype(dtype)
        return a.copy() if copy else a

    def item(self):
        if self._data.size != 1:
            raise ShapeError(
                f"item() needs a tensor with one element, got shape {tuple(self.shape)}"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return backend.to_numpy(self._data).tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError(
                "only integer tensors of a single element can be converted to an index"
                + (f" (got {self._data.size} elements)" if self._data.size != 1 else "")
            )
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __contains__(self, element) -> bool:
        if not _is_operand(element):
            raise DTypeError(
                f"Tensor.__contains__: expected a Tensor or a number, got {type(element).__name__}"
            )
        return bool((self == element).any())

    def __repr__(self) -> str:
        from ._tensor_str import add_suffixes, tensor_str

        meta = self._device is _META
        body = "..." if meta else tensor_str(self._data, 7)
        extra = []
        if self._device.type != "cpu":
            extra.append(f"device='{self._device}'")
        if meta:
            extra.append(f"size={tuple(self.shape)}")
            if self.dtype is not D.get_default_dtype():
                extra.append(f"dtype={self.dtype}")
            if self.requires_grad and self.grad_fn is None:
                extra.append("requires_grad=True")
            elif self.grad_fn is not None:
                extra.append(f"grad_fn=<{self.grad_fn.name()}>")
            return add_suffixes("tensor(" + body, extra, 7)
        dflt = D.get_default_dtype()
        if self._data.size == 0:
            if self.ndim != 1:
                extra.append(f"size={tuple(self.shape)}")
            if self.dtype is not dflt:
                extra.append(f"dtype={self.dtype}")
        elif self.dtype not in (dflt, D.int64, D.bool_,
                                D.complex128 if dflt is D.float64 else D.complex64):  # fmt: skip
            extra.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extra.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return add_suffixes("tensor(" + body, extra, 7)

    def __hash__(self) -> int:
        return id(self)

    # ------------------------------------------------------------------ conversion
    def to(self, *args, **kwargs) -> Tensor:
        """``t.to("cuda")``, ``t.to(mg.float16)``, ``t.to("cuda", mg.float16)``, ``t.to(other)``.

        Also PyTorch's ``non_blocking`` and ``copy`` (positional after the device or dtype, or
        by keyword) and ``memory_format``; ``copy=True`` always gives new memory.
        """
        dev, dt, copy, fmt = _to_args(args, kwargs)
        out = self
        if dt is not None and D.from_any(dt).np != self._data.dtype:
            out = F.cast(out, D.from_any(dt))
        if dev is not None:
            d = backend.device(dev)
            if d != out._device:
                if out._device is _META:
                    raise _meta_no_data(False)
                out = F.to_device(out, d)
        if fmt is not None and fmt.name not in ("preserve_format", "contiguous_format"):
            out = out.contiguous(memory_format=fmt)
        if copy and out is self:
            out = self.clone(memory_format=fmt)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        return self.to(backend.device("cuda" if device is None else device))

    def float(self) -> Tensor:
        return self.to(D.float32)

    def double(self) -> Tensor:
        return self.to(D.float64)

    def half(self) -> Tensor:
        return self.to(D.float16)

    def bfloat16(self) -> Tensor:
        return self.to(D.bfloat16)

    def long(self) -> Tensor:
        return self.to(D.int64)

    def int(self) -> Tensor:
        return self.to(D.int32)

    def bool(self) -> Tensor:
        return self.to(D.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def detach(self) -> Tensor:
        """The same memory and version counter, outside the graph."""
        t = Tensor._wrap(self._data, self._device)
        t._vc = self._vc or _version_counter(self)
        t._meta = INFERENCE_DETACHED if self._meta.__class__ is InferenceMark else None
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    @backend.on_tensor_device
    def clone(self, memory_format=None) -> Tensor:
        if memory_format is None or memory_format.name == "preserve_format":
            out, a = F.clone(self), self._data
            if not a.flags.c_contiguous and a.ndim > 1 and 0 not in a.strides:
                # NOTE: preserve_format keeps the layout (a transposed or channels-last
                # tensor clones to the same strides), as in PyTorch; the values are equal
                out._data = backend.array_module(a).array(a, order="K", copy=True)
            return out
        from .memory_format import to_format

        return to_format(self, memory_format, "clone", copy=True)

    def contiguous(self, memory_format=None) -> Tensor:
        # NOTE: a copy only when the strides are not row-major, as in PyTorch (the result
        # must not share memory with a transposed or sliced original)
        if memory_format is None or memory_format.name == "contiguous_format":
            return self if self._data.flags.c_contiguous else F.clone(self)
        from .memory_format import to_format

        return to_format(self, memory_format)

    def is_contiguous(self, memory_format=None) -> bool:
        if memory_format is None:
            return bool(self._data.flags.c_contiguous)
        from .memory_format import is_format

        return is_format(self, memory_format)

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not (self._data.dtype.kind in "fc" or self.dtype.is_floating_point):
            raise DTypeError(
                f"only floating point tensors can require gradients, got {self.dtype}; "
                "convert first, e.g. x = x.float().requires_grad_()"
            )
        if not requires_grad and self.grad_fn is not None:
            raise AutogradError(
                "you can only change requires_grad of leaf tensors; use t.detach() instead"
            )
        if requires_grad and self._meta.__class__ is InferenceMark and _NEW_META[0] is None:
            raise _infer.requires_grad_error()
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it uses.

        Args:
            gradient: d(out)/d(self) for a non-scalar tensor (None for a scalar).
            retain_graph: keep the graph for another backward (default: create_graph).
            create_graph: record the backward pass, for gradients of gradients.
            inputs: accumulate only into these tensors.
        """
        from . import autograd

        autograd.backward([self], [gradient], retain_graph=retain_graph,
                          create_graph=create_graph, inputs=inputs)  # fmt: skip

    def retain_grad(self) -> None:
        """Keep ``.grad`` of this non-leaf tensor in backward (leaves keep it anyway)."""
        from . import autograd

        if not self.requires_grad:
            raise AutogradError("can't retain_grad on a tensor that doesn't require grad")
        if self.grad_fn is not None:
            autograd.retain(self)
            self._meta = dict(self._meta or {}, retains=True)

    @property
    def retains_grad(self) -> bool:
        return bool(self._meta and self._meta.get("retains"))

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a tensor it returns
        replaces the gradient. Returns a handle with ``remove()``.

        Example: ``h = x.register_hook(lambda g: g.clamp(-1, 1))``
        """
        from .autograd import _edge
        from .autograd.graph import RemovableHandle, add_tensor_hook

        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that doesn't require gradient")
        fn, _, _, _, oi = _edge(self)
        if fn is not None:
            return add_tensor_hook(fn, oi, hook)
        hooks = (self._meta or {}).get("hooks")
        if hooks is None:
            hooks = {}
            self._meta = dict(self._meta or {}, hooks=hooks)
        h = RemovableHandle(hooks)
        hooks[h.id] = hook
        return h

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` after the gradient is accumulated into this leaf's ``.grad``."""
        from .autograd.graph import RemovableHandle

        if self.grad_fn is not None:
            raise AutogradError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors"
            )
        post = (self._meta or {}).get("post")
        if post is None:
            post = {}
            self._meta = dict(self._meta or {}, post=post)
        h = RemovableHandle(post)
        post[h.id] = hook
        return h

    @property
    def _version(self) -> int:
        return self._vc[0] if self._vc is not None else 0

    def _is_view(self) -> bool:
        return self._base is not None

    # ------------------------------------------------------------------ in place
    # NOTE: as in PyTorch: the tensor's memory changes (aliases and views see it), its
    # version counter is bumped, and in a graph its history moves to the op (see
    # autograd._inplace). Without a graph the update is a plain array write.
    def _inplace(self, name, fn, *args, **kwargs) -> Tensor:
        from .autograd import _inplace

        _check_writable(self, name)
        return _inplace.inplace(self, name, fn, *args, **kwargs)

    def _numpy_promotes(self, other, alpha=1) -> bool:
        """True when NumPy's arithmetic on the raw arrays computes what PyTorch computes: an
        operand of ``self``'s own dtype, a Python number on a 32/64-bit float tensor, or a
        tensor on a 16-bit float one (NumPy computes in the wider float, as PyTorch's kernels).
        NOTE: otherwise the ops decide (a 0-d float64 or int64 tensor on a float32 one stays
        float32, a Python number scales a 16-bit float in float32, integers wrap), as
        PyTorch does; NumPy would promote, round twice or refuse."""
        d = self._data.dtype
        if isinstance(other, Tensor):
            same = other._data.dtype == d  # NOTE: raw dtypes: no dtype-object lookups
            return (alpha == 1 and same) if d.kind in "biu" else (same or d.itemsize == 2)
        return d.kind not in "biu" and d.itemsize >= 4 and other.__class__ in (int, float)

    def _plain(self, name: str, other=None) -> bool:
        """True when an in-place update needs no graph (the fast path)."""
        from . import autograd

        if self._data.dtype.itemsize == 1 and self._data.dtype.kind in "fV":
            return False  # NOTE: float8: through the ops, which round or refuse as PyTorch
        if not autograd._grad_enabled:
            _check_writable(self, name)
            return True
        if self.requires_grad or (self._base is not None and self._base.requires_grad):
            return False
        if isinstance(other, Tensor) and other.requires_grad:
            return False
        _check_writable(self, name)
        return True

    def _done(self, name: str) -> Tensor:
        vc = self._vc or _version_counter(self)
        vc[0] += 1
        vc[1] = name
        return self

    def _raw(self, other):
        if isinstance(other, Tensor):
            if other._device != self._device:
                other = other.to(self._device)
            return other._data
        return other

    @backend.on_tensor_device
    def zero_(self) -> Tensor:
        if not self._plain("zero_"):
            return self._inplace("zero_", _overwrite, 0)
        self._data[...] = 0
        return self._done("zero_")

    @backend.on_tensor_device
    def fill_(self, value) -> Tensor:
        if not self._plain("fill_", value):
            return self._inplace("fill_", _overwrite, value)
        self._data[...] = self._raw(value)
        return self._done("fill_")

    @backend.on_tensor_device
    def copy_(self, src=None, non_blocking: bool = False, *, other=None) -> Tensor:
        # NOTE: PyTorch documents ``src`` and binds ``other``; ``non_blocking`` allows what
        # manygrad always does, a copy that is done when copy_ returns
        if src is None or other is not None:
            src = copy_source(src, other)
        src = src if isinstance(src, Tensor) else Tensor(src)
        if not self._plain("copy_", src):
            return self._inplace("copy_", _copy_of, src)
        v = src.to(self._device)._data  # NOTE: cast_any: PyTorch's rounding for float8
        try:
            self._data[...] = v if v.dtype == self._data.dtype else cast_any(v, self._data.dtype)
        except ValueError as e:
            if "broadcast" not in str(e):
                raise
            raise ShapeError(
                f"copy_: the source of shape {tuple(src.shape)} does not broadcast to the "
                f"destination's shape {tuple(self.shape)}"
            ) from e
        return self._done("copy_")

    @backend.on_tensor_device
    def add_(self, other, alpha=1) -> Tensor:
        if not (self._numpy_promotes(other, alpha) and self._plain("add_", other)):
            return self._inplace("add_", F.add, other, alpha=alpha)
        o = self._raw(other)
        return self._set("add_", self._data + (o if alpha == 1 else o * alpha))

    def sub_(self, other, alpha=1) -> Tensor:
        return self.add_(other, alpha=-alpha)

    @backend.on_tensor_device
    def mul_(self, other) -> Tensor:
        if not (self._numpy_promotes(other) and self._plain("mul_", other)):
            return self._inplace("mul_", F.mul, other)
        return self._set("mul_", self._data * self._raw(other))

    @backend.on_tensor_device
    def div_(self, other, rounding_mode=None) -> Tensor:
        plain = self._data.dtype.kind in "fc" and self._numpy_promotes(other)
        if not (plain and self._plain("div_", other)) or rounding_mode is not None:
            return self._inplace("div_", F.div, other, rounding_mode=rounding_mode)
        return self._set("div_", self._data / self._raw(other))

    @backend.on_tensor_device
    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002
        min, max = F.elementwise._clamp_bounds(min, max)  # noqa: A001
        if not self._plain("clamp_", min) or isinstance(max, Tensor) and max.requires_grad:
            return self._inplace("clamp_", F.clamp, min, max)
        xp = backend.array_module(self._data)
        return self._set("clamp_", xp.clip(self._data, self._raw(min), self._raw(max)))

    clip_ = clamp_

    def _set(self, name, arr) -> Tensor:
        if arr is not self._data:
            from .autograd import _inplace

            # NOTE: the shape and dtype checks of every write; callers run on the device
            _inplace._write(self, arr, name, scoped=False)
        return self._done(name)

    # ------------------------------------------------------------------ operators
    def __add__(self, o):
        return F.add(self, o)

    def __radd__(self, o):
        return F.add(o, self)

    def __sub__(self, o):
        return F.sub(self, o)

    def __rsub__(self, o):
        return F.sub(o, self)

    def __mul__(self, o):
        return F.mul(self, o)

    def __rmul__(self, o):
        return F.mul(o, self)

    def __truediv__(self, o):
        return F.div(self, o)

    def __rtruediv__(self, o):
        return F.div(o, self)

    def __floordiv__(self, o):
        return F.floor_divide(self, o)

    def __rfloordiv__(self, o):
        return F.floor_divide(o, self)

    def __mod__(self, o):
        return F.remainder(self, o)

    def __rmod__(self, o):
        return F.remainder(o, self)

    def __pow__(self, o):
        return F.pow(self, o)

    def __rpow__(self, o):
        return F.pow(o, self)

    def __matmul__(self, o):
        if isinstance(o, np.ndarray):  # NOTE: PyTorch leaves `tensor @ array` to NumPy
            return self._numpy_matmul(o)
        return F.matmul(self, o)

    def __rmatmul__(self, o):
        # NOTE: `array @ tensor` is unsupported in PyTorch: NotImplemented gives its TypeError
        return NotImplemented if isinstance(o, np.ndarray) else F.matmul(o, self)

    def __neg__(self):
        return F.neg(self)

    def __pos__(self):
        if self._data.dtype.kind == "b":
            from .ops.misc import positive

            return positive(self)  # NOTE: raises, as PyTorch's `+` of a bool tensor
        return self

    def __abs__(self):
        return F.abs(self)

    # NOTE: &, |, ^ and ~ are bitwise, as in PyTorch: integers stay integers and bool
    # tensors give bools (the logical result); floating tensors are refused
    def __invert__(self):
        return F.bitwise_not(self)

    def __and__(self, o):
        return F.bitwise_and(self, o)

    def __rand__(self, o):
        return F.bitwise_and(o, self)

    def __or__(self, o):
        return F.bitwise_or(self, o)

    def __ror__(self, o):
        return F.bitwise_or(o, self)

    def __xor__(self, o):
        return F.bitwise_xor(self, o)

    def __rxor__(self, o):
        return F.bitwise_xor(o, self)

    def __lshift__(self, o):
        return F.bitwise_left_shift(self, o)

    def __rlshift__(self, o):
        return F.bitwise_left_shift(o, self)

    def __rshift__(self, o):
        return F.bitwise_right_shift(self, o)

    def __rrshift__(self, o):
        return F.bitwise_right_shift(o, self)

    def __iand__(self, o):
        return self.bitwise_and_(o)

    def __ior__(self, o):
        return self.bitwise_or_(o)

    def __ixor__(self, o):
        return self.bitwise_xor_(o)

    def __ilshift__(self, o):
        return self.bitwise_left_shift_(o)

    def __irshift__(self, o):
        return self.bitwise_right_shift_(o)

    # NOTE: a string, None or list is no operand: Python then compares identities (False)
    def __eq__(self, o):
        return F.eq(self, o) if _is_operand(o) else NotImplemented

    def __ne__(self, o):
        return F.ne(self, o) if _is_operand(o) else NotImplemented

    def __lt__(self, o):
        return F.lt(self, o)

    def __le__(self, o):
        return F.le(self, o)

    def __gt__(self, o):
        return F.gt(self, o)

    def __ge__(self, o):
        return F.ge(self, o)

    def __getitem__(self, idx):
        return F.getitem(self, idx)

    def __setitem__(self, idx, value):
        F.setitem(self, idx, value)

    def __iadd__(self, o):
        return self.add_(o)

    def __isub__(self, o):
        return self.sub_(o)

    def __imul__(self, o):
        return self.mul_(o)

    def __itruediv__(self, o):
        return self.div_(o)

    def __ipow__(self, o):
        return self.pow_(o)

    def __imod__(self, o):
        return self.remainder_(o)

    def __ifloordiv__(self, o):
        return self.floor_divide_(o)


# NOTE: what a new tensor's _meta starts as: None, or INFERENCE_META inside
# inference_mode (autograd's inference_mode sets it on entry and exit)
_NEW_META: list = [None]
_META = backend.META


def _is_operand(o) -> bool:
    """Whether ``o`` can be compared with a tensor elementwise (tensor, number or array)."""
    return isinstance(o, (Tensor, int, float, complex, np.generic)) or backend.is_array(o)


_TO_KWARGS = ("device", "dtype", "non_blocking", "copy", "memory_format")


def _is_dtype(a) -> bool:
    if isinstance(a, (D.dtype, np.dtype)) or (isinstance(a, type) and a is not str):
        return True
    return isinstance(a, str) and a.replace("torch.", "") in D._BY_NAME


def _to_args(args, kwargs):
    """``Tensor.to``'s arguments as (device, dtype, copy, memory_format)."""
    bad = [k for k in kwargs if k not in _TO_KWARGS]
    if bad:
        raise TypeError(f"to() got an unexpected keyword argument {bad[0]!r}; it takes "
                        "device, dtype, non_blocking, copy and memory_format")  # fmt: skip
    dev, dt, fmt = kwargs.get("device"), kwargs.get("dtype"), kwargs.get("memory_format")
    flags = []  # NOTE: positional booleans are non_blocking, then copy, as in PyTorch
    for a in args:
        if isinstance(a, Tensor):
            dev, dt = a._device, a.dtype
        elif isinstance(a, bool):
            flags.append(a)
        elif _is_dtype(a):
            dt = a
        elif a is not None:
            if dev is not None:
                raise TypeError(f"to() takes one device, got {dev!r} and {a!r}")
            dev = a
    if len(flags) > 2:
        raise TypeError(f"to() takes at most 2 flags (non_blocking, copy), got {len(flags)}")
    copy = kwargs.get("copy", flags[1] if len(flags) > 1 else False)
    return dev, dt, bool(copy), fmt


def _check_grad(t: Tensor, g) -> None:
    """``t.grad = g``: a tensor of ``t``'s shape and dtype (PyTorch's checks).

    NOTE: unlike PyTorch, a gradient on another device is taken as it is."""
    if not isinstance(g, Tensor):
        if getattr(g, "is_sparse", False):
            return  # NOTE: sparse gradients (embedding(sparse=True)) come from their op
        raise TypeError(
            f"Tensor.grad: expected a Tensor or None, got {type(g).__name__}; "
            "wrap it first: t.grad = mg.as_tensor(value)"
        )
    if g._data.shape != t._data.shape:
        raise ShapeError(
            f"Tensor.grad: a gradient of shape {tuple(g.shape)} cannot be assigned to a tensor "
            f"of shape {tuple(t.shape)}; they must match"
        )
    if g._data.dtype != t._data.dtype:
        raise DTypeError(
            f"Tensor.grad: a gradient of dtype {g.dtype} cannot be assigned to a tensor of "
            f"dtype {t.dtype}; convert it first: t.grad = g.to(t.dtype)"
        )


def _version_counter(t: Tensor) -> list:
    vc = t._vc
    if vc is None:
        vc = t._vc = [0, None]
    return vc


def _copy_of(s: Tensor, src: Tensor) -> Tensor:
    """``copy_``'s value: ``src`` cast and broadcast to ``s`` (its gradient goes to src)."""
    v = src.to(s._device)
    if v.dtype is not s.dtype:
        v = v.to(s.dtype)
    if tuple(v.shape) != tuple(s.shape):
        v = v.expand(*s.shape)
    return F.clone(v)


class Size(tuple):
    """Shape of a tensor (a tuple, as ``torch.Size``)."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"{D.display_module}.Size({list(self)})"

    # NOTE: slices, concatenations and repeats stay sizes, as PyTorch's (x.shape[1:].numel())
    def __getitem__(self, i):
        out = tuple.__getitem__(self, i)
        return Size(out) if isinstance(i, slice) else out

    def __add__(self, other):
        return Size(tuple.__add__(self, other))

    def __radd__(self, other):
        return Size(tuple.__add__(other, self))

    def __mul__(self, n):
        return Size(tuple.__mul__(self, n))

    __rmul__ = __mul__


from . import _tensor_core_methods  # noqa: E402
from . import ops as F  # noqa: E402  (ops need Tensor defined first)

_tensor_core_methods.F = F
