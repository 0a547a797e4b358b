"""Shape ops: one row per case against PyTorch and finite differences, then errors."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import DeviceError, ShapeError
from opcheck import check_op

torch = pytest.importorskip("torch")


def meth(name):
    """Call the method ``name`` (manygrad and PyTorch tensors share these names)."""
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def seq(name, lib=None):
    """``lib.name(list_of_tensors, **kw)`` from tensors passed one by one."""

    def fn(*ts, **kw):
        mod = lib or (mg if isinstance(ts[0], mg.Tensor) else torch)
        return getattr(mod, name)(list(ts), **kw)

    return fn


# (label, manygrad function or name, specs, options); options may hold torch_fn
ROWS = [
    ("reshape", "reshape", [(3, 4), 2, 6], {"torch_fn": meth("reshape")}),
    ("reshape-1", "reshape", [(2, 3, 4), 4, -1], {"torch_fn": meth("reshape")}),
    (
        "reshape-tuple",
        lambda x: mg.reshape(x, (6, 2)),
        [(3, 4)],
        {"torch_fn": lambda x: x.reshape(6, 2)},
    ),
    ("reshape-empty", "reshape", [(0, 3), 3, 0], {"torch_fn": meth("reshape")}),
    ("reshape-0d", "reshape", [(), 1, 1], {"torch_fn": meth("reshape")}),
    ("reshape-to-0d", meth("reshape"), [(1, 1)], {"torch_fn": lambda x: x.reshape(())}),
    ("view", "view", [(3, 4), -1], {"torch_fn": meth("view")}),
    ("view-2", "view", [(2, 6), 3, 2, 2], {"torch_fn": meth("view")}),
    ("view_as", "view_as", [(3, 4), (2, 6)], {"torch_fn": meth("view_as")}),
    ("reshape_as", "reshape_as", [(3, 4), (6, 2)], {"torch_fn": meth("reshape_as")}),
    ("transpose", "transpose", [(2, 3, 4), 0, 2], {}),
    ("transpose-neg", "transpose", [(3, 4), -1, -2], {}),
    ("transpose-0d", "transpose", [(), 0, -1], {}),
    ("t", "t", [(3, 4)], {}),
    ("t-1d", "t", [(4,)], {}),
    ("t-0d", "t", [()], {}),
    ("permute", "permute", [(2, 3, 4), 2, 0, 1], {"torch_fn": meth("permute")}),
    ("permute-tuple", lambda x: x.permute((1, -1, 0)), [(2, 3, 4)], {}),
    ("permute-empty", "permute", [(2, 0, 3), 1, 2, 0], {"torch_fn": meth("permute")}),
    ("movedim", "movedim", [(2, 3, 4), 0, -1], {}),
    ("movedim-0d", "movedim", [()], {"source": 0, "destination": -1}),
    ("movedim-tuple", "movedim", [(2, 3, 4, 5)], {"source": (0, 1), "destination": (3, 0)}),
    ("expand", "expand", [(3, 1), 2, 3, 4], {"torch_fn": meth("expand")}),
    ("expand-keep", "expand", [(3, 1), -1, 5], {"torch_fn": meth("expand")}),
    ("expand-0d", "expand", [(), 3, 2], {"torch_fn": meth("expand")}),
    ("expand-empty", "expand", [(1, 0), 4, 0], {"torch_fn": meth("expand")}),
    ("expand_as", "expand_as", [(3, 1), (2, 3, 4)], {"torch_fn": meth("expand_as")}),
    ("squeeze", "squeeze", [(2, 1, 3, 1)], {}),
    ("squeeze-dim", "squeeze", [(2, 1, 3, 1)], {"dim": 1}),
    ("squeeze-tuple", "squeeze", [(2, 1, 3, 1)], {"dim": (1, -1)}),
    ("squeeze-noop", "squeeze", [(2, 1, 3)], {"dim": 0}),
    ("squeeze-0d", "squeeze", [()], {"dim": 0}),
    ("unsqueeze", "unsqueeze", [(2, 3)], {"dim": 0}),
    ("unsqueeze-end", "unsqueeze", [(2, 3)], {"dim": -1}),
    ("unsqueeze-mid", "unsqueeze", [(2, 3)], {"dim": 1}),
    ("unsqueeze-0d", "unsqueeze", [()], {"dim": 0}),
    ("flatten", "flatten", [(2, 3, 4)], {}),
    ("flatten-1", "flatten", [(2, 3, 4)], {"start_dim": 1}),
    ("flatten-mid", "flatten", [(2, 3, 4, 5)], {"start_dim": 1, "end_dim": 2}),
    ("flatten-empty", "flatten", [(2, 0, 3)], {"start_dim": 1}),
    ("flatten-0d", "flatten", [()], {}),
    ("unflatten", "unflatten", [(2, 12)], {"dim": 1, "sizes": (3, 4)}),
    ("unflatten-1", "unflatten", [(12, 2)], {"dim": 0, "sizes": (-1, 2, 3)}),
    ("cat", seq("cat"), [(2, 3), (4, 3)], {}),
    ("cat-dim1", seq("cat"), [(2, 3), (2, 5), (2, 1)], {"dim": 1}),
    ("cat-neg", seq("cat"), [(2, 3, 2), (2, 3, 4)], {"dim": -1}),
    ("cat-empty", seq("cat"), [(2, 3), (2, 0)], {"dim": 1}),
    ("cat-legacy-empty", seq("cat"), [(2, 3), (0,)], {}),
    ("cat-one", seq("cat"), [(2, 3)], {}),
    ("concat", seq("concat"), [(2, 3), (1, 3)], {}),
    ("concatenate", seq("concatenate"), [(2, 3), (2, 2)], {"dim": 1}),
    ("stack", seq("stack"), [(2, 3), (2, 3)], {}),
    ("stack-end", seq("stack"), [(2, 3), (2, 3), (2, 3)], {"dim": -1}),
    ("stack-mid", seq("stack"), [(2, 3), (2, 3)], {"dim": 1}),
    ("stack-0d", seq("stack"), [(), ()], {}),
    ("split", "split", [(5, 4), 2], {}),
    ("split-sizes", "split", [(5, 4), [2, 3]], {}),
    ("split-dim", "split", [(3, 7), 3], {"dim": 1}),
    ("split-empty", "split", [(0, 3), 2], {}),
    ("chunk", "chunk", [(6, 4), 4], {}),
    ("chunk-dim", "chunk", [(5, 3), 2], {"dim": -1}),
    ("chunk-empty", "chunk", [(0, 3), 2], {}),
    ("narrow", "narrow", [(5, 4), 0, 1, 3], {}),
    ("narrow-neg", "narrow", [(5, 4), -1, -3, 2], {}),
    ("narrow-empty", "narrow", [(5, 4), 1, 2, 0], {}),
    ("pad", "pad", [(2, 3)], {"pad": (1, 2)}),
    ("pad-2d", "pad", [(2, 3, 4)], {"pad": (1, 1, 2, 0), "value": 1.5}),
    ("pad-crop", "pad", [(3, 4)], {"pad": (-1, 2, 1, -2)}),
    ("pad-0d", "pad", [()], {"pad": ()}),
    ("pad-empty", "pad", [(0, 3)], {"pad": (1, 1)}),
    ("pad-reflect", "pad", [(2, 3, 5)], {"pad": (2, 1), "mode": "reflect"}),
    ("pad-reflect-2d", "pad", [(1, 2, 4, 5)], {"pad": (1, 2, 3, 1), "mode": "reflect"}),
    ("pad-replicate", "pad", [(2, 3, 4)], {"pad": (2, 3), "mode": "replicate"}),
    (
        "pad-replicate-3d",
        "pad",
        [(1, 2, 2, 3, 2)],
        {"pad": (1, 0, 2, 1, 0, 3), "mode": "replicate"},
    ),
    ("pad-circular", "pad", [(2, 3, 5)], {"pad": (2, 5), "mode": "circular"}),
    ("pad-circular-2d", "pad", [(1, 2, 3, 4)], {"pad": (1, 1, 3, 0), "mode": "circular"}),
    ("flip", "flip", [(2, 3, 4)], {"dims": (0, 2)}),
    ("flip-neg", "flip", [(2, 3)], {"dims": (-1,)}),
    ("flip-0d", "flip", [()], {"dims": (0,)}),
    ("flip-empty", "flip", [(0, 3)], {"dims": (0, 1)}),
    ("tril", "tril", [(4, 5)], {}),
    ("tril-k", "tril", [(2, 4, 3)], {"diagonal": -1}),
    ("triu", "triu", [(4, 5)], {}),
    ("triu-k", "triu", [(2, 3, 3)], {"diagonal": 1}),
    ("tril-empty", "tril", [(0, 3)], {}),
    ("repeat", "repeat", [(2, 3), 2, 2], {"torch_fn": meth("repeat")}),
    ("repeat-lead", "repeat", [(2, 3), 3, 1, 2], {"torch_fn": meth("repeat")}),
    ("repeat-0d", "repeat", [(), 3], {"torch_fn": meth("repeat")}),
    ("repeat-zero", "repeat", [(2, 3), 0, 2], {"torch_fn": meth("repeat")}),
    ("roll", "roll", [(3, 4)], {"shifts": 5}),
    ("roll-dims", "roll", [(3, 4)], {"shifts": (1, -2), "dims": (0, 1)}),
    ("roll-dim", "roll", [(3, 4)], {"shifts": 2, "dims": 1}),
    ("roll-0d", "roll", [()], {"shifts": 2}),
    ("roll-empty", "roll", [(0, 4)], {"shifts": 1, "dims": 1}),
]


@pytest.mark.parametrize("label,fn,specs,opts", ROWS, ids=[r[0] for r in ROWS])
def test_movement_op(label, fn, specs, opts):
    opts = dict(opts)
    torch_fn = opts.pop("torch_fn", None)
    if torch_fn is None and callable(fn):
        torch_fn = fn
    check_op(fn, specs, torch_fn=torch_fn, **opts)


def test_tensor_methods_match_functions(device):
    x = mg.arange(24.0, device=device).reshape(2, 3, 4)
    assert x.view(6, 4).shape == (6, 4)
    assert x.permute(2, 0, 1).shape == (4, 2, 3)
    assert x.transpose(0, 1).shape == (3, 2, 4)
    assert x.flatten(1).shape == (2, 12)
    assert x.unsqueeze(1).squeeze(1).shape == (2, 3, 4)
    assert [p.shape for p in x.chunk(2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    np.testing.assert_array_equal(
        mg.cat([x, x], 1).cpu().numpy(), np.concatenate([x.cpu().numpy()] * 2, 1)
    )


def test_cat_promotes_dtypes(device):
    a = mg.ones(2, dtype=mg.int64, device=device)
    b = mg.ones(3, dtype=mg.float32, device=device)
    out = mg.cat([a, b])
    assert out.dtype is mg.float32 and out.shape == (5,)


def test_reshape_shares_no_graph_state_between_calls(device):
    x = mg.randn(3, 4, device=device, requires_grad=True)
    y = x.reshape(4, 3)
    (y * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), np.full((3, 4), 2.0))


def _raises(exc, *parts):
    return pytest.raises(exc, match=".*".join(map(str, parts)))


def test_shape_errors_name_op_and_shapes():
    x = mg.zeros(3, 4)
    with _raises(ShapeError, "reshape", r"\[2, 5\]", "12"):
        x.reshape(2, 5)
    with _raises(ShapeError, "view", r"\[7\]", "12"):
        x.view(7)
    with _raises(ShapeError, "only one dim may be -1"):
        x.view(-1, -1)
    with _raises(ShapeError, "cat", "dim 1", r"\(2, 3\)", r"\(3, 4\)"):
        mg.cat([mg.zeros(2, 3), mg.zeros(3, 4)], dim=1)
    with _raises(ShapeError, "cat", "zero-dimensional"):
        mg.cat([mg.zeros(()), mg.zeros(())])
    with _raises(ShapeError, "stack", r"\(2, 3\)", r"\(2, 4\)", "entry 1"):
        mg.stack([mg.zeros(2, 3), mg.zeros(2, 4)])
    with _raises(ShapeError, "expand", r"\(3, 4\)", r"\[3, 5\]"):
        x.expand(3, 5)
    with _raises(ShapeError, "expand", "at least 2"):
        x.expand(4)
    with _raises(ShapeError, "split", r"\[2, 2\]", r"\(3, 4\)"):
        x.split([2, 2])
    with _raises(ShapeError, "t:", r"\(2, 3, 4\)"):
        mg.zeros(2, 3, 4).t()
    with _raises(ShapeError, "permute", r"\(3, 4\)"):
        x.permute(0, 1, 2)
    with _raises(ShapeError, "permute", "repeat"):
        x.permute(0, 0)
    with _raises(ShapeError, "narrow", "exceeds"):
        x.narrow(1, 2, 3)
    with _raises(ShapeError, "unflatten", r"\[2, 3\]", "4"):
        x.unflatten(1, (2, 3))
    with _raises(ShapeError, "repeat", r"\(3, 4\)"):
        x.repeat(2)
    with _raises(ShapeError, "tril", r"\(3,\)"):
        mg.zeros(3).tril()
    with _raises(ShapeError, "split", "0-d"):
        mg.zeros(()).split(1)
    with _raises(ShapeError, "roll", "same length"):
        x.roll((1, 2), dims=0)


def test_dim_out_of_range_gives_valid_range():
    x = mg.zeros(2, 3, 4)
    with _raises(IndexError, "transpose", "dim 5", "-3 <= dim <= 2"):
        x.transpose(0, 5)
    with _raises(ShapeError, "unsqueeze", "dim 4", "-4 <= dim <= 3"):
        x.unsqueeze(4)
    with _raises(ShapeError, "cat", "dim 2", "-2 <= dim <= 1"):
        mg.cat([mg.zeros(2, 3)], dim=2)
    with _raises(ShapeError, "squeeze", "dim -4"):
        x.squeeze(-4)
    with _raises(ShapeError, "flatten", "start_dim"):
        x.flatten(2, 1)


def test_pad_errors():
    x = mg.zeros(2, 3)
    with _raises(ShapeError, "pad", "even length"):
        mg.pad(x, (1, 2, 3))
    with _raises(ShapeError, "pad", "at most 4"):
        mg.pad(x, (1, 1, 1, 1, 1, 1))
    with _raises(ShapeError, "pad", "reflect", "at most 2"):
        mg.pad(mg.zeros(1, 2, 3), (3, 0), mode="reflect")
    with _raises(ShapeError, "pad", "replicate", "crops too much"):  # PyTorch refuses too
        mg.pad(mg.zeros(1, 2, 3), (-3, 0), mode="replicate")
    with _raises(ValueError, "pad", "mode"):
        mg.pad(x, (1, 1), mode="mirror")


def test_cat_across_devices_is_rejected():
    with pytest.raises(DeviceError, match="cat.*cpu.*fakegpu|cat.*fakegpu.*cpu"):
        mg.cat([mg.zeros(2), mg.zeros(2, device="fakegpu")])


def test_shape_ops_make_no_host_syncs_on_fakegpu():
    x = mg.randn(4, 6, device="fakegpu", requires_grad=True)
    mg.backend.fake_stats.reset()
    parts = x.reshape(2, 12).t().chunk(3)
    y = mg.cat([mg.pad(p, (1, 1), mode="reflect") for p in parts]).flip((0,)).roll(1, 0)
    mg.stack([y, y]).expand(3, -1, -1, -1).repeat(1, 1, 2, 1).tril().sum().backward()
    assert mg.backend.fake_stats.syncs == 0
    assert x.grad.shape == (4, 6)
