"""``mg.func``: PyTorch's function transforms (``torch.func``) on manygrad's autograd.

``grad``, ``grad_and_value``, ``vjp``, ``jacrev``/``jacfwd``, ``hessian`` compose (a
gradient of a gradient works); ``functional_call`` runs a module with other parameters.
``vmap`` runs the function once per batch element and stacks the results: correct for any
function, but a loop (no batching rules yet), so slower than a batched function.
"""

from __future__ import annotations

import contextlib

from . import autograd
from .tensor import Tensor

_level = 0  # how many transforms are open around the current call


@contextlib.contextmanager
def _inner():
    global _level
    _level += 1
    try:
        yield
    finally:
        _level -= 1


def _prep(x: Tensor) -> Tensor:
    """A tensor to differentiate against: connected to ``x`` when ``x`` is itself being
    differentiated (nested transforms), a fresh leaf otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError(f"func: expected Tensor arguments to differentiate, got {type(x).__name__}")
    if x.requires_grad:
        return x.view_as(x)
    return x.detach().requires_grad_(True)


def _argnums(argnums, n):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"func: argnums {a} is out of range for {n} positional arguments")
    return tuple(a % n for a in nums), isinstance(argnums, int)


def _tree_map(fn, x):
    if isinstance(x, Tensor):
        return fn(x)
    if isinstance(x, (tuple, list)):
        return type(x)(_tree_map(fn, v) for v in x)
    if isinstance(x, dict):
        return {k: _tree_map(fn, v) for k, v in x.items()}
    return x


def _leaves(x):
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return [t for v in x for t in _leaves(v)]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _leaves(v)]
    return []


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """``(gradient, value)`` of a function returning a one-element tensor.

    Example: ``g, loss = mg.func.grad_and_value(loss_fn)(params, x)``
    """

    def wrapper(*args, **kwargs):
        nums, single = _argnums(argnums, len(args))
        outer = _level > 0 or any(t.requires_grad for i in nums for t in _leaves(args[i]))
        args = list(args)
        for i in nums:
            args[i] = _tree_map(_prep, args[i])
        with autograd.enable_grad(), _inner():
            res = func(*args, **kwargs)
            out, aux = res if has_aux else (res, None)
            if not isinstance(out, Tensor) or out.numel() != 1:
                raise ValueError(
                    "func.grad: the function must return a one-element Tensor (the loss), "
                    f"got {type(out).__name__}"
                    + (f" of shape {tuple(out.shape)}" if isinstance(out, Tensor) else "")
                )
            ins = [t for i in nums for t in _leaves(args[i])]
            gs = autograd.grad(out, ins, create_graph=outer, allow_unused=True,
                               materialize_grads=True)  # fmt: skip
        it = iter(gs if outer else [g.detach() for g in gs])
        grads = tuple(_tree_map(lambda _t: next(it), args[i]) for i in nums)
        g = grads[0] if single else grads
        value = out if outer else out.detach()
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """The gradient of a function returning a one-element tensor, as a function.

    Example: ``d2 = mg.func.grad(mg.func.grad(lambda x: x.sin().sum()))(x)``
    """
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, v = gv(*args, **kwargs)
        return (g, v[1]) if has_aux else g

    return wrapper


def vjp(func, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``; ``vjp_fn(cotangents)`` gives one gradient per primal.

    Example: ``out, fn = mg.func.vjp(torch.sin, x); (gx,) = fn(mg.ones_like(out))``
    """
    outer = _level > 0 or any(t.requires_grad for t in _leaves(primals))
    ins = [_tree_map(_prep, p) for p in primals]
    with autograd.enable_grad(), _inner():
        res = func(*ins)
    out, aux = res if has_aux else (res, None)
    outs = _leaves(out)
    flat_in = _leaves(ins)

    def vjp_fn(*cotangents):
        cts = _leaves(cotangents)
        with autograd.enable_grad(), _inner():
            gs = autograd.grad(outs, flat_in, cts, retain_graph=True, create_graph=outer,
                               allow_unused=True, materialize_grads=True)  # fmt: skip
        it = iter(gs if outer else [g.detach() for g in gs])
        return tuple(_tree_map(lambda _t: next(it), p) for p in ins)

    shown = out if outer else _tree_map(lambda t: t.detach(), out)
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def jacrev(func, argnums=0, has_aux: bool = False):
    """The Jacobian (shape ``out.shape + in.shape``) by reverse mode, as a function."""

    def wrapper(*args, **kwargs):
        from .ops import stack

        nums, single = _argnums(argnums, len(args))
        outer = _level > 0 or any(args[i].requires_grad for i in nums)
        args = list(args)
        for i in nums:
            args[i] = _prep(args[i])
        with autograd.enable_grad(), _inner():
            res = func(*args, **kwargs)
            out, aux = res if has_aux else (res, None)
            ins = [args[i] for i in nums]
            flat = out.reshape(-1)
            rows = [
                autograd.grad(
                    flat[k],
                    ins,
                    retain_graph=True,
                    create_graph=outer,
                    allow_unused=True,
                    materialize_grads=True,
                )  # fmt: skip
                for k in range(flat.shape[0])
            ]
        jac = []
        for j, x in enumerate(ins):
            m = stack([r[j] for r in rows]).reshape(*(tuple(out.shape) + tuple(x.shape)))
            jac.append(m if outer else m.detach())
        jac = jac[0] if single else tuple(jac)
        return (jac, aux) if has_aux else jac

    return wrapper


