"""Variable-length sequences: ``pad_sequence``, ``PackedSequence`` and packing, as in PyTorch.

A ``PackedSequence`` stores a batch of sequences time step by time step: ``data`` holds
step 0 of every sequence, then step 1 of those still running, and so on; ``batch_sizes[t]``
says how many sequences are running at step ``t``. Sequences are kept sorted by length
(longest first); ``sorted_indices`` / ``unsorted_indices`` map between that order and the
caller's. Everything is built from differentiable ops, so gradients flow through packing.

Example:
    >>> padded = pad_sequence([a, b, c], batch_first=True)          # (3, T, *)
    >>> packed = pack_padded_sequence(padded, [5, 3, 2], batch_first=True)
    >>> out, lengths = pad_packed_sequence(packed, batch_first=True)
"""

from __future__ import annotations

from collections import namedtuple

from ... import dtypes as D
from ... import ops as F
from ...creation import full
from ...tensor import Tensor


def _index(idx: list[int], device) -> Tensor:
    return Tensor(idx, dtype=D.int64, device=device)


def _lengths_list(lengths) -> list[int]:
    if isinstance(lengths, Tensor):
        if lengths.dim() != 1:
            raise ValueError(f"pack_padded_sequence: lengths must be 1-D, got {lengths.shape}")
        lengths = lengths.tolist()
    return [int(v) for v in lengths]


