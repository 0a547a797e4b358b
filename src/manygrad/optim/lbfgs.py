"""L-BFGS (Liu & Nocedal, 1989), with an optional strong-Wolfe line search."""

from __future__ import annotations

import math
from collections.abc import Callable

from .. import backend
from ..autograd import enable_grad
from ..tensor import Tensor
from .optimizer import _HOST, Optimizer, _host_hypers


def _cubic_min(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through two points with slopes, clipped to ``bounds``."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2sq = d1 * d1 - g1 * g2
    if d2sq < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(d2sq)
    if x1 <= x2:
        t = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        t = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(t, lo), hi)


def _strong_wolfe(evaluate, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tol=1e-9, max_ls=25):
    """A step ``t`` along ``d`` meeting the strong Wolfe conditions (Nocedal & Wright,
    "Numerical Optimization", algorithms 3.5 and 3.6: bracketing, then zooming with
    cubic interpolation). Returns ``(f, g, t, evaluations)``."""
    xp = backend.array_module(d)
    d_norm = float(xp.abs(d).max())
    f_new, g_new = evaluate(x, t, d)
    evals, it = 1, 0
    gtd_new = float(xp.dot(g_new, d))
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    br = None
    while it < max_ls:
        if f_new > f + c1 * t * gtd or (it > 1 and f_new >= f_prev):
            br = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        if abs(gtd_new) <= -c2 * gtd:
            br, done = [[t, f_new, g_new, gtd_new]], True
            break
        if gtd_new >= 0:
            br = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new, gtd_new]]
            break
        lo, hi = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, _cubic_min(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, (lo, hi))
        f_prev, g_prev, gtd_prev = f_new, g_new, gtd_new
        f_new, g_new = evaluate(x, t, d)
        evals, it = evals + 1, it + 1
        gtd_new = float(xp.dot(g_new, d))
    if it == max_ls:
        br = [[0.0, f, g, gtd], [t, f_new, g_new, gtd_new]]
    insufficient = False
    low, high = (0, 1) if br[0][1] <= br[-1][1] else (1, 0)
    while not done and it < max_ls:
        (a, fa, _, ga), (b, fb, _, gb) = br
        if abs(b - a) * d_norm < tol:
            break
        t = _cubic_min(a, fa, ga, b, fb, gb)
        top, bot = max(a, b), min(a, b)
        eps = 0.1 * (top - bot)
        if min(top - t, t - bot) < eps:  # NOTE: too close to an end: move inside
            if insufficient or t >= top or t <= bot:
                t = top - eps if abs(t - top) < abs(t - bot) else bot + eps
                insufficient = False
            else:
                insufficient = True
        else:
            insufficient = False
        f_new, g_new = evaluate(x, t, d)
        evals, it = evals + 1, it + 1
        gtd_new = float(xp.dot(g_new, d))
        if f_new > f + c1 * t * gtd or f_new >= br[low][1]:
            br[high] = [t, f_new, g_new, gtd_new]
            low, high = (0, 1) if br[0][1] <= br[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high][0] - br[low][0]) >= 0:
                br[high] = list(br[low])
            br[low] = [t, f_new, g_new, gtd_new]
    t, f_new, g_new, _ = br[low] if len(br) > 1 else br[0]
    return f_new, g_new, t, evals


