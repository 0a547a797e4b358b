"""The autograd graph as programs see it (graph printers, gradient-flow debuggers, node
hooks): node type names, ``next_functions``, ``AccumulateGrad``, ``metadata`` and node
hooks, compared with PyTorch's."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
from tests.parity_helpers import run_both

import manygrad as mg

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)


def _t(lib, *shape, grad=True):
    return lib.tensor(RNG.standard_normal(shape).astype(np.float32), requires_grad=grad)


def _x_inplace(lib, op):
    x = _t(lib, 3) * 1
    op(x)
    return x


# name -> build(lib, t, fn): the output whose graph is compared; t(*shape, grad=True)
# makes a float32 tensor, fn is lib.nn.functional
CASES = {
    "add": lambda lib, t, fn: t(3) + t(3),
    "add_number": lambda lib, t, fn: t(3) + 2,
    "add_nograd": lambda lib, t, fn: t(3) + t(3, grad=False),
    "sub": lambda lib, t, fn: t(3) - t(3),
    "mul": lambda lib, t, fn: t(3) * t(3),
    "mul_number": lambda lib, t, fn: t(3) * 2,
    "div": lambda lib, t, fn: t(3) / t(3),
    "div_number": lambda lib, t, fn: t(3) / 2,
    "neg": lambda lib, t, fn: -t(3),
    "exp_log_abs": lambda lib, t, fn: t(3).abs().log().exp(),
    "tanh_sigmoid": lambda lib, t, fn: t(3).tanh().sigmoid(),
    "relu": lambda lib, t, fn: fn.relu(t(3)),
    "gelu": lambda lib, t, fn: fn.gelu(t(3)),
    "pow_number": lambda lib, t, fn: t(3) ** 2,
    "sqrt": lambda lib, t, fn: t(3).abs().sqrt(),
    "sum": lambda lib, t, fn: t(3, 4).sum(),
    "mean": lambda lib, t, fn: t(3, 4).mean(),
    "var": lambda lib, t, fn: t(3, 4).var(1),
    "view": lambda lib, t, fn: t(3, 4).view(12),
    "reshape": lambda lib, t, fn: t(3, 4).reshape(4, 3),
    "flatten": lambda lib, t, fn: t(2, 3, 4).flatten(1),
    "permute": lambda lib, t, fn: t(2, 3, 4).permute(2, 0, 1),
    "expand": lambda lib, t, fn: t(3, 1).expand(3, 4),
    "index_tensor": lambda lib, t, fn: t(3, 4)[lib.tensor([0, 2])],
    "conv2d": lambda lib, t, fn: fn.conv2d(t(1, 2, 5, 5), t(3, 2, 3, 3), t(3)),
    "conv2d_no_bias": lambda lib, t, fn: fn.conv2d(t(1, 2, 5, 5), t(3, 2, 3, 3), padding=1),
    "softmax": lambda lib, t, fn: fn.softmax(t(3, 4), dim=1),
    "layer_norm": lambda lib, t, fn: fn.layer_norm(t(3, 4), (4,), t(4), t(4)),
    "layer_norm_plain": lambda lib, t, fn: fn.layer_norm(t(3, 4), (4,)),
    "batch_norm": lambda lib, t, fn: fn.batch_norm(
        t(3, 4), lib.zeros(4), lib.ones(4), t(4), t(4), training=True
    ),
    "embedding": lambda lib, t, fn: fn.embedding(lib.tensor([0, 2]), t(5, 3)),
    "cat": lambda lib, t, fn: lib.cat([t(2, 3), t(1, 3), t(2, 3, grad=False)]),
    "where": lambda lib, t, fn: lib.where(lib.tensor([True, False, True]), t(3), t(3)),
    "clamp": lambda lib, t, fn: t(3).clamp(-0.5, 0.5),
    "clamp_min": lambda lib, t, fn: t(3).clamp(min=0),
    "maximum": lambda lib, t, fn: lib.maximum(t(3), t(3)),
    "masked_fill": lambda lib, t, fn: t(3).masked_fill(lib.tensor([True, False, True]), 0.0),
    "gather": lambda lib, t, fn: t(3, 4).gather(1, lib.tensor([[0], [1], [2]])),
    "double": lambda lib, t, fn: t(3).double(),
    "clone": lambda lib, t, fn: t(3).clone(),
    "add_": lambda lib, t, fn: _x_inplace(lib, lambda x: x.add_(t(3))),
    "mul_": lambda lib, t, fn: _x_inplace(lib, lambda x: x.mul_(2)),
    "relu_": lambda lib, t, fn: _x_inplace(lib, lambda x: fn.relu(x, inplace=True)),
}

# NOTE: where manygrad's op is another op than the ones PyTorch records, its node keeps
# manygrad's own name (or PyTorch's decomposition has nodes manygrad doesn't make); matching
# would mean faking nodes. For these the walk must still reach the same leaves.
ACCEPTED = {
    # PyTorch numbers overloads (SumBackward1 for a sum over dims); manygrad's node is one
    # op class for every overload
    "sum_dim": lambda lib, t, fn: t(3, 4).sum(1, keepdim=True),
    "mean_dim": lambda lib, t, fn: t(3, 4).mean(dim=0),
    "pow_tensor": lambda lib, t, fn: t(3).abs() ** t(3),
    "rpow": lambda lib, t, fn: 2 ** t(3),
    # manygrad records add(2, x) (PyTorch: add(x, 2)) and sub(1, x) (PyTorch: rsub)
    "radd_number": lambda lib, t, fn: 2 + t(3),
    "rsub_number": lambda lib, t, fn: 1 - t(3),
    # add with alpha: manygrad scales other with a mul node first
    "add_alpha": lambda lib, t, fn: lib.add(t(3), t(3), alpha=2),
    # manygrad's one max/min-over-dim op and one amax/amin/max() op
    "max_dim": lambda lib, t, fn: t(3, 4).max(dim=1)[0],
    "amax": lambda lib, t, fn: t(3, 4).amax(1),
    # movement ops that manygrad runs as a view-reshape, a permute or one basic-index node
    "transpose": lambda lib, t, fn: t(3, 4).transpose(0, 1),
    "t": lambda lib, t, fn: t(3, 4).t(),
    "unsqueeze": lambda lib, t, fn: t(3).unsqueeze(0),
    "squeeze": lambda lib, t, fn: t(3, 1).squeeze(1),
    "select": lambda lib, t, fn: t(3, 4)[1],
    "slices": lambda lib, t, fn: t(3, 4)[1:, ::2],
    "split": lambda lib, t, fn: t(4, 3).split(2)[1],
    "stack": lambda lib, t, fn: lib.stack([t(3), t(3)]),
    # matmul is one op in manygrad (PyTorch: mm, or expand/view/bmm/view for batches);
    # F.linear is one op (PyTorch: addmm with a t node, or mm without bias)
    "matmul": lambda lib, t, fn: t(3, 4) @ t(4, 5),
    "matmul_batched": lambda lib, t, fn: t(2, 3, 4) @ t(2, 4, 5),
    "linear": lambda lib, t, fn: fn.linear(t(3, 4), t(5, 4), t(5)),
    "linear_no_bias": lambda lib, t, fn: fn.linear(t(3, 4), t(5, 4)),
    # conv_transpose2d: manygrad flips and copies the weight (flip, clone nodes) first
    "conv_transpose2d": lambda lib, t, fn: fn.conv_transpose2d(t(1, 2, 3, 3), t(2, 3, 3, 3)),
    # one pooling op for 1, 2 and 3 dims; one softmax op with a log flag; the class-index
    # loss op of nll_loss and cross_entropy (which fuses log_softmax); mse_loss as a
    # reduction of the elementwise loss; norm as manygrad's p-norm op
    "max_pool2d": lambda lib, t, fn: fn.max_pool2d(t(1, 2, 4, 4), 2),
    "log_softmax": lambda lib, t, fn: fn.log_softmax(t(3, 4), dim=1),
    "nll_loss": lambda lib, t, fn: fn.nll_loss(t(3, 4), lib.tensor([0, 1, 3])),
    "cross_entropy": lambda lib, t, fn: fn.cross_entropy(t(3, 4), lib.tensor([0, 1, 3])),
    "mse_loss": lambda lib, t, fn: fn.mse_loss(t(3, 4), t(3, 4, grad=False)),
    "norm": lambda lib, t, fn: t(3, 4).norm(),
    # in place on a view: PyTorch's CopySlices wraps the op's node; manygrad's has the op's
    # node (on the view) as its second input
    "view_add_": lambda lib, t, fn: _view_add_(lib, t),
}


def _view_add_(lib, t):
    x = t(3, 4) * 1
    x[0].add_(1)
    return x


def _build(lib, fn):
    global RNG
    RNG = np.random.default_rng(0)
    return fn(lib, lambda *s, grad=True: _t(lib, *s, grad=grad), lib.nn.functional)


def _walk(fn, seen=None, depth=0, oi=0) -> list[str]:
    """One line per edge from ``fn`` down: the node's type name, the output index, and for
    an AccumulateGrad its leaf's shape; a node reached twice is named, not walked again."""
    seen = {} if seen is None else seen
    pad = "  " * depth
    if fn is None:
        return [f"{pad}None {oi}"]
    first = id(fn) not in seen
    tag = seen.setdefault(id(fn), len(seen))
    leaf = f" {tuple(fn.variable.shape)}" if hasattr(fn, "variable") else ""
    lines = [f"{pad}{type(fn).__name__}#{tag} {oi}{leaf}"]
    if first:
        for nf, i in fn.next_functions:
            lines += _walk(nf, seen, depth + 1, i)
    return lines


