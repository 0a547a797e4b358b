"""torch modules that ported programs import by path (torch.utils.model_zoo,
torch.amp.grad_scaler, torch.amp.autocast_mode, torch.export.dynamic_shapes, ...),
compared with PyTorch's."""

import numpy as np
import pytest
import torch
import torch.amp.autocast_mode as t_autocast_mode
import torch.amp.grad_scaler as t_grad_scaler
import torch.utils.model_zoo as t_model_zoo

import manygrad as mg
from manygrad import compat
from manygrad.compat import torch_amp_modules, torch_export_dynamic_shapes
from manygrad.utils import model_zoo

# torch modules a ported program imports by name, with a name it reads from each
IMPORTABLE = [
    ("torch._dynamo", "mark_dynamic"), ("torch._dynamo.config", "suppress_errors"),
    ("torch._inductor", "config"), ("torch._inductor.config", "coordinate_descent_tuning"),
    ("torch.utils.model_zoo", "load_url"), ("torch.amp.grad_scaler", "GradScaler"),
    ("torch.amp.autocast_mode", "autocast"), ("torch.export.dynamic_shapes", "Dim"),
    ("torch.utils.flop_counter", "FlopCounterMode"), ("torch.cuda.memory", "memory_cached"),
    ("torch.cuda.random", "get_rng_state"), ("torch.cuda.nccl", "version"),
    ("torch.nn.attention.bias", "causal_lower_right"),
]  # fmt: skip


@pytest.mark.parametrize("name,attr", IMPORTABLE)
def test_module_imports_under_the_hook(tmp_path, name, attr):
    path = tmp_path / "script.py"
    path.write_text(f"import importlib\nmod = importlib.import_module({name!r})\n")
    got = compat.run_script(str(path))["mod"]
    assert got.__name__ == name
    real = __import__(name, fromlist=["_"])
    assert hasattr(real, attr) and hasattr(got, attr)


def test_model_zoo_load_url_reads_what_torch_saved(tmp_path):
    sd = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    src = tmp_path / "weights.pth"
    torch.save(sd, src)
    ours = model_zoo.load_url(src.as_uri(), tmp_path / "mg", progress=False)
    theirs = t_model_zoo.load_url(src.as_uri(), str(tmp_path / "pt"), progress=False)
    assert list(ours) == list(theirs)
    for k in theirs:
        np.testing.assert_array_equal(ours[k].numpy(), theirs[k].numpy())
    assert model_zoo.load_url is mg.hub.load_state_dict_from_url


def test_amp_modules_hold_manygrads_objects_under_pytorchs_names():
    assert torch_amp_modules.GradScaler is mg.amp.GradScaler
    assert torch_amp_modules.autocast is mg.amp.autocast
    for name in ("custom_fwd", "custom_bwd", "is_autocast_available"):
        assert getattr(torch_amp_modules, name) is getattr(mg.amp, name)
        assert hasattr(t_autocast_mode, name)
    assert {s.name: s.value for s in torch_amp_modules.OptState} == {
        s.name: s.value for s in t_grad_scaler.OptState
    }
    for dev in ("cpu", "cuda"):
        assert torch_amp_modules.is_autocast_available(
            dev
        ) == t_autocast_mode.is_autocast_available(dev)


def test_grad_scaler_and_autocast_by_module_path_in_a_ported_script(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(
        "import torch\n"
        "from torch.amp.grad_scaler import GradScaler\n"
        "from torch.amp.autocast_mode import autocast\n"
        "m = torch.nn.Linear(3, 2)\n"
        "opt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
        "scaler = GradScaler('cpu', init_scale=4.0)\n"
        "with autocast('cpu', dtype=torch.bfloat16):\n"
        "    out = m(torch.ones(4, 3))\n"
        "scaler.scale(out.float().sum()).backward()\n"
        "scaler.step(opt)\n"
        "scaler.update()\n"
        "result = (out.dtype, scaler.get_scale())\n"
    )
    dtype, scale = compat.run_script(str(path))["result"]
    assert str(dtype).endswith("bfloat16") and scale == 4.0


def test_dynamic_shapes_dims_export_a_model():
    Dim = torch_export_dynamic_shapes.Dim
    assert Dim is mg.export.Dim and torch_export_dynamic_shapes.dims is mg.export.dims
    batch = Dim("batch", min=1, max=64)
    ep = mg.export.export(mg.nn.Linear(3, 2), (mg.randn(4, 3),), dynamic_shapes=({0: batch},))
    assert tuple(ep.module()(mg.randn(7, 3)).shape) == (7, 2)
    a, b = torch_export_dynamic_shapes.dims("a", "b", max=9)
    ta, tb = torch.export.dynamic_shapes.dims("a", "b", max=9)
    assert (a.__name__, b.__name__, a.max) == (ta.__name__, tb.__name__, ta.max)
