"""mg.save writes PyTorch's zip format: real torch.load (weights_only=True and False) reads
it with equal values, dtypes, shapes, strides and structure, and mg.load reads it back;
``.safetensors`` paths, ``metadata=`` and objects that need pickle keep the safetensors
format."""

import collections
import io
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import manygrad as mg
from manygrad.io import safetensors as st
from manygrad.io import serialization as ser
from manygrad.io import torch_write

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # torch's quantized deprecation


@pytest.fixture(autouse=True)
def _torch_warns_once_as_before():
    """torch.load of quantized tensors uses TypedStorage, whose deprecation warning PyTorch
    gives once per process; other tests expect to see it: put the flag back."""
    warn = torch.storage._warn_typed_storage_removal
    before = warn.__dict__.get("has_warned", False)
    yield
    warn.__dict__["has_warned"] = before


DTYPES = ["float64", "float32", "float16", "bfloat16", "complex64", "complex128", "int64",
          "int32", "int16", "int8", "uint8", "bool", "uint16", "uint32", "uint64",
          "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
          "float8_e8m0fnu"]  # fmt: skip


def _bits(a: np.ndarray) -> np.ndarray:
    """The raw bits (NaNs compare, bfloat16 and float8 included)."""
    a = np.ascontiguousarray(a)
    return a.view(f"u{a.itemsize}") if a.dtype.kind not in "bc" else a


def _torch_bits(t) -> np.ndarray:
    t = t.detach().contiguous()
    if t.dtype.is_complex:
        return t.numpy()
    n = t.element_size()
    if t.dtype == torch.bool:
        return t.numpy()
    return (
        t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[n])
        .numpy()
        .view(f"u{n}")
    )


def same_torch(got, want):
    """``got`` (from torch.load) equals manygrad object ``want``: types, values, layout."""
    if isinstance(want, mg.Tensor):
        assert isinstance(got, torch.Tensor), type(got)
        assert str(got.dtype)[6:] == want.dtype.name
        assert tuple(got.shape) == tuple(want.shape)
        assert got.requires_grad == want.requires_grad
        assert isinstance(got, torch.nn.Parameter) == isinstance(want, mg.nn.Parameter)
        if want.is_quantized:
            assert got.qscheme() == getattr(torch, want.qscheme().name)
            np.testing.assert_array_equal(got.int_repr().numpy(), want.int_repr().numpy())
            if want.qscheme() is mg.per_tensor_affine:
                assert (got.q_scale(), got.q_zero_point()) == (want.q_scale(), want.q_zero_point())
            else:
                np.testing.assert_array_equal(got.q_per_channel_scales().numpy(),
                                              want.q_per_channel_scales().numpy())  # fmt: skip
                np.testing.assert_array_equal(got.q_per_channel_zero_points().numpy(),
                                              want.q_per_channel_zero_points().numpy())  # fmt: skip
                assert got.q_per_channel_axis() == want.q_per_channel_axis()
            return
        if want.numel():
            assert got.stride() == want.stride()
        np.testing.assert_array_equal(_torch_bits(got), _bits(want.detach().cpu().numpy()))
    elif isinstance(want, mg.Size):
        assert type(got) is torch.Size and tuple(got) == tuple(want)
    elif isinstance(want, mg.dtype):
        assert got == getattr(torch, want.name)
    elif isinstance(want, mg.backend.Device):
        assert got == torch.device(str(want))
    elif isinstance(want, (dict, list, tuple, set)):
        assert type(got) is type(want)
        if isinstance(want, dict):
            assert list(got) == list(want)
            for k in want:
                same_torch(got[k], want[k])
        elif isinstance(want, set):
            assert got == want
        else:
            assert len(got) == len(want)
            for g, w in zip(got, want):
                same_torch(g, w)
    elif isinstance(want, float) and want != want:
        assert type(got) is float and got != got
    else:
        assert type(got) is type(want) and got == want


