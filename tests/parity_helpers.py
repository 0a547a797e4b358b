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


def run_both(script) -> dict:
    """The standard output of a PyTorch program run by PyTorch and by ``manygrad run``
    (each must exit 0): ``{"torch": ..., "mg": ...}``."""
    import subprocess
    import sys

    out = {}
    for name, cmd in (
        ("torch", [sys.executable]),
        ("mg", [sys.executable, "-m", "manygrad", "run"]),
    ):
        r = subprocess.run([*cmd, str(script)], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{name}: {r.stderr}"
        out[name] = r.stdout
    return out
