"""The warnings PyTorch's losses give, given where PyTorch gives them: at the user's line."""

import warnings

import pytest
import torch
import torch.nn.functional as TF

import manygrad as mg
import manygrad.nn.functional as F

REGRESSION = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"]


def _caught(fn):
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fn()
    return got


@pytest.mark.parametrize("name", REGRESSION)
@pytest.mark.parametrize("tshape", [(4,), (1, 4), (), (3, 4)], ids=str)
def test_regression_size_mismatch_warns_as_torch(name, tshape):
    x, y = mg.randn(3, 4), mg.randn(*tshape)
    tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    want = [str(w.message) for w in _caught(lambda: getattr(TF, name)(tx, ty))]
    got = _caught(lambda: getattr(F, name)(x, y))
    assert [str(w.message).replace("manygrad.", "torch.") for w in got] == want
    for w in got:  # pointed at this file, not at a manygrad wrapper
        assert w.filename == __file__ and w.category is UserWarning


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
def test_kl_div_mean_warns_as_torch(reduction):
    p = mg.randn(3, 5).softmax(1)
    tp = torch.tensor(p.numpy())
    want = [str(w.message) for w in _caught(lambda: TF.kl_div(tp.log(), tp, reduction=reduction))]
    got = _caught(lambda: F.kl_div(p.log(), p, reduction=reduction))
    assert [" ".join(str(w.message).split()) for w in got] == [
        " ".join(m.replace(".'", ". '").split()) for m in want
    ]
    assert all(w.filename == __file__ for w in got)
    if reduction == "mean":
        assert len(got) == 1
