"""``torch.nn.attention.flex_attention``: attention whose scores a Python function changes
(``score_mod``) and whose pattern a Python predicate masks (``mask_mod``, packed in a
``BlockMask``), with gradients on every device.

manygrad evaluates the two functions once on broadcast index tensors: ``b`` of shape
(B, 1, 1, 1), ``h`` (1, H, 1, 1), ``q_idx`` (1, 1, L, 1) and ``kv_idx`` (1, 1, 1, S), all
int32, so a function written with tensor operations (arithmetic, comparisons,
``torch.where``, indexing a table with the indices) sees every score at once, as PyTorch's
vmap gives it one score at a time. Python ``if`` on an index is refused in both.

Example:
    >>> from manygrad.nn.attention.flex_attention import flex_attention, create_block_mask
    >>> def causal(b, h, q_idx, kv_idx):
    ...     return q_idx >= kv_idx
    >>> def alibi(score, b, h, q_idx, kv_idx):
    ...     return score - (h + 1) * 0.5 * (q_idx - kv_idx)
    >>> mask = create_block_mask(causal, None, None, 128, 128)
    >>> out = flex_attention(q, k, v, score_mod=alibi, block_mask=mask)

NOTE: the computation is the dense reference (scores of shape (B, H, L, S) in memory): the
masked blocks are not skipped, so memory and time grow as L * S.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np  # host-ok: the block layout tables are small host arrays, built once

from ... import creation
from ... import dtypes as D
from ... import ops as F
from ...tensor import Tensor

__all__ = [
    "AuxOutput",
    "AuxRequest",
    "BlockMask",
    "and_masks",
    "create_block_mask",
    "create_mask",
    "flex_attention",
    "noop_mask",
    "or_masks",
]

_DEFAULT_SPARSE_BLOCK_SIZE = 128


class AuxRequest(NamedTuple):
    """Which extra outputs ``flex_attention(..., return_aux=AuxRequest(lse=True))`` gives."""

    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    """The extra outputs asked for; None where not requested."""

    lse: Tensor | None = None
    max_scores: Tensor | None = None


def noop_mask(b, h, q_idx, kv_idx):
    """The mask that keeps every score."""
    return F.ones_like(q_idx, dtype=D.bool_) if isinstance(q_idx, Tensor) else True


def and_masks(*mask_mods: Callable) -> Callable:
    """A mask keeping what every one of ``mask_mods`` keeps."""
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"and_masks: all inputs should be callable, got {mask_mods}")

    def both(b, h, q_idx, kv_idx):
        out = True
        for m in mask_mods:
            out = m(b, h, q_idx, kv_idx) & out
        return out if mask_mods else noop_mask(b, h, q_idx, kv_idx)

    return both


def or_masks(*mask_mods: Callable) -> Callable:
    """A mask keeping what any one of ``mask_mods`` keeps."""
    if not all(callable(m) for m in mask_mods):
        raise RuntimeError(f"or_masks: all inputs should be callable, got {mask_mods}")

    def either(b, h, q_idx, kv_idx):
        out = False
        for m in mask_mods:
            out = m(b, h, q_idx, kv_idx) | out
        if isinstance(out, bool):
            return F.zeros_like(q_idx, dtype=D.bool_) | out
        return out

    return either


def _indices(B: int, H: int, L: int, S: int, device):  # noqa: N803
    def ar(n, at):
        shape = [1, 1, 1, 1]
        shape[at] = n
        return creation.arange(n, dtype=D.int32, device=device).reshape(shape)

    return ar(B, 0), ar(H, 1), ar(L, 2), ar(S, 3)


def _dense_mask(mask_mod, B: int, H: int, L: int, S: int, device) -> Tensor:  # noqa: N803
    """``mask_mod`` evaluated on every (b, h, q, kv): a bool tensor of shape (B, H, L, S)."""
    b, h, q, kv = _indices(B, H, L, S, device)
    out = mask_mod(b, h, q, kv)
    if not isinstance(out, Tensor):
        out = creation.tensor(bool(out), device=device)
    if out.dtype is not D.bool_:
        raise TypeError(
            f"mask_mod must return a bool tensor (a comparison such as q_idx >= kv_idx), "
            f"got {out.dtype}"
        )
    return out.expand(B, H, L, S)


def create_mask(mod_fn: Callable, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int,  # noqa: N803
                device=None) -> Tensor:  # fmt: skip
    """The dense (B, H, Q_LEN, KV_LEN) bool mask of a ``mask_mod`` (4 arguments) or of a
    ``score_mod`` (5 arguments: kept where it does not give -inf for a zero score)."""
    B, H = B or 1, H or 1  # noqa: N806
    device = device or "cpu"
    if _arity(mod_fn) == 5:
        b, h, q, kv = _indices(B, H, Q_LEN, KV_LEN, device)
        zeros = creation.zeros(B, H, Q_LEN, KV_LEN, device=device)
        out = mod_fn(zeros, b, h, q, kv)
        return ~F.isneginf(out.expand(B, H, Q_LEN, KV_LEN))
    return _dense_mask(mod_fn, B, H, Q_LEN, KV_LEN, device).contiguous()


def _arity(fn) -> int:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 4
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def _ordered(blocks: np.ndarray):
    """Counts and indices of the set blocks of each row, set ones first (in order)."""
    num = blocks.sum(-1).astype(np.int32)
    idx = np.argsort(~blocks, axis=-1, kind="stable").astype(np.int32)
    return num, idx


class BlockMask:
    """Which (BLOCK_SIZE x BLOCK_SIZE) tiles of the score matrix hold kept scores, and the
    ``mask_mod`` that masks inside them: what ``create_block_mask`` builds and
    ``flex_attention(block_mask=...)`` takes.

    The attributes are PyTorch's: ``kv_num_blocks``/``kv_indices`` (partial tiles per query
    block row, their column indices first), ``full_kv_num_blocks``/``full_kv_indices``
    (tiles kept whole), the ``q_*`` transposes, ``BLOCK_SIZE``, ``seq_lengths``, ``shape``.
    """

    def __init__(self, seq_lengths, partial, full, BLOCK_SIZE=(128, 128), mask_mod=None,  # noqa: N803
                 device=None):  # fmt: skip
        self.seq_lengths = tuple(int(n) for n in seq_lengths)
        self.BLOCK_SIZE = tuple(BLOCK_SIZE)
        self.mask_mod = mask_mod if mask_mod is not None else noop_mask
        self._partial, self._full = partial, full  # bool (B, H, q blocks, kv blocks)
        self._device = device or "cpu"

        def t(a):
            return creation.tensor(a, device=self._device)

        n, i = _ordered(partial)
        self.kv_num_blocks, self.kv_indices = t(n), t(i)
        n, i = _ordered(full)
        self.full_kv_num_blocks, self.full_kv_indices = t(n), t(i)
        n, i = _ordered(np.swapaxes(partial, -1, -2))
        self.q_num_blocks, self.q_indices = t(n), t(i)
        n, i = _ordered(np.swapaxes(full, -1, -2))
        self.full_q_num_blocks, self.full_q_indices = t(n), t(i)

    @property
    def shape(self) -> tuple:
        return (*self._partial.shape[:2], *self.seq_lengths)

    def numel(self) -> int:
        return math.prod(self.shape)

    def to_dense(self) -> Tensor:
        """The kept tiles (partial or full) as an int32 tensor (B, H, q blocks, kv blocks)."""
        return creation.tensor((self._partial | self._full).astype(np.int32), device=self._device)

    def sparsity(self) -> float:
        """The percentage of the score matrix's tiles that are skipped (PyTorch's formula,
        so it goes negative when the lengths are shorter than a block)."""
        kept = int((self._partial | self._full).sum())
        return 100 * (1 - kept * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to(self, device) -> BlockMask:
        return BlockMask(self.seq_lengths, self._partial, self._full, self.BLOCK_SIZE,
                         self.mask_mod, device)  # fmt: skip

    def __getitem__(self, index) -> BlockMask:
        if not isinstance(index, tuple):
            index = (index,)
        sel = tuple(slice(i, i + 1) if isinstance(i, int) else i for i in index)
        return BlockMask(self.seq_lengths, self._partial[sel], self._full[sel],
                         self.BLOCK_SIZE, self.mask_mod, self._device)  # fmt: skip

    def to_string(self, grid_size=(20, 20), limit: int = 4) -> str:
        dense = self._partial | self._full
        lines = []
        shown = 0
        for b in range(dense.shape[0]):
            for h in range(dense.shape[1]):
                if shown == limit:
                    lines += ["...", "To print out more, set BlockMask.to_string(limit=N)"]
                    return "\n".join(lines)
                lines.append(f"({b}, {h})")
                grid = dense[b, h][: grid_size[0], : grid_size[1]]
                lines += ["".join("██" if c else "  " for c in row) for row in grid]
                lines.append("")
                shown += 1
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n"
            f"{self.to_string()}\n)"
        )

    def _element_mask(self, B: int, H: int, L: int, S: int, device) -> Tensor:  # noqa: N803
        """The bool (B, H, L, S) mask: kept tiles, and ``mask_mod`` inside partial ones."""
        bq, bk = self.BLOCK_SIZE
        keep = creation.tensor(self._partial | self._full, device=device)
        full = creation.tensor(self._full, device=device)
        rows = creation.arange(L, device=device) // bq
        cols = creation.arange(S, device=device) // bk
        tiles = keep[:, :, rows][:, :, :, cols]
        whole = full[:, :, rows][:, :, :, cols]
        inside = _dense_mask(self.mask_mod, tiles.shape[0], tiles.shape[1], L, S, device)
        return (tiles & inside) | whole


def create_block_mask(mask_mod: Callable, B: int | None, H: int | None, Q_LEN: int,  # noqa: N803
                      KV_LEN: int, device=None, BLOCK_SIZE=_DEFAULT_SPARSE_BLOCK_SIZE,  # noqa: N803
                      _compile: bool = False, separate_full_blocks: bool = True,
                      compute_dq_write_order: bool = False,
                      dq_kv_order: bool = True) -> BlockMask:  # fmt: skip
    """The ``BlockMask`` of ``mask_mod(b, h, q_idx, kv_idx) -> bool`` over B batches (None:
    one, shared), H heads (None: one), ``Q_LEN`` queries and ``KV_LEN`` keys.

    Example:
        >>> create_block_mask(lambda b, h, q, kv: q >= kv, None, None, 256, 256)
    """
    if _arity(mask_mod) == 5:
        raise ValueError(
            "create_block_mask takes a mask_mod(b, h, q_idx, kv_idx); a score_mod (with a "
            "score argument) goes to flex_attention(score_mod=...)"
        )
    B, H = B or 1, H or 1  # noqa: N806
    device = device or "cpu"
    bq, bk = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else tuple(BLOCK_SIZE)
    dense = _dense_mask(mask_mod, B, H, Q_LEN, KV_LEN, device).cpu().numpy()
    nq, nk = -(-Q_LEN // bq), -(-KV_LEN // bk)
    padded = np.zeros((B, H, nq * bq, nk * bk), bool)  # NOTE: past the lengths: masked
    padded[:, :, :Q_LEN, :KV_LEN] = dense
    tiles = padded.reshape(B, H, nq, bq, nk, bk)
    anyset, allset = tiles.any(axis=(3, 5)), tiles.all(axis=(3, 5))
    if separate_full_blocks:
        partial, full = anyset & ~allset, allset
    else:
        partial, full = anyset, np.zeros_like(anyset)
    return BlockMask((Q_LEN, KV_LEN), partial, full, (bq, bk), mask_mod, device)


def _validate(query: Tensor, key: Tensor, value: Tensor, enable_gqa: bool) -> None:
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor) or t.ndim != 4:
            got = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(
                f"flex_attention: {name} must be a 4-d tensor (batch, heads, length, dim), "
                f"got {got}"
            )
    if query.shape[0] != key.shape[0] or key.shape[0] != value.shape[0]:
        raise ValueError(
            f"flex_attention: query, key and value need one batch size, got "
            f"{query.shape[0]}, {key.shape[0]} and {value.shape[0]}"
        )
    if key.shape[1] != value.shape[1] or key.shape[2] != value.shape[2]:
        raise ValueError(
            f"flex_attention: key and value need the same heads and length, got "
            f"{tuple(key.shape)} and {tuple(value.shape)}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"flex_attention: query and key need one embedding size, got {query.shape[-1]} "
            f"and {key.shape[-1]}"
        )
    hq, hkv = query.shape[1], key.shape[1]
    if hq != hkv:
        if not enable_gqa:
            raise ValueError(
                f"Expect query and key/value to have the same number of heads but got "
                f"Hq={hq} and Hkv={hkv}. Try setting enable_gqa=True for GQA."
            )
        if hq % hkv:
            raise ValueError(
                f"Expect number of query heads to be a multiple of kv heads for GQA but got "
                f"Hq={hq} and Hkv={hkv}."
            )


def flex_attention(query: Tensor, key: Tensor, value: Tensor, score_mod: Callable | None = None,
                   block_mask: BlockMask | None = None, scale: float | None = None,
                   enable_gqa: bool = False, return_lse: bool = False, kernel_options=None, *,
                   return_aux: AuxRequest | None = None):  # fmt: skip
    """``softmax(score_mod(q @ k^T * scale)) @ v`` over the scores ``block_mask`` keeps;
    query rows with no kept score give 0 (and a log-sum-exp of -inf).

    Args:
        query: (B, Hq, L, E); key: (B, Hkv, S, E); value: (B, Hkv, S, Ev).
        score_mod: ``(score, b, h, q_idx, kv_idx) -> score``, e.g. a relative bias.
        block_mask: from ``create_block_mask``; None keeps every score.
        scale: the factor on ``q @ k^T`` (default ``1 / sqrt(E)``).
        enable_gqa: Hq a multiple of Hkv, each key/value head shared by Hq / Hkv query heads.
        return_lse: also return the log-sum-exp of each row's scores (float32).
        kernel_options: accepted for PyTorch's API; the reference computation ignores it.
        return_aux: ``AuxRequest(lse=True, max_scores=True)``: return ``(out, AuxOutput)``.

    Returns:
        (B, Hq, L, Ev) in the query's dtype, or ``(out, lse)`` / ``(out, AuxOutput)``.
    """
    _validate(query, key, value, enable_gqa)
    B, hq, L, E = query.shape  # noqa: N806
    S = key.shape[2]  # noqa: N806
    if key.shape[1] != hq:
        rep = hq // key.shape[1]
        key = key.repeat_interleave(rep, dim=1)
        value = value.repeat_interleave(rep, dim=1)
    scale = 1.0 / math.sqrt(E) if scale is None else float(scale)
    work = D.float64 if query.dtype is D.float64 else D.float32
    scores = F.matmul(query, key.transpose(-2, -1)).to(work) * scale
    device = query.device
    if score_mod is not None:
        b, h, q_idx, kv_idx = _indices(B, hq, L, S, device)
        scores = score_mod(scores, b, h, q_idx, kv_idx)
        if not isinstance(scores, Tensor) or tuple(scores.shape) != (B, hq, L, S):
            scores = F.broadcast_to(creation.as_tensor(scores, device=device), (B, hq, L, S))
    if block_mask is not None:
        if tuple(block_mask.seq_lengths) != (L, S):
            raise ValueError(
                f"block_mask was created for block_mask.shape={block_mask.shape} but got "
                f"q_len={L} and kv_len={S}; create a new block mask with these lengths"
            )
        mb, mh = block_mask._partial.shape[:2]
        if mb not in (1, B) or mh not in (1, hq):
            raise ValueError(
                f"flex_attention: a block mask for {mb} batches and {mh} heads cannot serve "
                f"{B} batches and {hq} heads (give 1 or the same number: create_block_mask's "
                "B and H)"
            )
        keep = block_mask._element_mask(mb, mh, L, S, device)
        scores = F.where(keep, scores, float("-inf"))
    # NOTE: rows without a kept score: their scores are replaced by 0 for the log-sum-exp
    # (finite, so its gradient stays finite), and their output and lse set afterwards
    empty = F.isneginf(scores).all(-1, keepdim=True)
    safe = F.where(empty, 0.0, scores)
    lse_safe = F.logsumexp(safe, -1, keepdim=True)
    probs = F.exp(scores - lse_safe)
    out = F.matmul(probs.to(value.dtype), value).to(query.dtype)
    if not (return_lse or return_aux is not None):
        return out
    lse = F.where(empty, float("-inf"), lse_safe).squeeze(-1).to(D.float32)
    if return_aux is None:
        return out, lse
    max_scores = None
    if return_aux.max_scores:
        max_scores = scores.amax(-1).to(D.float32)
    return out, AuxOutput(lse=lse if return_aux.lse else None, max_scores=max_scores)
