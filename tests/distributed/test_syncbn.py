"""SyncBatchNorm across two ranks equals BatchNorm on the whole batch; on one process it is
BatchNorm; convert_sync_batchnorm keeps the state; DataParallel wraps as PyTorch's."""

import numpy as np
import pytest
import torch
from mpirun import run_worker

import manygrad as mg
from devicematrix import DEVICES


@pytest.mark.mpi
def test_two_ranks_equal_one_batch():
    res = run_worker("syncbn")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    for r in range(2):
        assert f"OK syncbn rank {r}" in out, out


@pytest.mark.parametrize("device", DEVICES)
def test_one_process_is_batchnorm(device):
    x = np.random.default_rng(0).standard_normal((4, 3, 5))
    sync, ref = mg.nn.SyncBatchNorm(3).to(device), mg.nn.BatchNorm1d(3).to(device)
    for mode in ("train", "eval"):
        getattr(sync, mode)()
        getattr(ref, mode)()
        xt = mg.tensor(x, dtype=mg.float32, device=device)  # the modules' dtype
        a, b = sync(xt), ref(xt)
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    with pytest.raises(ValueError, match="at least 2D"):
        sync(mg.ones(3, device=device))


def test_convert_keeps_parameters_buffers_and_mode():
    model = mg.nn.Sequential(mg.nn.Conv2d(3, 4, 3), mg.nn.BatchNorm2d(4),
                             mg.nn.Sequential(mg.nn.BatchNorm1d(2)))  # fmt: skip
    model[1].running_mean.fill_(0.5)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    w = model[1].weight
    conv = mg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(conv[1], mg.nn.SyncBatchNorm) and isinstance(conv[2][0], mg.nn.SyncBatchNorm)
    assert conv[1].weight is w and not conv[1].training
    after = conv.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k].numpy(), before[k].numpy())
    tconv = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4),
                            torch.nn.Sequential(torch.nn.BatchNorm1d(2))))  # fmt: skip
    assert list(tconv.state_dict()) == list(after)


def test_data_parallel_wraps_like_pytorch():
    inner = mg.nn.Linear(2, 3)
    dp = mg.nn.DataParallel(inner)
    tdp = torch.nn.DataParallel(torch.nn.Linear(2, 3))
    assert list(dp.state_dict()) == list(tdp.state_dict()) == ["module.weight", "module.bias"]
    x = mg.randn(4, 2)
    assert dp.module is inner and bool((dp(x) == inner(x)).all())
    assert mg.nn.parallel.DataParallel is mg.nn.DataParallel
    with pytest.warns(UserWarning, match="one device"):
        mg.nn.DataParallel._warned = False
        mg.nn.DataParallel(mg.nn.Linear(2, 2), device_ids=[0, 1])