class LBFGS(Optimizer):
    """L-BFGS: quasi-Newton steps from a short history of gradient differences.

    From Liu & Nocedal, "On the Limited Memory BFGS Method for Large Scale Optimization"
    (Mathematical Programming, 1989). ``step`` needs a closure that clears the gradients,
    computes the loss, calls ``backward`` and returns the loss; one parameter group only.

    Args:
        params: tensors to optimize.
        lr: step length factor (default 1).
        max_iter: iterations per ``step`` (default 20).
        max_eval: closure evaluations per ``step`` (default ``max_iter * 1.25``).
        tolerance_grad: stop when the largest gradient entry is below (default 1e-7).
        tolerance_change: stop when the loss or the step changes less (default 1e-9).
        history_size: differences kept (default 100).
        line_search_fn: None or ``"strong_wolfe"``.

    Example:
        >>> opt = mg.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); return loss
        >>> opt.step(closure)
    """

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval=None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn=None):  # fmt: skip
        if lr < 0.0:
            raise ValueError(f"LBFGS: invalid learning rate {lr}; it must be >= 0")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")  # fmt: skip
        max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)  # fmt: skip
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self):
        xp = backend.array_module(self._params[0]._data)
        # NOTE: a sparse gradient (an embedding's) takes part in its dense form, as in PyTorch
        parts = [(p.grad._dense_array() if p.grad.is_sparse else p.grad._data).reshape(-1)
                 if p.grad is not None else xp.zeros(p.numel(), p._data.dtype)
                 for p in self._params]  # fmt: skip
        return xp.concatenate(parts)

    def _add(self, t: float, d) -> None:
        off = 0
        for p in self._params:
            n = p.numel()
            p._data += (t * d[off : off + n]).reshape(p._data.shape).astype(p._data.dtype)
            off += n

    def _evaluate(self, closure, x, t, d):
        self._add(t, d)
        loss = float(closure())
        g = self._flat_grad()
        for p, saved in zip(self._params, x):
            p._data[...] = saved
        return loss, g

    def step(self, closure: Callable | None = None):
        """One L-BFGS step (up to ``max_iter`` iterations); returns the first loss."""
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that returns the loss")
        # NOTE: CuPy runs kernels on the current GPU: make the parameters' current
        with backend.device_scope(self._params[0]._device):
            return self._step(closure)

    def _step(self, closure):  # noqa: C901 - one algorithm
        self._opt_called = True
        grp = _host_hypers(self.param_groups[0])  # NOTE: a 0-d tensor lr read as a float
        lr, max_iter, max_eval = grp["lr"], grp["max_iter"], grp["max_eval"]
        tol_grad, tol_change = grp["tolerance_grad"], grp["tolerance_change"]
        st = self.state[self._params[0]]
        st.setdefault("func_evals", 0)
        st.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        evals = 1
        st["func_evals"] += 1
        g = self._flat_grad()
        xp = backend.array_module(g)
        if float(xp.abs(g).max()) <= tol_grad:
            return orig_loss
        dev = self._params[0]._device

        def here(a):  # NOTE: a state loaded from a file holds host arrays (or tensors)
            if a is None:
                return None
            if isinstance(a, list):
                return [here(v) for v in a]
            a = getattr(a, "_data", a)
            return a if backend.device_of(a) == dev else backend.to_device(a, dev)

        def number(v):  # NOTE: PyTorch's 0-d tensors in the state, read as Python floats
            return float(v.item()) if isinstance(v, Tensor) else v

        d, t = here(st.get("d")), number(st.get("t"))
        dirs, stps = here(st.get("old_dirs")), here(st.get("old_stps"))
        ro = None if st.get("ro") is None else [number(r) for r in st["ro"]]
        h_diag, prev_g, prev_loss = (
            number(st.get("H_diag")),
            here(st.get("prev_flat_grad")),
            number(st.get("prev_loss")),
        )
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            st["n_iter"] += 1
            if st["n_iter"] == 1:
                d, dirs, stps, ro, h_diag = -g, [], [], [], 1
            else:
                y = g - prev_g
                s = d * t
                ys = float(xp.dot(y, s))
                if ys > 1e-10:
                    if len(dirs) == grp["history_size"]:
                        dirs.pop(0), stps.pop(0), ro.pop(0)
                    dirs.append(y), stps.append(s), ro.append(1.0 / ys)
                    h_diag = ys / float(xp.dot(y, y))
                al = [0.0] * len(dirs)
                q = -g
                for i in range(len(dirs) - 1, -1, -1):
                    al[i] = float(xp.dot(stps[i], q)) * ro[i]
                    q = q - al[i] * dirs[i]
                r = q * h_diag
                for i in range(len(dirs)):
                    be = float(xp.dot(dirs[i], r)) * ro[i]
                    r = r + (al[i] - be) * stps[i]
                d = r
                st["al"] = al + [None] * (grp["history_size"] - len(al))
            prev_g = g.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / float(xp.abs(g).sum())) * lr if st["n_iter"] == 1 else lr
            gtd = float(xp.dot(g, d))
            if gtd > -tol_change:
                break
            ls_evals = 0
            if grp["line_search_fn"] is not None:
                x0 = [p._data.copy() for p in self._params]

                def evaluate(x, step, direction):
                    with enable_grad():
                        return self._evaluate(closure, x, step, direction)

                loss, g, t, ls_evals = _strong_wolfe(evaluate, x0, t, d, loss, g, gtd)
                self._add(t, d)
                opt_cond = float(xp.abs(g).max()) <= tol_grad
            else:
                self._add(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    with enable_grad():
                        loss = float(closure())
                    g = self._flat_grad()
                    opt_cond = float(xp.abs(g).max()) <= tol_grad
                    ls_evals = 1
            evals += ls_evals
            st["func_evals"] += ls_evals
            if n_iter == max_iter or evals >= max_eval or opt_cond:
                break
            if float(xp.abs(d * t).max()) <= tol_change or abs(loss - prev_loss) < tol_change:
                break

        def keep(a):  # NOTE: tensors in the state, so that state_dict saves and moves them
            if isinstance(a, list):
                return [keep(v) for v in a]
            return None if a is None else Tensor._wrap(a, dev)

        def scalars(vals):  # NOTE: as PyTorch, 0-d tensors like the parameters (one upload)
            if not vals:
                return []
            arr = backend.to_device(_HOST.asarray(vals, g.dtype), dev)
            return [Tensor._wrap(arr[i, ...], dev) for i in range(len(vals))]

        st.update(d=keep(d), t=t, old_dirs=keep(dirs), old_stps=keep(stps), ro=scalars(ro),
                  H_diag=scalars([h_diag])[0] if dirs else h_diag,
                  prev_flat_grad=keep(prev_g), prev_loss=prev_loss)  # fmt: skip
        if "al" in st:
            vals = scalars([0.0 if a is None else number(a) for a in st["al"]])
            st["al"] = [None if a is None else v for a, v in zip(st["al"], vals)]
        return orig_loss
