"""``mg.func.jvp`` and ``mg.func.linearize``: forward mode's Jacobian-vector products,
computed by two reverse passes through manygrad's autograd (the same numbers as forward
mode, at reverse mode's cost; ops need second derivatives)."""

from __future__ import annotations

from . import autograd
from . import func as _func
from .tensor import Tensor


def _flatten(x):
    """``(leaves, spec)`` of nested tuples, lists and dicts (anything else is a leaf)."""
    if isinstance(x, (tuple, list)):
        parts = [_flatten(v) for v in x]
        return [leaf for p in parts for leaf in p[0]], (type(x), tuple(p[1] for p in parts))
    if isinstance(x, dict):
        parts = [_flatten(v) for v in x.values()]
        spec = (dict, tuple(x), tuple(p[1] for p in parts))
        return [leaf for p in parts for leaf in p[0]], spec
    return [x], None


def _unflatten(leaves, spec):
    it = iter(leaves)

    def build(sp):
        if sp is None:
            return next(it)
        if sp[0] is dict:
            return {k: build(s) for k, s in zip(sp[1], sp[2])}
        items = [build(s) for s in sp[1]]
        return sp[0](*items) if hasattr(sp[0], "_fields") else sp[0](items)  # namedtuples

    return build(spec)


_JVP = "jvp(f, primals, tangents)"


def _check_tensors(leaves, what: str, api: str = _JVP) -> None:
    if not leaves:
        raise RuntimeError(f"{api}: Expected {what} to contain at least one Tensor.")
    for t in leaves:
        if not isinstance(t, Tensor):
            raise RuntimeError(f"{api}: Expected {what} to only contain Tensors, got {type(t)}")


def _forward_graph(func, flat_primals, spec, has_aux: bool, api: str):
    """Run ``func`` on fresh copies of the primals and build ``J^T u`` for dummy cotangents
    ``u``: linear in ``u``, so the gradient of ``(J^T u) . t`` with respect to ``u`` is the
    Jacobian-vector product ``J t`` (two reverse passes give forward mode's numbers)."""
    from .creation import zeros_like

    outer = _func._level > 0 or any(p.requires_grad for p in flat_primals)
    ins = [_func._prep(p) for p in flat_primals]
    with autograd.enable_grad(), _func._inner():
        res = func(*_unflatten(ins, spec))
        aux = None
        if has_aux:
            if not (isinstance(res, tuple) and len(res) == 2):
                raise RuntimeError(
                    f"{api}: output of function f should be a tuple: (output, aux) if has_aux "
                    "is True"
                )
            res, aux = res
            if not outer:
                aux = _func._tree_map(lambda t: t.detach(), aux)
        outs, out_spec = _flatten(res)
        if not outs or (len(outs) == 1 and outs[0] is None):
            raise RuntimeError(
                f"{api}: Expected f to be a function that has non-empty output (got output = "
                f"{outs})"
            )
        for o in outs:
            if not isinstance(o, Tensor):
                raise RuntimeError(
                    f"{api}: expected f(*primals) to return only tensors, got unsupported "
                    f"type {type(o)}"
                )
        live = [k for k, o in enumerate(outs) if o.requires_grad]
        us = [zeros_like(outs[k]).requires_grad_(True) for k in live]
        gs = (autograd.grad([outs[k] for k in live], ins, us, create_graph=True,
                            allow_unused=True) if live else [None] * len(ins))  # fmt: skip
    return outer, outs, out_spec, aux, live, us, gs


def _tangents_out(outs, live, us, gs, tangents, outer: bool, strict: bool, retain: bool):
    from .creation import zeros_like

    with autograd.enable_grad(), _func._inner():
        dot = None
        for g, t in zip(gs, tangents):
            if g is not None:
                term = (g * t).sum()
                dot = term if dot is None else dot + term
        res = [None] * len(us)
        if dot is not None and dot.requires_grad:
            res = autograd.grad(dot, us, retain_graph=retain or outer, create_graph=outer,
                                allow_unused=True)  # fmt: skip
    out = [None] * len(outs)
    for k, r in zip(live, res):
        out[k] = r
    for k, o in enumerate(outs):
        if out[k] is None:
            if strict:
                raise RuntimeError(
                    "jvp(f, primals, tangents, strict=True): The output of f is independent "
                    "of the inputs. This is not allowed with strict=True."
                )
            out[k] = zeros_like(o)
    return out if outer else [t.detach() for t in out]


