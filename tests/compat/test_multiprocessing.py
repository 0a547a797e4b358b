"""torch.multiprocessing and Module.share_memory: Hogwild training in forked processes."""

import multiprocessing

import numpy as np
import pytest

import manygrad as mg
from manygrad.compat import torch_multiprocessing as tmp


def _train(rank, model, steps):
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    x = mg.ones(4, 2)
    for _ in range(steps):
        opt.zero_grad()
        mg.nn.functional.mse_loss(model(x), mg.zeros(4, 1)).backward()
        opt.step()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_shared_parameters_are_updated_by_forked_processes():
    model = mg.nn.Linear(2, 1)
    assert not model.weight.is_shared()
    assert model.share_memory() is model and model.weight.is_shared() and model.bias.is_shared()
    before = model.weight.detach().numpy().copy()
    ctx = tmp.get_context("fork")
    procs = [ctx.Process(target=_train, args=(r, model, 3)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert not np.allclose(model.weight.detach().numpy(), before)
    # a private copy (not shared) would leave the parent's weights untouched
    plain = mg.nn.Linear(2, 1)
    before = plain.weight.detach().numpy().copy()
    p = ctx.Process(target=_train, args=(0, plain, 3))
    p.start()
    p.join(60)
    np.testing.assert_array_equal(plain.weight.detach().numpy(), before)


def test_module_surface():
    assert tmp.Process is multiprocessing.Process and tmp.cpu_count() >= 1
    tmp.set_sharing_strategy("file_system")
    assert tmp.get_sharing_strategy() == "file_system"
    tmp.set_sharing_strategy("file_descriptor")
    with pytest.raises(ValueError, match="expected one of"):
        tmp.set_sharing_strategy("nope")
    assert mg.zeros(2, device="fakegpu").share_memory_().is_shared() is False