def _leaves(fn) -> list:
    out, stack, seen = [], [fn], set()
    while stack:
        f = stack.pop()
        if f is None or id(f) in seen:
            continue
        seen.add(id(f))
        if hasattr(f, "variable"):
            out.append(tuple(f.variable.shape))
        stack += [nf for nf, _ in f.next_functions]
    return sorted(out)


@pytest.mark.parametrize("case", sorted(CASES))
def test_graph_matches_pytorch(case):
    """Same node type names, same next_functions (count, order, None entries, output
    indices) and the same nodes shared, all the way to the leaves."""
    want = _walk(_build(torch, CASES[case]).grad_fn)
    got = _walk(_build(mg, CASES[case]).grad_fn)
    assert got == want


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_differences_reach_the_same_leaves(case):
    t_out, m_out = _build(torch, ACCEPTED[case]), _build(mg, ACCEPTED[case])
    assert _leaves(m_out.grad_fn) == _leaves(t_out.grad_fn)
    # the node's own name is its type's, whatever op it is
    assert m_out.grad_fn.name() == type(m_out.grad_fn).__name__


@pytest.mark.parametrize("case", ["add", "mul", "sum", "exp_log_abs", "conv2d", "cat"])
def test_node_type_name_qualname_and_repr(case):
    t_fn, m_fn = _build(torch, CASES[case]).grad_fn, _build(mg, CASES[case]).grad_fn
    assert type(m_fn).__name__ == type(t_fn).__name__ == m_fn.name() == t_fn.name()
    assert type(m_fn).__qualname__ == type(t_fn).__qualname__
    assert re.fullmatch(rf"<{type(t_fn).__name__} object at 0x[0-9a-f]+>", repr(m_fn))
    assert isinstance(m_fn, mg.autograd.graph.Node)
    assert isinstance(t_fn, torch.autograd.graph.Node)


