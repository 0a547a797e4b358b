"""``NestedTensor``: a batch of tensors whose sizes differ along one or more dims, as
PyTorch's nested tensors.

The ``jagged`` layout packs the components into one ``values`` tensor and keeps the
``offsets`` of each component along the ragged dim, so elementwise and last-dim ops run
once over all components. The ``strided`` layout keeps a list of components that may differ
in any dim, and its ops run per component. Autograd flows through the component ops.
"""

from __future__ import annotations

import itertools

from ..errors import ManygradError
from ..sparse import jagged, strided
from ..tensor import Size, Tensor


def _mg():
    import manygrad

    return manygrad


class NestedUnsupportedError(ManygradError, NotImplementedError):
    """An op that nested tensors do not support."""


def unsupported(op: str) -> NestedUnsupportedError:
    return NestedUnsupportedError(
        f"{op} is not supported on nested tensors; convert to a dense tensor first with "
        "nt.to_padded_tensor(padding) (or apply the op to each of nt.unbind())"
    )


_counter = itertools.count(1)


class NestedInt:
    """The size of a ragged dim (printed ``j1``, ``j2``, ...): equal only to itself, never to
    an int, as PyTorch's symbolic nested ints."""

    __slots__ = ("_n",)

    def __init__(self):
        self._n = next(_counter)

    def __repr__(self) -> str:
        return f"j{self._n}"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return other is self

    def __ne__(self, other) -> bool:
        return other is not self

    def __hash__(self) -> int:
        return hash(("nested_int", self._n))

    def __int__(self):
        raise RuntimeError(
            f"the ragged size {self} of a nested tensor has no single int value; use "
            "nt.offsets().diff() (or nt.lengths()) for the per-component sizes"
        )

    __index__ = __int__


