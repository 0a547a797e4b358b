"""Ops that rearrange or fill values: pad, flip, roll, repeat, tril/triu, masked_fill."""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import DeviceError, DTypeError, ShapeError
from ..tensor import Tensor
from .indexing import _dims, _index_array, _sizes

# ---------------------------------------------------------------------------- pad

_PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _source_index(xp, n: int, before: int, after: int, mode: str):
    """For each output position along a padded dim, the input position it copies."""
    i = xp.arange(-before, n + after)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    if mode == "circular":  # NOTE: PyTorch crops (negative pads) first, then wraps
        lo, m = max(-before, 0), n - max(-before, 0) - max(-after, 0)
        return lo + xp.arange(-max(before, 0), m + max(after, 0)) % max(m, 1)
    i = xp.abs(i)  # reflect: mirror at 0 and at n - 1, without repeating the edge
    return xp.where(i > n - 1, 2 * (n - 1) - i, i)


class Pad(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too

    backward_graph = Function.backward_of_linear

    def forward(self, x, pairs, mode, value):
        xp = backend.array_module(x)
        self.args = (pairs, mode, 0)  # NOTE: the linear part (the fill value is a constant)
        self.shape, self.pairs, self.mode = x.shape, pairs, mode
        if not pairs:  # a 0-d tensor
            return x.copy()
        if mode == "constant":
            # NOTE: negative padding crops, as in PyTorch
            crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(pairs, x.shape))
            pos = [(max(b, 0), max(a, 0)) for b, a in pairs]
            return xp.pad(x[crop], pos, mode="constant", constant_values=value)
        self.maps = []
        for d, ((b, a), n) in enumerate(zip(pairs, x.shape)):
            if b or a:
                idx = _source_index(xp, n, b, a, mode)
                self.maps.append((d, idx))
                x = xp.take(x, idx, axis=d)
        return x

    def backward(self, g):
        xp = backend.array_module(g)
        if not self.pairs:
            return g
        if self.mode == "constant":
            inner = tuple(slice(max(b, 0), n - max(a, 0)) for (b, a), n in zip(self.pairs, g.shape))
            return xp.pad(g[inner], [(max(-b, 0), max(-a, 0)) for b, a in self.pairs])
        for d, idx in reversed(self.maps):  # sum the copies back onto their sources
            shape = list(g.shape)
            shape[d] = self.shape[d]
            gx = xp.zeros(shape, g.dtype)
            backend.index_add(gx, (slice(None),) * d + (idx,), g)
            g = gx
        return g


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """``input`` padded as ``torch.nn.functional.pad``: ``pad`` lists (before, after) pairs
    starting from the last dim.

    Args:
        input: input tensor.
        pad: ``(left, right)`` pads the last dim, ``(left, right, top, bottom)`` the last
            two, and so on; negative values crop.
        mode: ``"constant"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        value: the fill value of constant mode (default 0).

    Example: ``mg.nn.functional.pad(images, (1, 1, 1, 1), mode="reflect")``
    """
    pad = _sizes((pad,), "pad")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ShapeError(
            f"pad: padding {list(pad)} must have an even length of at most {2 * input.ndim} "
            f"(two values per dim) for a tensor of shape {tuple(input.shape)}"
        )
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}, got {mode!r}")
    k = len(pad) // 2
    pairs = [(0, 0)] * (input.ndim - k) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(k))]
    for (b, a), n, d in zip(pairs, input.shape, range(input.ndim)):
        if mode == "constant":
            if n + b + a < 0:
                raise ShapeError(f"pad: padding {(b, a)} crops dim {d} of size {n} below 0")
            continue
        if not (b or a):
            continue
        # NOTE: negative pads crop, after reflect/replicate padding, before circular padding
        kept = n - max(-b, 0) - max(-a, 0)
        if n == 0 or (n + b + a < 1 if mode != "circular" else kept < 0):
            raise ShapeError(
                f"pad: {mode} padding {(b, a)} of dim {d} (size {n}) crops too much: the dim "
                f"must be non-empty and keep at least {int(mode != 'circular')} entries"
            )
        limit = n - 1 if mode == "reflect" else kept
        if mode != "replicate" and max(b, a) > limit:
            raise ShapeError(
                f"pad: {mode} padding {(b, a)} of dim {d} (size {n}) must be at most {limit}"
            )
    return Pad.apply(input, tuple(pairs), mode, 0 if value is None else value)


# ---------------------------------------------------------------------------- flip, roll


class Flip(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dims):
        self.dims = dims
        # NOTE: a copy, as PyTorch's flip (NumPy's flip is a view of x)
        return backend.array_module(x).flip(x, axis=dims).copy()

    def backward(self, g):
        return backend.array_module(g).flip(g, axis=self.dims)

    def backward_graph(self, g):
        return Flip.apply(g, self.dims)


def flip(input: Tensor, dims) -> Tensor:
    """``input`` with the order of entries reversed along ``dims`` (a tuple or list; the
    method also takes ints: ``x.flip(0)``).

    Example: ``mg.flip(mg.arange(3), (0,))`` is ``[2, 1, 0]``
    """
    if isinstance(dims, int):  # NOTE: as PyTorch's function form (its method takes ints)
        raise TypeError(
            f"flip(): argument 'dims' must be tuple of ints, not int; write flip(x, ({dims},))"
        )
    d = _dims(dims, input.ndim, "flip")
    return Flip.apply(input, d if input.ndim else ())