def _shown(outs, outer: bool):
    return outs if outer else [o.detach() for o in outs]


def jvp(func, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J @ tangents)``: the Jacobian-vector product (forward mode's
    numbers, computed by two reverse passes).

    Args:
        func: a function of tensors returning a tensor or nested tuples/lists/dicts of them.
        primals: a tuple of the arguments (tensors, or nested containers of tensors).
        tangents: the same structure and shapes as ``primals``.
        strict: raise if an output does not depend on the primals (default False: zeros).
        has_aux: ``func`` returns ``(output, aux)``; aux is returned as it is, third.

    Example:
        >>> out, jv = mg.func.jvp(mg.sin, (x,), (mg.ones_like(x),))  # jv == cos(x)
    """
    if not isinstance(primals, tuple):
        raise RuntimeError(
            f"{_JVP}: Expected primals to be a tuple. E.g. it should be valid to call f(*primals)."
        )
    flat_p, p_spec = _flatten(primals)
    flat_t, t_spec = _flatten(tangents)
    if p_spec != t_spec:
        raise RuntimeError(
            f"{_JVP}: Expected primals and tangents to have the same python structure. For "
            "example, if primals is a tuple of 3 tensors, tangents also must be. Got primals "
            f"with structure {p_spec} and tangents with structure {t_spec}"
        )
    _check_tensors(flat_p, "primals")
    _check_tensors(flat_t, "tangents")
    for p, t in zip(flat_p, flat_t):
        if tuple(t.shape) != tuple(p.shape):
            raise RuntimeError(
                f"{_JVP}: a tangent of shape {tuple(t.shape)} was given for a primal of shape "
                f"{tuple(p.shape)}; each tangent must have its primal's shape"
            )
    outer, outs, out_spec, aux, live, us, gs = _forward_graph(func, flat_p, p_spec, has_aux,
                                                              _JVP)  # fmt: skip
    tans = _tangents_out(outs, live, us, gs, flat_t, outer, strict, retain=False)
    res = (_unflatten(_shown(outs, outer), out_spec), _unflatten(tans, out_spec))
    return (*res, aux) if has_aux else res


def linearize(func, *primals):
    """``(func(*primals), jvp_fn)``: ``jvp_fn(*tangents)`` is the Jacobian-vector product
    at ``primals``; the graph is kept, so each call costs one reverse pass.

    Example:
        >>> out, jvp_fn = mg.func.linearize(mg.sin, x); jvp_fn(mg.ones_like(x))  # cos(x)
    """
    flat_p, p_spec = _flatten(primals)
    _check_tensors(flat_p, "primals", "linearize(f, *primals)")
    outer, outs, out_spec, _aux, live, us, gs = _forward_graph(
        func, flat_p, p_spec, False, "linearize(f, *primals)"
    )

    def jvp_fn(*tangents):
        flat_t, t_spec = _flatten(tangents)
        if t_spec != p_spec:
            raise RuntimeError(
                f"Expected the tangents {t_spec} to have the same argspec as the primals {p_spec}"
            )
        for i, (t, p) in enumerate(zip(flat_t, flat_p)):
            for what in ("shape", "device", "dtype"):
                if getattr(t, what) != getattr(p, what):
                    raise RuntimeError(
                        f"tangent:{i} with {what} {getattr(t, what)} in flattened pytree "
                        f"doesn't match the {what} {getattr(p, what)} of the corresponding "
                        "primal."
                    )
        tans = _tangents_out(outs, live, us, gs, flat_t, outer, False, retain=True)
        return _unflatten(tans, out_spec)

    return _unflatten(_shown(outs, outer), out_spec), jvp_fn
