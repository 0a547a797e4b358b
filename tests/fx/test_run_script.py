"""An unchanged PyTorch script that uses torch.fx prints the same under ``manygrad run`` as
under PyTorch."""

import contextlib
import io
import subprocess
import sys

import pytest

SCRIPT = """
import pickle

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 2)
        x = x.view(x.size(0), -1)
        return torch.sigmoid(self.fc(x) + 1.0)


def pattern(a):
    return torch.sigmoid(a)


def replacement(a):
    return torch.tanh(a)


model = Net().eval()
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.linspace(-0.5, 0.5, p.numel()).reshape(p.shape))
x = torch.linspace(-1, 1, 2 * 8 * 8).reshape(2, 1, 8, 8)
gm = torch.fx.symbolic_trace(model)
for n in gm.graph.nodes:
    print(n.op, n.name, n.target if isinstance(n.target, str) else n.target.__name__)
ShapeProp(gm).propagate(x)
print([tuple(n.meta["tensor_meta"].shape) for n in gm.graph.nodes if "tensor_meta" in n.meta])
print(len(torch.fx.replace_pattern(gm, pattern, replacement)))
out = gm(x)
print([round(v, 4) for v in out.flatten().tolist()])
print([round(v, 4) for v in torch.fx.Interpreter(gm).run(x).flatten().tolist()])
gm2 = pickle.loads(pickle.dumps(gm))
print(torch.equal(gm2(x), out), gm2.code == gm.code, type(gm2).__name__)
"""


def test_torch_fx_script_runs_under_manygrad_run(tmp_path):
    torch = pytest.importorskip("torch")
    assert "manygrad" not in repr(sys.modules["torch"])  # the real PyTorch answers in-process
    script = tmp_path / "fx_script.py"
    script.write_text(SCRIPT)
    run = subprocess.run([sys.executable, "-m", "manygrad", "run", str(script)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(SCRIPT, str(script), "exec"), {"__name__": "__main__"})
    torch_out = out.getvalue().splitlines()
    assert torch.fx is sys.modules["torch.fx"]
    assert run.stdout.splitlines() == torch_out
    assert "call_function sigmoid sigmoid" in torch_out and torch_out[-4] == "1"
