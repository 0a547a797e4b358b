"""The models that the fx tests trace under torch.fx and manygrad.fx: one source, built
against either library (``build(torch)`` / ``build(manygrad)``)."""

import inspect
import math
import types

import numpy as np

import manygrad as mg


def build(lib):
    """The test models written against ``lib`` (torch or manygrad)."""
    nn, F = lib.nn, lib.nn.functional

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.pool(x)
            x = lib.relu(self.conv2(x))
            x = F.adaptive_avg_pool2d(x, 1)
            x = lib.flatten(x, 1)
            return self.fc(x)

    class Block(nn.Module):
        def __init__(self, d=16, h=4):
            super().__init__()
            self.h = h
            self.ln1 = nn.LayerNorm(d)
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)
            self.ln2 = nn.LayerNorm(d)
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
            q = q.view(B, T, self.h, C // self.h).transpose(1, 2)
            k = k.view(B, T, self.h, C // self.h).transpose(1, 2)
            v = v.view(B, T, self.h, C // self.h).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.softmax(dim=-1)
            y = (y + att @ v).transpose(1, 2).contiguous().view(B, T, C)
            x = x + self.proj(y)
            return x + self.mlp(self.ln2(x))

    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(6, 4)
            self.scale = lib.tensor([0.5, 2.0, 1.0, 3.0])  # a plain tensor attribute
            self.register_buffer("shift", lib.zeros(4) + 0.1)

        def forward(self, x, y, alpha=2.0):
            a = x[:, :3]
            b = lib.cat([a, y[:, 1:4]], dim=1)
            h = self.scale * self.lin(b)
            h = h + self.shift
            n = h.size(1)
            out = F.leaky_relu(h.reshape(-1, n), negative_slope=0.2)
            s = lib.stack([out, out * alpha], dim=0).sum(dim=0)
            return s + x.size(0), a

    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x, use_relu=True, bias=None):
            h = self.lin(x)
            if use_relu:
                h = lib.relu(h)
            if bias is not None:
                h = h + bias
            return h

    class Clamp(nn.Module):
        def forward(self, x):
            return x.clamp(-0.5, 0.5)

    class WithLeaf(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)
            self.clamp = Clamp()

        def forward(self, x):
            return self.clamp(self.lin(x)) * 2

    class LeafTracer(lib.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, Clamp) or super().is_leaf_module(m, qualname)

    class Pair(nn.Module):
        def forward(self, x, y):
            a = lib.relu(x + y)
            b = lib.relu(a + y)
            return a * b

    def pattern(x, y):
        return lib.relu(x + y)

    def replacement(x, y):
        return lib.sigmoid(x - y)

    return types.SimpleNamespace(**{k: v for k, v in locals().items() if k[0].isupper()},
                                 pattern=pattern, replacement=replacement)  # fmt: skip


def copy_weights(tm, mm, device="cpu"):
    """Load torch module ``tm``'s state into manygrad module ``mm``."""
    assert list(mm.state_dict()) == list(tm.state_dict())
    mm.load_state_dict({k: mg.tensor(v.numpy(), device=device)
                        for k, v in tm.state_dict().items()})  # fmt: skip


def leaf(a):
    """A node argument in a form both libraries share (nodes by name)."""
    if hasattr(a, "op") and hasattr(a, "users"):
        return "%" + a.name
    if isinstance(a, slice):
        return ("slice", leaf(a.start), leaf(a.stop), leaf(a.step))
    if isinstance(a, (tuple, list)):
        return tuple(leaf(e) for e in a)
    if isinstance(a, dict):
        return tuple((k, leaf(v)) for k, v in a.items())
    return a


def target_name(t):
    return t if isinstance(t, str) else t.__name__


def canon(graph):
    """Each node as (op, name, target name, args, kwargs), comparable across libraries."""
    return [(n.op, n.name, target_name(n.target), leaf(n.args), dict(leaf(n.kwargs)))
            for n in graph.nodes]  # fmt: skip


def _defaults(fn):
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}


def assert_same_graph(mgraph, tgraph):
    """Assert the manygrad graph records what the torch graph does, node by node. A keyword
    that only one side records must hold torch's default (torch's Python-level functionals
    record their defaulted keywords: ``F.relu(x)`` has ``inplace=False``)."""
    mc, tc = canon(mgraph), canon(tgraph)
    assert [c[:4] for c in mc] == [c[:4] for c in tc]
    for m, t, tn in zip(mc, tc, tgraph.nodes):
        defaults = _defaults(tn.target) if callable(tn.target) else {}
        for k in set(m[4]) | set(t[4]):
            if k in m[4] and k in t[4]:
                assert m[4][k] == t[4][k], (m, t)
            else:
                value = m[4].get(k, t[4].get(k))
                assert k in defaults and type(value) is type(defaults[k]), (m, t)
                assert value == defaults[k], (m, t)


def close(m, t, what="", rtol=1e-5, atol=1e-6):
    """Assert manygrad tensor ``m`` equals tensor ``t`` (torch's or manygrad's); ``atol`` is
    relative to the largest value of ``t`` (float32 sums of values ~30 that cancel to ~1e-3
    differ by a few 1e-6 between summation orders, and PyTorch's depends on its threads)."""
    want = t.detach().cpu().numpy()
    scale = float(np.abs(want).max()) if want.size and atol else 0.0
    np.testing.assert_allclose(m.detach().cpu().numpy(), want, rtol=rtol,
                               atol=atol * max(scale, 1.0), err_msg=what)  # fmt: skip
