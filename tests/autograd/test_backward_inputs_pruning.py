"""``backward(inputs=...)`` with non-leaf inputs walks the graph only down to them, as
``grad`` does; gradients equal PyTorch's."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _counting(lib):
    calls = []

    class Spy(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    return Spy, calls


@pytest.mark.parametrize("lib", [mg, torch], ids=["manygrad", "torch"])
def test_nodes_older_than_a_non_leaf_input_are_not_run(lib):
    Spy, calls = _counting(lib)
    x = lib.tensor(np.arange(4.0), requires_grad=True)
    old = Spy.apply(x * 3)  # made before h: cannot lead to it
    h = old * 2
    h.retain_grad()
    y = (h**2).sum()
    y.backward(inputs=[h], retain_graph=True)
    assert calls == [] and x.grad is None
    np.testing.assert_allclose(h.grad.detach().numpy(), 2 * h.detach().numpy())
    y.backward()
    assert calls == [1]


def test_gradients_match_torch_for_mixed_leaf_and_non_leaf_inputs():
    data = np.linspace(-0.4, 1.1, 6).reshape(2, 3)
    out = {}
    for lib in (mg, torch):
        x = lib.tensor(data, requires_grad=True)
        w = lib.tensor(data.T.copy(), requires_grad=True)
        h = (x @ w).tanh()
        h.retain_grad()
        loss = (h * x.sum()).sum() + (w**2).sum()
        loss.backward(inputs=[h, w])
        out[lib.__name__] = (h.grad.detach().numpy(), w.grad.detach().numpy(), x.grad)
    for a, b in zip(out["manygrad"][:2], out["torch"][:2]):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    assert out["manygrad"][2] is None and out["torch"][2] is None
