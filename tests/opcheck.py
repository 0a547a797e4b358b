"""``check_op``: one call checks an op's forward and gradients against PyTorch (float64
and float32) and against float64 finite differences, on every device of the matrix, for
contiguous and strided (non-contiguous) inputs.

A row of a table:  ``check_op("softmax", [(4, 7)], dim=-1)``.
Inputs: a shape tuple makes a random float tensor that requires grad; a NumPy array or
Python value is passed as it is (indices, masks, scalars). ``domain=(lo, hi)`` sets the
range of random values (e.g. positive inputs for log).
"""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES

torch = pytest.importorskip(
    "torch", reason="PyTorch (CPU build) is the test oracle: pip install torch==2.13.0"
)

TOL = {"float64": (1e-6, 1e-8), "float32": (2e-4, 2e-5)}


def _resolve(name, lib):
    if callable(name):
        return name
    for ns in (lib, lib.nn.functional):
        if hasattr(ns, name):
            return getattr(ns, name)
    return getattr(lib.Tensor, name)


def attr_path(lib, space, name):
    """``lib.<space>.<name>``, ``space`` a dotted path ("" for the top level)."""
    mod = lib
    for part in filter(None, space.split(".")):
        mod = getattr(mod, part)
    return getattr(mod, name)


def as_numpy(r):
    """A result (a tensor, a number, or a tuple/list of them) as NumPy arrays."""
    if isinstance(r, (tuple, list)):
        return [as_numpy(v) for v in r]
    return np.asarray(r.tolist() if hasattr(r, "tolist") else r)


def keyword_call_both(space, name, arrays: dict, kw: dict):
    """``<space>.<name>(**arrays, **kw)`` on manygrad and on PyTorch, arrays passed as
    tensors by keyword: the two results as NumPy (``as_numpy``)."""
    import torch

    got = attr_path(mg, space, name)(**{k: mg.tensor(v) for k, v in arrays.items()}, **kw)
    want = attr_path(torch, space, name)(**{k: torch.tensor(v) for k, v in arrays.items()}, **kw)
    return as_numpy(got), as_numpy(want)


def _strided(a: np.ndarray, device: str):
    """The same values as a non-contiguous tensor: every other element of a wider array."""
    if a.ndim == 0 or a.size == 0:
        return mg.tensor(a, device=device)
    wide = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    wide[..., ::2] = a
    w = mg.tensor(wide, device=device)
    return mg.Tensor._wrap(w._data[..., ::2], w.device)


def _flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for o in out]
    return [out]


def _to_np(t):
    if isinstance(t, torch.Tensor):
        t = t.detach()
        if t._is_zerotensor():  # NOTE: PyTorch's symbolic zeros (e.g. d2|x|/dx2)
            return np.zeros(tuple(t.shape), "float64" if t.dtype == torch.float64 else "float32")
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.numpy()
    return t.detach().cpu().numpy()


def _make_inputs(specs, rng, domain):
    arrays = []
    for s in specs:
        if isinstance(s, tuple):
            lo, hi = domain
            arrays.append(("grad", rng.uniform(lo, hi, size=s)))
        elif isinstance(s, np.ndarray):
            arrays.append(("const", s))
        else:
            arrays.append(("value", s))
    return arrays


def _build(arrays, lib, dtype, device, strided):
    out = []
    for kind, a in arrays:
        if kind == "value":
            out.append(a)
            continue
        arr = np.asarray(a, dtype=dtype) if kind == "grad" else a
        if lib == "torch":
            t = torch.from_numpy(np.array(arr))
        elif strided and kind == "grad":
            t = _strided(arr, device)
        else:
            t = mg.tensor(arr, device=device)
        if kind == "grad":
            t.requires_grad_(True)
        out.append(t)
    return out


