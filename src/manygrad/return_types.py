"""``torch.return_types``: the named tuples that ops with several results return.

``mg.topk(x, 2)`` gives a ``return_types.topk``: a tuple of ``(values, indices)`` whose items
are also fields (``r.values``, ``r.indices``), as PyTorch's structseqs are. They unpack,
index, compare and pickle as tuples; like PyTorch's, they have no ``_fields`` or
``_replace`` and are built from one sequence: ``return_types.topk((values, indices))``.
An op given ``out=`` returns the ``<name>_out`` type (``max_out``), as PyTorch does.

Example:
    >>> values, indices = mg.max(x, dim=1)
    >>> mg.max(x, dim=1).indices
"""

from __future__ import annotations

import operator

from . import dtypes as _D

# name -> fields, as PyTorch 2.13's torch.return_types has them
_FIELDS = {
    "aminmax": "min max",
    "cummax": "values indices",
    "cummin": "values indices",
    "frexp": "mantissa exponent",
    "geqrf": "a tau",
    "histogram": "hist bin_edges",
    "histogramdd": "hist bin_edges",
    "kthvalue": "values indices",
    "linalg_cholesky_ex": "L info",
    "linalg_eig": "eigenvalues eigenvectors",
    "linalg_eigh": "eigenvalues eigenvectors",
    "linalg_inv_ex": "inverse info",
    "linalg_ldl_factor": "LD pivots",
    "linalg_ldl_factor_ex": "LD pivots info",
    "linalg_lstsq": "solution residuals rank singular_values",
    "linalg_lu": "P L U",
    "linalg_lu_factor": "LU pivots",
    "linalg_lu_factor_ex": "LU pivots info",
    "linalg_qr": "Q R",
    "linalg_slogdet": "sign logabsdet",
    "linalg_solve_ex": "result info",
    "linalg_svd": "U S Vh",
    "lu_unpack": "P L U",
    "max": "values indices",
    "median": "values indices",
    "min": "values indices",
    "mode": "values indices",
    "nanmedian": "values indices",
    "qr": "Q R",
    "slogdet": "sign logabsdet",
    "sort": "values indices",
    "svd": "U S V",
    "topk": "values indices",
    "triangular_solve": "solution cloned_coefficient",
}
_NO_OUT = frozenset({"histogramdd"})  # PyTorch has no ``histogramdd_out``
_PRIVATE = {"_lu_with_info": "LU pivots info"}


def _new(cls, sequence, dict=None):  # noqa: A002 - the structseq constructor's names
    try:
        items = tuple(sequence)
    except TypeError:
        raise TypeError("constructor requires a sequence") from None
    n = len(cls.__match_args__)
    if len(items) != n:
        raise TypeError(
            f"{_D.display_module}.return_types.{cls.__name__}() takes a {n}-sequence "
            f"({len(items)}-sequence given)"
        )
    return tuple.__new__(cls, items)


def _repr(self) -> str:
    body = ",\n".join(f"{k}={v!r}" for k, v in zip(self.__match_args__, self))
    return f"{_D.display_module}.return_types.{type(self).__name__}(\n{body})"


def _reduce(self):
    return (type(self), (tuple(self), {}))


def _make(name: str, fields: str) -> type:
    names = tuple(fields.split())
    ns = {
        "__slots__": (),
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"``({', '.join(names)})`` as a tuple whose items are also fields.",
        "__match_args__": names,
        "n_fields": len(names),
        "n_sequence_fields": len(names),
        "n_unnamed_fields": 0,
        "__new__": _new,
        "__repr__": _repr,
        "__str__": _repr,
        "__reduce__": _reduce,
    }
    for i, f in enumerate(names):
        ns[f] = property(operator.itemgetter(i), doc=f"Item {i} of the tuple.")
    return type(name, (tuple,), ns)


__all__ = []
for _name, _f in _FIELDS.items():
    globals()[_name] = _make(_name, _f)
    __all__.append(_name)
    if _name not in _NO_OUT:
        globals()[_name + "_out"] = _make(_name + "_out", _f)
        __all__.append(_name + "_out")
for _name, _f in _PRIVATE.items():
    globals()[_name] = _make(_name, _f)
del _name, _f

all_return_types = [globals()[n] for n in __all__]


def out_variant(result):
    """The ``<name>_out`` type of a return-types tuple (what an op given ``out=`` returns),
    or its own type where PyTorch has none."""
    t = type(result)
    return globals().get(t.__name__ + "_out", t) if t.__module__ == __name__ else t
