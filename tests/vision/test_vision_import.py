"""``import torchvision`` under manygrad's import hook gives manygrad.vision."""

import subprocess
import sys
import textwrap

import pytest

import manygrad.vision as vision
from manygrad.compat import importer


def _run(code: str) -> subprocess.CompletedProcess:
    prelude = "import manygrad.compat as c; c.install()\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_names_map_both_ways():
    assert importer.target_name("torchvision") == "manygrad.vision"
    assert importer.target_name("torchvision.transforms.functional") == (
        "manygrad.vision.transforms.functional"
    )
    assert importer.torch_name_of("manygrad.vision.ops") == "torchvision.ops"
    assert importer.target_name("torch.nn") == "manygrad.nn"  # torch itself unchanged


def test_import_torchvision_is_manygrad_vision():
    r = _run(
        """
        import torch, torchvision
        print(torchvision.__version__)
        print(type(torchvision).__name__, torchvision.get_image_backend())
        try:
            torchvision.no_such_name
        except AttributeError as e:
            print("refused:", e)
        """
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == vision.__version__
    assert lines[1] == "TorchModule PIL"
    assert "torchvision.no_such_name is not supported by manygrad" in lines[2]


def test_missing_torchvision_module_is_an_import_error():
    r = _run(
        """
        try:
            import torchvision.no_such_module
        except ImportError as e:
            print(type(e).__name__, e)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "torchvision.no_such_module is not supported by manygrad" in r.stdout


def test_image_backend():
    assert vision.get_image_backend() == "PIL"
    with pytest.raises(ValueError, match="Pillow"):
        vision.set_image_backend("accimage")
