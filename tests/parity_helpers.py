"""Helpers the parity-gap tests share: comparing manygrad's and PyTorch's errors."""

import pytest


def _np(t):
    return t.detach().cpu().numpy()


def _both_raise(fn_torch, fn_mg, exc=RuntimeError):
    """Both libraries raise ``exc``; returns manygrad's error."""
    with pytest.raises(exc):
        fn_torch()
    with pytest.raises(exc) as info:
        fn_mg()
    return info.value