def test_op_classes_keep_their_op_name():
    from manygrad.ops.elementwise import Mul

    y = _t(mg, 3) * 2
    assert type(y.grad_fn) is Mul  # NOTE: the op class is the node class
    assert Mul.__name__ == "MulBackward0" and Mul.op_name == "Mul"
    import pickle

    assert pickle.loads(pickle.dumps(Mul)) is Mul


def _custom(lib):
    class MyFn(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale, flag):
            ctx.scale = scale
            return x * scale

        @staticmethod
        def backward(ctx, g):
            return g * ctx.scale, None, None

    x = _t(lib, 3)
    return MyFn, x, MyFn.apply(x, 2.0, _t(lib, 3, grad=False))


def test_custom_function_node():
    (t_cls, _, t_y), (m_cls, m_x, m_y) = _custom(torch), _custom(mg)
    t_fn, m_fn = t_y.grad_fn, m_y.grad_fn
    assert type(m_fn).__name__ == type(t_fn).__name__ == "MyFnBackward"
    assert type(m_fn).__qualname__ == type(t_fn).__qualname__
    assert m_fn.name() == t_fn.name()
    assert type(t_fn).__module__ == "torch.autograd.function"
    assert type(m_fn).__module__ == "manygrad.autograd.function"
    assert repr(m_fn).startswith("<manygrad.autograd.function.MyFnBackward object at 0x")
    assert m_fn._forward_cls is m_cls and t_fn._forward_cls is t_cls
    assert isinstance(m_fn, mg.autograd.graph.Node)
    # one entry per tensor argument: the number is not listed, the tensor without grad is
    assert [(type(f).__name__ if f else None, i) for f, i in m_fn.next_functions] == [
        (type(f).__name__ if f else None, i) for f, i in t_fn.next_functions
    ]
    assert m_fn.next_functions[0][0].variable is m_x
    # the class of the node is made once per Function
    assert type(m_cls.apply(m_x, 3.0, m_x.detach()).grad_fn) is type(m_fn)


