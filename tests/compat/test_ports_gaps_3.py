"""Gaps that the third batch of public-style port scripts (detection head, beam search,
TabNet, MFCC front end, GraphSAGE) and the probes around them ran into, each compared with
what PyTorch does."""

import numpy as np
import pytest
import torch

import manygrad as mg


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [False, True])
def test_scatter_reduce_extremum_grad_counts_self_ties(reduce, include_self):
    # GraphSAGE's max aggregation into zeros: PyTorch shares the gradient among all values
    # equal to the result, input's own value included even when include_self=False leaves
    # it out of the result (so a source tying with the zero it replaces gets half)
    x = np.array([[0.0, 1.0, -2.0], [0.0, 0.5, 3.0], [-1.0, 0.0, 0.0]], dtype=np.float32)
    src = np.array([[0.0, 1.0, 3.0], [-0.5, 1.0, 3.0], [0.0, 2.0, -3.0], [2.0, 0.0, 0.0]],
                   dtype=np.float32)  # fmt: skip
    idx = np.array([[0, 0, 1], [0, 0, 1], [2, 1, 2], [1, 2, 2]])
    g = np.arange(1.0, 10.0, dtype=np.float32).reshape(3, 3)
    grads = []
    for lib in (torch, mg):
        xs, ss = lib.tensor(x, requires_grad=True), lib.tensor(src, requires_grad=True)
        out = xs.scatter_reduce(0, lib.tensor(idx), ss, reduce, include_self=include_self)
        out.backward(lib.tensor(g))
        grads.append((out.detach().numpy(), xs.grad.numpy(), ss.grad.numpy()))
    for want, have in zip(grads[0], grads[1]):
        np.testing.assert_allclose(have, want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_unique_consecutive_along_dim(dim):
    # greedy CTC decoding collapses repeated frames: unique_consecutive(dim=1) over time
    a = np.array([[1, 1, 2, 2, 2, 0], [3, 3, 3, 1, 1, 1], [3, 3, 3, 1, 1, 1]], dtype=np.int64)
    want = torch.unique_consecutive(
        torch.tensor(a), return_inverse=True, return_counts=True, dim=dim
    )
    have = mg.unique_consecutive(mg.tensor(a), return_inverse=True, return_counts=True, dim=dim)
    for w, h in zip(want, have):
        assert tuple(h.shape) == tuple(w.shape)
        np.testing.assert_array_equal(h.numpy(), w.numpy())
    only = mg.tensor(a).unique_consecutive(dim=dim)
    np.testing.assert_array_equal(only.numpy(), want[0].numpy())
