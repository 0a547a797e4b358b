"""Differences from PyTorch that the iLQR port script (tests/ports/scripts) led to, each
compared with PyTorch: ``autograd.grad`` walks the graph only down to its inputs' nodes
(as PyTorch's engine prunes by topological number), so a Jacobian taken inside a training
step does not walk, or trip over, the older graph behind its inputs."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("lib", [torch, mg], ids=["torch", "manygrad"])
def test_grad_to_a_newer_input_skips_a_freed_older_graph(lib):
    """The older graph was freed by a backward: grad() to a newer input never needs it."""
    x = lib.tensor(_rand(3), requires_grad=True)
    a = x.sin()
    a.sum().backward()  # frees SinBackward's saved values
    z = a * 2
    (g,) = lib.autograd.grad(z.exp().sum(), z)
    want = np.exp(2 * np.sin(_rand(3).astype(np.float64)))
    np.testing.assert_allclose(g.detach().numpy(), want, rtol=1e-5)


def _step(x, u):
    theta, omega = x[0], x[1]
    omega_next = omega + 0.1 * (-9.81 * theta.sin() + u[0].tanh())
    stack = torch.stack if isinstance(x, torch.Tensor) else mg.stack
    return stack([theta + 0.1 * omega_next, omega_next])


def _jacobian_through_outer_graph(lib):
    w = lib.tensor(_rand(2, seed=1), requires_grad=True)
    xs = lib.tensor(_rand(4, 2, seed=2)) * w.exp()  # an outer graph in front of the inputs
    xs = (xs * 1.5).tanh() + xs
    us = lib.tensor(_rand(4, 1, seed=3)) * w[0]
    A, B = lib.func.vmap(lib.func.jacrev(_step, argnums=(0, 1)))(xs, us)
    loss = (A**2).sum() + (A @ B).sin().sum()
    (gw,) = lib.autograd.grad(loss, w)
    return A.detach().numpy(), B.detach().numpy(), gw.numpy()


def test_vmap_jacrev_inside_a_graph_matches_pytorch():
    for got, want in zip(_jacobian_through_outer_graph(mg), _jacobian_through_outer_graph(torch)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_grad_through_several_inputs_of_different_ages():
    """An input older than another one, with a path from the newer to the older."""
    outs = []
    for lib in (torch, mg):
        x = lib.tensor(_rand(3), requires_grad=True)
        a = x * 3
        b = a.exp()
        c = (b * a).sum() + a.sum()
        outs.append([g.detach().numpy() for g in lib.autograd.grad(c, [b, a, x])])
    for got, want in zip(outs[1], outs[0]):
        np.testing.assert_allclose(got, want, rtol=1e-5)
