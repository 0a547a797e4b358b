"""``torch._foreach_*``: the multi-tensor ops, compared with PyTorch on every device."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.compat import torch_foreach
from manygrad.errors import ShapeError

torch = pytest.importorskip("torch")


def R(*s, seed=0):  # noqa: N802
    return np.random.RandomState(seed + sum(s)).randn(*s).astype(np.float32)


A = [R(3), R(2, 4), R(1)]
B = [R(3, seed=1), R(2, 4, seed=1), R(1, seed=1)]
C = [np.abs(R(3, seed=2)) + 0.5, np.abs(R(2, 4, seed=2)) + 0.5, np.abs(R(1, seed=2)) + 0.5]
POS = [np.abs(a) + 0.1 for a in A]
UNIT = [np.tanh(a) * 0.9 for a in A]  # inside (-1, 1) for acos/asin

# name -> (first list, call with lib and a list maker mk)
CASES = {
    "add_scalar": (A, lambda lib, mk, s: lib._foreach_add(s, 1.5)),
    "add_scalarlist": (A, lambda lib, mk, s: lib._foreach_add(s, [1.0, -2.0, 0.5])),
    "add_list_alpha": (A, lambda lib, mk, s: lib._foreach_add(s, mk(B), alpha=-0.5)),
    "add_tensor": (A, lambda lib, mk, s: lib._foreach_add(s, mk([np.float32(2.0)])[0], alpha=3)),
    "sub_list": (A, lambda lib, mk, s: lib._foreach_sub(s, mk(B), alpha=2)),
    "mul_scalar": (A, lambda lib, mk, s: lib._foreach_mul(s, 0.9)),
    "mul_list": (A, lambda lib, mk, s: lib._foreach_mul(s, mk(B))),
    "mul_tensor": (A, lambda lib, mk, s: lib._foreach_mul(s, mk([np.float32(0.25)])[0])),
    "div_scalarlist": (A, lambda lib, mk, s: lib._foreach_div(s, [2.0, 4.0, -1.0])),
    "div_list": (A, lambda lib, mk, s: lib._foreach_div(s, mk(C))),
    "maximum_list": (A, lambda lib, mk, s: lib._foreach_maximum(s, mk(B))),
    "maximum_scalar": (A, lambda lib, mk, s: lib._foreach_maximum(s, 0.1)),
    "minimum_scalarlist": (A, lambda lib, mk, s: lib._foreach_minimum(s, [0.0, 0.5, -1.0])),
    "clamp_min_list": (A, lambda lib, mk, s: lib._foreach_clamp_min(s, mk(B))),
    "clamp_max_scalar": (A, lambda lib, mk, s: lib._foreach_clamp_max(s, 0.2)),
    "pow_scalar": (POS, lambda lib, mk, s: lib._foreach_pow(s, 1.5)),
    "pow_list": (POS, lambda lib, mk, s: lib._foreach_pow(s, mk(B))),
    "pow_number_base": (A, lambda lib, mk, s: lib._foreach_pow(2.0, s)),
    "lerp_scalar": (A, lambda lib, mk, s: lib._foreach_lerp(s, mk(B), 0.3)),
    "lerp_list": (A, lambda lib, mk, s: lib._foreach_lerp(s, mk(B), mk(UNIT))),
    "lerp_scalarlist": (A, lambda lib, mk, s: lib._foreach_lerp(s, mk(B), [0.1, 0.5, 0.9])),
    "addcmul": (A, lambda lib, mk, s: lib._foreach_addcmul(s, mk(B), mk(C), value=-0.5)),
    "addcmul_scalarlist": (A, lambda lib, mk, s: lib._foreach_addcmul(s, mk(B), mk(C), [1, 2, 3])),
    "addcdiv": (A, lambda lib, mk, s: lib._foreach_addcdiv(s, mk(B), mk(C), value=0.1)),
    "addcdiv_tensor": (
        A,
        lambda lib, mk, s: lib._foreach_addcdiv(s, mk(B), mk(C), lib.tensor([0.5, 1.0, 2.0])),
    ),
    "norm": (A, lambda lib, mk, s: lib._foreach_norm(s)),
    "norm_inf": (A, lambda lib, mk, s: lib._foreach_norm(s, float("inf"))),
    "norm_1_float64": (A, lambda lib, mk, s: lib._foreach_norm(s, 1, dtype=lib.float64)),
    "powsum": (A, lambda lib, mk, s: lib._foreach_powsum(s, 3)),
    "max": (A, lambda lib, mk, s: lib._foreach_max(s)),
    "clone": (A, lambda lib, mk, s: lib._foreach_clone(s)),
    "mm": ([R(2, 3), R(4, 2)], lambda lib, mk, s: lib._foreach_mm(s, mk([R(3, 5), R(2, 2)]))),
}
for _op in torch_foreach._UNARY:
    _src = {"acos": UNIT, "asin": UNIT, "log": POS, "log10": POS, "log2": POS, "sqrt": POS,
            "rsqrt": POS, "lgamma": POS, "log1p": POS, "reciprocal": C}.get(_op, A)  # fmt: skip
    CASES[_op] = (_src, lambda lib, mk, s, _op=_op: getattr(lib, f"_foreach_{_op}")(s))


def _outputs(device, case, lib):
    first, fn = CASES[case]
    if lib is torch:
        mk = lambda arrays: [torch.tensor(a) for a in arrays]
    else:
        mk = lambda arrays: [mg.tensor(a, device=device) for a in arrays]
    return fn(lib, mk, mk(first))


@pytest.mark.parametrize("case", list(CASES))
def test_out_of_place_matches_torch(device, case):
    want = _outputs(device, case, torch)
    got = _outputs(device, case, mg)
    assert isinstance(got, tuple) and len(got) == len(want)
    for g, w in zip(got, want):
        assert g.device == mg.device(device)
        assert g.dtype.name == str(w.dtype)[6:]
        np.testing.assert_allclose(g.cpu().numpy(), w.numpy(), rtol=1e-5, atol=1e-6)


def _has_in_place_form(case):
    ops = [
        n[len("_foreach_") : -1] for n in dir(torch) if n.startswith("_foreach_") and n[-1] == "_"
    ]
    return case != "pow_number_base" and any(case == op or case.startswith(op + "_") for op in ops)


@pytest.mark.parametrize("case", [c for c in CASES if _has_in_place_form(c)])
def test_in_place_matches_torch_and_returns_its_list(device, case):
    first, fn = CASES[case]
    for lib in (torch, mg):
        if lib is torch:
            mk = lambda arrays: [torch.tensor(a) for a in arrays]
        else:
            mk = lambda arrays: [mg.tensor(a, device=device) for a in arrays]
        tensors = mk(first)

        def inplace(lib_, mk_, s, fn=fn):
            # the same call with every _foreach_<op> swapped for _foreach_<op>_
            class Swap:
                def __getattr__(self, n):
                    return getattr(lib_, n + "_") if n.startswith("_foreach_") else getattr(lib_, n)

            return fn(Swap(), mk_, s)

        out = inplace(lib, mk, tensors)
        assert out is tensors
        if lib is torch:
            want = [t.numpy() for t in tensors]
    for g, w in zip(tensors, want):
        np.testing.assert_allclose(g.cpu().numpy(), w, rtol=1e-5, atol=1e-6)


def test_ema_update_as_timm_writes_it(device):
    """ModelEmaV3's step: lerp the floating state, copy the rest; zero_ and copy_ too."""
    for lib in (torch, mg):
        kw = {} if lib is torch else {"device": device}
        ema = [lib.tensor(a, **kw) for a in A]
        model = [lib.tensor(b, **kw) for b in B]
        counts = [lib.tensor([3], **kw)]
        lib._foreach_lerp_(ema, model, weight=1.0 - 0.9)
        lib._foreach_mul_(ema, 0.5)
        lib._foreach_add_(ema, model, alpha=0.25)
        lib._foreach_copy_(counts, [lib.tensor([7], **kw)])
        grads = [lib.tensor(c, **kw) for c in C]
        lib._foreach_zero_(grads)
        if lib is torch:
            want = [t.numpy() for t in ema]
    np.testing.assert_allclose(np.concatenate([e.cpu().numpy().ravel() for e in ema]),
                               np.concatenate([w.ravel() for w in want]), rtol=1e-6)  # fmt: skip
    assert counts[0].tolist() == [7] and all(not g.cpu().numpy().any() for g in grads)