class Roll(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, shifts, dims):
        self.shifts, self.dims = shifts, dims
        return backend.array_module(x).roll(x, shifts, axis=dims)

    def backward(self, g):
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return backend.array_module(g).roll(g, back, axis=self.dims)

    def backward_graph(self, g):
        back = tuple(-s for s in self.shifts) if isinstance(self.shifts, tuple) else -self.shifts
        return Roll.apply(g, back, self.dims)


def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """``input`` shifted cyclically by ``shifts`` along ``dims`` (flattened when None).

    Example: ``mg.arange(4).roll(1)`` is ``[3, 0, 1, 2]``
    """
    s = _sizes((shifts,) if isinstance(shifts, int) else (tuple(shifts),), "roll")
    if dims is None:
        if len(s) != 1:
            raise ShapeError(f"roll: without dims, shifts must be one int, got {list(s)}")
        return Roll.apply(input, s[0], None)
    d = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(d) != len(s):
        raise ShapeError(f"roll: shifts {list(s)} and dims {list(d)} must have the same length")
    d = _dims(d, input.ndim, "roll")
    return Roll.apply(input, s, d if input.ndim else None)


# ---------------------------------------------------------------------------- repeat


class Repeat(Function):
    keeps_nothing = True  # a second backward works without retain_graph
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, reps):
        self.shape, self.reps = x.shape, reps
        return backend.array_module(x).tile(x, reps)

    def backward(self, g):
        shape = (1,) * (len(self.reps) - len(self.shape)) + tuple(self.shape)
        pairs = [v for r, s in zip(self.reps, shape) for v in (r, s)]
        return g.reshape(pairs).sum(axis=tuple(range(0, len(pairs), 2))).reshape(self.shape)

    def backward_graph(self, g):
        shape = (1,) * (len(self.reps) - len(self.shape)) + tuple(self.shape)
        pairs = [v for r, s in zip(self.reps, shape) for v in (r, s)]
        return g.reshape(*pairs).sum(tuple(range(0, len(pairs), 2))).reshape(*self.shape)


def repeat(input: Tensor, *sizes) -> Tensor:
    """``input`` tiled ``sizes[i]`` times along each dim (extra sizes add leading dims).

    Example: ``mg.tensor([1, 2]).repeat(2, 2).shape == (2, 4)``
    """
    reps = _sizes(sizes, "repeat")
    if len(reps) < input.ndim or any(r < 0 for r in reps):
        raise ShapeError(
            f"repeat: got repeats {list(reps)} for a tensor of shape {tuple(input.shape)}; give "
            f"at least {input.ndim} non-negative counts"
        )
    return Repeat.apply(input, reps)


# ---------------------------------------------------------------------------- tril, triu


class Tri(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, k, upper):
        self.k, self.upper = k, upper
        xp = backend.array_module(x)
        return xp.triu(x, k) if upper else xp.tril(x, k)

    def backward(self, g):
        xp = backend.array_module(g)
        return xp.triu(g, self.k) if self.upper else xp.tril(g, self.k)

    def backward_graph(self, g):
        return Tri.apply(g, self.k, self.upper)


def _tri(x: Tensor, diagonal: int, upper: bool) -> Tensor:
    if x.ndim < 2:
        op = "triu" if upper else "tril"
        raise ShapeError(f"{op}: needs a tensor of at least 2 dims, got shape {tuple(x.shape)}")
    return Tri.apply(x, diagonal, upper)


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """``input`` with the entries above diagonal ``diagonal`` of its last two dims zeroed.

    Example: ``mg.ones(3, 3).tril()``
    """
    return _tri(input, diagonal, False)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """``input`` with the entries below diagonal ``diagonal`` of its last two dims zeroed.

    Example: ``mg.ones(3, 3).triu(1)``
    """
    return _tri(input, diagonal, True)


# ---------------------------------------------------------------------------- masked_fill


class MaskedFill(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, mask, value):
        xp = backend.array_module(x)
        self.mask = mask
        v = value.astype(x.dtype) if backend.is_array(value) else xp.asarray(value, x.dtype)
        return xp.where(mask, v, x)

    def backward(self, g):
        xp = backend.array_module(g)
        nx, _, nv = self.needs_input_grad
        zero = xp.zeros((), g.dtype)
        gx = xp.where(self.mask, zero, g) if nx else None
        return gx, None, (xp.where(self.mask, g, zero).sum() if nv else None)

    def backward_graph(self, g):
        from .elementwise import where

        nx, _, nv = self.needs_input_grad
        m = Tensor._wrap(self.mask)
        gx = where(m, 0.0, g) if nx else None
        return gx, None, (where(m, g, 0.0).sum() if nv else None)


@backend.on_tensor_device
def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """``input`` with ``value`` where the bool ``mask`` (broadcast against ``input``) is True.

    Args:
        input: the input tensor.
        mask: bool tensor broadcastable with ``input``.
        value: a number or a 0-d tensor (which then gets a gradient).

    Example: ``scores.masked_fill(~causal, float("-inf"))``
    """
    m = _index_array(input, mask, "masked_fill")
    if m.dtype.kind != "b":
        raise DTypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    for a, b in zip(reversed(input.shape), reversed(m.shape)):
        if a != b and a != 1 and b != 1:
            raise ShapeError(
                f"masked_fill: mask of shape {tuple(m.shape)} does not broadcast with the "
                f"input of shape {tuple(input.shape)}"
            )
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ShapeError(
                f"masked_fill: value must be a number or a 0-d tensor, got shape "
                f"{tuple(value.shape)}"
            )
        if value._device != input._device:
            raise DeviceError(
                f"masked_fill: value is on {value._device} but the tensor is on {input._device}"
            )
    return MaskedFill.apply(input, m, value)


from ._common import public  # noqa: E402

__all__ = public(globals())
