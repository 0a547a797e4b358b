"""The same parameter listed twice: a warning within a group, an error across groups (as
PyTorch)."""

import pytest
import torch

import manygrad as mg


def test_duplicate_in_one_group_warns_like_pytorch():
    p = mg.nn.Parameter(mg.randn(2))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        mg.optim.SGD([p, p], lr=0.1)
    tp = torch.nn.Parameter(torch.randn(2))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        torch.optim.SGD([tp, tp], lr=0.1)


def test_duplicate_across_groups_raises_like_pytorch():
    a, b = mg.nn.Parameter(mg.randn(2)), mg.nn.Parameter(mg.randn(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        mg.optim.AdamW([{"params": [a, b]}, {"params": [b]}], lr=0.1)
    ta = torch.nn.Parameter(torch.randn(2))
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.AdamW([{"params": [ta]}, {"params": [ta]}], lr=0.1)
