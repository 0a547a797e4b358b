"""Tensor methods that forward to the new ops, and the new_* constructors, as in PyTorch."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_new_constructors(device):
    x = mg.ones(2, dtype=mg.float64, device=device)
    t = torch.ones(2, dtype=torch.float64)
    for name, args in [("new_zeros", (2, 3)), ("new_ones", ((3,),)), ("new_empty", (4,)),
                       ("new_full", ((2, 2), 7.0)), ("new_tensor", ([1, 2],))]:  # fmt: skip
        got, want = getattr(x, name)(*args), getattr(t, name)(*args)
        assert tuple(got.shape) == tuple(want.shape), name
        assert got.dtype == mg.float64 and str(got.device).startswith(device), name
        if name != "new_empty":
            np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    y = x.new_zeros(2, dtype=mg.int32, requires_grad=False)
    assert y.dtype == mg.int32
    z = x.new_ones((2,), requires_grad=True)
    assert z.requires_grad and z.is_leaf
    c = x.new_tensor(mg.tensor([5.0, 6.0]))
    assert c.tolist() == [5.0, 6.0] and not c.requires_grad


CASES = [
    ("sort", ()),
    ("argsort", ()),
    ("topk", (2,)),
    ("kthvalue", (2,)),
    ("median", ()),
    ("cumprod", (1,)),
    ("cummax", (0,)),
    ("logcumsumexp", (1,)),
    ("diagonal", ()),
    ("diff", ()),
    ("tile", ((2,),)),
    ("fliplr", ()),
    ("rot90", ()),
    ("floor", ()),
    ("round", ()),
    ("tan", ()),
    ("atan2", "x"),
    ("erf", ()),
    ("lgamma", ()),
    ("log2", ()),
    ("hypot", "x"),
    ("lerp", ("x", 0.5)),
    ("addcmul", ("x", "x")),
    ("clamp_min", (0.0,)),
    ("nan_to_num", ()),
    ("trace", ()),
    ("det", ()),
    ("inverse", ()),
    ("outer", None),
    ("unbind", ()),
    ("aminmax", ()),
    ("nansum", ()),
    ("index_fill", (0, [1], 2.0)),
    ("masked_select", ("mask",)),
    ("take", ([0, 3],)),
    ("isclose", "x"),
    ("copysign", "x"),
    ("fmax", "x"),
    ("logit", (0.1,)),
    ("select", (0, 1)),
    ("tensor_split", (2,)),
    ("ravel", ()),
    ("adjoint", ()),
    ("matrix_exp", ()),
    ("renorm", (2, 0, 1.0)),
    ("cov", ()),
    ("rad2deg", ()),
    ("polygamma", (1,)),
    ("slice_scatter", ("x",)),
    ("diagonal_scatter", ("d",)),
]


@pytest.mark.parametrize("name,args", CASES, ids=[c[0] for c in CASES])
def test_method_matches_function_and_torch(name, args):
    a = np.random.default_rng(0).uniform(0.5, 2.0, (3, 3))
    x, t = mg.tensor(a), torch.tensor(a)
    if name == "outer":
        x, t, args = x[0], t[0], "x"
    if args == "x":
        margs, targs = (x,), (t,)
    else:
        conv = {"x": (x, t), "mask": (x > 1, t > 1), "d": (x[0], t[0])}
        margs = tuple(conv[v][0] if isinstance(v, str) else v for v in args)
        targs = tuple(
            conv[v][1] if isinstance(v, str) else (torch.tensor(v) if isinstance(v, list) else v)
            for v in args
        )
        margs = tuple(mg.tensor(v) if isinstance(v, list) else v for v in margs)
    got = getattr(x, name)(*margs)
    fn = mg.polygamma(1, x) if name == "polygamma" else getattr(mg, name)(x, *margs)
    want = getattr(t, name)(*targs)
    got = got if isinstance(got, tuple) else (got,)
    fn = fn if isinstance(fn, tuple) else (fn,)
    want = want if isinstance(want, tuple) else (want,)
    for g, f, w in zip(got, fn, want):
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-8)  # NOTE: torch trigamma ~1e-9
        np.testing.assert_array_equal(g.numpy(), f.numpy())
