"""``mg.func``: PyTorch's function transforms (``torch.func``) on manygrad's autograd.

``grad``, ``grad_and_value``, ``vjp``, ``jvp``, ``linearize``, ``jacrev``/``jacfwd``,
``hessian`` compose (a gradient of a gradient works); ``functional_call`` runs a module with
other parameters and ``stack_module_state`` stacks an ensemble's for it. ``vmap`` runs the
function once per batch element and stacks the results: correct for any function, but a
loop (no batching rules yet), so slower than a batched function. ``functionalize`` runs the
function as it is (eager mode has nothing to rewrite).
"""

from __future__ import annotations

import contextlib
import functools

from . import autograd
from .errors import CheckpointError
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


def _grads(outs, ins, cotangents=None, **kw):
    """``autograd.grad`` of the outputs that depend on the graph, zeros for every input when
    none does: a function constant in its inputs (the gradient of a linear one, under a
    second transform) has a zero derivative, as in PyTorch."""
    keep = [i for i, o in enumerate(outs) if o.requires_grad]
    if not keep:
        return tuple(x.new_zeros(x.shape) for x in ins)
    cts = None if cotangents is None else [cotangents[i] for i in keep]
    return autograd.grad([outs[i] for i in keep], ins, cts, allow_unused=True,
                         materialize_grads=True, **kw)  # fmt: skip


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
            gs = _grads([out], ins, create_graph=outer)
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
            gs = _grads(outs, flat_in, cts, retain_graph=True, create_graph=outer)
        it = iter(gs if outer else [g.detach() for g in gs])
        return tuple(_tree_map(lambda _t: next(it), p) for p in ins)

    shown = out if outer else _tree_map(lambda t: t.detach(), out)
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def jacrev(func, argnums=0, has_aux: bool = False, *, chunk_size=None):
    """The Jacobian by reverse mode, as a function. Inputs and outputs may be tensors or
    trees of them (tuples, lists, dicts): the result has the output's structure, each leaf
    holding the input's structure with leaves of shape ``out.shape + in.shape`` (a tuple of
    those when ``argnums`` is a tuple), as PyTorch's.

    Example: ``mg.func.jacrev(lambda p: functional_call(model, p, (x,)))(params)``
    """

    def wrapper(*args, **kwargs):
        from .ops import stack

        nums, single = _argnums(argnums, len(args))
        outer = _level > 0 or any(t.requires_grad for i in nums for t in _leaves(args[i]))
        args = list(args)
        for i in nums:
            args[i] = _tree_map(_prep, args[i])
        ins = [t for i in nums for t in _leaves(args[i])]
        per_out = []
        with autograd.enable_grad(), _inner():
            res = func(*args, **kwargs)
            out, aux = res if has_aux else (res, None)
            for o in _leaves(out):
                flat = o.reshape(-1)
                kw = dict(retain_graph=True, create_graph=outer)
                rows = [_grads([flat[k]], ins, **kw) for k in range(flat.shape[0])]
                mats = []
                for j, x in enumerate(ins):
                    shape = tuple(o.shape) + tuple(x.shape)
                    m = stack([r[j] for r in rows]).reshape(shape) if rows else x.new_zeros(shape)
                    mats.append(m if outer else m.detach())
                take = iter(mats).__next__  # one stream over all argnums' trees
                per_arg = tuple(_tree_map(lambda _t, take=take: take(), args[i]) for i in nums)
                per_out.append(per_arg[0] if single else per_arg)
        it = iter(per_out)
        jac = _tree_map(lambda _t: next(it), out)
        return (jac, aux) if has_aux else jac

    return wrapper


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian, as ``jacrev`` (same values and structure; computed in reverse mode)."""
    return jacrev(func, argnums, has_aux)


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
    # every name of every tensor: a tied tensor (an LM head sharing the embedding) has several
    names = {}
    for n, t in [*module.named_parameters(remove_duplicate=False),
                 *module.named_buffers(remove_duplicate=False)]:  # fmt: skip
        names.setdefault(id(t), []).append(n)
    if tie_weights:
        for group in (g for g in names.values() if len(g) > 1):
            values = [given[n] for n in group if n in given]
            if any(v is not values[0] for v in values[1:]):
                raise ValueError(
                    f"functional_call got multiple values for keys {group}, which are tied; "
                    "pass one of them, or tie_weights=False"
                )
            given.update(dict.fromkeys(group, values[0]) if values else {})
    if strict:
        known = {n for group in names.values() for n in group}
        missing = sorted(known - set(given))
        extra = sorted(set(given) - known)
        if missing or extra:
            raise CheckpointError(
                f"functional_call: missing keys {missing}, unexpected keys {extra}; pass "
                "every parameter and buffer by name, or strict=False"
            )
    saved = []
    try:
        for name, value in given.items():
            owner, attr = _owner(module, name)
            store = _store_of(owner, attr)
            saved.append((store, attr, store.get(attr, _ABSENT)))
            store[attr] = value
        if not isinstance(args, tuple):
            args = (args,)
        return module(*args, **(kwargs or {}))
    finally:
        for store, attr, old in reversed(saved):
            if old is _ABSENT:
                del store[attr]
            else:
                store[attr] = old


_ABSENT = object()


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
    # NOTE: as PyTorch (strict=False), another name is set as a plain attribute for the call
    return d


def stack_module_state(models):
    """``(params, buffers)``: dicts of every parameter and buffer of ``models`` (modules of
    one class, all in training or all in eval mode) stacked along a new dim 0, by their
    ``named_parameters`` names. Stacked parameters are new leaves that require grad (an
    optimizer can take them); use them with ``functional_call`` under ``vmap``.

    Example:
        >>> params, buffers = mg.func.stack_module_state(models)
        >>> run = lambda p, b, x: mg.func.functional_call(models[0], (p, b), (x,))
        >>> out = mg.func.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
    """
    models = list(models)
    if len(models) == 0:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or all(not m.training for m in models)):
        raise RuntimeError(
            "stack_module_state: Expected all models to have the same training/eval mode."
        )
    if not all(type(m) is type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")
    all_params = [dict(m.named_parameters()) for m in models]
    all_buffers = [dict(m.named_buffers()) for m in models]
    params = {k: _stacked_leaf([d[k] for d in all_params], k) for k in all_params[0]}
    buffers = {k: _stacked_leaf([d[k] for d in all_buffers], k) for k in all_buffers[0]}
    return params, buffers


def _stacked_leaf(tensors, name: str) -> Tensor:
    from .ops import stack

    grads = {t.requires_grad for t in tensors}
    if len(grads) != 1:
        raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
    with autograd.no_grad():
        out = stack([t.detach() for t in tensors])
    return out.requires_grad_() if grads == {True} else out


def functionalize(func, *, remove: str = "mutations"):
    """``func`` without mutations and aliasing for a tracing backend. In eager mode there is
    nothing to rewrite: the result runs ``func`` itself, so values, gradients and mutations
    of the inputs are the same as ``func``'s.

    Args:
        remove: "mutations" (default) or "mutations_and_views".

    Example:
        >>> out = mg.func.functionalize(f)(x)  # == f(x), x mutated as f mutates it
    """
    if remove not in ("mutations", "mutations_and_views"):
        raise RuntimeError(
            f"functionalize(f, remove='mutations'): received invalid argument for "
            f"remove={remove}. Valid options are:\n"
            "     remove='mutations': all inplace and out= operators will be removed from the "
            "program, and replaced with their out-of-place equivalents.\n"
            "     remove='mutations_and_views': In addition to the above, all aliasing "
            "operators {view} will be replaced with their non-aliasing counterparts, "
            "{view}_copy.\n"
        )

    @functools.wraps(func)
    def wrapped(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapped


def _take(a, dim, i: int):
    """Element ``i`` along ``dim`` of every tensor in ``a``; ``dim`` is an int or None for
    the whole of ``a``, or a structure matching ``a`` (dims per part)."""
    if dim is None:
        return a
    if isinstance(dim, int):
        if not isinstance(a, Tensor):
            if isinstance(a, (tuple, list, dict)):
                return _tree_map(lambda t: _take(t, dim, i), a)
            raise ValueError(
                f"vmap: Got in_dim={dim} for an input but the input is of type {type(a)}. "
                "We cannot vmap over non-Tensor arguments: set its in_dim to None"
            )
        return a[(slice(None),) * (dim % a.ndim) + (i,)]
    if isinstance(a, dict):
        return {k: _take(v, dim[k], i) for k, v in a.items()}
    return type(a)(_take(v, d, i) for v, d in zip(a, dim))


def _sizes(a, dim, out: set) -> None:
    if dim is None:
        return
    if isinstance(dim, int):
        for t in _leaves(a):
            out.add(t.shape[dim])
    elif isinstance(a, dict):
        for k, v in a.items():
            _sizes(v, dim[k], out)
    else:
        for v, d in zip(a, dim):
            _sizes(v, d, out)


def _stack_tree(results, dim):
    from .ops import stack

    first = results[0]
    if isinstance(first, Tensor):
        return stack(results, dim=dim if isinstance(dim, int) else dim[0])
    if isinstance(first, (tuple, list)):
        dims = dim if isinstance(dim, (tuple, list)) else (dim,) * len(first)
        return type(first)(_stack_tree([r[k] for r in results], dims[k])
                           for k in range(len(first)))  # fmt: skip
    if isinstance(first, dict):
        return {k: _stack_tree([r[k] for r in results], dim[k] if isinstance(dim, dict) else dim)
                for k in first}  # fmt: skip
    raise TypeError(f"vmap: the function must return Tensors, got {type(first).__name__}")


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """``func`` over a batch dim: called once per batch element (a loop, not batching
    rules: correct for any function, but as slow as the loop), outputs stacked. Arguments
    and results may be nested tuples, lists and dicts of tensors (e.g. a parameter dict).

    Example: ``mg.func.vmap(mg.dot)(a, b)`` for a and b of shape (B, n)
    """

    def wrapper(*args, **kwargs):
        dims = in_dims if isinstance(in_dims, (tuple, list)) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise ValueError(
                f"vmap: in_dims has {len(dims)} entries for {len(args)} positional arguments"
            )
        sizes = set()
        for a, d in zip(args, dims):
            _sizes(a, d, sizes)
        if len(sizes) != 1:
            raise ValueError(
                f"vmap: the mapped dims must have one size, got {sorted(sizes) or 'none'} "
                "(set in_dims=None for arguments that are not batched)"
            )
        (n,) = sizes
        results = [func(*(_take(a, d, i) for a, d in zip(args, dims)), **kwargs)
                   for i in range(n)]  # fmt: skip
        return _stack_tree(results, out_dims)

    return wrapper


from ._func_forward import jvp, linearize  # noqa: E402, F401


def replace_all_batch_norm_modules_(root):
    """Turn off running statistics in every batch norm of ``root`` in place (their
    ``running_mean``/``running_var``/``num_batches_tracked`` become None and
    ``track_running_stats`` False), so that ``vmap`` over a model with batch norm computes
    per-sample statistics; returns ``root``."""
    from .nn.normalization import _BatchNorm

    for m in root.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root


def debug_unwrap(tensor, *, recurse: bool = True):
    """The tensor under a transform's wrapper; manygrad's transforms pass plain tensors, so
    this is ``tensor`` itself."""
    return tensor
