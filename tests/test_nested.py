"""manygrad.nested against torch.nested: values and component gradients, both layouts.

PyTorch's CPU build runs these ops on the jagged layout only (its strided nested tensors
that require grad refuse most ops on CPU), so both manygrad layouts are compared with
PyTorch's jagged results, which are the same per-component maths.
"""

import numpy as np
import pytest
import torch

import manygrad as mg
import manygrad.nested  # noqa: F401  (wraps F.relu and kin before OPS captures them)
import manygrad.nn.functional as F

LENS = (2, 3, 1)
LAYOUTS = {"jagged": (mg.jagged, torch.jagged), "strided": (mg.strided, torch.jagged)}


def _np(t):
    return (t.detach().cpu() if isinstance(t, mg.Tensor) else t.detach()).numpy()


def _pair(device, layout, trailing=(4,), lens=LENS, seed=0):
    """The same components as manygrad leaves, torch leaves, and nested tensors of both."""
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal((n, *trailing)).astype(np.float32) for n in lens]
    ml = [mg.tensor(d, device=device, requires_grad=True) for d in data]
    tl = [torch.tensor(d, requires_grad=True) for d in data]
    mlay, tlay = LAYOUTS[layout]
    return (
        ml,
        tl,
        mg.nested.as_nested_tensor(ml, layout=mlay),
        torch.nested.as_nested_tensor(tl, layout=tlay),
    )


def _compare(mout, tout, ml, tl, atol=1e-5):
    """Padded outputs equal, and the gradients of one weighted sum equal per component."""
    if isinstance(tout, torch.Tensor) and tout.is_nested:
        mp, tp = mout.to_padded_tensor(0.0), tout.to_padded_tensor(0.0)
    else:
        mp, tp = mout, tout
    np.testing.assert_allclose(_np(mp), _np(tp), atol=atol, rtol=1e-4)
    w = np.random.default_rng(1).standard_normal(tuple(tp.shape)).astype(np.float32)
    (mp * mg.tensor(w, device=mp.device)).sum().backward()
    (tp * torch.tensor(w)).sum().backward()
    for m, t in zip(ml, tl):
        assert (m.grad is None) == (t.grad is None)
        if t.grad is not None:
            np.testing.assert_allclose(_np(m.grad), _np(t.grad), atol=atol, rtol=1e-4)


def _dense(shape, seed=2):
    d = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return d


LIN_W, LIN_B, LN_W, LN_B, BIAS = (
    _dense((5, 4)),
    _dense((5,), 3),
    _dense((4,), 4),
    _dense((4,), 5),
    _dense((4,), 6),
)

# name -> (manygrad op, torch op) on a (B, j, 4) nested tensor
OPS = {
    "relu": (F.relu, torch.nn.functional.relu),
    "gelu": (F.gelu, torch.nn.functional.gelu),
    "gelu_tanh": (lambda n: F.gelu(n, approximate="tanh"),
                  lambda n: torch.nn.functional.gelu(n, approximate="tanh")),
    "silu": (F.silu, torch.nn.functional.silu),
    "sigmoid": (mg.sigmoid, torch.sigmoid),
    "tanh": (lambda n: n.tanh(), lambda n: n.tanh()),
    "exp": (mg.exp, torch.exp),
    "neg": (lambda n: -n, lambda n: -n),
    "abs": (lambda n: n.abs(), lambda n: n.abs()),
    "sin": (lambda n: n.sin(), lambda n: n.sin()),
    "cos": (mg.cos, torch.cos),
    "add_self": (lambda n: n + n * 2, lambda n: n + n * 2),
    "sub_div": (lambda n: (n - 1.5) / (n.abs() + 1), lambda n: (n - 1.5) / (n.abs() + 1)),
    "rsub": (lambda n: 1 - n, lambda n: 1 - n),
    "add_dense": (lambda n: n + mg.tensor(BIAS, device=n.device), lambda n: n + torch.tensor(BIAS)),
    "mul_dense": (lambda n: n * mg.tensor(BIAS, device=n.device), lambda n: n * torch.tensor(BIAS)),
    "pow": (lambda n: n**2, lambda n: n**2),
    "linear": (lambda n: F.linear(n, mg.tensor(LIN_W, device=n.device),
                                  mg.tensor(LIN_B, device=n.device)),
               lambda n: torch.nn.functional.linear(n, torch.tensor(LIN_W), torch.tensor(LIN_B))),
    "layer_norm": (lambda n: F.layer_norm(n, (4,), mg.tensor(LN_W, device=n.device),
                                          mg.tensor(LN_B, device=n.device)),
                   lambda n: torch.nn.functional.layer_norm(n, (4,), torch.tensor(LN_W),
                                                            torch.tensor(LN_B))),
    "softmax": (lambda n: n.softmax(-1), lambda n: n.softmax(-1)),
    "F_softmax": (lambda n: F.softmax(n, dim=-1), lambda n: torch.nn.functional.softmax(n, -1)),
    "mean_last": (lambda n: n.mean(-1), lambda n: n.mean(-1)),
    "sum_all": (lambda n: n.sum(), lambda n: n.sum()),
    "matmul_dense": (lambda n: n @ mg.tensor(LIN_W.T.copy(), device=n.device),
                     lambda n: n @ torch.tensor(LIN_W.T.copy())),
    "clone": (lambda n: n.clone(), lambda n: n.clone()),
    "to64": (lambda n: n.to(mg.float64), lambda n: n.to(torch.float64)),
}  # fmt: skip


