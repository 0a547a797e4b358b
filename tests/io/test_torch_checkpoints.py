"""Checkpoints written by PyTorch's torch.save, read by mg.load without running pickled
code (as torch.load(weights_only=True))."""

import argparse
import io
import zipfile

import numpy as np
import pytest

import manygrad as mg
from manygrad.errors import CheckpointError

torch = pytest.importorskip("torch")


def _same(got, want):
    assert isinstance(got, mg.Tensor) and got.dtype.name == str(want.dtype)[6:]
    assert tuple(got.shape) == tuple(want.shape)
    got, want = got.detach(), want.detach()
    np.testing.assert_array_equal(got.float().cpu().numpy() if got.dtype is mg.bfloat16
                                  else got.cpu().numpy(), want.float().numpy()
                                  if want.dtype is torch.bfloat16 else want.numpy())  # fmt: skip


def _model(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4), lib.nn.ReLU(),
                             lib.nn.Flatten(), lib.nn.LazyLinear(2) if False else
                             lib.nn.Linear(4 * 6 * 6, 2))  # fmt: skip


def test_state_dict_round_trip_into_a_manygrad_model(tmp_path, device):
    torch.manual_seed(0)
    tm = _model(torch)
    tm(torch.randn(2, 3, 8, 8))  # running statistics move
    torch.save(tm.state_dict(), tmp_path / "m.pt")
    sd = mg.load(tmp_path / "m.pt", map_location=device)
    assert list(sd) == list(tm.state_dict())
    for k, v in tm.state_dict().items():
        _same(sd[k], v)
        assert sd[k].device == mg.device(device)
    mm = _model(mg).to(device)
    mm.load_state_dict(sd)
    x = np.random.RandomState(0).randn(2, 3, 8, 8).astype(np.float32)
    tm.eval()
    mm.eval()
    want = tm(torch.tensor(x)).detach().numpy()
    got = mm(mg.tensor(x, device=device)).detach().cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_training_checkpoint_with_optimizer_state(tmp_path):
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    m(torch.randn(4, 3)).sum().backward()
    opt.step()
    torch.save({"epoch": 7, "model": m.state_dict(), "optimizer": opt.state_dict(),
                "best": np.float64(0.25), "name": "run-1", "tag": b"\x00\x01",
                "shape": torch.Size([2, 3]), "dtype": torch.bfloat16, "ids": {1, 2}},
               tmp_path / "ckpt.pt")  # fmt: skip
    ck = mg.load(tmp_path / "ckpt.pt")
    assert ck["epoch"] == 7 and ck["name"] == "run-1" and ck["tag"] == b"\x00\x01"
    assert ck["best"] == 0.25 and ck["shape"] == mg.Size([2, 3]) and ck["dtype"] is mg.bfloat16
    assert ck["ids"] == {1, 2}
    st = ck["optimizer"]["state"][0]
    _same(st["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.01
    mm = mg.nn.Linear(3, 2)
    mopt = mg.optim.Adam(mm.parameters(), lr=0.01)
    mm.load_state_dict(ck["model"])
    mopt.load_state_dict(ck["optimizer"])


@pytest.mark.parametrize("make", [
    lambda: torch.arange(12.0).reshape(3, 4).t(),  # strided
    lambda: torch.arange(10)[2:7],  # offset into the storage
    lambda: torch.randn(3, 4).to(torch.bfloat16),
    lambda: torch.randn(2, 2).half(),
    lambda: torch.tensor([True, False]),
    lambda: torch.tensor([1 + 2j]),
    lambda: torch.zeros(0, 3),
    lambda: torch.tensor(3.5),
])  # fmt: skip
def test_tensor_layouts_and_dtypes(tmp_path, make):
    t = make()
    torch.save(t, tmp_path / "t.pt")
    _same(mg.load(tmp_path / "t.pt"), t)


def test_tied_weights_and_parameters(tmp_path):
    w = torch.nn.Parameter(torch.randn(3, 2))
    torch.save({"a": w, "b": w}, tmp_path / "p.pt")
    got = mg.load(tmp_path / "p.pt")
    assert isinstance(got["a"], mg.nn.Parameter) and got["a"].requires_grad
    _same(got["b"], w.detach())


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    torch.save({"x": torch.ones(2)}, buf)
    buf.seek(0)
    assert mg.load(buf)["x"].tolist() == [1.0, 1.0]


def test_pickled_objects_are_refused_naming_them(tmp_path):
    torch.save({"args": argparse.Namespace(lr=0.1)}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match=r"argparse\.Namespace.*state_dict"):
        mg.load(tmp_path / "a.pt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(CheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        mg.load(tmp_path / "module.pt")


def test_damaged_archives_are_refused(tmp_path):
    torch.save({"x": torch.ones(4)}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as src, zipfile.ZipFile(tmp_path / "bad.pt",
                                                                      "w") as dst:  # fmt: skip
        for n in src.namelist():
            if "/data/" not in n:
                dst.writestr(n, src.read(n))
    with pytest.raises(CheckpointError, match="missing from the archive"):
        mg.load(tmp_path / "bad.pt")
