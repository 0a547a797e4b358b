"""More of PyTorch's lower-level top-level names:

- ``torch.embedding_bag``: the call behind ``F.embedding_bag``, with its 4-tuple
  ``(output, offset2bag, bag_size, max_indices)``;
- ``torch.from_file``: a CPU tensor over a binary file (mapped, so with ``shared=True``
  writes to the tensor reach the file);
- ``torch.solve``, ``lstsq``, ``eig``, ``symeig``, ``matrix_rank`` (and the Tensor methods
  of the first four): removed from PyTorch, kept as names whose error says what replaces
  them, with PyTorch's text.

Re-exported as ``manygrad.<name>``.

Example:
    >>> out, offset2bag, bag_size, max_indices = mg.embedding_bag(w, ids, offsets, False, 1,
    ...                                                           False, None, False, None)
"""

from __future__ import annotations

import os

from .. import backend
from .. import dtypes as D
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor

_MODES = ("sum", "mean", "max")


def _F():  # noqa: N802
    from ..nn import functional

    return functional


# ---------------------------------------------------------------------------- embedding_bag


def _max_indices(xp, ids, use, starts, ends, values, weight):
    """Per bag and column the id whose row gave the maximum (the first of equal values, as
    PyTorch's); 0 for a bag without ids."""
    nb, dim = values.shape
    n = ids.shape[0]
    out = xp.zeros((nb, dim), ids.dtype)
    if n == 0 or nb == 0:
        return out
    width = max(int((ends - starts).max()), 1)
    pos = starts[:, None] + xp.arange(width)  # (bags, width): the positions of each bag
    valid = pos < ends[:, None]
    pos = xp.where(valid, pos, 0)
    rows = weight[xp.where(use, ids, 0)]  # (n, dim)
    hit = (rows[pos] == values[:, None, :]) & (valid & use[pos])[..., None]
    first = xp.argmax(hit, axis=1)  # (bags, dim): the first position holding the maximum
    picked = ids[xp.take_along_axis(pos, first, axis=1)]
    return xp.where(hit.any(axis=1), picked, out)