def test_out_of_place_is_differentiable():
    xs = [torch.tensor(a, requires_grad=True) for a in A]
    ys = [mg.tensor(a, requires_grad=True) for a in A]
    for lib, ts in ((torch, xs), (mg, ys)):
        ends = [lib.tensor(b) for b in B]
        out = lib._foreach_lerp(lib._foreach_mul(ts, 2.0), ends, 0.25)
        sum(o.sin().sum() for o in lib._foreach_addcmul(out, ts, ts, value=0.5)).backward()
    for x, y in zip(xs, ys):
        np.testing.assert_allclose(y.grad.numpy(), x.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_errors_say_what_is_wrong():
    with pytest.raises(ShapeError, match="empty"):
        mg._foreach_add([], 1.0)
    with pytest.raises(ShapeError, match="3 tensors but 2 values"):
        mg._foreach_mul([mg.ones(1)] * 3, [1.0, 2.0])
    with pytest.raises(TypeError, match="list or tuple of Tensors"):
        mg._foreach_neg(mg.ones(3))
    with pytest.raises(TypeError, match="alpha goes with tensors"):
        mg._foreach_sub([mg.ones(1)], 1.0, alpha=2)
    with pytest.raises(RuntimeError):  # as in PyTorch
        torch._foreach_add([], 1.0)