def same_mg(got, want):
    """``got`` (from mg.load) equals ``want``, layout included."""
    if isinstance(want, mg.Tensor):
        assert type(got) is type(want) or (type(want) is mg.nn.Buffer and type(got) is mg.Tensor)
        assert got.dtype == want.dtype and tuple(got.shape) == tuple(want.shape)
        assert got.requires_grad == want.requires_grad
        if want.is_quantized:
            np.testing.assert_array_equal(got.int_repr().numpy(), want.int_repr().numpy())
            assert got.qscheme() is want.qscheme()
            return
        if want.numel():
            assert got.stride() == want.stride()
        np.testing.assert_array_equal(_bits(got.detach().numpy()), _bits(want.detach().numpy()))
    elif isinstance(want, (dict, list, tuple)):
        assert type(got) is type(want) and len(got) == len(want)
        pairs = zip(got.values(), want.values()) if isinstance(want, dict) else zip(got, want)
        if isinstance(want, dict):
            assert list(got) == list(want)
        for g, w in pairs:
            same_mg(g, w)
    elif isinstance(want, float) and want != want:
        assert got != got
    else:
        assert type(got) is type(want) and got == want


def check(obj, path):
    """Save with mg, load with torch (both modes) and with mg, compare with ``obj``."""
    mg.save(obj, path)
    assert zipfile.is_zipfile(path)
    for weights_only in (True, False):
        same_torch(torch.load(path, weights_only=weights_only), obj)
    same_mg(mg.load(path), obj)


def _rand(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = mg.tensor(rng.standard_normal(shape) * 3, dtype=mg.float32)
    if name == "bool":
        return x > 0
    if name.startswith("complex"):
        return mg.complex(x, -x).to(getattr(mg, name))
    if name.startswith("uint"):
        return x.abs().to(mg.int64).to(getattr(mg, name))
    return x.to(getattr(mg, name))


# ------------------------------------------------------------------------ state dicts


def _modules():
    nn = mg.nn
    yield nn.Linear(5, 3)
    yield nn.Conv2d(2, 4, 3)
    yield nn.Sequential(nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), nn.ReLU())
    yield nn.LSTM(4, 6, num_layers=2)
    yield nn.Embedding(7, 3)
    yield nn.TransformerEncoderLayer(8, 2, 16)


@pytest.mark.parametrize("i", range(6))
def test_module_state_dicts(tmp_path, i):
    mg.manual_seed(i)
    m = list(_modules())[i]
    if i == 2:
        m(mg.randn(2, 3, 6))  # running statistics and num_batches_tracked move
    sd = m.state_dict()
    check(sd, tmp_path / "m.pt")
    assert type(torch.load(tmp_path / "m.pt")) is collections.OrderedDict


def test_state_dict_loads_into_the_pytorch_model_with_equal_outputs(tmp_path):
    mg.manual_seed(0)
    m = mg.nn.Sequential(mg.nn.Linear(4, 8), mg.nn.Tanh(), mg.nn.Linear(8, 2))
    mg.save(m.state_dict(), tmp_path / "model.pth")
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    tm.load_state_dict(torch.load(tmp_path / "model.pth"))
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    want = m(mg.tensor(x)).detach().numpy()
    np.testing.assert_allclose(tm(torch.tensor(x)).detach().numpy(), want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("opt", ["SGD", "Adam"])
def test_optimizer_state_dict_after_steps(tmp_path, opt):
    mg.manual_seed(0)
    m = mg.nn.Linear(3, 2)
    kw = {"lr": 0.1, "momentum": 0.9} if opt == "SGD" else {"lr": 0.01}
    o = getattr(mg.optim, opt)(m.parameters(), **kw)
    for _ in range(3):
        o.zero_grad()
        m(mg.randn(4, 3)).pow(2).sum().backward()
        o.step()
    sd = o.state_dict()
    check(sd, tmp_path / "o.pt")
    # PyTorch's optimizer takes the state as its own
    tm = torch.nn.Linear(3, 2)
    to = getattr(torch.optim, opt)(tm.parameters(), **kw)
    to.load_state_dict(torch.load(tmp_path / "o.pt"))
    key = "momentum_buffer" if opt == "SGD" else "exp_avg"
    np.testing.assert_array_equal(to.state[tm.weight][key].numpy(), sd["state"][0][key].numpy())


def test_scheduler_state_dict(tmp_path):
    o = mg.optim.SGD(mg.nn.Linear(2, 2).parameters(), lr=0.5)
    s = mg.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)
    for _ in range(3):
        o.step()
        s.step()
    check(s.state_dict(), tmp_path / "s.pt")
    to = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.5)
    ts = torch.optim.lr_scheduler.StepLR(to, step_size=2, gamma=0.5)
    ts.load_state_dict(torch.load(tmp_path / "s.pt"))
    assert ts.last_epoch == 3 and ts.get_last_lr() == s.get_last_lr()


