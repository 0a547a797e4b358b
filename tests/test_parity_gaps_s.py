"""PyTorch behaviours that ported programs (tests/ports/scripts) rely on, compared with PyTorch."""

import textwrap

import torch as real_torch

from manygrad import compat


def _run(tmp_path, body: str) -> dict:
    p = tmp_path / "script.py"
    p.write_text(textwrap.dedent(body))
    return compat.run_script(str(p))


def test_torch_autograd_gradcheck_is_the_function(tmp_path):
    """torch.autograd.gradcheck is the function (it shadows its submodule), as in PyTorch."""
    got = _run(
        tmp_path,
        """
        import torch
        from torch.autograd.gradcheck import gradcheck as from_module
        x = torch.tensor([0.5, 1.0, -2.0], dtype=torch.float64, requires_grad=True)
        result = (torch.autograd.gradcheck(torch.tanh, (x,)), torch.autograd.gradcheck is from_module)
        """,
    )["result"]
    x = real_torch.tensor([0.5, 1.0, -2.0], dtype=real_torch.float64, requires_grad=True)
    assert got == (real_torch.autograd.gradcheck(real_torch.tanh, (x,)), True)