def embedding_bag(weight: Tensor, indices: Tensor, offsets: Tensor,
                  scale_grad_by_freq: bool = False, mode: int = 0, sparse: bool = False,
                  per_sample_weights: Tensor | None = None, include_last_offset: bool = False,
                  padding_idx: int | None = None):  # fmt: skip
    """``F.embedding_bag`` with PyTorch's low-level argument order, returning
    ``(output, offset2bag, bag_size, max_indices)``.

    Args:
        weight: the (num_embeddings, dim) table. indices: 1-d ids. offsets: 1-d bag starts
            (``offsets[0]`` must be 0). scale_grad_by_freq: default False.
        mode: 0 sum, 1 mean, 2 max (default 0). sparse: default False.
        per_sample_weights: a weight per id (mode 0 only). include_last_offset: default
            False. padding_idx: an id left out of bags (default None).

    The auxiliary outputs are PyTorch's (CPU), in the indices' integer dtype:
    ``offset2bag`` the bag of each id (empty for a float32/16-bit sum without
    ``padding_idx``, which PyTorch's fast path leaves unfilled), ``bag_size`` the ids
    counted in each bag (zeros for sum), ``max_indices`` the id of each maximum (mode 2,
    (bags, dim)), else ``bag_size`` again (mean) or zeros (sum).

    Example:
        >>> out, o2b, size, arg = mg.embedding_bag(w, mg.tensor([1, 2, 4]),
        ...                                        mg.tensor([0, 2]), False, 2, False,
        ...                                        None, False, None)
    """
    if isinstance(mode, bool) or mode not in (0, 1, 2):
        raise RuntimeError(f"embedding_bag: `mode` must be 0 (sum), 1 (mean) or 2 (max), got "
                         f"{mode!r}")  # fmt: skip
    if indices.dtype not in (D.int32, D.int64):
        raise DTypeError(f"embedding_bag: expected indices of dtype int64 or int32, got "
                         f"{indices.dtype}")  # fmt: skip
    if offsets.ndim != 1:
        raise ShapeError(f"embedding_bag: offsets has to be a 1D Tensor, but got Tensor of "
                         f"dimension {offsets.ndim}")  # fmt: skip
    if per_sample_weights is not None and mode != 0:
        raise RuntimeError("embedding_bag: per_sample_weights only supported with mode='sum' "
                         "(mode 0)")  # fmt: skip
    num = weight.shape[0]
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise RuntimeError(f"padding_idx must be within the number of embeddings, -{num} "
                             f"through {num - 1}, but got {padding_idx}")  # fmt: skip
        padding_idx %= num
    if offsets.numel() and int(offsets[0].item()) != 0:
        raise RuntimeError(
            "embedding_bag: offsets[0] has to be 0, i.e., the first sequence in the "
            f"mini-batch has to start from position 0. However, got {int(offsets[0].item())}"
        )
    flat = indices.reshape(-1)
    psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    out = _F().embedding_bag(flat, weight, offsets, None, 2, scale_grad_by_freq, _MODES[mode],
                             sparse, psw, include_last_offset, padding_idx)  # fmt: skip
    xp = backend.array_module(weight._data)
    with backend.device_scope(weight._device):
        ids = xp.asarray(flat._data)
        n, it = ids.shape[0], ids.dtype
        off = xp.asarray(offsets._data).astype(xp.int64)
        starts = off[:-1] if include_last_offset else off
        nb = starts.shape[0]
        # NOTE: the bag of each id is the last bag starting at or before it (empty bags
        # are skipped), as PyTorch's cumulative sum of the bag starts gives it
        bag = xp.searchsorted(starts, xp.arange(n), side="right") - 1
        use = bag >= 0
        if padding_idx is not None:
            use &= ids != padding_idx
        fast = (
            mode == 0 and padding_idx is None
            and weight.dtype in (D.float32, D.float16, D.bfloat16) and weight.is_contiguous() and (psw is None or psw.dtype == weight.dtype)
        )  # fmt: skip
        offset2bag = xp.zeros(0, it) if fast else bag.astype(it)
        if mode == 0:
            bag_size = xp.zeros(nb, it)
            max_ids = xp.zeros(nb, it)
        else:
            bag_size = xp.bincount(xp.where(use, bag, nb), minlength=nb + 1)[:nb].astype(it)
            if mode == 1:
                max_ids = bag_size.copy()
            else:
                ends = xp.concatenate([starts[1:], off[-1:] if include_last_offset else
                                       xp.asarray([n], xp.int64)])  # fmt: skip
                max_ids = _max_indices(xp, ids, use, starts, xp.minimum(ends, n), out._data,
                                       weight._data)  # fmt: skip
    dev = weight._device
    return (out, *(Tensor._wrap(a, dev) for a in (offset2bag, bag_size, max_ids)))


# ---------------------------------------------------------------------------- from_file


def from_file(filename, shared: bool | None = None, size: int = 0, *, dtype=None, layout=None,
              device=None, pin_memory: bool = False) -> Tensor:  # fmt: skip
    """A 1-d CPU tensor of ``size`` elements read from the binary file ``filename``.

    Args:
        filename: the file. shared: True maps it so that writes to the tensor reach the
            file (created, or grown, to ``size`` elements if needed); False or None (the
            default) gives a private copy-on-write view. size: elements (default 0).
        dtype: default the global default dtype. device: the CPU only.

    Example:
        >>> mg.arange(6.0).numpy().tofile("a.bin")
        >>> mg.from_file("a.bin", size=6)
        tensor([0., 1., 2., 3., 4., 5.])
    """
    np = backend.np
    d = D.from_any(dtype) if dtype is not None else D.get_default_dtype()
    if device is not None and backend.device(device).type != "cpu":
        raise ValueError(f"from_file: only CPU tensors can be mapped to files, got device "
                         f"{device!r}; map on the CPU and move it with .to({device!r})")  # fmt: skip
    if pin_memory:
        raise ValueError("from_file: a file-mapped tensor cannot be in pinned memory; pass "
                         "pin_memory=False and call .pin_memory() on the result")  # fmt: skip
    path = os.fspath(filename)
    need = int(size) * d.itemsize
    if shared:
        with open(path, "ab") as f:  # NOTE: creates the file; grows it as PyTorch's mapping
            if f.tell() < need:
                f.truncate(need)
    elif not os.path.exists(path):
        raise RuntimeError(f"from_file: unable to open file <{path}> in read-only mode: "
                                "No such file or directory")  # fmt: skip
    have = os.path.getsize(path)
    if have < need:
        raise RuntimeError(f"from_file: file <{path}> size <{have}> is smaller than the "
                         f"required mapping size <{need}>")  # fmt: skip
    if size == 0:
        arr = np.zeros(0, d.np)
    else:
        mapped = np.memmap(path, dtype=d.np, mode="r+" if shared else "c", shape=(int(size),))
        # NOTE: a plain ndarray over the mapping (the C kernels take exact ndarrays only)
        arr = mapped.view(np.ndarray)
    return Tensor._wrap(arr, backend.CPU)


