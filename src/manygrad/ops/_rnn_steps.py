"""Layouts and packed-sequence bookkeeping of the fused recurrent layers (``ops.rnn_fused``).

The layers keep every per-step array feature-major, ``(steps, directions, features, batch)``:
at each step the states of all directions are one C-contiguous ``(D, H, B)`` block and the
gates one ``(D, G*H, B)`` block, so that the recurrent product is ``W_hh @ h`` with the batch
as the short last dim. NOTE: measured on an AVX-512 CPU with one thread, OpenBLAS's
AVX-512 kernels computed ``W_hh @ h`` (4H x H times H x B, H 256, B 32) in 90 us and
``h @ W_hh.T`` in 165-190 us; its AVX2 kernels take about 170 us for either.

A reverse direction stores its step k (time T-1-k) at index k, so one slice ``[k]`` holds
step k of every direction and a step of both directions is one batched op.

Packed sequences run padded to ``(T, B, ...)``: every step computes all B columns, and the
columns outside a sequence (padding) only need to stay finite. Where a sequence starts
(``starts``: a reverse direction meets the end of a shorter sequence) its previous state
is set to h0, and where one ends (``ends``) its state is copied out as the final state;
the backward mirrors both (the final state's gradient enters at ``ends``, h0's leaves at
``starts``, and the padding steps see zero gradients).
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import ShapeError

LSTM_ORDER = (3, 0, 1, 2)  # internal gate blocks (o, i, f, g) from PyTorch's (i, f, g, o)
LSTM_BACK = (1, 2, 3, 0)  # and back
GRU_IH = (2, 0, 1)  # the input gates' gradient blocks (n, r, z) of the backward
GRU_IH_BACK = (1, 2, 0)


def blocks(w, order):
    """``w`` (G*H, ...) with its G gate blocks of rows reordered: block j is ``w``'s
    block ``order[j]`` (a new array)."""
    return w.reshape(len(order), -1)[list(order)].reshape(w.shape)


def boundaries(sizes, steps: int, batch: int, dirs) -> tuple[dict, dict]:
    """``(starts, ends)``: per step k, the ``(direction, first, stop)`` column ranges whose
    sequence starts (previous state h0) or ends (final state) at step k."""
    if sizes is None:
        every = [(d, 0, batch) for d in range(len(dirs))]
        return {0: every}, {steps - 1: list(every)}
    starts, ends = {}, {}
    for d, rev in enumerate(dirs):
        n = [sizes[steps - 1 - k] if rev else sizes[k] for k in range(steps)] + [0]
        for k in range(steps):
            before = n[k - 1] if k else 0
            if n[k] > before:
                starts.setdefault(k, []).append((d, before, n[k]))
            if n[k] > n[k + 1]:
                ends.setdefault(k, []).append((d, n[k + 1], n[k]))
    return starts, ends


def to_steps(src, dst, dirs, batch_first: bool) -> None:
    """``dst`` (T, D, F, B), step-indexed, from ``src`` (T, B, D*F) or (B, T, D*F)."""
    f = dst.shape[2]
    for d, rev in enumerate(dirs):
        part = src[..., d * f : (d + 1) * f]
        part = part.transpose(1, 2, 0) if batch_first else part.transpose(0, 2, 1)
        dst[:, d] = part[::-1] if rev else part


def from_steps(src, dst, dirs, batch_first: bool) -> None:
    """``dst`` (T, B, D*F) or (B, T, D*F) from ``src`` (T, D, F, B), step-indexed."""
    f = src.shape[2]
    for d, rev in enumerate(dirs):
        part = dst[..., d * f : (d + 1) * f]
        part = part.transpose(1, 0, 2) if batch_first else part  # (T, B, F)
        _transpose_steps(src[::-1, d] if rev else src[:, d], part)


_STEP_MIN = 2048  # values a step from which each step is copied on its own


def _transpose_steps(src, dst) -> None:
    """``dst[t] = src[t].T`` for every t. NOTE: on the CPU one step at a time when a step is
    large: each step's transpose then stays in the cache (T 50, B 32, F 256: 0.25 ms against
    0.94 ms for one strided copy of the whole); on a GPU one copy (one launch)."""
    if src.shape[1] * src.shape[2] < _STEP_MIN or backend.device_of(src).type != "cpu":
        dst[...] = src.transpose(0, 2, 1)
        return
    for t in range(src.shape[0]):
        dst[t] = src[t].T


def columns(src, dst, rev: bool) -> None:
    """``dst`` (F, T*B) from one direction's step-indexed ``src`` (T, F, B), its columns
    in time-major order (t, b)."""
    s = src[::-1] if rev else src
    t, f, b = s.shape
    dst.reshape(f, t, b)[...] = s.transpose(1, 0, 2)


def lengths_check(sizes, rows: int) -> None:
    if sum(sizes) != rows:
        raise ShapeError(
            f"rnn: the packed data has {rows} rows but batch_sizes sums to {sum(sizes)}"
        )


def packed_maps(xp, sizes: list, total: int):
    """The flat (t * B + b) positions of the packed rows in the padded (T, B) layout."""
    b = sizes[0]
    t_idx = xp.repeat(xp.arange(len(sizes)), xp.asarray(sizes))
    starts = xp.cumsum(xp.asarray([0] + sizes[:-1]))
    b_idx = xp.arange(total) - xp.repeat(starts, xp.asarray(sizes))
    return t_idx * b + b_idx


class Pad(Function):
    """Packed rows (N, F) -> padded (T, B, F), zeros where no sequence is."""

    def forward(self, x, flat=None, steps=0, batch=0):
        xp = backend.array_module(x)
        self.flat = flat
        out = xp.zeros((steps * batch,) + x.shape[1:], x.dtype)
        out[flat] = x
        return out.reshape((steps, batch) + x.shape[1:])

    def backward(self, g):
        return g.reshape((-1,) + g.shape[2:])[self.flat]

    def backward_graph(self, g):
        return Unpad.apply(g, flat=self.flat)


class Unpad(Function):
    """Padded (T, B, F) -> the packed rows (N, F)."""

    def forward(self, y, flat=None):
        self.flat, self.shape = flat, y.shape
        return y.reshape((-1,) + y.shape[2:])[flat]

    def backward(self, g):
        xp = backend.array_module(g)
        out = xp.zeros((self.shape[0] * self.shape[1],) + g.shape[1:], g.dtype)
        out[self.flat] = g
        return out.reshape(self.shape)

    def backward_graph(self, g):
        return Pad.apply(g, flat=self.flat, steps=self.shape[0], batch=self.shape[1])


def reference(mode: str, x, h0, c0, w, dirs, sizes, batch_first: bool):
    """The fused layers' outputs ``(out, h_n[, c_n])`` computed step by step with the
    differentiable cell compositions of ``ops.rnn`` (the fused backward is their
    derivative; double backward differentiates this)."""
    from .. import creation
    from . import rnn as R
    from .linalg import linear
    from .movement import cat, stack

    lstm = mode == "LSTM"
    per = 5 if lstm else 4
    xt = x.transpose(0, 1) if batch_first else x
    steps, batch = xt.shape[0], xt.shape[1]
    sizes = sizes or [batch] * steps
    outs, hn, cn = [], [], []
    for d, rev in enumerate(dirs):
        w_ih, w_hh, b_ih, b_hh = w[per * d : per * d + 4]
        w_hr = w[per * d + 4] if lstm else None

        def zeros(width):
            return creation.zeros(batch, width, dtype=x.dtype, device=x.device)

        h = h0[d] if h0 is not None else zeros(w_hh.shape[1])
        state = (h, c0[d] if c0 is not None else zeros(w_hh.shape[0] // 4)) if lstm else h
        gi = linear(xt, w_ih, b_ih)
        ys = [None] * steps
        for t in reversed(range(steps)) if rev else range(steps):
            n = sizes[t]
            new = R.CELLS[mode](gi[t, :n], R._rows(state, n), w_hh, b_hh)
            if w_hr is not None:
                new = (linear(new[0], w_hr, None), new[1])
            state = R._merge(new, state, n)
            ys[t] = R._out(state)
        outs.append(stack(ys, 0))
        hn.append(R._out(state))
        if lstm:
            cn.append(state[1])
    out = outs[0] if len(outs) == 1 else cat(outs, -1)
    if batch_first:
        out = out.transpose(0, 1)
    return (out, stack(hn, 0)) + ((stack(cn, 0),) if lstm else ())
