"""Property tests: broadcasting and reductions over generated shapes agree with PyTorch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import manygrad as mg

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")


@settings(max_examples=40, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       op=st.sampled_from(["add", "sub", "mul", "maximum"]), seed=st.integers(0, 2**16))  # fmt: skip
def test_broadcast_binary_matches_torch(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(s) for s in shapes.input_shapes)
    ma, mb = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    mo, to = getattr(mg, op)(ma, mb), getattr(torch, op)(ta, tb)
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-12)
    up = rng.standard_normal(to.shape)
    mo.backward(mg.tensor(up))
    to.backward(torch.tensor(up))
    np.testing.assert_allclose(ma.grad.numpy(), ta.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mb.grad.numpy(), tb.grad.numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5),
       op=st.sampled_from(["sum", "mean", "amax", "logsumexp"]), data=st.data())  # fmt: skip
def test_reductions_over_any_dims_match_torch(shape, op, data):
    dims = data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    keepdim = data.draw(st.booleans())
    a = np.random.default_rng(len(shape)).standard_normal(shape)
    m, t = mg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    mo = getattr(mg, op)(m, dim=tuple(dims), keepdim=keepdim)
    to = getattr(torch, op)(t, dim=tuple(dims), keepdim=keepdim)
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-12)
    mo.sum().backward()
    to.sum().backward()
    np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)
