"""Batching samples: ``default_collate`` stacks them into NumPy arrays on the host."""

from __future__ import annotations

import collections.abc as abc
import copy
from typing import Any

import numpy as np

from manygrad import backend
from manygrad import dtypes as D
from manygrad.errors import DTypeError, ShapeError

__all__ = ["default_collate", "default_convert"]


def _check_dtype(dt: np.dtype, where: str) -> None:
    try:
        D.from_np(dt)
    except DTypeError:
        hint = (
            "convert it in the dataset or a transform (e.g. arr.astype('int32') or "
            "'float32')" if dt.kind in "uifb" else "return numbers or arrays, not objects/strings"
        )  # fmt: skip
        raise DTypeError(
            f"default_collate: {where} has dtype {dt}, which a manygrad tensor cannot hold "
            f"(supported: {D.supported()}); {hint}"
        ) from None


def _stack(arrays: list, where: str):
    first = arrays[0]
    shape = first.shape
    for k, a in enumerate(arrays):
        if a.shape != shape:
            raise ShapeError(
                f"default_collate: samples of one batch have different shapes at {where}: "
                f"{tuple(shape)} (sample 0 of the batch) vs {tuple(a.shape)} (sample {k}); "
                "resize or crop them to one size (e.g. transforms.Resize((H, W))) or pass a "
                "collate_fn that pads"
            )
    if type(first) is np.ndarray:
        _check_dtype(first.dtype, where)
        out = np.empty((len(arrays),) + tuple(shape), dtype=np.result_type(*arrays))
        for k, a in enumerate(arrays):
            out[k] = a
        return out
    xp = backend.array_module(first)
    return xp.stack(arrays)


def default_collate(batch: list, _where: str = "the sample") -> Any:
    """Stack a list of samples into a batch of host arrays, keeping the sample's structure.

    Numbers, NumPy arrays and Tensors become one array with a new leading dim (Python ints
    become int64, floats float64, as in PyTorch); tuples, lists and dicts are collated
    field by field (tuples into lists; lists, dicts and namedtuples keep their type, as in
    PyTorch); strings and bytes are kept as they come. The DataLoader turns the arrays into
    Tensors on its device, one transfer per array.

    Args:
        batch: the samples.

    Example:
        >>> default_collate([(np.zeros(3), 1), (np.ones(3), 0)])[1]
        array([1, 0])
    """
    from manygrad.tensor import Tensor

    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack([t._data for t in batch], _where)
    if backend.is_array(elem):
        return _stack(list(batch), _where)
    if isinstance(elem, np.generic):
        a = np.array(batch)
        _check_dtype(a.dtype, _where)
        return a
    if isinstance(elem, bool):
        return np.array(batch, dtype=np.bool_)
    if isinstance(elem, int):
        return np.array(batch, dtype=np.int64)
    if isinstance(elem, float):
        return np.array(batch, dtype=np.float64)
    if isinstance(elem, (str, bytes)):
        return batch  # NOTE: as it comes (a tuple inside a tuple sample), as PyTorch's collate
    if isinstance(elem, abc.Mapping):
        return _same_mapping(
            elem, {k: default_collate([d[k] for d in batch], f"{_where}[{k!r}]") for k in elem}
        )
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(s, _where) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        n = len(elem)
        if any(len(s) != n for s in batch):
            raise ShapeError(
                f"default_collate: each element of a batch should be of equal size at {_where}"
                f", got lengths {[len(s) for s in batch]}"
            )
        fields = [default_collate(s, f"{_where}[{k}]") for k, s in enumerate(zip(*batch))]
        return fields if isinstance(elem, tuple) else _same_sequence(elem, fields)
    raise DTypeError(
        f"default_collate: {_where} is a {type(elem).__name__}; samples must be numbers, "
        "NumPy arrays, Tensors, strings, or tuples/lists/dicts of them (add a transform such "
        "as transforms.ToTensor(), or pass a collate_fn)"
    )


def _same_mapping(like: abc.Mapping, fields: dict) -> abc.Mapping:
    """``fields`` in a mapping of ``like``'s type (OrderedDict, defaultdict, ...) where it
    can be built, else a dict, as PyTorch's collate does."""
    try:
        if isinstance(like, abc.MutableMapping):
            out = copy.copy(like)  # NOTE: a copy keeps a defaultdict's default factory
            out.update(fields)
            return out
        return type(like)(fields)
    except TypeError:
        return fields


def _same_sequence(like: abc.Sequence, fields: list) -> abc.Sequence:
    """``fields`` in a sequence of ``like``'s type (a list subclass, ...) where it can be
    built, else a list, as PyTorch's collate does."""
    try:
        if isinstance(like, abc.MutableSequence):
            out = copy.copy(like)
            for k, f in enumerate(fields):
                out[k] = f
            return out
        return type(like)(fields)
    except TypeError:
        return fields


def default_convert(data: Any) -> Any:
    """Leave samples as they are, turning NumPy arrays and scalars into host arrays (no
    batching); tuples become lists, as in PyTorch.

    Used when ``batch_size=None``. Example: ``default_convert((np.zeros(2), 1))``.
    """
    return _convert(data, keep_tensors=False)


def _convert(data: Any, keep_tensors: bool) -> Any:
    from manygrad.tensor import Tensor

    if isinstance(data, Tensor):
        return data if keep_tensors else data._data
    if isinstance(data, (np.ndarray, np.generic)):
        if data.dtype.kind in _NOT_NUMERIC:  # strings and objects stay as they are
            return data
        _check_dtype(data.dtype, "the sample")
        return np.asarray(data)
    if isinstance(data, abc.Mapping):
        return _same_mapping(data, {k: _convert(v, keep_tensors) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_convert(d, keep_tensors) for d in data))
    if isinstance(data, tuple):
        return [_convert(d, keep_tensors) for d in data]  # NOTE: a list, as PyTorch's
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        return _same_sequence(data, [_convert(d, keep_tensors) for d in data])
    return data


_NOT_NUMERIC = "OSUV"  # NumPy kinds of objects, byte and unicode strings, records


def map_arrays(fn, tree, skip_tensors: bool = False):
    """Apply ``fn`` to every array leaf of a batch structure, Tensors included (unless
    ``skip_tensors``); arrays of strings or objects are left as they are."""
    from manygrad.tensor import Tensor

    if isinstance(tree, Tensor):
        return tree if skip_tensors else fn(tree._data)
    if backend.is_array(tree):
        return tree if tree.dtype.kind in _NOT_NUMERIC else fn(tree)
    if isinstance(tree, abc.Mapping):
        return _same_mapping(tree, {k: map_arrays(fn, v, skip_tensors) for k, v in tree.items()})
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(map_arrays(fn, v, skip_tensors) for v in tree))
    if isinstance(tree, (list, tuple)) and not (tree and isinstance(tree[0], (str, bytes))):
        return type(tree)(map_arrays(fn, v, skip_tensors) for v in tree)
    return tree
