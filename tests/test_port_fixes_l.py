"""Differences from PyTorch that the factorization-machine and multi-task port scripts
(tests/ports/scripts) led to, each compared with PyTorch: ``max_norm`` renormalisation of
embedding rows under every ``norm_type`` (inf, -inf, 0, fractional and negative p), and the
argument checks of ``gaussian_nll_loss`` (negative variances; a variance shared along any
one dim) and ``binary_cross_entropy`` (probabilities outside [0, 1], while 0 and 1 themselves
give PyTorch's clamped loss without a NumPy warning)."""

import math

import numpy as np
import pytest
import torch

import manygrad as mg

TABLE = np.array(
    [[0.0, 0.3, -0.6, 0.0], [1.0, 2.0, 0.0, 0.5], [0.1, 0.1, 0.1, 0.1], [-3.0, 0.2, 0.4, 1.0]],
    np.float32,
)


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _renormed(lib, norm_type, device="cpu"):
    kw = {"device": device} if lib is mg else {}
    emb = lib.nn.Embedding(4, 4, max_norm=0.4, norm_type=norm_type, **kw)
    with lib.no_grad():
        emb.weight.copy_(lib.tensor(TABLE, **kw))
    ids = lib.tensor([[0, 1, 1], [3, 0, 2]], **kw)
    out = emb(ids)
    (out * lib.arange(4.0, **kw)).sin().sum().backward()
    return [t.detach().cpu().numpy() for t in (out, emb.weight, emb.weight.grad)]


@pytest.mark.parametrize("norm_type", [0.0, 0.5, 1.0, 2.0, 3.0, math.inf, -math.inf, -1.0])
def test_embedding_max_norm_under_every_norm_type(norm_type, device):
    for got, want in zip(_renormed(mg, norm_type, device), _renormed(torch, norm_type)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_embedding_bag_max_norm_inf_matches_pytorch():
    outs = []
    for lib in (torch, mg):
        bag = lib.nn.EmbeddingBag(4, 4, max_norm=0.5, norm_type=float("inf"), mode="sum")
        with lib.no_grad():
            bag.weight.copy_(lib.tensor(TABLE))
        y = bag(lib.tensor([1, 3, 3, 2]), lib.tensor([0, 2]))
        outs.append((y.detach().numpy(), bag.weight.detach().numpy()))
    for got, want in zip(*outs[::-1]):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("lib", [torch, mg], ids=["torch", "manygrad"])
@pytest.mark.parametrize("var", ["tensor", "float"])
def test_gaussian_nll_loss_refuses_negative_variances(lib, var):
    x = lib.tensor(_rand(3, 2))
    v = lib.tensor([[1.0, 0.5], [0.2, -0.1], [1.0, 1.0]]) if var == "tensor" else -0.5
    with pytest.raises(ValueError, match="negative"):
        lib.nn.functional.gaussian_nll_loss(x, x * 0.5, v)


def _gnll(lib, var_shape, device="cpu"):
    kw = {"device": device} if lib is mg else {}
    x = lib.tensor(_rand(4, 3, 5, seed=1), **kw, requires_grad=True)
    v = lib.tensor(np.abs(_rand(*var_shape, seed=2)) + 0.1, **kw, requires_grad=True)
    loss = lib.nn.GaussianNLLLoss(full=True)(x, lib.tensor(_rand(4, 3, 5, seed=3), **kw), v)
    loss.backward()
    return [t.detach().cpu().numpy() for t in (loss, x.grad, v.grad)]


@pytest.mark.parametrize("var_shape", [(4, 1, 5), (1, 3, 5), (4, 3, 1), (4, 3)])
def test_gaussian_nll_loss_variance_shared_along_one_dim(var_shape, device):
    for got, want in zip(_gnll(mg, var_shape, device), _gnll(torch, var_shape)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("lib", [torch, mg], ids=["torch", "manygrad"])
@pytest.mark.parametrize("var_shape", [(1, 1, 5), (3, 5), (4, 2, 5)])
def test_gaussian_nll_loss_refuses_variances_of_other_shapes(lib, var_shape):
    x = lib.tensor(_rand(4, 3, 5))
    with pytest.raises(ValueError):
        lib.nn.functional.gaussian_nll_loss(x, x, lib.ones(*var_shape))


@pytest.mark.parametrize("lib", [torch, mg], ids=["torch", "manygrad"])
@pytest.mark.parametrize(
    "p,y,name",
    [(1.5, 1.0, "input"), (-0.1, 0.0, "input"), (math.nan, 1.0, "input"), (0.5, 1.5, "target")],
)
def test_binary_cross_entropy_refuses_values_outside_0_1(lib, p, y, name):
    with pytest.raises(RuntimeError, match=f"{name} should be between 0 and 1"):
        lib.nn.functional.binary_cross_entropy(lib.tensor([0.3, p]), lib.tensor([1.0, y]))


def test_binary_cross_entropy_takes_the_ends_of_0_1(recwarn):
    outs = []
    for lib in (torch, mg):
        p = lib.tensor([0.0, 1.0, 1.0, 0.0, 0.25], requires_grad=True)
        w = lib.tensor([1.0, 2.0, 0.5, 1.0, 3.0])
        loss = lib.nn.BCELoss(weight=w)(p, lib.tensor([0.0, 1.0, 0.0, 1.0, 1.0]))
        loss.backward()
        outs.append((loss.detach().numpy(), p.grad.numpy()))
    for got, want in zip(*outs[::-1]):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not [str(w.message) for w in recwarn], "the log of 0 or 1 - 1 warns"