def check_op(name, specs, *, torch_fn=None, kwargs_torch=None, domain=(-2.0, 2.0),
             dtypes=("float64", "float32"), grad=True, fd=True, rtol=None, atol=None,
             seed=0, devices=None, double=True, **kwargs):  # fmt: skip
    """Compare manygrad's ``name`` with PyTorch's on every device; see the module docstring.

    ``double``: also compare second derivatives (float64) where PyTorch has them."""
    mg_fn = _resolve(name, mg)
    t_fn = torch_fn or _resolve(name, torch)
    kwargs_torch = kwargs if kwargs_torch is None else kwargs_torch
    rng = np.random.default_rng(seed)
    arrays = _make_inputs(specs, rng, domain)
    for dtype in dtypes:
        r, a = TOL[dtype]
        r, a = rtol or r, atol or a
        # the oracle, once per dtype, on the CPU
        t_in = _build(arrays, "torch", dtype, "cpu", False)
        t_out = _flat_outputs(t_fn(*t_in, **kwargs_torch))
        ups = [rng.standard_normal(tuple(o.shape)).astype(dtype) if o.is_floating_point()
               else None for o in t_out]  # fmt: skip
        t_grads = None
        if grad and any(o.requires_grad for o in t_out):
            pairs = [(o, torch.from_numpy(u)) for o, u in zip(t_out, ups) if o.requires_grad]
            torch.autograd.backward([p[0] for p in pairs], [p[1] for p in pairs])
            t_grads = [t.grad for t in t_in if isinstance(t, torch.Tensor) and t.requires_grad]
        for device in devices or DEVICES:
            for strided in (False, True):
                where = f"{name} [{dtype}, {device}{', strided' if strided else ''}]"
                m_in = _build(arrays, "mg", dtype, device, strided)
                m_out = _flat_outputs(mg_fn(*m_in, **kwargs))
                assert len(m_out) == len(t_out), (
                    f"{where}: {len(m_out)} outputs, torch {len(t_out)}"
                )
                for mo, to in zip(m_out, t_out):
                    assert str(mo.device).split(":")[0] == device.split(":")[0], (
                        f"{where}: output on {mo.device}")  # fmt: skip
                    assert tuple(mo.shape) == tuple(to.shape), (
                        f"{where}: shape {tuple(mo.shape)} != torch {tuple(to.shape)}")  # fmt: skip
                    tn = _to_np(to)
                    mn = _to_np(mo)
                    assert mn.dtype == tn.dtype, f"{where}: dtype {mn.dtype} != torch {tn.dtype}"
                    np.testing.assert_allclose(mn, tn, rtol=r, atol=a, err_msg=f"{where}: forward")
                if t_grads is not None:
                    outs = [(o, mg.tensor(u, device=device)) for o, u, to in zip(m_out, ups, t_out)
                            if to.requires_grad]  # fmt: skip
                    mg.autograd.backward([o for o, _ in outs], [u for _, u in outs])
                    m_grads = [t.grad for t in m_in if isinstance(t, mg.Tensor) and t.requires_grad]
                    for i, (mgd, tgd) in enumerate(zip(m_grads, t_grads)):
                        if tgd is None:
                            assert mgd is None or not np.any(_to_np(mgd)), f"{where}: grad {i}"
                            continue
                        assert mgd is not None, f"{where}: input {i} got no gradient"
                        np.testing.assert_allclose(_to_np(mgd), _to_np(tgd), rtol=r, atol=a,
                                                   err_msg=f"{where}: grad of input {i}")  # fmt: skip
    if grad and fd:
        check_finite_differences(mg_fn, arrays, kwargs, seed)
    if grad and double:
        check_double_backward(name, mg_fn, t_fn, arrays, kwargs, kwargs_torch, seed, devices)


def _second(lib, fn, ins, kwargs, ups, ws):
    """First gradients with create_graph, then the gradient of sum(first * w)."""
    outs = _flat_outputs(fn(*ins, **kwargs))
    req = [t for t in ins if isinstance(t, lib.Tensor) and t.requires_grad]
    pairs = [(o, u) for o, u in zip(outs, ups) if u is not None and o.requires_grad]
    if not pairs:
        return None
    first = lib.autograd.grad([o for o, _ in pairs], req, [u for _, u in pairs],
                              create_graph=True, allow_unused=True)  # fmt: skip
    terms = [(f * w).sum() for f, w in zip(first, ws) if f is not None and f.requires_grad]
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return lib.autograd.grad(total, req, allow_unused=True)


