"""The order PyTorch's CPU kernels give tied values in ``topk``, ``kthvalue`` and ``mode``.

Which of several equal values an index points at is not a matter of maths but of the
algorithm that found it, and on the CPU PyTorch's algorithms are deterministic: ``kthvalue``
runs PyTorch's own quickselect (median-of-three pivot, Hoare partition); ``topk`` runs the
C++ standard library's ``std::nth_element`` (introselect) and ``std::sort`` (introsort), or
``std::partial_sort`` (a heap) when ``k * 64 <= n``, on (value, index) pairs compared by
value only; ``mode`` sorts such pairs with ``std::sort`` and reports the last of the most
frequent run. The functions below replay those algorithms step by step, as the GNU C++
library (libstdc++, which PyTorch's Linux builds use) defines them, on one row of Python
values, so that manygrad's CPU results pick the same indices among ties (and, for
``topk(sorted=False)``, give the same order).

They are pure Python, a few microseconds per element: ``sorting.py`` calls them only for
the rows whose result depends on the tie order, up to a budget of elements per call, where
the C replay of the same algorithms (``_native.c``, through ``cpu/_sortscan.py``: every
row, no budget) does not run (no compiler, other dtypes); tests/test_native_kernels.py
compares the two.
"""

from __future__ import annotations

from collections.abc import Callable

Pair = tuple  # (value, index)
Less = Callable[[Pair, Pair], bool]

_THRESHOLD = 16  # libstdc++'s size below which introsort leaves a range to insertion sort


def _lg(n: int) -> int:
    return n.bit_length() - 1


def _isnan(v) -> bool:
    return v != v


def _larger(x: Pair, y: Pair) -> bool:
    """topk(largest=True)'s order: NaN first, then descending."""
    return (_isnan(x[0]) and not _isnan(y[0])) or x[0] > y[0]


def _smaller(x: Pair, y: Pair) -> bool:
    """topk(largest=False)'s order: ascending, NaN last."""
    return (not _isnan(x[0]) and _isnan(y[0])) or x[0] < y[0]


def _value_less(x: Pair, y: Pair) -> bool:
    """mode's order: the values' ``<`` (not a total order when NaN is there)."""
    return x[0] < y[0]


# ---------------------------------------------------------------------------- insertion


def _linear_insert(a: list, last: int, lt: Less) -> None:
    """Move ``a[last]`` left past the larger values before it (unguarded in C++: the
    ranges it runs on have a value that stops it; NOTE: stopping at index 0 only matters
    for an order that is not one, where C++ would read before the array)."""
    v = a[last]
    nxt = last - 1
    while nxt >= 0 and lt(v, a[nxt]):
        a[last] = a[nxt]
        last, nxt = nxt, nxt - 1
    a[last] = v


def _insertion_sort(a: list, first: int, last: int, lt: Less) -> None:
    for i in range(first + 1, last):
        v = a[i]
        if lt(v, a[first]):
            a[first + 1 : i + 1] = a[first:i]
            a[first] = v
        else:
            _linear_insert(a, i, lt)


def _final_insertion_sort(a: list, first: int, last: int, lt: Less) -> None:
    if last - first > _THRESHOLD:
        _insertion_sort(a, first, first + _THRESHOLD, lt)
        for i in range(first + _THRESHOLD, last):
            _linear_insert(a, i, lt)
    else:
        _insertion_sort(a, first, last, lt)


# ---------------------------------------------------------------------------- partition


def _median_to_first(a: list, result: int, x: int, y: int, z: int, lt: Less) -> None:
    """Swap the median of ``a[x], a[y], a[z]`` into ``a[result]``."""
    if lt(a[x], a[y]):
        m = y if lt(a[y], a[z]) else z if lt(a[x], a[z]) else x
    else:
        m = x if lt(a[x], a[z]) else z if lt(a[y], a[z]) else y
    a[result], a[m] = a[m], a[result]