# ops whose backward PyTorch's CPU jagged layout lacks (or gets wrong for the ragged dim):
# compared with torch applied to each component (``each``: nested again; ``stack``: dense)
EACH = {
    "softmax_ragged": (lambda n: mg.softmax(n, 1), lambda c: torch.softmax(c, 0), "each"),
    "log_softmax": (lambda n: F.log_softmax(n, -1), lambda c: c.log_softmax(-1), "each"),
    "sum_last_keep": (lambda n: n.sum(-1, keepdim=True), lambda c: c.sum(-1, True), "each"),
    "sum_last": (lambda n: n.sum(-1), lambda c: c.sum(-1), "each"),
    "mean_ragged": (lambda n: n.mean(1), lambda c: c.mean(0), "stack"),
    "sum_ragged": (lambda n: mg.sum(n, 1), lambda c: c.sum(0), "stack"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", OPS)
def test_op(op, layout, device):
    ml, tl, mn, tn = _pair(device, layout)
    mfn, tfn = OPS[op]
    _compare(mfn(mn), tfn(tn), ml, tl)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("op", EACH)
def test_op_per_component(op, layout, device):
    ml, tl, mn, _ = _pair(device, layout)
    mfn, tfn, how = EACH[op]
    outs = [tfn(c) for c in tl]
    ref = (
        torch.stack(outs)
        if how == "stack"
        else torch.nested.as_nested_tensor(outs, layout=torch.jagged)
    )
    _compare(mfn(mn), ref, ml, tl)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_attention_pattern(layout, device):
    """(B, j, H, D) -> transpose -> SDPA -> transpose back, as a transformer layer does."""
    ml, tl, mn, tn = _pair(device, layout, trailing=(2, 4))
    mo = F.scaled_dot_product_attention(mn.transpose(1, 2), mn.transpose(1, 2) * 0.5,
                                        mn.transpose(1, 2)).transpose(1, 2)  # fmt: skip
    to = torch.nn.functional.scaled_dot_product_attention(
        tn.transpose(1, 2), tn.transpose(1, 2) * 0.5, tn.transpose(1, 2)
    ).transpose(1, 2)
    assert mo.dim() == to.dim() == 4
    _compare(mo, to, ml, tl)


def test_attention_matches_padded_with_key_mask(device):
    """Nested SDPA equals the padded computation with a key padding mask."""
    ml, tl, mn, _ = _pair(device, "jagged", trailing=(2, 4))
    q = mn.transpose(1, 2)
    out = F.scaled_dot_product_attention(q, q, q).transpose(1, 2).to_padded_tensor(0.0)
    xp = torch.nested.as_nested_tensor([t.detach() for t in tl], layout=torch.jagged)
    x = xp.to_padded_tensor(0.0).transpose(1, 2)  # (B, H, T, D)
    keep = torch.tensor([[i < n for i in range(max(LENS))] for n in LENS])
    ref = torch.nn.functional.scaled_dot_product_attention(x, x, x, attn_mask=keep[:, None, None])
    ref = ref.transpose(1, 2) * keep[:, :, None, None]
    np.testing.assert_allclose(_np(out), ref.numpy(), atol=1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_modules_and_leaf_grad(layout, device):
    """nested_tensor(requires_grad=True) is a leaf whose .grad is nested; nn layers apply."""
    mlay, tlay = LAYOUTS[layout]
    data = [np.random.default_rng(i).standard_normal((n, 4)).astype(np.float32)
            for i, n in enumerate(LENS)]  # fmt: skip
    mn = mg.nested.nested_tensor([mg.tensor(d, device=device) for d in data], layout=mlay,
                                 requires_grad=True)  # fmt: skip
    tn = torch.nested.nested_tensor([torch.tensor(d) for d in data], layout=tlay,
                                    requires_grad=True)  # fmt: skip
    mlin, tlin = mg.nn.Linear(4, 3).to(device), torch.nn.Linear(4, 3)
    mln, tln = mg.nn.LayerNorm(3).to(device), torch.nn.LayerNorm(3)
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(_np(mlin.weight)))
        tlin.bias.copy_(torch.tensor(_np(mlin.bias)))
    mo, to = mln(mlin(mn)), tln(tlin(tn))
    _compare(mo, to, [], [])
    assert mn.is_leaf and mn.requires_grad and mn.grad is not None
    np.testing.assert_allclose(_np(mn.grad.to_padded_tensor(0.0)),
                               _np(tn.grad.to_padded_tensor(0.0)), atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(_np(mlin.weight.grad), _np(tlin.weight.grad), atol=1e-5)


def test_metadata_and_constructors(device):
    ml, tl, mn, tn = _pair(device, "jagged")
    assert mn.is_nested and mn.layout is mg.jagged and mn.dim() == tn.dim() == 3
    assert (mn.size(0), mn.size(-1)) == (tn.size(0), tn.size(-1))
    assert str(mn.shape[1]).startswith("j") and mn.shape[1] != 3 and mn.shape[1] == mn.shape[1]
    assert mn.dtype is mg.float32 and mn.requires_grad
    assert mn.offsets().tolist() == tn.offsets().tolist() and mn.lengths() is None
    np.testing.assert_allclose(_np(mn.values()), _np(tn.values()))
    for a, b in zip(mn.unbind(), tn.unbind()):
        np.testing.assert_allclose(_np(a), _np(b))
    assert not mn.detach().requires_grad and (mn + 1).shape[1] == mn.shape[1]
    sn = mg.nested.nested_tensor([mg.randn(2, 3, device=device), mg.randn(4, 3, device=device)])
    assert sn.layout is mg.strided and sn.size(2) == 3 and sn.size(0) == 2
    with pytest.raises(RuntimeError, match="irregular"):
        sn.size(1)
    with pytest.raises(RuntimeError, match="single ragged"):
        mg.nested.nested_tensor([mg.randn(2, 3), mg.randn(4, 5)], layout=mg.jagged)
    with pytest.raises(RuntimeError, match="same dimension"):
        mg.nested.nested_tensor([mg.randn(2, 3), mg.randn(4, 3, 1)])
    with pytest.raises(NotImplementedError, match="to_padded_tensor"):
        mn.cumsum(1)
    with pytest.raises(RuntimeError, match="batch dim"):
        mn.softmax(0)


def test_padded_output_size_and_jagged_views(device):
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    start, length = [0, 1, 2], [2, 3, 1]
    mn = mg.nested.narrow(mg.tensor(x, device=device), 1, mg.tensor(start), mg.tensor(length),
                          layout=mg.jagged)  # fmt: skip
    tn = torch.nested.narrow(torch.tensor(x), 1, torch.tensor(start), torch.tensor(length),
                             layout=torch.jagged)  # fmt: skip
    assert mn.offsets().tolist() == tn.offsets().tolist()
    assert mn.lengths().tolist() == tn.lengths().tolist()
    for a, b in zip(mn.unbind(), tn.unbind()):
        np.testing.assert_allclose(_np(a), _np(b))
    mp = mg.nested.to_padded_tensor(F.relu(mn), -1.0, (3, 4, 4))
    # NOTE: PyTorch pads no jagged tensor with holes; pad its components instead
    tp = torch.nested.as_nested_tensor([torch.relu(c) for c in tn.unbind()], layout=torch.jagged)
    tp = torch.nested.to_padded_tensor(tp, -1.0, (3, 4, 4))
    np.testing.assert_allclose(_np(mp), _np(tp))
    vals = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    mj = mg.nested.nested_tensor_from_jagged(mg.tensor(vals, device=device), mg.tensor([0, 2, 6]))
    tj = torch.nested.nested_tensor_from_jagged(torch.tensor(vals), torch.tensor([0, 2, 6]))
    assert mj.offsets().tolist() == tj.offsets().tolist()
    for a, b in zip(mj.unbind(), tj.unbind()):
        np.testing.assert_allclose(_np(a), _np(b))
    sn = mg.nested.narrow(mg.tensor(x, device=device), 1, 1, 2)
    assert [tuple(c.shape) for c in sn.unbind()] == [(2, 4)] * 3


def test_torch_import_hook_maps_nested():
    from manygrad.compat.importer import target_name

    assert target_name("torch.nested") == "manygrad.nested"
    assert mg.nested.nested_tensor is not None
