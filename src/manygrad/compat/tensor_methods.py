"""Tensor methods that PyTorch programs use to inspect and convert tensors: ``t.type()``,
``t.stride()``, ``t.data_ptr()``, ``f"{t:.3f}"``, ...; ``TensorMethods`` derives from
``CompatMethods``."""

from __future__ import annotations

from .._size_args import one_form


def _pin_device(name: str, device) -> None:
    """PyTorch's checks of the deprecated ``device`` of ``pin_memory`` / ``is_pinned``."""
    import warnings

    from .. import backend

    warnings.warn(
        f"The argument 'device' of Tensor.{name}() is deprecated. Please do not pass this "
        "argument.",
        DeprecationWarning,
        stacklevel=3,
    )
    if name == "pin_memory" and backend.device(device).type == "cpu":
        raise RuntimeError(
            f"{name}: device 'cpu' is not an accelerator; pinned memory is host memory kept "
            "for copies to a GPU: pass a cuda device or none"
        )


def _quantized_only(name: str):
    def method(self):
        from ..ao.qtensor import _quantized_only as check

        check(name, self)  # NOTE: raises: this tensor is not quantized

    method.__name__ = name
    return method


class CompatMethods:
    """PyTorch's tensor utilities: ``type``, memory layout queries, legacy casts and f-string
    formatting (a base of ``TensorMethods``)."""

    __slots__ = ()

    # -------------------------------------------------------------- types and casts
    def type(self, dtype=None, non_blocking: bool = False, **kwargs):
        """No argument: the type string (``"torch.FloatTensor"``); else a cast to ``dtype``
        (a dtype, a type string or a typed-tensor class such as ``torch.LongTensor``)."""
        from .torch_api import dtype_of_type_name, type_name

        if dtype is None:
            return type_name(self.dtype, self.device.type)
        dev = None
        if isinstance(dtype, str):
            dtype, dev = dtype_of_type_name(dtype)
        elif hasattr(dtype, "device_type") and hasattr(dtype, "dtype"):
            dtype, dev = dtype.dtype, dtype.device_type
        out = self.to(dtype=dtype)
        if dev is not None and out.device.type != dev:
            out = out.to(dev)
        return out

    def byte(self):
        return self.to(dtype="uint8")

    def char(self):
        return self.to(dtype="int8")

    def short(self):
        return self.to(dtype="int16")

    def is_complex(self) -> bool:
        return False

    def is_signed(self) -> bool:
        return self.dtype.is_signed

    def cfloat(self):
        return self.to(dtype="complex64")

    def cdouble(self):
        return self.to(dtype="complex128")

    # -------------------------------------------------------------- legacy forms
    def new(self, *args, **kwargs):
        """Legacy ``x.new(sizes...)`` (uninitialised) or ``x.new(data)``, in ``x``'s dtype
        and device."""
        from .. import creation

        dt, dev = kwargs.pop("dtype", self.dtype), kwargs.pop("device", self.device)
        args = args or (0,)  # NOTE: x.new() is an empty 1-d tensor, as in PyTorch
        if all(isinstance(a, int) and not isinstance(a, bool) for a in args) or (
                len(args) == 1 and type(args[0]).__name__ == "Size"):  # fmt: skip
            return creation.empty(*args, dtype=dt, device=dev)
        return creation.tensor(args[0], dtype=dt, device=dev)

    def qr(self, some: bool = True):
        """Legacy ``torch.qr``: ``(Q, R)``, reduced when ``some``, else complete."""
        from ..ops.linalg_qr import qr_legacy

        return qr_legacy(self, some)

    def svd(self, some: bool = True, compute_uv: bool = True):
        """Legacy ``torch.svd``: ``(U, S, V)`` with V (not its transpose)."""
        from ..ops.decompositions import svd_legacy

        return svd_legacy(self, some, compute_uv)

    def lu(self, pivot: bool = True, get_infos: bool = False):
        """Legacy ``torch.lu``: ``(LU, pivots)`` (and ``infos`` with ``get_infos``)."""
        from ..ops.linalg_legacy import lu

        return lu(self, pivot, get_infos)

    def lu_solve(self, LU_data, LU_pivots):  # noqa: N803
        """Legacy ``torch.lu_solve``: ``x`` with ``A @ x = self`` from ``self``'s ``mg.lu(A)``."""
        from ..ops.linalg_legacy import lu_solve

        return lu_solve(self, LU_data, LU_pivots)

    def triangular_solve(self, A, upper: bool = True, transpose: bool = False,  # noqa: N803
                         unitriangular: bool = False):  # fmt: skip
        """Legacy ``torch.triangular_solve``: ``(solution, cloned_coefficient)``."""
        from ..ops.linalg_legacy import triangular_solve

        return triangular_solve(self, A, upper, transpose, unitriangular)

    def i0_(self):
        from .. import ops

        return self._inplace("i0_", ops.i0)

    def igamma_(self, other):
        from .. import ops

        return self._inplace("igamma_", ops.igamma, other)

    def igammac_(self, other):
        from .. import ops

        return self._inplace("igammac_", ops.igammac, other)

    def nonzero_static(self, *, size: int, fill_value: int = -1):
        """The indices of the first ``size`` non-zero elements, padded with ``fill_value``
        rows to exactly ``size`` rows (a fixed shape, as PyTorch's)."""
        from .. import creation, ops

        idx = ops.nonzero(self)[:size]
        if idx.shape[0] < size:
            pad = creation.full((size - idx.shape[0], self.ndim), fill_value, dtype=idx.dtype,
                                 device=idx.device)  # fmt: skip
            idx = ops.cat([idx, pad])
        return idx

    # -------------------------------------------------------------- resizing
    def resize_(self, *sizes, size=None, memory_format=None):
        """Give the tensor the shape ``sizes`` (or ``size``) in place, keeping its first
        elements (in row-major order); new elements are 0 (PyTorch leaves them
        uninitialised)."""
        from .. import backend
        from ..autograd._inference import check_inplace
        from ..errors import AutogradError, ShapeError

        sizes = one_form("resize_", sizes, size=size)
        shape = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ShapeError(f"resize_: sizes must be non-negative, got {list(shape)}")
        if self.requires_grad:
            raise AutogradError(
                "cannot resize variables that require grad; resize a detached copy "
                "(t.detach().clone().resize_(...)) or use reshape"
            )
        if shape == tuple(self.shape):
            return self
        check_inplace(self, "resize_")  # NOTE: as PyTorch, only a resize that changes the shape
        n = 1
        for s in shape:
            n *= s
        if self._base is not None:
            # NOTE: a contiguous view shrinks within its memory, which it keeps sharing
            if n <= self._data.size and self._data.flags.c_contiguous:
                self._data = self._data.reshape(-1)[:n].reshape(shape)
                return self._done("resize_")
            raise ShapeError(
                f"resize_: this tensor is a view of another tensor; resizing it from "
                f"{list(self.shape)} to {list(shape)} would need new memory: call .clone() "
                "first"
            )
        flat = self._data.reshape(-1)
        with backend.device_scope(self._device):
            new = backend.xp_of(self._device).zeros(n, flat.dtype)
            keep = min(n, flat.size)
            new[:keep] = flat[:keep]
        self._data = new.reshape(shape)
        return self._done("resize_")

    def resize_as_(self, the_template, memory_format=None):
        """``resize_`` to ``the_template``'s shape."""
        return self.resize_(tuple(the_template.shape))

    def resize(self, *sizes):
        """Deprecated in PyTorch: a reshaped tensor with the same number of elements."""
        import warnings

        from ..errors import ShapeError

        warnings.warn("non-inplace resize is deprecated", UserWarning, stacklevel=2)
        shape = sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes
        n = 1
        for s in shape:
            n *= int(s)
        if n != self.numel():
            raise ShapeError(
                f"requested resize to {'x'.join(map(str, shape))} ({n} elements in total), but "
                f"the given tensor has a size of {'x'.join(map(str, self.shape))} "
                f"({self.numel()} elements); resize can only change the shape, use resize_ "
                "to change the number of elements"
            )
        return self.reshape(tuple(int(s) for s in shape))

    def resize_as(self, tensor):
        """Deprecated in PyTorch: ``resize`` to ``tensor``'s shape."""
        return self.resize(tuple(tensor.shape))

    # -------------------------------------------------------------- layout and memory
    def nelement(self) -> int:
        return self.numel()

    def ndimension(self) -> int:
        return self.dim()

    @property
    def itemsize(self) -> int:
        return self.element_size()

    @property
    def nbytes(self) -> int:
        return self.numel() * self.element_size()

    def stride(self, dim: int | None = None):
        """Steps in elements between neighbours along each dim (as in PyTorch)."""
        a = self._data
        st = tuple(s // a.itemsize for s in a.strides)
        if a.size == 0 and a.ndim and not any(st):
            # NOTE: NumPy gives new empty arrays zero strides; PyTorch's are row-major, each
            # dim counting as at least 1 (zeros(2, 0, 3).stride() == (3, 3, 1))
            out, step = [], 1
            for n in reversed(a.shape):
                out.append(step)
                step *= max(n, 1)
            st = tuple(reversed(out))
        return st if dim is None else st[dim]

    def data_ptr(self) -> int:
        """The address of the first element (host or device memory)."""
        from .. import backend

        return backend.address(self._data)[0]

    def storage_offset(self) -> int:
        """Elements between the start of the underlying allocation and the first element."""
        from .. import backend

        first, start = backend.address(self._data)
        return (first - start) // self._data.itemsize

    def storage(self):
        """The memory this tensor views, counted in elements of its dtype (PyTorch's
        deprecated ``TypedStorage``: ``size()``, ``dtype``, ``data_ptr()``, ``nbytes()``)."""
        import warnings

        warnings.warn(
            "TypedStorage is deprecated. It will be removed in the future and UntypedStorage "
            "will be the only storage class. To access UntypedStorage directly, use "
            "tensor.untyped_storage() instead of tensor.storage()",
            UserWarning,
            stacklevel=2,
        )
        return TypedStorage(self)

    def set_(self, source=None, storage_offset=0, size=None, stride=None):
        """Make this tensor view ``source``'s memory: a tensor (all of it, or the window of
        ``size`` and ``stride`` from element ``storage_offset`` of its storage) or a storage;
        with no source, an empty tensor. Writes through either show in the other. As in
        PyTorch, a leaf that requires grad refuses outside ``no_grad``."""
        from .. import autograd
        from ..autograd._inference import check_inplace
        from ..tensor import Tensor

        check_inplace(self, "set_")
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                "set_: a leaf Variable that requires grad is being used in an in-place "
                "operation; replace its memory under torch.no_grad()"
            )
        if source is None:
            from .. import backend

            self._data = backend.array_module(self._data).empty((0,), self._data.dtype)
            return self._done("set_")
        if isinstance(source, UntypedStorage):
            raw = source._data
            if raw.dtype.itemsize != self._data.dtype.itemsize:
                raw = raw.reshape(-1).view(self._data.dtype)
            source = Tensor._wrap(raw.reshape(-1), self._device)
        if not isinstance(source, Tensor):
            raise TypeError(f"set_: expected a Tensor or a storage, got {type(source).__name__}")
        if source.dtype != self.dtype:
            raise RuntimeError(
                f"set_: expected a source of dtype {self.dtype}, got {source.dtype}; cast it "
                f"first with .to({self.dtype})"
            )
        if source._device != self._device:
            raise RuntimeError(
                f"set_: the source is on {source._device} but this tensor is on "
                f"{self._device}; move one of them first"
            )
        if size is not None:
            if stride is None:
                stride, acc = [], 1
                for n in reversed(list(size)):
                    stride.insert(0, acc)
                    acc *= n
            source = source.as_strided(size, stride, storage_offset)
        self._data = source._data
        return self._done("set_")

    def as_strided_(self, size, stride, storage_offset=None):
        """This tensor restrided in place over the same memory (``as_strided``)."""
        from ..autograd._inference import check_inplace

        check_inplace(self, "as_strided_")
        self._data = self.as_strided(size, stride, storage_offset)._data
        return self._done("as_strided_")

    def map2_(self, x, y, callable):  # noqa: A002 - PyTorch's argument name
        """``self[i] = callable(self[i], x[i], y[i])`` for every element, ``x`` and ``y``
        broadcast to this shape (CPU tensors only, as in PyTorch)."""
        import numpy as np

        if any(t._device.type != "cpu" for t in (self, x, y)):
            raise TypeError("map2_ is only implemented on CPU tensors, as in PyTorch")
        if self.requires_grad:
            raise RuntimeError(
                "Can't call map2_() on a tensor that requires grad (autograd can't follow a "
                "Python function): call it on t.detach() or under mg.no_grad() on a copy"
            )
        for t in (x, y):
            if t.dtype != self.dtype:
                raise TypeError(
                    f"map2_: expected the other tensors' dtype to be {self.dtype}, got "
                    f"{t.dtype}; cast them with .to({self.dtype})"
                )
        shape = self._data.shape
        xs, ys = (np.broadcast_to(t._data, shape) for t in (x, y))
        fn = np.vectorize(callable, otypes=[self._data.dtype])
        return self._set("map2_", fn(self._data, xs, ys))

    def unsafe_split_with_sizes(self, split_sizes, dim: int = 0):
        """``split_with_sizes`` (the views are the same; PyTorch's name skips its checks)."""
        return self.split_with_sizes(split_sizes, dim)

    def module_load(self, other, assign: bool = False):
        """What ``nn.Module.load_state_dict`` stores for this parameter or buffer given the
        loaded ``other``: ``other`` itself (tensor subclasses may override it)."""
        return other

    def is_set_to(self, tensor) -> bool:
        """Whether ``tensor`` views exactly the same memory: same first element, shape and
        strides (and so the same values, always)."""
        from .. import backend

        return (
            self._device == tensor._device
            and self._data.dtype == tensor._data.dtype
            and self._data.shape == tensor._data.shape
            and self.stride() == tensor.stride()
            and backend.address(self._data)[0] == backend.address(tensor._data)[0]
        )

    def sparse_dim(self) -> int:
        """0: a dense tensor has no sparse dims (sparse tensors count theirs)."""
        return 0

    def dense_dim(self) -> int:
        """Every dim of a dense tensor is dense."""
        return self._data.ndim

    def to_sparse_coo(self):
        """The COO sparse form (``to_sparse()``)."""
        return self.to_sparse()

    @property
    def output_nr(self) -> int:
        """Which output of its ``grad_fn`` this tensor is (0 for single-output ops and
        leaves)."""
        return self._meta.get("oi", 0) if self._meta and self.grad_fn is not None else 0

    def map_(self, tensor, callable):  # noqa: A002 - PyTorch's argument name
        """``self[i] = callable(self[i], tensor[i])`` for every element, ``tensor``
        broadcast to this shape (CPU tensors only, as in PyTorch)."""
        import numpy as np

        if self._device.type != "cpu" or tensor._device.type != "cpu":
            raise TypeError("map_ is only implemented on CPU tensors, as in PyTorch")
        if self.requires_grad:
            raise RuntimeError(
                "Can't call map_() on a tensor that requires grad (autograd can't follow a "
                "Python function): call it on t.detach() or under mg.no_grad() on a copy"
            )
        if tensor.dtype != self.dtype:
            raise TypeError(
                f"map_: expected the other tensor's dtype to be {self.dtype}, got "
                f"{tensor.dtype}; cast it with .to({self.dtype})"
            )
        other = np.broadcast_to(tensor._data, self._data.shape)
        fn = np.vectorize(callable, otypes=[self._data.dtype])
        return self._set("map_", fn(self._data, other))

    def as_subclass(self, cls):
        """This tensor as an instance of ``cls``, a subclass of Tensor: an alias that shares
        its memory and its autograd history (gradients flow back through it)."""
        from ..tensor import Tensor

        if not (isinstance(cls, type) and issubclass(cls, Tensor)):
            raise TypeError(f"as_subclass: cls must be a subclass of Tensor, got {cls!r}")
        alias = self.view_as(self)
        out = object.__new__(cls)  # NOTE: not cls.__new__, which may take arguments, as PyTorch
        for name in Tensor.__slots__:
            if name not in ("__weakref__", "__dict__") and hasattr(alias, name):
                setattr(out, name, getattr(alias, name))
        return out

    def untyped_storage(self):
        """The memory this tensor views, as bytes (``data_ptr()``, ``nbytes()``, ``size()``,
        ``device``): tensors that share it have equal ``data_ptr()``."""
        return UntypedStorage(self)

    def get_device(self) -> int:
        """The GPU index, or -1 on the CPU."""
        return -1 if self.device.type == "cpu" else (self.device.index or 0)

    @property
    def is_sparse(self) -> bool:
        return False

    def is_pinned(self, device=None) -> bool:
        """False: manygrad tensors are never in pinned memory (``device``, any device, is
        deprecated in PyTorch, with a warning, as here)."""
        if device is not None:
            _pin_device("is_pinned", device)
        return False

    def pin_memory(self, device=None):
        """This tensor: the DataLoader pins batches itself (``pin_memory=True``); ``device``
        (deprecated in PyTorch, with a warning, as here) must be an accelerator."""
        if device is not None:
            _pin_device("pin_memory", device)
        return self

    def share_memory_(self):
        """Move a CPU tensor's data into shared memory, so that processes forked later
        (``torch.multiprocessing``, Hogwild) update the same numbers; GPU tensors stay."""
        from .. import backend

        if self.device.type == "cpu" and not backend.is_shared_host(self._data):
            self._data = backend.shared_host_copy(self._data)
        return self

    def is_shared(self) -> bool:
        from .. import backend

        return self.device.type == "cpu" and backend.is_shared_host(self._data)

    @property
    def H(self):  # noqa: N802 - PyTorch's name
        """The conjugate transpose of a matrix."""
        if self.dim() != 2:
            from ..errors import ShapeError

            raise ShapeError(f"Tensor.H: expected a matrix (2 dims), got {self.dim()} dims; "
                             "use .mH for batches of matrices")  # fmt: skip
        return self.T.conj() if self.is_complex() else self.T

    @property
    def mH(self):  # noqa: N802 - PyTorch's name
        """The conjugate transpose of the last two dims (the transpose for real dtypes)."""
        return self.mT.conj() if self.is_complex() else self.mT

    @property
    def layout(self):
        """``strided`` for dense tensors (sparse tensors report ``sparse_coo``)."""
        from ..sparse import strided

        return strided

    def fmod(self, other):
        """The remainder of division with the sign of ``self`` (C's fmod); see ``mg.fmod``."""
        from .. import ops

        return ops.fmod(self, other)

    @property
    def is_meta(self) -> bool:
        return False

    @property
    def is_quantized(self) -> bool:
        return False  # NOTE: manygrad.ao.qtensor.QTensor says True and has the q_* methods

    def dequantize(self):
        """A float tensor is its own dequantization (quantized tensors: their float values)."""
        return self

    int_repr, q_scale, q_zero_point, qscheme = (_quantized_only(n) for n in
        ("int_repr", "q_scale", "q_zero_point", "qscheme"))  # fmt: skip
    q_per_channel_scales, q_per_channel_zero_points, q_per_channel_axis = (_quantized_only(n)
        for n in ("q_per_channel_scales", "q_per_channel_zero_points", "q_per_channel_axis"))  # fmt: skip

    # -------------------------------------------------------------- comparisons
    def equal(self, other) -> bool:
        """True when ``other`` has the same shape and the same values."""
        from .. import ops

        return ops.equal(self, other)

    def allclose(self, other, rtol: float = 1e-05, atol: float = 1e-08,
                 equal_nan: bool = False) -> bool:  # fmt: skip
        from .. import ops

        return ops.allclose(self, other, rtol=rtol, atol=atol, equal_nan=equal_nan)

    # -------------------------------------------------------------- printing
    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a 0-d tensor's value, as PyTorch does."""
        if self.dim() == 0:
            return format(self.item(), spec)
        if spec:
            raise TypeError(
                f"unsupported format string {spec!r} passed to Tensor.__format__ for a tensor "
                f"of shape {tuple(self.shape)}; format t.item() of a 0-d tensor instead"
            )
        return str(self)


