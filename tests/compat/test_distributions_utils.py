"""``torch.distributions.utils`` and the one-class modules (``torch.distributions.gamma``)
under the import hook, against PyTorch."""

import subprocess
import sys

import numpy as np
import pytest

import manygrad as mg
from manygrad.distributions import utils as mu

torch = pytest.importorskip("torch")
tu = pytest.importorskip("torch.distributions.utils")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_probs_logits_round_trips(dtype):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (4, 5))
    p[0, 0], p[0, 1] = 0.0, 1.0
    x = rng.normal(size=(4, 5)) * 5
    tp, mp = torch.tensor(p).to(getattr(torch, dtype)), mg.tensor(p).to(getattr(mg, dtype))
    tx, mx = torch.tensor(x).to(getattr(torch, dtype)), mg.tensor(x).to(getattr(mg, dtype))
    for binary in (False, True):
        np.testing.assert_allclose(mu.probs_to_logits(mp, binary).numpy(),
                                   tu.probs_to_logits(tp, binary).numpy(), rtol=1e-6)  # fmt: skip
        np.testing.assert_allclose(mu.logits_to_probs(mx, binary).numpy(),
                                   tu.logits_to_probs(tx, binary).numpy(), rtol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(mu.clamp_probs(mp).numpy(), tu.clamp_probs(tp).numpy())


def test_tril_broadcast_and_lazy_property():
    v = np.arange(1.0, 7.0)
    np.testing.assert_array_equal(mu.vec_to_tril_matrix(mg.tensor(v)).numpy(),
                                  tu.vec_to_tril_matrix(torch.tensor(v)).numpy())  # fmt: skip
    a, b = mu.broadcast_all(mg.ones(3), 2.0)
    assert tuple(b.shape) == (3,)
    calls = []

    class Thing:
        @mu.lazy_property
        def value(self):
            calls.append(1)
            return mg.ones(2, requires_grad=True) * 2

    t = Thing()
    with mg.no_grad():
        assert t.value.requires_grad  # NOTE: computed with gradients on, as PyTorch's
    assert t.value is t.value and len(calls) == 1
    assert isinstance(Thing.value, mu.lazy_property)


def test_one_class_modules_import_under_the_hook(tmp_path):
    script = tmp_path / "uses_submodules.py"
    script.write_text(
        "from torch.distributions.gamma import Gamma\n"
        "from torch.distributions.log_normal import LogNormal\n"
        "from torch.distributions.utils import probs_to_logits\n"
        "from torch.distributions.normal import Normal\n"
        "import torch.distributions.studentT as st\n"
        "print(Gamma.__module__.split('.')[0], LogNormal(0.0, 1.0).mean.item() > 1, "
        "st.StudentT.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-m", "manygrad", "run", str(script)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["manygrad", "True", "StudentT"]
