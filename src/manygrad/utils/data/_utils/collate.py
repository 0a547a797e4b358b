"""``torch.utils.data._utils.collate``: ``default_collate`` and ``default_convert`` giving
CPU Tensors, and the ``collate`` walk with its ``default_collate_fn_map``, which a custom
collate function extends with its own element types, as in PyTorch.

Example:
    >>> from manygrad.utils.data._utils.collate import collate, default_collate_fn_map
    >>> def collate_box(batch, *, collate_fn_map=None): return Boxes.cat(batch)
    >>> collate(batch, collate_fn_map={**default_collate_fn_map, Boxes: collate_box})
"""

from __future__ import annotations

import collections.abc as abc
from collections.abc import Callable
from typing import Any

import numpy as np

from ....data import collate as _host
from ....tensor import Tensor

__all__ = ["collate", "default_collate", "default_collate_fn_map", "default_convert"]

_ERR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def collate(batch, *, collate_fn_map: dict[type | tuple[type, ...], Callable] | None = None):
    """Collate ``batch`` field by field; leaves go to ``collate_fn_map[type]`` (the exact
    type first, then the first entry the element is an instance of).

    Args:
        batch: the samples.
        collate_fn_map: element type -> ``fn(batch, *, collate_fn_map)`` (default None).

    Example:
        >>> collate([(1, 2.0), (3, 4.0)], collate_fn_map=default_collate_fn_map)
        [tensor([1, 3]), tensor([2., 4.], dtype=manygrad.float64)]
    """
    elem = batch[0]
    if collate_fn_map is not None:
        fn = collate_fn_map.get(type(elem))
        if fn is None:
            fn = next((f for t, f in collate_fn_map.items() if isinstance(elem, t)), None)
        if fn is not None:
            return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, abc.Mapping):
        fields = {k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map) for k in elem}
        return _host._same_mapping(elem, fields)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        if any(len(s) != len(elem) for s in batch):
            raise RuntimeError(
                "each element in list of batch should be of equal size, got lengths "
                f"{[len(s) for s in batch]}; pad the samples or pass a collate_fn that pads"
            )
        fields = [collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)]
        return fields if isinstance(elem, tuple) else _host._same_sequence(elem, fields)
    raise TypeError(_ERR.format(type(elem)))


def collate_tensor_fn(batch, *, collate_fn_map=None) -> Tensor:
    from .... import stack

    return stack(list(batch), 0)  # NOTE: through autograd, as PyTorch's torch.stack


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    if batch[0].dtype.kind in _host._NOT_NUMERIC:
        raise TypeError(_ERR.format(batch[0].dtype))
    return collate([_as_tensor(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None) -> Tensor:
    return _as_tensor(np.asarray(batch))


def collate_float_fn(batch, *, collate_fn_map=None) -> Tensor:
    from .... import float64, tensor

    return tensor(list(batch), dtype=float64)


def collate_int_fn(batch, *, collate_fn_map=None) -> Tensor:
    from .... import tensor

    return tensor(list(batch))  # int64, or bool for bools


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[type | tuple[type, ...], Callable] = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch) -> Any:
    """Stack a list of samples into a batch of CPU Tensors, as PyTorch's ``default_collate``:
    numbers and arrays gain a leading dim, tuples become lists, lists, dicts and namedtuples
    keep their type, strings and bytes stay as they come.

    Example:
        >>> default_collate([(1, 2.0), (3, 4.0)])
        [tensor([1, 3]), tensor([2., 4.], dtype=manygrad.float64)]
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data) -> Any:
    """Turn the NumPy arrays and scalars in ``data`` into CPU Tensors (no batching), as
    PyTorch's ``default_convert``; tuples become lists, everything else stays.

    Example:
        >>> default_convert((np.zeros(2), 1))
        [tensor([0., 0.], dtype=manygrad.float64), 1]
    """
    return _host.map_arrays(_as_tensor, _host._convert(data, keep_tensors=True), skip_tensors=True)


def _as_tensor(a) -> Tensor:
    from .... import as_tensor

    return as_tensor(a)
