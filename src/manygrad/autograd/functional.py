"""``mg.autograd.functional``: Jacobians, Hessians and their products for a function of
tensors, as PyTorch's (reverse mode; ``jvp`` through the double-vjp trick)."""

from __future__ import annotations

from ..tensor import Tensor
from . import enable_grad, grad


def _tuple(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _grad_inputs(inputs, create_graph):
    return tuple(
        t if create_graph and t.requires_grad else t.detach().requires_grad_(True)
        for t in _tuple(inputs)
    )


def _grad(outputs, inputs, grad_outputs=None, **kw):
    """``grad`` of the outputs that depend on the inputs; None for every input when none
    does (a constant function's derivative, which the callers fill with zeros, as PyTorch's
    functions give a linear function's Hessian: zeros)."""
    outs = _tuple(outputs)
    keep = [i for i, o in enumerate(outs) if o.requires_grad]
    if not keep:
        return (None,) * len(inputs)
    gos = None if grad_outputs is None else [_tuple(grad_outputs)[i] for i in keep]
    return grad([outs[i] for i in keep], inputs, gos, **kw)


def _out(res, single):
    return res[0] if single else res


def _zeros_for(gs, ins):
    from ..creation import zeros_like

    return tuple(zeros_like(x) if g is None else g for g, x in zip(gs, ins))


def _check_out(out, what):
    for o in _tuple(out):
        if not isinstance(o, Tensor):
            raise TypeError(f"{what}: the function must return Tensors, got {type(o).__name__}")


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T J)``: the vector-Jacobian product.

    Example: ``out, g = mg.autograd.functional.vjp(f, x, v)``
    """
    single = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _grad_inputs(inputs, create_graph)
        out = func(*ins)
        _check_out(out, "vjp")
        outs = _tuple(out)
        vs = (None,) * len(outs) if v is None else _tuple(v)
        gs = _grad(outs, ins, vs, create_graph=create_graph, allow_unused=True)
    gs = _zeros_for(gs, ins)
    if not create_graph:
        out = out.detach() if isinstance(out, Tensor) else tuple(o.detach() for o in out)
        gs = tuple(g.detach() for g in gs)
    return out, _out(gs, single)


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), J v)``: the Jacobian-vector product (two reverse passes).

    Example: ``out, jv = mg.autograd.functional.jvp(f, x, v)``
    """
    from ..creation import zeros_like

    with enable_grad():
        ins = _grad_inputs(inputs, create_graph)
        out = func(*ins)
        _check_out(out, "jvp")
        outs = _tuple(out)
        # NOTE: J v = d/du (u^T J v)... computed as the gradient of (J^T u) . v with respect
        # to a dummy u: J^T u is linear in u, so its gradient is J v
        us = tuple(zeros_like(o).requires_grad_(True) for o in outs)
        gs = _grad(outs, ins, us, create_graph=True, allow_unused=True)
        vs = _tuple(v) if v is not None else tuple(1.0 for _ in ins)
        dot = None
        for g, vv in zip(gs, vs):
            if g is not None:
                term = (g * vv).sum()
                dot = term if dot is None else dot + term
        if dot is None:
            res = tuple(zeros_like(o) for o in outs)
        else:
            res = _grad(dot, us, create_graph=create_graph, allow_unused=True)
            res = _zeros_for(res, outs)
    if not create_graph:
        res = tuple(r.detach() for r in res)
        out = out.detach() if isinstance(out, Tensor) else tuple(o.detach() for o in out)
    return out, (res[0] if isinstance(out, Tensor) else res)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):  # fmt: skip
    """The Jacobian of ``func`` at ``inputs``: shape ``out.shape + in.shape`` (nested tuples
    for several outputs or inputs, as PyTorch's).

    Example: ``J = mg.autograd.functional.jacobian(lambda x: x.exp(), x)``
    """
    from ..creation import zeros_like
    from ..ops import stack

    single_in = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _grad_inputs(inputs, create_graph)
        out = func(*ins)
        _check_out(out, "jacobian")
        single_out = isinstance(out, Tensor)
        outs = _tuple(out)
        jac = []
        for o in outs:
            flat = o.reshape(-1)
            rows = []
            for k in range(flat.shape[0]):
                gs = _grad(flat[k], ins, retain_graph=True, create_graph=create_graph,
                          allow_unused=True)  # fmt: skip
                rows.append(_zeros_for(gs, ins))
            per_in = []
            for j, x in enumerate(ins):
                if rows:
                    m = stack([r[j] for r in rows]).reshape(*(tuple(o.shape) + tuple(x.shape)))
                else:
                    m = zeros_like(x).reshape(*(tuple(o.shape) + tuple(x.shape)))
                per_in.append(m if create_graph else m.detach())
            jac.append(tuple(per_in))
    if single_out and single_in:
        return jac[0][0]
    if single_out:
        return jac[0]
    if single_in:
        return tuple(j[0] for j in jac)
    return tuple(jac)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):  # fmt: skip
    """The Hessian of a scalar ``func`` at ``inputs``: shape ``in.shape + in.shape``.

    Example: ``H = mg.autograd.functional.hessian(lambda x: (x ** 3).sum(), x)``
    """
    single = isinstance(inputs, Tensor)

    def gradient(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise ValueError("hessian: the function must return a single-element Tensor")
        gs = _grad(out, xs, create_graph=True, allow_unused=True)
        gs = _zeros_for(gs, xs)
        return gs[0] if single else gs

    return jacobian(gradient, inputs, create_graph=create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), v^T H)``: the vector-Hessian product of a scalar function."""
    single = isinstance(inputs, Tensor)
    with enable_grad():
        ins = _grad_inputs(inputs, True)
        out = func(*ins)
        gs = _zeros_for(_grad(out, ins, create_graph=True, allow_unused=True), ins)
        vs = _tuple(v)
        dot = sum((g * vv).sum() for g, vv in zip(gs, vs))
        res = _zeros_for(_grad(dot, ins, create_graph=create_graph, allow_unused=True), ins)
    if not create_graph:
        res = tuple(r.detach() for r in res)
        out = out.detach()
    return out, _out(res, single)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(inputs), H v)``: the Hessian-vector product (H is symmetric: equals vhp).

    Example: ``_, hv = mg.autograd.functional.hvp(lambda x: (x ** 3).sum(), x, v)``
    """
    return vhp(func, inputs, v, create_graph, strict)
