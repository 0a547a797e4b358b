"""Tensor methods that PyTorch programs use to inspect and convert tensors: ``t.type()``,
``t.stride()``, ``t.data_ptr()``, ``f"{t:.3f}"``, ...; ``TensorMethods`` derives from
``CompatMethods``."""

from __future__ import annotations


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
        return self.dtype.np.kind in "if"

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
        st = tuple(s // self._data.itemsize for s in self._data.strides)
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

    def get_device(self) -> int:
        """The GPU index, or -1 on the CPU."""
        return -1 if self.device.type == "cpu" else (self.device.index or 0)

    @property
    def is_sparse(self) -> bool:
        return False

    def is_pinned(self) -> bool:
        return False

    def pin_memory(self):
        """This tensor: the DataLoader pins batches itself (``pin_memory=True``)."""
        return self

    def share_memory_(self):
        return self

    def is_shared(self) -> bool:
        return False

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