def test_nested_checkpoint(tmp_path):
    mg.manual_seed(0)
    m = mg.nn.Linear(3, 2)
    o = mg.optim.Adam(m.parameters())
    m(mg.randn(2, 3)).sum().backward()
    o.step()
    ckpt = {"model": m.state_dict(), "optim": o.state_dict(), "epoch": 7, "loss": 0.125,
            "nan": float("nan"), "inf": float("-inf"), "big": 2**70, "name": "run-ü",
            "best": None, "flags": (True, False), "nested": [[1, 2.5], {"k": "v", 3: None}],
            "size": mg.Size([2, 3]), "dtype": mg.float16, "dev": mg.device("cpu"),
            "raw": b"\x00\xffab", "ba": bytearray(b"xy"), "set": {1, 2}, "cx": 1 - 2j,
            "counter": collections.Counter("aab"), "od": collections.OrderedDict(b=1, a=2),
            "empty": {}, "t0": mg.tensor(3.5), "tempty": mg.zeros(0, 4)}  # fmt: skip
    check(ckpt, tmp_path / "ckpt.pt")
    got = torch.load(tmp_path / "ckpt.pt")
    assert type(got["counter"]) is collections.Counter
    assert got["tempty"].stride() == torch.zeros(0, 4).stride()  # as PyTorch lays it out
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "ckpt.pt") == []


# ------------------------------------------------------------------------ tensors


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype(tmp_path, name):
    obj = {"t": _rand(name, (3, 4)), "scalar": _rand(name, ()), "empty": _rand(name, (2, 0)),
           "view": _rand(name, (4, 5))[1:, ::2]}  # fmt: skip
    check(obj, tmp_path / f"{name}.pt")


def test_views_share_storage_with_their_strides_and_offsets(tmp_path):
    x = mg.arange(24.0).reshape(4, 6)
    views = {"x": x, "t": x.t(), "part": x[1:, 2:5], "step": x[:, ::2], "row": x[2],
             "item": x[3, 4], "expanded": x[0, :1].expand(3, 5), "again": x}  # fmt: skip
    path = tmp_path / "v.pt"
    check(views, path)
    got = torch.load(path)
    assert got["x"] is got["again"]  # one object, as PyTorch pickles it
    ptr = got["x"].untyped_storage().data_ptr()
    for k, v in views.items():
        assert got[k].untyped_storage().data_ptr() == ptr, k
        assert got[k].storage_offset() == v.storage_offset(), k
    assert len([n for n in zipfile.ZipFile(path).namelist() if "/data/" in n]) == 1
    got["x"][2, 3] = -1.0  # the views see writes, as the originals would
    assert got["t"][3, 2].item() == -1.0 and got["part"][1, 1].item() == -1.0
    back = mg.load(path)
    for k, v in views.items():
        assert back[k].storage_offset() == v.storage_offset(), k
        assert back[k].untyped_storage().data_ptr() == back["x"].untyped_storage().data_ptr()
    back["x"][1, 2] = -5.0
    assert back["t"][2, 1].item() == -5.0 and back["part"][0, 0].item() == -5.0


def test_tensors_of_one_storage_in_other_dtypes_and_negative_strides(tmp_path):
    x = mg.arange(8, dtype=mg.int32)
    rev = mg.Tensor._wrap(np.arange(6.0)[::-1])  # NumPy's negative strides: copied
    obj = {"x": x, "bytes": x.view(mg.uint8), "rev": rev}
    mg.save(obj, tmp_path / "d.pt")
    got = torch.load(tmp_path / "d.pt")
    np.testing.assert_array_equal(got["bytes"].numpy(), x.view(mg.uint8).numpy())
    np.testing.assert_array_equal(got["rev"].numpy(), np.arange(6.0)[::-1])
    np.testing.assert_array_equal(mg.load(tmp_path / "d.pt")["rev"].numpy(), np.arange(6.0)[::-1])


def test_parameters_and_requires_grad(tmp_path):
    obj = {"p": mg.nn.Parameter(mg.randn(3, 2)),
           "frozen": mg.nn.Parameter(mg.randn(2), requires_grad=False),
           "leaf": mg.randn(4).requires_grad_(), "plain": mg.randn(2),
           "int_param": mg.nn.Parameter(mg.arange(3), requires_grad=False)}  # fmt: skip
    check(obj, tmp_path / "p.pt")
    got = torch.load(tmp_path / "p.pt")
    assert got["p"].requires_grad and not got["frozen"].requires_grad