def check_double_backward(name, mg_fn, t_fn, arrays, kwargs, kwargs_torch, seed, devices):
    """Second derivatives against PyTorch's (float64), where PyTorch gives them."""
    rng = np.random.default_rng(seed + 2)
    t_in = _build(arrays, "torch", "float64", "cpu", False)
    t_out = _flat_outputs(t_fn(*t_in, **kwargs_torch))
    ups = [rng.standard_normal(tuple(o.shape)) if o.is_floating_point() and o.requires_grad
           else None for o in t_out]  # fmt: skip
    req = [t for t in t_in if isinstance(t, torch.Tensor) and t.requires_grad]
    ws = [rng.standard_normal(tuple(t.shape)) for t in req]
    try:
        want = _second(torch, t_fn, t_in, kwargs_torch,
                       [None if u is None else torch.from_numpy(u) for u in ups],
                       [torch.from_numpy(w) for w in ws])  # fmt: skip
    except RuntimeError:
        return  # PyTorch does not differentiate this op twice
    if want is None:
        return
    for device in [d for d in (devices or DEVICES) if d != "fakegpu:1"]:
        m_in = _build(arrays, "mg", "float64", device, False)
        got = _second(mg, mg_fn, m_in, kwargs,
                      [None if u is None else mg.tensor(u, device=device) for u in ups],
                      [mg.tensor(w, device=device) for w in ws])  # fmt: skip
        got = got or [None] * len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            where = f"{name} [double backward, {device}]: second derivative of input {i}"
            wn = np.zeros(1) if w is None else _to_np(w)
            gn = np.zeros(1) if g is None else _to_np(g)
            if w is None or g is None:
                assert not np.any(gn) and not np.any(wn), where
                continue
            np.testing.assert_allclose(gn, wn, rtol=1e-6, atol=1e-8, err_msg=where)


def check_finite_differences(fn, arrays, kwargs, seed=0, eps=1e-6, rtol=1e-5, atol=1e-6):
    """Gradients in float64 against central differences of sum(out * u)."""
    rng = np.random.default_rng(seed + 1)
    ins = _build(arrays, "mg", "float64", "cpu", False)
    outs = _flat_outputs(fn(*ins, **kwargs))
    ups = [rng.standard_normal(tuple(o.shape)) if o.requires_grad else None for o in outs]
    if not any(u is not None for u in ups):
        return
    live = [(o, mg.tensor(u)) for o, u in zip(outs, ups) if u is not None]
    mg.autograd.backward([o for o, _ in live], [u for _, u in live])

    def f():
        with mg.no_grad():
            os_ = _flat_outputs(fn(*ins, **kwargs))
            return sum(
                float((o.detach().numpy() * u).sum()) for o, u in zip(os_, ups) if u is not None
            )

    for i, t in enumerate(ins):
        if not (isinstance(t, mg.Tensor) and t.requires_grad):
            continue
        data = t._data
        if data.size > 300:  # keep the check quick; sample positions
            idx = rng.choice(data.size, 300, replace=False)
        else:
            idx = range(data.size)
        num = np.zeros(data.size)
        flat = data.reshape(-1)
        for j in idx:
            old = flat[j]
            flat[j] = old + eps
            fp = f()
            flat[j] = old - eps
            fm = f()
            flat[j] = old
            num[j] = (fp - fm) / (2 * eps)
        ana = np.zeros(data.size) if t.grad is None else t.grad.numpy().reshape(-1)
        sel = np.fromiter(idx, int)
        np.testing.assert_allclose(ana[sel], num[sel], rtol=rtol, atol=atol,
                                   err_msg=f"finite differences: input {i}")  # fmt: skip