class UntypedStorage:
    """The allocation under a tensor (read-only facts about it: manygrad tensors own their
    arrays, so a storage cannot be resized or handed to another tensor)."""

    def __init__(self, tensor):
        from .. import backend

        self._data = tensor._data
        self.device = tensor.device
        self._start = backend.address(self._data)[1]
        self._nbytes = backend.allocation_nbytes(self._data)

    def data_ptr(self) -> int:
        return self._start

    def nbytes(self) -> int:
        return self._nbytes

    def size(self) -> int:
        return self._nbytes

    __len__ = size

    def element_size(self) -> int:
        return 1

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def resize_(self, size: int):
        raise NotImplementedError(
            "UntypedStorage.resize_: manygrad tensors own their memory; drop the tensor (or "
            "its references) to free it"
        )

    def __repr__(self) -> str:
        return f"UntypedStorage(nbytes={self._nbytes}, device={self.device})"


class TypedStorage(UntypedStorage):
    """``tensor.storage()``: the allocation counted in elements of the tensor's dtype."""

    def __init__(self, tensor):
        super().__init__(tensor)
        self.dtype = tensor.dtype
        self._itemsize = tensor._data.dtype.itemsize

    def size(self) -> int:
        return self._nbytes // self._itemsize

    __len__ = size

    def element_size(self) -> int:
        return self._itemsize

    def untyped(self) -> UntypedStorage:
        return self

    def __repr__(self) -> str:
        return f"TypedStorage(size={self.size()}, dtype={self.dtype}, device={self.device})"