class NestedTensor:
    """A batch of tensors of different sizes (``is_nested`` is True).

    Build one with ``manygrad.nested.nested_tensor``, ``as_nested_tensor``, ``narrow`` or
    ``nested_tensor_from_jagged``.

    Example:
        >>> nt = mg.nested.nested_tensor([mg.randn(2, 4), mg.randn(3, 4)], layout=mg.jagged)
        >>> nt.shape  # manygrad.Size([2, j1, 4])
    """

    __slots__ = ("_layout", "_comps", "_values", "_offsets", "_lengths", "_offs", "_lens")
    __slots__ += ("_ragged_idx", "_sym", "__weakref__")
    is_nested = True
    is_sparse = False
    __hash__ = object.__hash__

    # ------------------------------------------------------------------ construction
    @classmethod
    def _strided(cls, comps: list) -> NestedTensor:
        nt = cls.__new__(cls)
        nt._layout, nt._comps = strided, list(comps)
        nt._values = nt._offsets = nt._lengths = nt._offs = nt._lens = nt._sym = None
        nt._ragged_idx = 1
        return nt

    @classmethod
    def _jagged(cls, values, offsets, offs, lengths=None, lens=None, ragged_idx=1, sym=None):
        nt = cls.__new__(cls)
        nt._layout, nt._comps = jagged, None
        nt._values, nt._offsets, nt._offs = values, offsets, tuple(offs)
        nt._lengths, nt._lens = lengths, (None if lens is None else tuple(lens))
        nt._ragged_idx, nt._sym = ragged_idx, sym if sym is not None else NestedInt()
        return nt

    def _like(self, values) -> NestedTensor:
        """A jagged nested tensor of this one's structure around new ``values``."""
        rd = self._ragged_idx - 1
        if values.ndim < 1 or values.shape[rd] != self._values.shape[rd]:
            raise RuntimeError(f"nested tensor op changed the packed ragged dim: values "
                               f"{tuple(self._values.shape)} -> {tuple(values.shape)}")  # fmt: skip
        return NestedTensor._jagged(values, self._offsets, self._offs, self._lengths,
                                    self._lens, self._ragged_idx, self._sym)  # fmt: skip

    def _from_components(self, comps: list, ragged_idx: int | None = None) -> NestedTensor:
        """A nested tensor of this one's layout around new components (same batch)."""
        if self._layout is strided:
            return NestedTensor._strided(comps)
        r = self._ragged_idx if ragged_idx is None else ragged_idx
        sizes = [c.shape[r - 1] for c in comps]
        same = self._lens is None and sizes == [
            b - a for a, b in zip(self._offs[:-1], self._offs[1:])
        ]
        values = _mg().cat(list(comps), r - 1)
        if same:
            return NestedTensor._jagged(values, self._offsets, self._offs, None, None, r,
                                        self._sym)  # fmt: skip
        offs = [0, *itertools.accumulate(sizes)]
        offsets = _mg().tensor(offs, dtype=_mg().int64, device=values.device)
        return NestedTensor._jagged(values, offsets, offs, ragged_idx=r)

    # ------------------------------------------------------------------ components
    def unbind(self, dim: int = 0) -> tuple:
        """The components as a tuple of tensors (views that keep the gradient path)."""
        if dim != 0:
            raise RuntimeError(f"unbind: nested tensors only unbind along dim 0, got {dim}")
        if self._layout is strided:
            return tuple(self._comps)
        rd, offs = self._ragged_idx - 1, self._offs
        lens = self._lens or [b - a for a, b in zip(offs[:-1], offs[1:])]
        return tuple(self._values.narrow(rd, offs[i], lens[i]) for i in range(len(lens)))

    def values(self) -> Tensor:
        """The packed components (jagged layout): the ragged dim and the batch dim merged."""
        if self._layout is not jagged:
            raise RuntimeError("values(): only the jagged layout packs its components; use "
                               "unbind() for a strided nested tensor")  # fmt: skip
        return self._values

    def offsets(self) -> Tensor:
        """Where each component starts in ``values()`` along the ragged dim (B + 1 ints)."""
        if self._layout is not jagged:
            raise RuntimeError("offsets(): only the jagged layout has offsets")
        return self._offsets

    def lengths(self) -> Tensor | None:
        """Each component's length along the ragged dim, or None when ``offsets().diff()``
        gives it (a nested tensor made by ``narrow``)."""
        if self._layout is not jagged:
            raise RuntimeError("lengths(): only the jagged layout has lengths")
        return self._lengths

    def __getitem__(self, idx):
        if isinstance(idx, int):
            return self.unbind()[idx]
        raise unsupported(f"indexing with {type(idx).__name__}")

    def __len__(self) -> int:
        return self.size(0)

    def __iter__(self):
        return iter(self.unbind())

    # ------------------------------------------------------------------ metadata
    def _first(self) -> Tensor:
        return self._values if self._layout is jagged else self._comps[0]

    def dim(self) -> int:
        if self._layout is jagged:
            return self._values.ndim + 1
        return self._comps[0].ndim + 1 if self._comps else 1

    ndim = property(dim)

    @property
    def shape(self) -> Size:
        if self._layout is strided:
            raise RuntimeError("shape: a strided nested tensor has no single shape; use "
                               "nt.size(i) for its regular dims or the jagged layout, whose "
                               "shape shows the ragged dim as j1")  # fmt: skip
        s = list(self._values.shape)
        s[self._ragged_idx - 1] = self._sym
        return Size((len(self._offs) - 1, *s))

    def size(self, dim: int | None = None):
        if self._layout is jagged:
            return self.shape if dim is None else self.shape[dim]
        if dim is None:
            return self.shape
        n = self.dim()
        d = dim + n if dim < 0 else dim
        if not 0 <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {dim})")  # fmt: skip
        if d == 0:
            return len(self._comps)
        sizes = {c.shape[d - 1] for c in self._comps}
        if len(sizes) != 1:
            raise RuntimeError(f"Given dimension {dim} is irregular and does not have a size.")
        return sizes.pop()

    def numel(self) -> int:
        if self._layout is jagged and self._lens is None:
            return self._values.numel()
        return sum(c.numel() for c in self.unbind())

    @property
    def layout(self):
        return self._layout

    @property
    def dtype(self):
        return self._first().dtype

    @property
    def device(self):
        return self._first().device

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def is_contiguous(self, memory_format=None) -> bool:
        return self._layout is strided or self._lens is None

    # ------------------------------------------------------------------ autograd
    def _leaves(self) -> list:
        return [self._values] if self._layout is jagged else self._comps

    @property
    def requires_grad(self) -> bool:
        return any(t.requires_grad for t in self._leaves())

    def requires_grad_(self, requires_grad: bool = True) -> NestedTensor:
        for t in self._leaves():
            t.requires_grad_(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return all(t.is_leaf for t in self._leaves())

    @property
    def grad_fn(self):
        return self._leaves()[0].grad_fn if self._leaves() else None

    @property
    def grad(self) -> NestedTensor | None:
        if self._layout is jagged:
            g = self._values.grad
            return None if g is None else self._like(g)
        grads = [c.grad for c in self._comps]
        if all(g is None for g in grads):
            return None
        grads = [_mg().zeros_like(c) if g is None else g for c, g in zip(self._comps, grads)]
        return NestedTensor._strided(grads)

    def backward(self, gradient=None, retain_graph=None, create_graph=False) -> None:
        """Back-propagate ``gradient`` (a nested tensor of this one's structure)."""
        if not isinstance(gradient, NestedTensor):
            raise RuntimeError("backward: a nested tensor needs a nested gradient of its own "
                               "structure; or reduce it first, e.g. nt.values().sum()")  # fmt: skip
        _mg().autograd.backward(list(self.unbind()), list(gradient.unbind()),
                                retain_graph=retain_graph, create_graph=create_graph)  # fmt: skip

    def detach(self) -> NestedTensor:
        return self._map(lambda t: t.detach())

    def clone(self, *, memory_format=None) -> NestedTensor:
        return self._map(lambda t: t.clone())

    def contiguous(self, memory_format=None) -> NestedTensor:
        if self.is_contiguous():
            return self
        return self._from_components([c.clone() for c in self.unbind()])

    def to(self, *args, **kwargs) -> NestedTensor:
        """Move or cast the components (``nt.to(mg.float64)``, ``nt.to("cuda")``)."""
        out = self._map(lambda t: t.to(*args, **kwargs))
        if out._layout is jagged and out._offsets.device != out._values.device:
            out._offsets = out._offsets.to(out._values.device)
            if out._lengths is not None:
                out._lengths = out._lengths.to(out._values.device)
        return out

    def cpu(self) -> NestedTensor:
        return self.to("cpu")

    def cuda(self, device=None) -> NestedTensor:
        return self.to("cuda" if device is None else device)

    def float(self) -> NestedTensor:
        return self.to(_mg().float32)

    def double(self) -> NestedTensor:
        return self.to(_mg().float64)

    def half(self) -> NestedTensor:
        return self.to(_mg().float16)

    # ------------------------------------------------------------------ mapping
    def _map(self, fn) -> NestedTensor:
        """``fn`` on the packed values (jagged) or on each component (strided): for ops
        that keep the shape."""
        if self._layout is jagged:
            return self._like(fn(self._values))
        return NestedTensor._strided([fn(c) for c in self._comps])

    def _map_each(self, fn, ragged_idx: int | None = None) -> NestedTensor:
        """``fn`` on each component, the results nested again."""
        return self._from_components([fn(c) for c in self.unbind()], ragged_idx)

    def _comp_dim(self, dim: int, op: str) -> int:
        """The component dim of nested dim ``dim``; the batch dim is refused."""
        n = self.dim()
        d = dim + n if dim < 0 else dim
        if not 0 <= d < n:
            raise IndexError(f"{op}: dim {dim} out of range for a nested tensor of {n} dims")
        if d == 0:
            raise RuntimeError(f"{op}: not supported along the batch dim (dim 0) of a nested "
                               "tensor; convert with nt.to_padded_tensor(padding)")  # fmt: skip
        return d - 1

    def _packed(self, cdim: int) -> bool:
        """Whether an op along component dim ``cdim`` can run on the packed values."""
        return self._layout is jagged and cdim != self._ragged_idx - 1

    def _reduce(self, name: str, dim, keepdim: bool, **kwargs):
        if dim is None:
            if self._layout is jagged and self._lens is None:
                return getattr(self._values, name)(**kwargs)
            parts = [c.sum() for c in self.unbind()]
            total = _mg().stack(parts).sum()
            return total if name == "sum" else total / self.numel()
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if len(dims) != 1:
            raise unsupported(f"{name} over several dims")
        c = self._comp_dim(dims[0], name)
        if self._packed(c) and (keepdim or c > self._ragged_idx - 1):
            return self._like(getattr(self._values, name)(c, keepdim=keepdim, **kwargs))
        if not keepdim and c == self._ragged_idx - 1:
            # NOTE: reducing the ragged dim leaves a regular tensor: one row per component
            return _mg().stack([getattr(t, name)(c, **kwargs) for t in self.unbind()])
        if not keepdim and self._layout is jagged:
            r = self._ragged_idx - (1 if c < self._ragged_idx - 1 else 0)
            return self._map_each(lambda t: getattr(t, name)(c, **kwargs), r)
        return self._map_each(lambda t: getattr(t, name)(c, keepdim=keepdim, **kwargs))

    def sum(self, dim=None, keepdim: bool = False, *, dtype=None):
        kw = {} if dtype is None else {"dtype": dtype}
        return self._reduce("sum", dim, keepdim, **kw)

    def mean(self, dim=None, keepdim: bool = False, *, dtype=None):
        kw = {} if dtype is None else {"dtype": dtype}
        return self._reduce("mean", dim, keepdim, **kw)

    def softmax(self, dim: int, dtype=None) -> NestedTensor:
        from . import _functional

        return _functional.softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim: int, dtype=None) -> NestedTensor:
        from . import _functional

        return _functional.log_softmax(self, dim, dtype=dtype)

    def transpose(self, dim0: int, dim1: int) -> NestedTensor:
        """Swap two non-batch dims: ``(B, j, H, D) -> (B, H, j, D)`` for attention."""
        a, b = self._comp_dim(dim0, "transpose"), self._comp_dim(dim1, "transpose")
        if self._layout is strided:
            return self._map(lambda t: t.transpose(a, b))
        r = self._ragged_idx - 1
        r = b if r == a else a if r == b else r
        return NestedTensor._jagged(self._values.transpose(a, b), self._offsets, self._offs,
                                    self._lengths, self._lens, r + 1, self._sym)  # fmt: skip

    def to_padded_tensor(self, padding: float, output_size=None) -> Tensor:
        """A dense tensor: the components padded with ``padding`` to the largest size in
        each dim (or to ``output_size``) and stacked.

        Example: ``x = nt.to_padded_tensor(0.0)``.
        """
        mg = _mg()
        comps = self.unbind()
        if not comps:
            raise RuntimeError("to_padded_tensor: the nested tensor has no components")
        n = comps[0].ndim
        big = [max(c.shape[d] for c in comps) for d in range(n)]
        if output_size is not None:
            output_size = tuple(output_size)
            if len(output_size) != n + 1 or output_size[0] != len(comps):
                raise RuntimeError(f"to_padded_tensor: output_size {output_size} must have "
                                   f"{n + 1} dims and batch {len(comps)}")  # fmt: skip
            if any(o < b for o, b in zip(output_size[1:], big)):
                raise RuntimeError(f"to_padded_tensor: output_size {output_size} is smaller "
                                   f"than the largest component sizes {tuple(big)}")  # fmt: skip
            big = list(output_size[1:])
        out = []
        for c in comps:
            pad = []
            for d in reversed(range(n)):
                pad += [0, big[d] - c.shape[d]]
            out.append(mg.nn.functional.pad(c, pad, value=padding) if any(pad) else c)
        return mg.stack(out)

    # ------------------------------------------------------------------ operators
    def _binary(self, other, name: str, reverse: bool = False):
        from . import _functional

        return (
            _functional.binary(name, other, self)
            if reverse
            else _functional.binary(name, self, other)
        )

    def __add__(self, o):
        return self._binary(o, "add")

    def __radd__(self, o):
        return self._binary(o, "add", True)

    def __sub__(self, o):
        return self._binary(o, "sub")

    def __rsub__(self, o):
        return self._binary(o, "sub", True)

    def __mul__(self, o):
        return self._binary(o, "mul")

    def __rmul__(self, o):
        return self._binary(o, "mul", True)

    def __truediv__(self, o):
        return self._binary(o, "div")

    def __rtruediv__(self, o):
        return self._binary(o, "div", True)

    def __pow__(self, o):
        return self._binary(o, "pow")

    def __matmul__(self, o):
        from . import _functional

        return _functional.matmul(self, o)

    def __neg__(self):
        return self._map(lambda t: -t)

    def __abs__(self):
        return self._map(lambda t: t.abs())

    add, sub, mul, div, matmul = __add__, __sub__, __mul__, __truediv__, __matmul__

    def __bool__(self):
        raise unsupported("bool()")

    def __getattr__(self, name: str):
        from . import _functional

        if name in _functional.ELEMENTWISE_METHODS:
            return lambda *a, **k: self._map(lambda t: getattr(t, name)(*a, **k))
        if not name.startswith("_") and hasattr(Tensor, name):
            raise unsupported(f"Tensor.{name}")
        raise AttributeError(f"'NestedTensor' object has no attribute {name!r}")

    def __repr__(self) -> str:
        if self._layout is jagged:
            return (f"NestedTensor(size={tuple(self.shape)}, offsets={self._offsets!r}, "
                    f"contiguous={self.is_contiguous()})")  # fmt: skip
        inner = ",\n".join("  " + repr(c).replace("\n", "\n  ") for c in self._comps)
        return f"nested_tensor([\n{inner}\n])"
