"""``gradcheck`` and ``gradgradcheck``: a function's gradients against finite differences.

For each differentiable input (float64 or complex128 tensors that require grad), the
numerical Jacobian comes from central differences ``(f(x + eps) - f(x - eps)) / 2 eps`` per
element, and the analytical one from one backward pass per output element. They must agree
within ``atol + rtol * |numerical|``. ``gradgradcheck`` runs the same check on the function
that maps the inputs (and the gradient of the outputs) to the first derivatives, built with
``create_graph=True``.

Example:
    >>> x = mg.randn(3, dtype=mg.float64, requires_grad=True)
    >>> mg.autograd.gradcheck(lambda t: (t * t).sin(), (x,))
    True
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by ``gradcheck`` / ``gradgradcheck`` when the gradients disagree."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(func, inputs) -> tuple:
    out = func(*inputs)
    outs = _as_tuple(out)
    return tuple(o for o in outs if isinstance(o, Tensor))


def _differentiable(outs):
    return [o for o in outs if o.requires_grad and (o.is_floating_point() or o.is_complex())]


def _host(t: Tensor) -> np.ndarray:
    return np.array(backend.to_numpy(t.detach()._data), copy=True)


def _numerical(func, inputs, i: int, eps: float, n_out: list[int]):
    """Columns of the numerical Jacobian for input ``i``: a list per output of arrays
    ``(numel(input), numel(output))`` (complex inputs: the real and imaginary directions)."""
    x = inputs[i]
    base = x.detach()
    flat = _host(base).reshape(-1)
    dirs = [1.0] if not np.iscomplexobj(flat) else [1.0, 1j]
    jac = [[np.zeros((flat.size, m), np.complex128 if np.iscomplexobj(flat) else np.float64)
            for m in n_out] for _ in dirs]  # fmt: skip
    for d_i, d in enumerate(dirs):
        for k in range(flat.size):
            vals = []
            for sign in (1, -1):
                pert = flat.copy()
                pert[k] = pert[k] + sign * eps * d
                arr = backend.to_device(pert.reshape(base.shape), x._device)
                xs = list(inputs)
                # NOTE: with grad: gradgradcheck's function takes gradients inside
                xs[i] = Tensor._wrap(arr, x._device).requires_grad_(x.requires_grad)
                outs = [o for o in _outputs(func, xs) if o.is_floating_point()
                        or o.is_complex()]  # fmt: skip
                vals.append([_host(o).reshape(-1) for o in outs])
            for j in range(len(n_out)):
                jac[d_i][j][k] = (vals[0][j] - vals[1][j]) / (2 * eps)
    return jac


def _analytical(inputs, outs, i: int, c):
    """For each output, the gradient of input ``i`` from one backward per output element
    with grad_output ``c`` there: an array ``(numel(input), numel(output))``."""
    from ._engine import grad

    x = inputs[i]
    res = []
    for o in outs:
        n = o.numel()
        dt = np.complex128 if (x.is_complex() or o.is_complex()) else np.float64
        jac = np.zeros((x.numel(), n), dt)
        for k in range(n):
            g = np.zeros(n, _host(o).dtype)
            g[k] = c
            go = Tensor._wrap(backend.to_device(g.reshape(tuple(o.shape)), o._device), o._device)
            (gx,) = grad([o], [x], [go], retain_graph=True, allow_unused=True)
            if gx is not None:
                jac[:, k] = _host(gx).reshape(-1)
        res.append(jac)
    return res


def _check_inputs(inputs, name: str):
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError(f"{name}: at least one input tensor must require gradient")
    for i in diff:
        t = inputs[i]
        if t.dtype.name not in ("float64", "complex128"):
            warnings.warn(
                f"{name}: input {i} is {t.dtype.name}, not double precision; finite "
                "differences will likely fail. Pass float64 inputs.",
                UserWarning,
                stacklevel=3,
            )
    return diff


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, nondet_tol: float = 0.0,
              check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
              check_batched_grad: bool = False, check_batched_forward_grad: bool = False,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              fast_mode: bool = False, masked=None) -> bool:  # fmt: skip
    """Whether ``func``'s gradients at ``inputs`` equal finite differences.

    Args:
        func: takes the inputs, returns a tensor or a tuple of tensors.
        inputs: a tensor or a tuple of them (and other values); those that require grad
            are checked (use float64).
        eps: the finite-difference step (default 1e-6).
        atol, rtol: the allowed difference ``atol + rtol * |numerical|``.
        raise_exception: raise ``GradcheckError`` naming the input, output and worst
            element (default), else return False.

    The ``check_*``, ``fast_mode`` and ``masked`` options of PyTorch are accepted; forward-
    mode and batched checks are not run (manygrad has no forward-mode AD).
    """
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs, "gradcheck")
    outs = _differentiable(_outputs(func, inputs))
    all_outs = [o for o in _outputs(func, inputs) if o.is_floating_point() or o.is_complex()]
    if not outs:
        for i in diff:
            num = _numerical(func, inputs, i, eps, [o.numel() for o in all_outs])
            if any(np.abs(j).max(initial=0) > atol for d in num for j in d):
                return _fail(raise_exception,
                             f"gradcheck: the outputs do not require grad, but their numerical "
                             f"gradient with respect to input {i} is not zero")  # fmt: skip
        return True
    n_out = [o.numel() for o in all_outs]
    idx = [k for k, o in enumerate(all_outs) if o.requires_grad]
    for i in diff:
        num = _numerical(func, inputs, i, eps, n_out)
        z_complex = inputs[i].is_complex()
        for k in idx:
            # NOTE: PyTorch's convention: a grad_output c on a complex output w is the
            # gradient of the real loss Re(conj(c) w); the input's gradient is
            # dL/dRe z + i dL/dIm z
            for c in (1.0, 1j) if all_outs[k].is_complex() else (1.0,):
                (a_cmp,) = _analytical(inputs, [all_outs[k]], i, c)
                n_cmp = np.real(np.conj(c) * num[0][k])
                if z_complex:
                    n_cmp = n_cmp + 1j * np.real(np.conj(c) * num[1][k])
                if not np.allclose(a_cmp, n_cmp, rtol=rtol, atol=atol):
                    bad = np.abs(a_cmp - n_cmp)
                    r, col = np.unravel_index(int(np.argmax(bad)), bad.shape)
                    return _fail(
                        raise_exception,
                        f"gradcheck: Jacobian mismatch for output {k} with respect to input "
                        f"{i}:\nnumerical:{n_cmp}\nanalytical:{a_cmp}\nworst at input element "
                        f"{r}, output element {col}: numerical {n_cmp[r, col]}, analytical "
                        f"{a_cmp[r, col]}",
                    )
    return True


def _fail(raise_exception: bool, msg: str) -> bool:
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, gen_non_contig_grad_outputs: bool = False,
                  raise_exception: bool = True, nondet_tol: float = 0.0,
                  check_undefined_grad: bool = True, check_grad_dtypes: bool = False,
                  check_batched_grad: bool = False, check_fwd_over_rev: bool = False,
                  check_rev_over_rev: bool = True, fast_mode: bool = False,
                  masked: bool = False) -> bool:  # fmt: skip
    """Whether ``func``'s second derivatives equal finite differences of its first ones.

    Args:
        func, inputs: as ``gradcheck``.
        grad_outputs: the gradients of the outputs (default: random float64, requiring grad,
            so that the check covers them too).
    """
    from ._engine import grad

    inputs = _as_tuple(inputs)
    _check_inputs(inputs, "gradgradcheck")
    outs = _differentiable(_outputs(func, inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = []
        for o in outs:
            g = rng.standard_normal(tuple(o.shape))
            if o.is_complex():
                g = g + 1j * rng.standard_normal(tuple(o.shape))
            arr = backend.to_device(g.astype(_host(o).dtype), o._device)
            grad_outputs.append(Tensor._wrap(arr, o._device).requires_grad_())
    grad_outputs = list(_as_tuple(grad_outputs))
    n_in = len(inputs)
    diff = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]

    def first(*args):
        xs, gos = args[:n_in], args[n_in:]
        ys = _differentiable(_outputs(func, xs))
        gs = grad(ys, [xs[i] for i in diff], list(gos), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)  # fmt: skip
