"""PyTorch's implementation switches (foreach, fused, differentiable) are accepted, kept in
the param groups as PyTorch keeps them, and change no result."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


OPTS = [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
    ("RMSprop", {"centered": True}),
]
SWITCHES = [{"foreach": True}, {"foreach": False}, {"fused": True}]
# NOTE: PyTorch's RMSprop has no fused option
CASES = [(n, kw, s) for n, kw in OPTS for s in SWITCHES if not (n == "RMSprop" and "fused" in s)]


@pytest.mark.parametrize("name,kw,switch", CASES)
def test_switches_are_kept_and_change_nothing(name, kw, switch):
    x0 = np.random.default_rng(0).standard_normal(5)
    pm = mg.nn.Parameter(mg.tensor(x0))
    pt = torch.nn.Parameter(torch.tensor(x0))
    om = getattr(mg.optim, name)([pm], lr=0.05, **kw, **switch)
    ot = getattr(torch.optim, name)([pt], lr=0.05, **kw, **switch)
    assert set(om.param_groups[0]) == set(ot.param_groups[0])
    for k in switch:
        assert om.param_groups[0][k] == ot.param_groups[0][k]
    for _ in range(5):
        for p, lib in ((pm, mg), (pt, torch)):
            p.grad = lib.sin(p.detach()) + p.detach() ** 2
        om.step()
        ot.step()
    np.testing.assert_allclose(pm.detach().numpy(), pt.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_differentiable_steps_and_conflicts_are_refused_and_compile_is_a_no_op():
    p = [mg.nn.Parameter(mg.ones(2))]
    with pytest.raises(NotImplementedError, match="differentiable"):
        mg.optim.Adam(p, differentiable=True)
    with pytest.raises(RuntimeError, match="cannot be `True` together"):
        mg.optim.SGD(p, lr=0.1, foreach=True, fused=True)
    lin = mg.nn.Linear(2, 2)
    assert lin.compile(mode="max-autotune") is None
    assert lin(mg.ones(1, 2)).shape == (1, 2)