def test_quantized_tensors(tmp_path):
    x = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)), dtype=mg.float32)
    obj = {"q8": mg.quantize_per_tensor(x, 0.05, 3, mg.quint8),
           "qi8": mg.quantize_per_tensor(x, 0.1, -2, mg.qint8),
           "q32": mg.quantize_per_tensor(x, 0.01, 0, mg.qint32),
           "pc": mg.quantize_per_channel(x, mg.tensor([0.1, 0.2, 0.05], dtype=mg.float64),
                                         mg.tensor([0, 1, -1]), 1, mg.qint8),
           "float_qparams": mg.quantize_per_channel(x, mg.tensor([0.1, 0.2, 0.05, 0.3]),
                                                    mg.tensor([0.5, 1.0, -1.0, 0.0]), 0,
                                                    mg.quint8)}  # fmt: skip
    check(obj, tmp_path / "q.pt")
    got = torch.load(tmp_path / "q.pt", weights_only=True)
    assert got["float_qparams"].qscheme() == torch.per_channel_affine_float_qparams
    np.testing.assert_array_equal(got["pc"].dequantize().numpy(), obj["pc"].dequantize().numpy())


# ------------------------------------------------------------------------ the file


def test_archive_layout(tmp_path):
    mg.save({"w": mg.ones(3), "b": mg.zeros(1, dtype=mg.int64)}, tmp_path / "my.model.pt")
    z = zipfile.ZipFile(tmp_path / "my.model.pt")
    names = z.namelist()
    assert names[0] == "my.model/data.pkl"
    for rec in ("version", "byteorder", ".format_version", ".storage_alignment",
                ".data/serialization_id", "data/0", "data/1"):  # fmt: skip
        assert f"my.model/{rec}" in names
    assert z.read("my.model/byteorder") == b"little" and z.read("my.model/version") == b"3\n"
    assert z.read("my.model/data.pkl")[:2] == b"\x80\x02"  # pickle protocol 2
    raw = (tmp_path / "my.model.pt").read_bytes()
    for info in z.infolist():  # every record's bytes start 64-byte aligned
        n, e = np.frombuffer(raw[info.header_offset + 26 : info.header_offset + 30], "<u2")
        assert (info.header_offset + 30 + n + e) % 64 == 0, info.filename
        assert info.compress_type == zipfile.ZIP_STORED
    assert z.testzip() is None  # CRCs


@pytest.mark.parametrize(("name", "archive"), [("a.b.c", "a.b"), ("noext", "noext"),
                                               ("ü.pt", "archive"), ("x.pth", "x")])  # fmt: skip
def test_archive_name_is_the_stem_as_in_pytorch(tmp_path, name, archive):
    mg.save({"w": mg.ones(2)}, tmp_path / name)
    assert zipfile.ZipFile(tmp_path / name).namelist()[0] == f"{archive}/data.pkl"
    assert torch.load(tmp_path / name)["w"].tolist() == [1.0, 1.0]


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    mg.save({"w": mg.arange(3.0)}, buf)
    assert zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()[0] == "archive/data.pkl"
    assert torch.load(io.BytesIO(buf.getvalue()))["w"].tolist() == [0.0, 1.0, 2.0]
    assert mg.load(io.BytesIO(buf.getvalue()))["w"].tolist() == [0.0, 1.0, 2.0]


def test_offsets_as_pytorch_computes_them_and_mmap(tmp_path, monkeypatch):
    obj = {"a": mg.randn(5), "b": mg.zeros(0), "c": mg.arange(7, dtype=mg.int16), "s": "x"}
    mg.save(obj, tmp_path / "o.pt")
    monkeypatch.setenv("TORCH_SERIALIZATION_DEBUG", "1")  # checks each record's offset
    same_torch(torch.load(tmp_path / "o.pt"), obj)
    same_torch(torch.load(tmp_path / "o.pt", mmap=True), obj)


def test_zip64_records(tmp_path, monkeypatch):
    monkeypatch.setattr(torch_write, "_ZIP64_FROM", 0)  # every size and offset as zip64
    obj = {"a": mg.randn(50), "b": mg.arange(10), "e": mg.zeros(0)}
    check(obj, tmp_path / "z.pt")
    assert zipfile.ZipFile(tmp_path / "z.pt").testzip() is None