class PackedSequence(
    namedtuple("PackedSequence", "data batch_sizes sorted_indices unsorted_indices")
):
    """A batch of variable-length sequences packed step by step (see the module docstring).

    Build one with ``pack_padded_sequence`` or ``pack_sequence``, not directly.
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: batch_sizes is required; build one with "
                            "pack_padded_sequence or pack_sequence")  # fmt: skip
        if unsorted_indices is None and sorted_indices is not None:
            inv = [0] * len(sorted_indices)
            for i, s in enumerate(sorted_indices.tolist()):
                inv[s] = i
            unsorted_indices = _index(inv, sorted_indices.device)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _apply(self, fn) -> PackedSequence:
        def move(t):
            return None if t is None else fn(t)

        return type(self)(fn(self.data), self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))  # fmt: skip

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same sequences with ``data`` (and the index tensors) moved/cast by ``.to``."""
        out = type(self)(self.data.to(*args, **kwargs), self.batch_sizes, self.sorted_indices,
                         self.unsorted_indices)  # fmt: skip
        dev = out.data.device
        if self.sorted_indices is not None:
            out = type(self)(out.data, out.batch_sizes, self.sorted_indices.to(dev),
                             self.unsorted_indices.to(dev))  # fmt: skip
        return out

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device=None) -> PackedSequence:
        return self.to(device or "cuda")

    def float(self) -> PackedSequence:
        return self._apply(lambda t: t if t.dtype == D.int64 else t.float())

    def double(self) -> PackedSequence:
        return self._apply(lambda t: t if t.dtype == D.int64 else t.double())

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:  # fmt: skip
    """Stack tensors of shapes ``(L_i, *)`` into ``(T, B, *)`` (or ``(B, T, *)``), padded.

    Args:
        sequences: a list of tensors with equal trailing dims.
        batch_first: put the batch first (default False).
        padding_value: the fill (default 0.0).
        padding_side: ``"right"`` (default) or ``"left"``.

    Example: ``pad_sequence([mg.ones(3, 2), mg.ones(1, 2)]).shape == (3, 2, 2)``
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")  # fmt: skip
    seqs = list(sequences)
    if not seqs:
        raise ValueError("pad_sequence: got an empty list of sequences")
    rest = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if tuple(s.shape[1:]) != rest:
            raise ValueError(f"pad_sequence: sequence {i} has trailing shape {tuple(s.shape[1:])}"
                             f", expected {rest} as sequence 0")  # fmt: skip
    longest = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        extra = longest - s.shape[0]
        if extra:
            side = (0, extra) if padding_side == "right" else (extra, 0)
            s = F.pad(s, (0, 0) * len(rest) + side, value=float(padding_value))
        padded.append(s)
    return F.stack(padded, dim=0 if batch_first else 1)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,  # noqa: A002
                         enforce_sorted: bool = True) -> PackedSequence:  # fmt: skip
    """Pack a padded batch ``(T, B, *)`` (or ``(B, T, *)``) whose sequences have ``lengths``.

    Args:
        input: the padded batch.
        lengths: one length per sequence (list or 1-D tensor).
        batch_first: ``input`` is ``(B, T, *)`` (default False).
        enforce_sorted: require lengths in decreasing order (default True); with False the
            batch is sorted here and ``unsorted_indices`` restores the caller's order.

    Example: ``pack_padded_sequence(x, [4, 2, 1])``
    """
    lens = _lengths_list(lengths)
    if not batch_first:
        input = input.transpose(0, 1)  # (B, T, *) from here on
    if len(lens) != input.shape[0]:
        raise ValueError(f"pack_padded_sequence: {len(lens)} lengths for a batch of "
                         f"{input.shape[0]} sequences")  # fmt: skip
    if any(n <= 0 for n in lens) or max(lens) > input.shape[1]:
        raise ValueError(f"pack_padded_sequence: lengths must lie in 1..{input.shape[1]} (the "
                         f"padded length), got {lens}")  # fmt: skip
    sorted_indices = None
    if enforce_sorted:
        if any(a < b for a, b in zip(lens, lens[1:])):
            raise RuntimeError(
                f"pack_padded_sequence: lengths {lens} are not sorted in decreasing order; "
                "sort the batch or pass enforce_sorted=False"
            )
    else:
        order = sorted(range(len(lens)), key=lambda i: -lens[i])
        sorted_indices = _index(order, input.device)
        input = input.index_select(0, sorted_indices)
        lens = [lens[i] for i in order]
    batch_sizes = [sum(1 for n in lens if n > t) for t in range(lens[0])]
    steps = [input[: batch_sizes[t], t] for t in range(len(batch_sizes))]
    data = F.cat(steps, dim=0)
    return PackedSequence(data, Tensor(batch_sizes, dtype=D.int64), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):  # fmt: skip
    """Undo ``pack_padded_sequence``: returns ``(padded, lengths)`` in the caller's order.

    Args:
        sequence: a ``PackedSequence``.
        batch_first: return ``(B, T, *)`` (default False: ``(T, B, *)``).
        padding_value: the fill (default 0.0).
        total_length: pad to this many steps (at least the longest sequence).

    Example: ``out, lengths = pad_packed_sequence(packed, batch_first=True)``
    """
    data, sizes = sequence.data, [int(b) for b in sequence.batch_sizes.tolist()]
    steps_n = len(sizes)
    if total_length is not None:
        if total_length < steps_n:
            raise ValueError(f"pad_packed_sequence: total_length={total_length} is shorter than "
                             f"the longest sequence ({steps_n})")  # fmt: skip
        steps_n = total_length
    batch, rest = sizes[0], tuple(data.shape[1:])
    steps, start = [], 0
    for b in sizes:
        step = data[start : start + b]
        if b < batch:
            step = F.pad(step, (0, 0) * len(rest) + (0, batch - b), value=float(padding_value))
        steps.append(step)
        start += b
    if steps_n > len(sizes):
        fill = full((steps_n - len(sizes), batch, *rest), float(padding_value),
                      dtype=data.dtype, device=data.device)  # fmt: skip
        out = F.cat([F.stack(steps, 0), fill], 0)
    else:
        out = F.stack(steps, 0)
    lengths = [sum(1 for b in sizes if b > i) for i in range(batch)]
    if sequence.unsorted_indices is not None:
        out = out.index_select(1, sequence.unsorted_indices)
        lengths = [lengths[i] for i in sequence.unsorted_indices.tolist()]
    if batch_first:
        out = out.transpose(0, 1)
    return out, Tensor(lengths, dtype=D.int64)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors ``(L_i, *)`` (longest first unless ``enforce_sorted=False``)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """Split a padded batch back into a list of tensors of the given ``lengths``."""
    if not batch_first:
        padded = padded.transpose(0, 1)
    return [padded[i, :n] for i, n in enumerate(_lengths_list(lengths))]


def unpack_sequence(packed: PackedSequence) -> list[Tensor]:
    """A ``PackedSequence`` as a list of tensors, in the caller's order."""
    padded, lengths = pad_packed_sequence(packed, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation of ``0..n-1`` (``out[permutation[i]] = i``); None for
    None. ``PackedSequence`` uses it to map ``sorted_indices`` to ``unsorted_indices``.

    Example:
        >>> invert_permutation(mg.tensor([2, 0, 1]))  # tensor([1, 2, 0])
    """
    if permutation is None:
        return None
    from ...creation import arange, empty_like

    out = empty_like(permutation)
    out.scatter_(0, permutation, arange(permutation.numel(), device=permutation.device))
    return out


__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence"]  # fmt: skip