def test_accumulate_grad():
    for lib in (torch, mg):
        x = _t(lib, 3)
        y = (x * 2).sum()
        acc = y.grad_fn.next_functions[0][0].next_functions[0][0]
        assert type(acc).__name__ == "AccumulateGrad" and type(acc).__qualname__ == "AccumulateGrad"
        assert acc.name() == "torch::autograd::AccumulateGrad"
        assert acc.variable is x and acc.next_functions == ()
        assert isinstance(acc, lib.autograd.graph.Node)
        assert re.fullmatch(r"<AccumulateGrad object at 0x[0-9a-f]+>", repr(acc))
        # the same node every time it is reached while someone holds it
        assert (x * 3).grad_fn.next_functions[0][0] is acc


def test_accumulate_grad_hook_idiom():
    """The gradient-accumulator hook (p.expand_as(p).grad_fn.next_functions[0][0]) fires
    once the leaf's gradient is accumulated, as in PyTorch."""
    logs = {}
    for lib in (torch, mg):
        log = logs[lib.__name__] = []
        p = _t(lib, 3)
        acc = p.expand_as(p).grad_fn.next_functions[0][0]
        acc.register_hook(lambda gi, go, p=p, log=log: log.append((len(gi), p.grad is not None)))
        (p * 2).sum().backward()
    assert logs["manygrad"] == logs["torch"] == [(0, True)]


def test_metadata_is_a_kept_dict():
    for lib in (torch, mg):
        x = _t(lib, 3)
        y = (x * 2).sum()
        assert y.grad_fn.metadata == {}
        y.grad_fn.metadata["tag"] = 1
        assert y.grad_fn.metadata == {"tag": 1}
        y.backward()
        assert y.grad_fn.metadata == {"tag": 1}  # NOTE: kept after backward frees the graph


def _hook_log(lib):
    """The order in which node pre-hooks, node hooks and tensor hooks run, and what they
    see; a pre-hook and a node hook that return values replace the gradients."""
    global RNG
    RNG = np.random.default_rng(1)
    log = []
    x = _t(lib, 3)
    w = _t(lib, 3)
    h = x * w
    y = (h * 3).sum()
    shape = lambda g: None if g is None else tuple(g.shape)  # noqa: E731
    h.register_hook(lambda g: log.append(("tensor h", shape(g))))
    mul = h.grad_fn
    mul.register_prehook(lambda go: log.append(("pre", [shape(g) for g in go])))
    mul.register_prehook(lambda go: (go[0] * 10,))
    mul.register_hook(lambda gi, go: log.append(("post", [shape(g) for g in gi],
                                                   [shape(g) for g in go])))  # fmt: skip
    mul.register_hook(lambda gi, go: (gi[0], gi[1] * 0))
    top = y.grad_fn.next_functions[0][0]  # the mul by 3: (h, None)
    top.register_hook(lambda gi, go: log.append(("post top", [shape(g) for g in gi])))
    handle = top.register_prehook(lambda go: log.append("removed"))
    handle.remove()
    y.backward()
    return log, x.grad.detach().numpy(), w.grad.detach().numpy()


