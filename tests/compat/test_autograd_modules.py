"""A ported program reaches manygrad's autograd through every torch.autograd submodule it
imports (function, functional, graph), torch.func and torch.utils.checkpoint."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import torch
    from torch.autograd.function import Function, once_differentiable
    from torch.autograd.functional import hessian
    from torch.autograd.graph import register_multi_grad_hook
    from torch.func import grad, vmap
    from torch.utils.checkpoint import checkpoint

    class Sq(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(Sq.apply(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    y = checkpoint(lambda z: (z * 3).sin(), x, use_reentrant=False)
    print(g.tolist(), h.tolist(), hessian(lambda z: (z ** 3).sum(), x.detach()).tolist())
    print(grad(lambda z: (z * z).sum())(x.detach()).tolist(), vmap(lambda r: r.sum())(torch.ones(3, 2)).tolist())
    print(torch.__name__, callable(register_multi_grad_hook), callable(once_differentiable))
    """
)


def test_autograd_submodules_resolve_to_manygrad(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(SCRIPT)
    out = subprocess.run([sys.executable, "-m", "manygrad.run", str(path)], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "[2.0, 4.0] [2.0, 2.0] [[6.0, 0.0], [0.0, 12.0]]"
    assert lines[1] == "[2.0, 4.0] [2.0, 2.0, 2.0]"
    assert lines[2] == "torch True True"
