"""The torch import hook and `manygrad run`: unchanged scripts get manygrad's modules."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch as real_torch

import manygrad as mg
from manygrad import compat
from manygrad.compat import UnsupportedAPIError, UnsupportedModuleError

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def _script(tmp_path, body: str) -> str:
    p = tmp_path / "script.py"
    p.write_text(textwrap.dedent(body))
    return str(p)


def test_torch_tree_is_manygrad(tmp_path):
    path = _script(
        tmp_path,
        """
        import sys
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        import torch.optim as optim
        from torch.utils.data import DataLoader, TensorDataset
        from torch.nn.modules.loss import _Loss
        from torch.nn.utils.rnn import pad_sequence
        import torch.backends.cudnn as cudnn
        cudnn.benchmark = True
        result = (torch, nn, F, optim, DataLoader, _Loss, pad_sequence, sys.argv[1:])
    """,
    )
    g = compat.run_script(path, ["--epochs", "2"])
    torch, nn, F, optim, DataLoader, _Loss, pad_sequence, argv = g["result"]
    assert nn is torch.nn and nn.Linear is mg.nn.Linear and F.relu is mg.nn.functional.relu
    assert optim.Adam is mg.optim.Adam and DataLoader is mg.data.DataLoader
    assert _Loss is mg.nn.loss._Loss and pad_sequence is mg.nn.utils.rnn.pad_sequence
    assert torch.Tensor is mg.Tensor and argv == ["--epochs", "2"]
    assert mg.backends.cudnn.benchmark is True
    mg.backends.cudnn.benchmark = False
    # the real PyTorch imported by this test module is back afterwards
    import torch as again

    assert again is real_torch and sys.modules["torch.nn"] is real_torch.nn


def test_missing_attribute_names_the_torch_api():
    compat.install()
    try:
        import torch

        with pytest.raises(UnsupportedAPIError, match=r"torch\.nn\.NoSuchLayer is not supported "
                           r"by manygrad 0\.1\.0; see docs/porting\.md"):  # fmt: skip
            torch.nn.NoSuchLayer(3)
        with pytest.raises(AttributeError):  # still an AttributeError for hasattr/getattr
            _ = torch.no_such_function
        assert not hasattr(torch.nn.functional, "no_such_function")
        with pytest.raises(UnsupportedModuleError, match=r"torch\.no_such_module is not"):
            import torch.no_such_module  # noqa: F401
        with pytest.raises(ImportError):
            import torch.nn.no_such  # noqa: F401
    finally:
        compat.uninstall()
    assert sys.modules["torch"] is real_torch


def _cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)  # fmt: skip


def test_cli_run_and_python_m(tmp_path):
    path = _script(
        tmp_path,
        """
        import sys
        import torch
        x = torch.ones(2, 3)
        print("sum", float(x.sum()), torch.__name__, type(x).__module__, sys.argv[1:])
        sys.exit(int(sys.argv[1]))
    """,
    )
    r = _cli("-m", "manygrad", "run", path, "0", "--flag")
    assert r.returncode == 0, r.stderr
    assert "sum 6.0 torch manygrad.tensor ['0', '--flag']" in r.stdout
    r = _cli("-m", "manygrad.run", path, "4")
    assert r.returncode == 4 and "sum 6.0" in r.stdout


def test_cli_unsupported_is_one_clear_line(tmp_path):
    path = _script(
        tmp_path,
        """
        import torch
        torch.nn.NoSuchLayer(3)
    """,
    )
    r = _cli("-m", "manygrad", "run", path)
    assert r.returncode == 3
    assert "error: torch.nn.NoSuchLayer is not supported by manygrad" in r.stderr
    assert "script.py:3" in r.stderr and "Traceback" not in r.stderr
    r = _cli("-m", "manygrad", "run", str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "no such script" in r.stderr


def test_cli_error_in_the_script_shows_its_traceback_from_the_script(tmp_path):
    path = _script(
        tmp_path,
        """
        import torch
        def f():
            raise ValueError("bad value in the user's code")
        f()
    """,
    )
    r = _cli("-m", "manygrad", "run", path)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    # as `python script.py` shows it: the script's frames first, no runner or runpy frames
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1].strip().startswith('File "') and "script.py" in lines[1], r.stderr
    assert "runpy" not in r.stderr and "runner.py" not in r.stderr
    assert lines[-1] == "ValueError: bad value in the user's code"


def test_common_import_forms(tmp_path):
    path = _script(
        tmp_path,
        """
        import torch
        from torch import nn, optim, Tensor
        from torch.nn import functional as F
        from torch.optim.lr_scheduler import StepLR
        import torch.utils.data as data
        from torch.utils.data.dataloader import default_collate
        from torch.utils.data.dataset import Dataset
        from torch.utils.data.sampler import RandomSampler
        from torch.utils.data.distributed import DistributedSampler
        import torch.distributions as dist
        from torch.distributions.normal import Normal
        from torch.distributions.categorical import Categorical
        from torch.distributions.kl import kl_divergence
        from torch.nn.parameter import Parameter
        from torch.optim.optimizer import Optimizer
        from torch.nn.modules.module import Module
        from torch.nn.utils.rnn import pad_sequence, PackedSequence
        from torch.cuda.amp import GradScaler, autocast
        import torch.backends.cudnn as cudnn
        torch.testing.assert_close(torch.ones(2), torch.ones(2))
        x = torch.autograd.Variable(torch.ones(2), requires_grad=True)
        result = (Tensor, F, Dataset, Normal, Parameter, Optimizer, Module, GradScaler,
                  torch.version.cuda, x.requires_grad, data.DataLoader, default_collate)
    """,
    )
    got = compat.run_script(path)["result"]
    assert got[0] is mg.Tensor and got[1].relu is mg.nn.functional.relu
    assert got[2] is mg.data.Dataset and got[3] is mg.distributions.Normal
    assert got[4] is mg.nn.Parameter and got[5] is mg.optim.Optimizer
    assert (
        got[6] is mg.nn.Module
        and got[7] is mg.cuda.amp.GradScaler
        and issubclass(got[7], mg.amp.GradScaler)
    )
    assert got[8] is None and got[9] is True and got[10] is mg.data.DataLoader
    assert got[11] is mg.utils.data.default_collate


def test_worker_processes_get_manygrad_too(tmp_path):
    """DataLoader workers start a fresh interpreter that re-imports the script."""
    path = _script(
        tmp_path,
        """
        import torch
        from torch.utils.data import DataLoader, Dataset, get_worker_info

        class Probe(Dataset):
            def __len__(self):
                return 2

            def __getitem__(self, i):
                return {"who": repr(torch), "worker": get_worker_info() is not None}

        if __name__ == "__main__":
            for item in DataLoader(Probe(), batch_size=None, num_workers=1):
                print(item["who"], item["worker"])
    """,
    )
    r = _cli("-m", "manygrad", "run", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("(manygrad: 'manygrad')> True") == 2, r.stdout


def test_star_import(tmp_path):
    path = _script(
        tmp_path,
        """
        from torch import *
        result = (zeros(2), Tensor, float32)
    """,
    )
    zeros, tensor_cls, f32 = compat.run_script(path)["result"]
    assert isinstance(zeros, mg.Tensor) and tensor_cls is mg.Tensor and f32 is mg.float32


def test_dtypes_and_sizes_print_as_pytorchs_inside_a_script(tmp_path):
    path = _script(
        tmp_path,
        """
        import torch
        x = torch.ones(2, 3, dtype=torch.float64)
        result = (str(x.dtype), repr(x.shape), repr(x), str(torch.float16).split(".")[-1])
    """,
    )
    dt, shape, text, half = compat.run_script(path)["result"]
    assert dt == str(real_torch.float64) and shape == repr(real_torch.ones(2, 3).shape)
    assert text.endswith("dtype=torch.float64)") and half == "float16"
    assert repr(mg.float64) == "manygrad.float64"  # outside the script: manygrad's names
    assert repr(mg.ones(2).shape) == "manygrad.Size([2])"


def test_nn_utils_submodules(tmp_path):
    path = _script(
        tmp_path,
        """
        import torch
        from torch.nn.utils.clip_grad import clip_grad_norm_
        from torch.nn.utils.convert_parameters import parameters_to_vector
        from torch.nn.utils.memory_format import convert_conv2d_weight_memory_format
        m = torch.nn.Linear(3, 2)
        m(torch.ones(1, 3)).sum().backward()
        norm = float(clip_grad_norm_(m.parameters(), 0.1))
        result = (norm, tuple(parameters_to_vector(m.parameters()).shape),
                  convert_conv2d_weight_memory_format)
    """,
    )
    norm, shape, convert = compat.run_script(path)["result"]
    assert norm > 0 and shape == (8,)
    assert convert is mg.nn.utils.convert_conv2d_weight_memory_format


def test_autograd_submodules_resolve(tmp_path):
    """torch.autograd's submodules that programs import by name: forward AD included."""
    path = _script(
        tmp_path,
        """
        import torch
        import torch.autograd.forward_ad as fwAD
        from torch.autograd.grad_mode import no_grad, set_grad_enabled
        from torch.autograd.variable import Variable
        from torch.autograd.gradcheck import gradcheck
        x = torch.tensor([0.5, 1.0], dtype=torch.float64, requires_grad=True)
        with fwAD.dual_level():
            tangent = fwAD.unpack_dual(torch.sin(fwAD.make_dual(x.detach(), torch.ones(2)))).tangent
        result = (tangent.tolist(), gradcheck(torch.sin, (x,)), no_grad, set_grad_enabled, Variable)
    """,
    )
    got = compat.run_script(path)["result"]
    assert got[0] == pytest.approx([0.8775825618903728, 0.5403023058681398])
    assert got[1] is True and got[2] is mg.no_grad and got[3] is mg.set_grad_enabled


def test_torch_version_is_the_api_level_and_compares_as_a_version(tmp_path):
    path = _script(
        tmp_path,
        """
        import torch
        v = torch.__version__
        result = (str(v), torch.version.__version__, v >= "2.0", v >= (1, 12), v < "2.14",
                  v < (2, 13, 1), v > "2.13.0", v == "2.13.0", v >= "10.0", v == v)
        """,
    )
    got = compat.run_script(path)["result"]
    assert got[0] == got[1] == f"2.13.0+manygrad.{mg.__version__}"
    assert got[2:] == (True, True, True, True, True, False, False, True)
    # the version PyTorch itself reports compares the same way
    real = real_torch.__version__
    assert (real >= "2.0", real >= (1, 12), real > "2.13.0", real == "2.13.0") == (
        True, True, True, False)  # fmt: skip