def test_pytorch_views_load_as_views(tmp_path):
    x = torch.arange(12.0).reshape(3, 4)
    torch.save({"x": x, "t": x.t(), "c": x[1:, 1:3]}, tmp_path / "t.pt")
    got = mg.load(tmp_path / "t.pt")
    assert got["t"].stride() == (1, 4) and got["c"].storage_offset() == 5
    got["x"][1, 1] = 100.0
    assert got["t"][1, 1].item() == 100.0 and got["c"][0, 0].item() == 100.0


# ------------------------------------------------------------------------ the policy


def test_safetensors_paths_and_metadata_keep_safetensors(tmp_path):
    sd = {"w": mg.ones(2, 3)}
    mg.save(sd, tmp_path / "m.safetensors")
    mg.save(sd, tmp_path / "m.pt", metadata={"format": "pt"})
    mg.save({"sd": sd, "epoch": 1}, tmp_path / "c.SAFETENSORS")
    for name in ("m.safetensors", "m.pt", "c.SAFETENSORS"):
        assert not zipfile.is_zipfile(tmp_path / name)
        st.read_header(tmp_path / name)
    assert st.read_header(tmp_path / "m.pt")[1] == {"format": "pt"}
    assert mg.load(tmp_path / "c.SAFETENSORS")["epoch"] == 1


def test_objects_that_need_pickle_keep_the_safetensors_format(tmp_path):
    m = mg.nn.Linear(2, 2)
    mg.save(m, tmp_path / "whole.pt")
    assert not zipfile.is_zipfile(tmp_path / "whole.pt")
    assert ser.PICKLE_KEY in st.read_header(tmp_path / "whole.pt")[1]
    assert isinstance(mg.load(tmp_path / "whole.pt", weights_only=False), mg.nn.Linear)
    # NumPy arrays: torch.load(weights_only=True) refuses them; stored without pickle
    mg.save({"a": np.arange(3), "t": mg.ones(1)}, tmp_path / "np.pt")
    assert ser.STRUCTURE_KEY in st.read_header(tmp_path / "np.pt")[1]
    np.testing.assert_array_equal(mg.load(tmp_path / "np.pt")["a"], np.arange(3))


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.pt"
    mg.save({"w": mg.ones(2)}, path)
    before = path.read_bytes()

    def boom(self, name, data):
        raise OSError("disk full")

    monkeypatch.setattr(torch_write._ZipWriter, "record", boom)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"w": mg.zeros(5)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.pt"]


def test_tensors_on_any_device(tmp_path, device):
    x = mg.arange(12.0).reshape(3, 4).to(device)
    obj = {"x": x, "t": x.t(), "p": mg.nn.Parameter(mg.ones(2, device=device))}
    mg.save(obj, tmp_path / "d.pt")
    got = torch.load(tmp_path / "d.pt", weights_only=True)
    assert got["t"].stride() == x.t().stride() and got["p"].requires_grad
    np.testing.assert_array_equal(got["t"].numpy(), np.arange(12.0).reshape(3, 4).T)
    back = mg.load(tmp_path / "d.pt", map_location=device)
    assert back["t"].device == x.device
    np.testing.assert_array_equal(back["t"].cpu().numpy(), np.arange(12.0).reshape(3, 4).T)


# ------------------------------------------------------------------------ end to end


def test_manygrad_run_script_saves_what_pytorch_loads(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        x = torch.randn(16, 4)
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        model.eval()
        torch.save(model.state_dict(), "model.pt")
        torch.save({"x": x, "y": model(x).detach(), "optim": opt.state_dict()}, "io.pt")
    """)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    r = subprocess.run([sys.executable, "-m", "manygrad", "run", str(script)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    nn = torch.nn
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    model.eval()
    io_ = torch.load(tmp_path / "io.pt", weights_only=True)
    with torch.no_grad():
        np.testing.assert_allclose(model(io_["x"]).numpy(), io_["y"].numpy(), rtol=1e-5,
                                   atol=1e-6)  # fmt: skip
    assert model[1].num_batches_tracked.item() == 3
    torch.optim.Adam(model.parameters(), lr=0.01).load_state_dict(io_["optim"])