def test_node_hooks_order_and_replacement():
    (t_log, t_gx, t_gw), (m_log, m_gx, m_gw) = _hook_log(torch), _hook_log(mg)
    assert m_log == t_log
    np.testing.assert_allclose(m_gx, t_gx, rtol=1e-6)
    np.testing.assert_allclose(m_gw, t_gw, rtol=1e-6)
    assert not m_gw.any()


def test_saved_attributes_are_not_offered():
    # NOTE: PyTorch's nodes expose what they saved as _saved_self etc.; manygrad's nodes keep
    # arrays of their own choosing, under other names: a program that reads _saved_* gets an
    # AttributeError rather than something else
    y = _t(mg, 3) * _t(mg, 3)
    assert not any(n.startswith("_saved_") for n in dir(y.grad_fn))
    with pytest.raises(AttributeError):
        y.grad_fn._saved_self  # noqa: B018


PRINTER = textwrap.dedent(
    """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def show(fn, depth=0, seen=None):
        seen = set() if seen is None else seen
        if fn is None:
            return
        name = type(fn).__name__
        if hasattr(fn, "variable"):
            name += " " + str(tuple(fn.variable.shape))
        print("  " * depth + name + (" (seen)" if fn in seen else ""))
        if fn in seen:
            return
        seen.add(fn)
        for nf, _ in fn.next_functions:
            show(nf, depth + 1, seen)

    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten())
    out = cnn(torch.randn(2, 1, 6, 6))
    loss = (out * out).mean() + out.sum() * 0.5
    show(loss.grad_fn)
    print("--")
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    loss = F.cross_entropy(mlp(torch.randn(5, 4)), torch.tensor([0, 1, 2, 0, 1]))
    show(loss.grad_fn)
    """
)

# NOTE: the MLP's two ops that PyTorch decomposes and manygrad runs as one node each (see
# ACCEPTED): F.linear (addmm of the bias, the input and t(weight)) and cross_entropy
# (nll_loss of log_softmax). Everything else must print the same.


def _tree(text: str) -> list:
    """The printer's lines as ``[name, children]`` trees (two spaces per level)."""
    root: list = ["", []]
    stack = [(-1, root)]
    for line in text.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        node = [line.strip(), []]
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1][1].append(node)
        stack.append((depth, node))
    return root[1]


def _lines(trees: list, depth: int = 0) -> str:
    return "".join("  " * depth + n + "\n" + _lines(c, depth + 1) for n, c in trees)


def _fold_pytorch(text: str) -> str:
    """PyTorch's printout with its linear and cross_entropy decompositions written as
    manygrad's single nodes (children in manygrad's argument order)."""

    def fold(node):
        name, kids = node[0], [fold(k) for k in node[1]]
        if name == "NllLossBackward0" and [k[0] for k in kids] == ["LogSoftmaxBackward0"]:
            return ["ClassNLLBackward0", kids[0][1]]
        if name == "AddmmBackward0" and kids and kids[-1][0] == "TBackward0":
            bias, x, (weight,) = kids[0], kids[1:-1], kids[-1][1]
            return ["LinearBackward0", [*x, weight, bias]]
        return [name, kids]

    return _lines([fold(t) for t in _tree(text)])


def test_graph_printer_prints_the_same(tmp_path):
    script = tmp_path / "printer.py"
    script.write_text(PRINTER)
    out = run_both(script)
    cnn_t, mlp_t = out["torch"].split("--\n")
    cnn_m, mlp_m = out["mg"].split("--\n")
    assert cnn_m == cnn_t
    assert "AddmmBackward0" in mlp_t and "LinearBackward0" in mlp_m
    assert mlp_m == _fold_pytorch(mlp_t)
