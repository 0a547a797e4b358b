"""More of ``Tensor``'s methods, kept apart so that ``tensor.py`` stays readable.

``Tensor`` derives from ``TensorMethods``; every method here forwards to the functional op
of the same name in ``manygrad.ops`` (so ``x.sort()`` and ``mg.sort(x)`` are the same code,
with the same arguments after the tensor itself).
"""

from __future__ import annotations

import sys

from ._size_args import one_form
from ._tensor_aliases import AliasMethods
from ._tensor_op_methods import OpMethods
from ._tensor_sparse_methods import SparseTensorMethods
from .compat.tensor_methods import CompatMethods  # type, stride, __format__, ...


def _ops():
    # NOTE: manygrad.ops imports tensor.py, which imports this module: look it up late
    return sys.modules["manygrad.ops"]


def _size(sizes: tuple, size=None, name: str = "new_zeros") -> tuple:
    """The shape given as ints, one tuple, or PyTorch's ``size=`` keyword."""
    sizes = one_form(name, sizes, size=size)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        return tuple(sizes[0])
    return tuple(sizes)


class TensorMethods(OpMethods, CompatMethods, AliasMethods, SparseTensorMethods):
    """Methods of ``Tensor`` that forward to ``manygrad.ops``."""

    __slots__ = ()

    # ------------------------------------------------------------ new_* constructors
    def new_zeros(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        """Zeros of ``size`` with this tensor's dtype and device (unless given)."""
        from .creation import zeros

        return zeros(_size(sizes, size, "new_zeros"), dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)  # fmt: skip

    def new_ones(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        """Ones of ``size`` with this tensor's dtype and device (unless given)."""
        from .creation import ones

        return ones(_size(sizes, size, "new_ones"), dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)  # fmt: skip

    def new_empty(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        """An uninitialised tensor of ``size`` with this tensor's dtype and device."""
        from .creation import empty

        return empty(_size(sizes, size, "new_empty"), dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)  # fmt: skip

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        """``fill_value`` in every entry of ``size``, with this tensor's dtype and device."""
        from .creation import full

        return full(tuple(size), fill_value, dtype=dtype or self.dtype,
                    device=device or self.device, requires_grad=requires_grad)  # fmt: skip

    def new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
        """A copy of ``data`` as a tensor with this tensor's dtype and device (unless given)."""
        from .creation import tensor

        if hasattr(data, "detach") and hasattr(data, "_data"):
            data = data.detach().cpu().numpy()
        return tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                      requires_grad=requires_grad)  # fmt: skip

    # ------------------------------------------------------------ DLPack
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule sharing this tensor's memory (for ``np.from_dlpack``,
        ``cupy.from_dlpack``, ``torch.from_dlpack``, ...); refused while it requires grad."""
        from .utils import dlpack

        if self.requires_grad:
            raise BufferError("__dlpack__: can't export a tensor that requires grad; use "
                              "t.detach().__dlpack__()")  # fmt: skip
        return dlpack.export(self, stream, max_version, dl_device, copy)

    def __dlpack_device__(self) -> tuple:
        """(DLPack device type, index): ``kDLCPU`` on the CPU, ``kDLCUDA`` on GPUs and
        ``kDLExtDev`` (12) on the fake GPU, whose host memory must not pass for CUDA's."""
        from .utils import dlpack

        return dlpack.device_of(self)

    # ------------------------------------------------------------ sparse
    is_sparse = False

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """The non-zero entries as a sparse COO tensor (``mg.sparse``), its last ``dense_dim``
        dims (default 0; or all past the first ``sparse_dim``) kept dense; ``layout`` is
        ``mg.sparse_coo``, a compressed layout (``mg.sparse_csr``, ``sparse_csc``, or
        ``sparse_bsr``/``sparse_bsc`` with ``blocksize``) or ``mg.strided`` (this tensor)."""
        from ._sparse_compressed import to_layout
        from .sparse import to_sparse

        if (layout is not None and layout != "sparse_coo") or blocksize is not None:
            return to_layout(self, layout, blocksize, dense_dim, sparse_dim)
        if dense_dim is not None:
            if sparse_dim is not None:
                raise TypeError("to_sparse: pass sparse_dim or dense_dim, not both")
            if not 0 <= dense_dim < max(self.ndim, 1):
                raise ValueError(
                    f"to_sparse: dense_dim must be in 0..{max(self.ndim - 1, 0)} for a "
                    f"{self.ndim}-d tensor, got {dense_dim}"
                )
            sparse_dim = self.ndim - dense_dim if self.ndim else None
        return to_sparse(self, sparse_dim)

    def to_sparse_csr(self, dense_dim=None):
        """The non-zero entries as a sparse CSR tensor (``mg.sparse_csr_tensor``); dims
        before the last two (less ``dense_dim``) are batch dims."""
        from ._sparse_csr import dense_to_csr

        return dense_to_csr(self, dense_dim)

    def to_dense(self, dtype=None, *, masked_grad=True):
        """This tensor (it is dense), cast to ``dtype`` when given; ``masked_grad`` concerns
        sparse tensors' gradients only."""
        return self if dtype is None else self.to(dtype)
