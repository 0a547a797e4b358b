"""Differences from PyTorch that the Conv-TasNet, ArcFace, PointNet++ and streaming-data port
scripts (tests/ports/scripts) and the probes around them led to, each compared with PyTorch:
``from torch.utils.data import *`` gives every name PyTorch's ``__all__`` lists (the
WeightedRandomSampler, ChainDataset and StackDataset families included), ``prelu`` refuses
the weight shapes PyTorch refuses (C values for an input without a channel dim, weights of
more than one dim), and the p=0 "norms" (a count of non-zeros) are graph nodes with a zero
gradient, as PyTorch's."""

import textwrap

import numpy as np
import pytest
import torch
import torch.utils.data

import manygrad as mg
from manygrad import compat


def test_star_import_of_utils_data_gives_pytorchs_names(tmp_path):
    script = tmp_path / "star.py"
    script.write_text(
        textwrap.dedent(
            """
            from torch.utils.data import *
            result = {k: v for k, v in globals().items() if not k.startswith("_")}
            """
        )
    )
    got = compat.run_script(str(script))["result"]
    import manygrad.utils.data as mg_data

    wanted = [n for n in torch.utils.data.__all__ if hasattr(mg_data, n)]
    assert "ChainDataset" in wanted and "WeightedRandomSampler" in wanted
    missing = [n for n in wanted if n not in got]
    assert not missing, f"`from torch.utils.data import *` misses {missing}"
    for n in wanted:
        assert got[n] is getattr(mg_data, n), n
    namespace: dict = {}
    exec("from manygrad.utils.data import *", namespace)
    assert set(wanted) <= set(namespace)


PRELU_CASES = {
    "0d_scalar_weight": ((), (1,)),
    "1d_one_weight": ((6,), (1,)),
    "1d_0d_weight": ((6,), ()),
    "2d_per_channel": ((4, 3), (3,)),
    "3d_per_channel": ((2, 3, 5), (3,)),
    "4d_shared": ((2, 3, 2, 2), (1,)),
}


@pytest.mark.parametrize("name", sorted(PRELU_CASES))
def test_prelu_shapes_match_pytorch(name, device):
    xs, ws = PRELU_CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.uniform(0.1, 0.5, ws).astype(np.float32)
    g = rng.standard_normal(xs).astype(np.float32)  # prelu keeps the input's shape
    results = []
    for lib, kw in ((torch, {}), (mg, {"device": device})):
        xt = lib.tensor(x, requires_grad=True, **kw)
        wt = lib.tensor(w, requires_grad=True, **kw)
        y = lib.nn.functional.prelu(xt, wt)
        y.backward(lib.tensor(g, **kw))
        results.append([t.detach().cpu().numpy() for t in (y, xt.grad, wt.grad)])
    for got, want in zip(results[1], results[0]):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "xs,ws",
    [((6,), (6,)), ((), (2,)), ((2, 3), (2,)), ((2, 3), (3, 1)), ((2, 3, 4), (1, 1, 1))],
    ids=["1d_c_weights", "0d_2_weights", "2d_wrong_c", "2d_weight", "3d_weight"],
)
def test_prelu_refuses_the_weights_pytorch_refuses(xs, ws):
    with pytest.raises(RuntimeError):
        torch.nn.functional.prelu(torch.ones(xs), torch.ones(ws))
    with pytest.raises(RuntimeError, match="prelu"):
        mg.nn.functional.prelu(mg.ones(xs), mg.ones(ws))


P0_NORMS = {
    "cdist": lambda lib, a, b: lib.cdist(a, b, p=0),
    "vector_norm": lambda lib, a, b: lib.linalg.vector_norm(a - b[:1], ord=0, dim=1),
    "norm": lambda lib, a, b: lib.norm(a, p=0),
    "tensor_norm_dim": lambda lib, a, b: a.norm(0, dim=0, keepdim=True),
    "linalg_norm": lambda lib, a, b: lib.linalg.norm(a, ord=0, dim=1),
}


@pytest.mark.parametrize("name", sorted(P0_NORMS))
def test_zero_norms_are_graph_nodes_with_zero_gradient(name, device):
    x = np.array([[1.0, 0.0, -2.0], [0.0, 0.0, 3.0], [0.5, 1.0, 0.0]], np.float32)
    y = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 3.0]], np.float32)
    out = []
    for lib, kw in ((torch, {}), (mg, {"device": device})):
        a = lib.tensor(x, requires_grad=True, **kw)
        b = lib.tensor(y, requires_grad=True, **kw)
        r = P0_NORMS[name](lib, a, b)
        assert r.requires_grad, f"{lib.__name__} {name}"
        r.sum().backward()
        grads = [t.grad for t in (a, b)]
        out.append(
            (r.detach().cpu().numpy(), [None if g is None else g.cpu().numpy() for g in grads])
        )
    (want, want_g), (got, got_g) = out
    np.testing.assert_array_equal(got, want)
    for g, w in zip(got_g, want_g):
        assert (g is None) == (w is None)
        if w is not None:
            np.testing.assert_array_equal(g, w)