# ---------------------------------------------------------------------------- removed names

_SINCE = "This function was deprecated since version 1.9 and is now removed. "
_REMOVED = {
    "solve": _SINCE + (
        "`torch.solve` is deprecated in favor of `torch.linalg.solve`. `torch.linalg.solve` "
        "has its arguments reversed and does not return the LU factorization.\n\nTo get the "
        "LU factorization see `torch.lu`, which can be used with `torch.lu_solve` or "
        "`torch.lu_unpack`.\nX = torch.solve(B, A).solution should be replaced with:\n"
        "X = torch.linalg.solve(A, B)"
    ),
    "lstsq": _SINCE + (
        "`torch.lstsq` is deprecated in favor of `torch.linalg.lstsq`.\n`torch.linalg.lstsq` "
        "has reversed arguments and does not return the QR decomposition in the returned "
        "tuple (although it returns other information about the problem).\n\nTo get the QR "
        "decomposition consider using `torch.linalg.qr`.\n\nThe returned solution in "
        "`torch.lstsq` stored the residuals of the solution in the last m - n columns of the "
        "returned value whenever m > n. In torch.linalg.lstsq, the residuals are in the "
        "field 'residuals' of the returned named tuple.\n\nThe unpacking of the solution, as "
        "in\nX, _ = torch.lstsq(B, A).solution[:A.size(1)]\nshould be replaced with:\n"
        "X = torch.linalg.lstsq(A, B).solution"
    ),
    "eig": _SINCE + (
        "`torch.linalg.eig` returns complex tensors of dtype `cfloat` or `cdouble` rather "
        "than real tensors mimicking complex tensors.\n\nL, _ = torch.eig(A) should be "
        "replaced with:\nL_complex = torch.linalg.eigvals(A)\n\nand\n\nL, V = torch.eig(A, "
        "eigenvectors=True) should be replaced with:\nL_complex, V_complex = "
        "torch.linalg.eig(A)"
    ),
    "symeig": _SINCE + (
        "The default behavior has changed from using the upper triangular portion of the "
        "matrix by default to using the lower triangular portion.\n\nL, _ = torch.symeig(A, "
        "upper=upper) should be replaced with:\nL = torch.linalg.eigvalsh(A, UPLO='U' if "
        "upper else 'L')\n\nand\n\nL, V = torch.symeig(A, eigenvectors=True) should be "
        "replaced with:\nL, V = torch.linalg.eigh(A, UPLO='U' if upper else 'L')"
    ),
    "matrix_rank": _SINCE.rstrip() + (
        "\nPlease use the `torch.linalg.matrix_rank` function instead. The parameter "
        "'symmetric' was renamed in `torch.linalg.matrix_rank()` to 'hermitian'."
    ),
}  # fmt: skip


def solve(input: Tensor, A: Tensor, *, out=None):  # noqa: A002, N803
    """Removed from PyTorch 1.9+: raises, naming ``linalg.solve(A, B)`` instead."""
    raise RuntimeError(_REMOVED["solve"])


def lstsq(input: Tensor, A: Tensor, *, out=None):  # noqa: A002, N803
    """Removed from PyTorch 1.9+: raises, naming ``linalg.lstsq(A, B)`` instead."""
    raise RuntimeError(_REMOVED["lstsq"])


def eig(self: Tensor, eigenvectors: bool = False, *, e=None, v=None):
    """Removed from PyTorch 1.9+: raises, naming ``linalg.eig`` / ``eigvals`` instead."""
    raise RuntimeError(_REMOVED["eig"])


def symeig(input: Tensor, eigenvectors: bool = False, upper: bool = True, *, out=None):  # noqa: A002
    """Removed from PyTorch 1.9+: raises, naming ``linalg.eigh`` / ``eigvalsh`` instead."""
    raise RuntimeError(_REMOVED["symeig"])


def matrix_rank(input: Tensor, tol=None, symmetric: bool = False, *, out=None):  # noqa: A002
    """Removed from PyTorch 1.9+: raises, naming ``linalg.matrix_rank`` instead."""
    raise RuntimeError(_REMOVED["matrix_rank"])


__all__ = ["eig", "embedding_bag", "from_file", "lstsq", "matrix_rank", "solve", "symeig"]