def _partition_pivot(a: list, first: int, last: int, lt: Less) -> int:
    """Median-of-three pivot into ``a[first]``, then a Hoare partition of the rest around
    it; returns the cut."""
    _median_to_first(a, first, first + 1, first + (last - first) // 2, last - 1, lt)
    pivot, lo, hi = a[first], first + 1, last
    while True:
        while lt(a[lo], pivot):
            lo += 1
        hi -= 1
        while lt(pivot, a[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        a[lo], a[hi] = a[hi], a[lo]
        lo += 1


# ---------------------------------------------------------------------------- heaps


def _push_heap(a: list, first: int, hole: int, top: int, v: Pair, lt: Less) -> None:
    parent = (hole - 1) // 2
    while hole > top and lt(a[first + parent], v):
        a[first + hole] = a[first + parent]
        hole, parent = parent, (parent - 1) // 2
    a[first + hole] = v


def _adjust_heap(a: list, first: int, hole: int, n: int, v: Pair, lt: Less) -> None:
    top = child = hole
    while child < (n - 1) // 2:
        child = 2 * (child + 1)
        if lt(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if n % 2 == 0 and child == (n - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    _push_heap(a, first, hole, top, v, lt)


def _pop_heap(a: list, first: int, last: int, result: int, lt: Less) -> None:
    v = a[result]
    a[result] = a[first]
    _adjust_heap(a, first, 0, last - first, v, lt)


def _heap_select(a: list, first: int, middle: int, last: int, lt: Less) -> None:
    n = middle - first
    if n >= 2:  # make_heap
        for parent in range((n - 2) // 2, -1, -1):
            _adjust_heap(a, first, parent, n, a[first + parent], lt)
    for i in range(middle, last):
        if lt(a[i], a[first]):
            _pop_heap(a, first, middle, i, lt)


def partial_sort(a: list, first: int, middle: int, last: int, lt: Less) -> None:
    """``std::partial_sort``: the ``middle - first`` first values in order, from a heap."""
    _heap_select(a, first, middle, last, lt)
    while middle - first > 1:  # sort_heap
        middle -= 1
        _pop_heap(a, first, middle, middle, lt)


# ---------------------------------------------------------------------------- sort, select


def _introsort_loop(a: list, first: int, last: int, depth: int, lt: Less) -> None:
    while last - first > _THRESHOLD:
        if depth == 0:
            partial_sort(a, first, last, last, lt)
            return
        depth -= 1
        cut = _partition_pivot(a, first, last, lt)
        _introsort_loop(a, cut, last, depth, lt)
        last = cut


def sort(a: list, first: int, last: int, lt: Less) -> None:
    """``std::sort``: introsort, then one insertion sort over the nearly sorted range."""
    if last - first > 1:
        _introsort_loop(a, first, last, _lg(last - first) * 2, lt)
        _final_insertion_sort(a, first, last, lt)


def nth_element(a: list, first: int, nth: int, last: int, lt: Less) -> None:
    """``std::nth_element``: introselect, insertion sort for the last few values."""
    if first == last or nth == last:
        return
    depth = _lg(last - first) * 2
    while last - first > 3:
        if depth == 0:
            _heap_select(a, first, nth + 1, last, lt)
            a[first], a[nth] = a[nth], a[first]
            return
        depth -= 1
        cut = _partition_pivot(a, first, last, lt)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(a, first, last, lt)


# ---------------------------------------------------------------------------- the ops


def topk_row(values: list, k: int, largest: bool, sorted: bool) -> list:  # noqa: A002
    """The indices PyTorch's CPU ``topk`` gives for one row, in its output order."""
    a = [(v, i) for i, v in enumerate(values)]
    lt = _larger if largest else _smaller
    if k * 64 <= len(a):
        partial_sort(a, 0, k, len(a), lt)
    else:
        nth_element(a, 0, k - 1, len(a), lt)
        if sorted:
            sort(a, 0, k - 1, lt)
    return [i for _, i in a[:k]]


def kthvalue_row(values: list, k: int) -> int:
    """The index PyTorch's CPU ``kthvalue`` gives for the ``k``-th smallest (1-based) of
    one row: its quickselect, NaN counted as the largest."""
    a = [(v, i) for i, v in enumerate(values)]

    def gt(x, y):
        return (_isnan(x) and not _isnan(y)) or x > y

    k -= 1
    lo, hi = 0, len(a) - 1
    while hi > lo:
        if hi == lo + 1:
            if gt(a[lo][0], a[hi][0]):
                a[lo], a[hi] = a[hi], a[lo]
            break
        mid = (lo + hi) >> 1  # median of three: a[lo + 1] <= a[lo] <= a[hi] after
        a[mid], a[lo + 1] = a[lo + 1], a[mid]
        if gt(a[lo + 1][0], a[hi][0]):
            a[lo + 1], a[hi] = a[hi], a[lo + 1]
        if gt(a[lo][0], a[hi][0]):
            a[lo], a[hi] = a[hi], a[lo]
        if gt(a[lo + 1][0], a[lo][0]):
            a[lo + 1], a[lo] = a[lo], a[lo + 1]
        i, j, piv = lo + 1, hi, a[lo][0]
        while True:
            i += 1
            while gt(piv, a[i][0]):
                i += 1
            j -= 1
            while gt(a[j][0], piv):
                j -= 1
            if j < i:
                break
            a[i], a[j] = a[j], a[i]
        a[lo], a[j] = a[j], a[lo]
        if j <= k:
            lo = i
        if j >= k:
            hi = j - 1
    return a[k][1]


def mode_row(values: list) -> int:
    """The index PyTorch's CPU ``mode`` gives for one row: the values sorted by ``<``, the
    first longest run of equal ones (``!=`` ends a run, so each NaN is a run of its own),
    its last element's index."""
    a = [(v, i) for i, v in enumerate(values)]
    sort(a, 0, len(a), _value_less)
    best, best_count, count = 0, 0, 0
    for j in range(len(a)):
        count += 1
        if j == len(a) - 1 or a[j][0] != a[j + 1][0]:
            if count > best_count:
                best, best_count = a[j][1], count
            count = 0
    return best


# ---------------------------------------------------------------------------- whole calls

# NOTE: the most elements one call replays (about 0.5 to 10 microseconds each); a call
# that needs more keeps the vectorised order: the same values, the first of equal values
# first (and sorted for topk(sorted=False)), which PyTorch's CUDA kernels may give as well
BUDGET = 1 << 15


def _ties(xp, s):
    """Rows of ``s`` (values in sorted order) with two equal neighbours (NaN equal NaN)."""
    same = s[:, 1:] == s[:, :-1]
    if s.dtype.kind in "fV":
        same |= (s[:, 1:] != s[:, 1:]) & (s[:, :-1] != s[:, :-1])
    return same.any(axis=1)


def _replay(xp, a, out, need, fn) -> None:
    """``out[r] = fn(row r)`` for the rows flagged in ``need``, within the budget."""
    rows = xp.nonzero(need)[0]
    if rows.size and rows.size * a.shape[1] <= BUDGET:
        for r in rows.tolist():
            out[r] = fn(a[r].tolist())


def topk_order(xp, a, full, k: int, largest: bool, sorted: bool):  # noqa: A002
    """The top-``k`` indices of the rows of ``a`` as PyTorch's CPU kernel orders them,
    from ``full``, each row's stable order (descending for ``largest``, NaN first)."""
    top = full[:, :k].copy()
    n = a.shape[1]
    if sorted or k * 64 <= n or k == 1:  # a sorted result: only ties can reorder it
        need = _ties(xp, xp.take_along_axis(a, full[:, : k + 1], 1))
    else:  # NOTE: nth_element leaves the k values in an order of its own
        need = xp.ones(a.shape[0], bool)
    _replay(xp, a, top, need, lambda row: topk_row(row, k, largest, sorted))
    return top


def kthvalue_order(xp, a, full, k: int):
    """The index of each row's ``k``-th smallest value as PyTorch's CPU quickselect picks
    it among equal values, from ``full``, each row's stable ascending order."""
    pick = full[:, k - 1].copy()
    near = full[:, max(k - 2, 0) : k + 1]
    _replay(xp, a, pick, _ties(xp, xp.take_along_axis(a, near, 1)), lambda r: kthvalue_row(r, k))
    return pick


def mode_order(xp, a, last, top_count):
    """Each row's mode index as PyTorch's CPU kernel reports it, from ``last`` (the last
    occurrence of the smallest most frequent value, which its insertion sort of up to 16
    values gives) and the mode's count: rows with NaN, or longer ones with a repeated mode,
    depend on its introsort."""
    need = (a != a).any(axis=1) if a.dtype.kind in "fV" else xp.zeros(a.shape[0], bool)
    if a.shape[1] > _THRESHOLD:
        need |= top_count > 1
    _replay(xp, a, last, need, mode_row)
    return last