jacfwd = jacrev  # NOTE: same values; computed in reverse mode


def hessian(func, argnums=0):
    """The Hessian of a scalar function: ``jacrev(jacrev(func))``."""
    return jacrev(jacrev(func, argnums), argnums)


def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):  # fmt: skip
    """Call ``module`` with the given tensors in place of its parameters and buffers (by
    their ``named_parameters`` names); the module is left as it was.

    Example: ``out = mg.func.functional_call(model, {"weight": w, "bias": b}, (x,))``
    """
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        dicts = (dicts,)
    given = {}
    for d in dicts:
        for k, v in d.items():
            if k in given:
                raise ValueError(f"functional_call: {k!r} appears in more than one dict")
            given[k] = v
    known = dict(module.named_parameters())
    known.update(dict(module.named_buffers()))
    if strict:
        missing = sorted(set(known) - set(given))
        extra = sorted(set(given) - set(known))
        if missing or extra:
            raise ValueError(f"functional_call: missing keys {missing}, unexpected keys {extra}")
    saved = []
    try:
        for name, value in given.items():
            owner, attr = _owner(module, name)
            store = _store_of(owner, attr)
            saved.append((store, attr, store[attr]))
            store[attr] = value
        if not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for store, attr, old in reversed(saved):
            store[attr] = old


def _owner(module, name):
    *path, attr = name.split(".")
    m = module
    for p in path:
        m = getattr(m, p)
    return m, attr


def _store_of(owner, attr):
    d = owner.__dict__
    for key in ("_parameters", "_buffers"):
        if attr in d.get(key, {}):
            return d[key]
    raise KeyError(f"functional_call: {type(owner).__name__} has no parameter or buffer {attr!r}")


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """``func`` over a batch dim: called once per batch element (a loop, not batching
    rules: correct for any function, but as slow as the loop), outputs stacked.

    Example: ``mg.func.vmap(mg.dot)(a, b)`` for a and b of shape (B, n)
    """

    def wrapper(*args, **kwargs):
        from .ops import stack

        dims = in_dims if isinstance(in_dims, (tuple, list)) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise ValueError(
                f"vmap: in_dims has {len(dims)} entries for {len(args)} positional arguments"
            )
        sizes = {a.shape[d] for a, d in zip(args, dims) if d is not None and isinstance(a, Tensor)}
        if len(sizes) != 1:
            raise ValueError(
                f"vmap: the mapped dims must have one size, got {sorted(sizes) or 'none'} "
                "(set in_dims=None for arguments that are not batched)"
            )
        (n,) = sizes
        results = []
        for i in range(n):
            call = [a[(slice(None),) * (d % a.ndim) + (i,)]
                    if d is not None and isinstance(a, Tensor) else a
                    for a, d in zip(args, dims)]  # fmt: skip
            results.append(func(*call, **kwargs))
        first = results[0]
        if isinstance(first, Tensor):
            return stack(results, dim=out_dims if isinstance(out_dims, int) else out_dims[0])
        if isinstance(first, (tuple, list)):
            od = out_dims if isinstance(out_dims, (tuple, list)) else (out_dims,) * len(first)
            return type(first)(stack([r[k] for r in results], dim=od[k]) for k in range(len(first)))
        raise TypeError(f"vmap: the function must return Tensors, got {type(first).__name__}")

    return wrapper
