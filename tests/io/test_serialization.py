"""mg.save / mg.load and the safetensors reader/writer: round trips, interop with the
``safetensors`` package both ways, clear errors on damaged files, atomic writes."""

import json
import os
import struct

import numpy as np
import pytest

import manygrad as mg
import manygrad.io
import manygrad.optim as optim
from manygrad.errors import CheckpointError
from manygrad.io import load, save
from manygrad.io import safetensors as mst

DTYPES = [mg.float64, mg.float32, mg.float16, mg.bfloat16, mg.int64, mg.int32, mg.int16,
          mg.int8, mg.uint8, mg.bool]  # fmt: skip
NP_TYPES = {d.name: d.np for d in DTYPES}


def _sample(dtype, shape=(3, 5), seed=0):
    rng = np.random.default_rng(seed)
    if dtype is mg.bool:
        return rng.random(shape) > 0.5
    if dtype.is_floating_point:
        a = rng.standard_normal(shape).astype(np.float32) * 100
        a.flat[:3] = [np.inf, -np.inf, 1e-30]
        return a.astype(dtype.np)
    info = np.iinfo(dtype.np)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype.np)


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint8) if a.dtype.itemsize == 1 else a.view(f"u{a.dtype.itemsize}")


def _state(device="cpu"):
    return {d.name: mg.tensor(_sample(d, seed=i), device=device) for i, d in enumerate(DTYPES)} | {
        "scalar": mg.tensor(2.5, device=device),
        "empty": mg.zeros(0, 4, device=device),
    }


# ---------------------------------------------------------------------------- round trips


def test_every_dtype_round_trips_bit_exact(tmp_path, device):
    sd = _state(device)
    save(sd, tmp_path / "m.safetensors")
    got = load(tmp_path / "m.safetensors", map_location=device)
    assert list(got) == list(sd)
    for k, t in sd.items():
        g = got[k]
        assert g.dtype is t.dtype and g.shape == t.shape and g.device == mg.device(device)
        np.testing.assert_array_equal(_bits(g.cpu().numpy()), _bits(t.cpu().numpy()))


def test_map_location_moves_tensors(tmp_path):
    save({"w": mg.ones(2, 2)}, tmp_path / "m.safetensors")
    got = load(tmp_path / "m.safetensors", map_location="fakegpu")["w"]
    assert got.device == mg.device("fakegpu")
    assert load(tmp_path / "m.safetensors")["w"].device == mg.device("cpu")


def test_layout_header_padded_and_aligned(tmp_path):
    save(_state(), tmp_path / "m.safetensors")
    raw = (tmp_path / "m.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert n % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    for name, info in header.items():
        itemsize = np.dtype(NP_TYPES[name]).itemsize if name in NP_TYPES else 4
        assert info["data_offsets"][0] % itemsize == 0, name
    assert max(i["data_offsets"][1] for i in header.values()) == len(raw) - 8 - n


def test_nested_checkpoint_round_trip(tmp_path):
    w = mg.randn(3, 2, requires_grad=True)
    b = mg.zeros(2, requires_grad=True)
    opt = optim.Adam([w, b], lr=0.01, amsgrad=True)
    (w.sum() + b.sum()).backward()
    opt.step()
    ckpt = {
        "model": {"fc.weight": w.detach(), "fc.bias": b.detach()},
        "optim": opt.state_dict(),
        "epoch": 7,
        "history": [0.5, 0.25, float("nan"), float("inf")],
        "config": {"name": "mlp", "sizes": (3, 2), "dropout": None, "bn": False, 1: "int key"},
        "tied": [w.detach()] * 2,
        "host": np.arange(4, dtype=np.int16),
    }
    save(ckpt, tmp_path / "ckpt.safetensors", metadata={"author": "me"})
    got = load(tmp_path / "ckpt.safetensors")
    assert got["epoch"] == 7 and isinstance(got["epoch"], int)
    assert got["history"][:2] == [0.5, 0.25] and np.isnan(got["history"][2])
    assert got["history"][3] == float("inf")
    assert got["config"] == ckpt["config"] and isinstance(got["config"]["sizes"], tuple)
    assert list(got["config"]) == ["name", "sizes", "dropout", "bn", 1]
    np.testing.assert_array_equal(got["model"]["fc.weight"].numpy(), w.detach().numpy())
    assert got["tied"][0] is got["tied"][1]
    assert got["host"].dtype == np.int16 and got["host"].tolist() == [0, 1, 2, 3]
    sd, ref = got["optim"], opt.state_dict()
    assert sd["param_groups"] == ref["param_groups"]
    assert list(sd["state"]) == [0, 1] and sd["state"][0]["step"] == 1
    for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        np.testing.assert_array_equal(sd["state"][1][k].numpy(), ref["state"][1][k].numpy())
    assert mst.read_metadata(tmp_path / "ckpt.safetensors")["author"] == "me"


def test_other_values_are_pickled_and_safe_ones_load_by_default(tmp_path):
    # NOTE: as in PyTorch: sets and tuple keys need pickle; their classes are allowed
    save({"a": {"b": {1, 2}}}, tmp_path / "x.safetensors")
    assert load(tmp_path / "x.safetensors") == {"a": {"b": {1, 2}}}
    save({(1, 2): mg.ones(1)}, tmp_path / "y.safetensors")
    assert load(tmp_path / "y.safetensors")[(1, 2)].tolist() == [1.0]
    with pytest.raises(TypeError, match="str to str"):
        save({"w": mg.ones(1)}, tmp_path / "z.safetensors", metadata={"epoch": 3})
    assert sorted(os.listdir(tmp_path)) == ["x.safetensors", "y.safetensors"]


# ---------------------------------------------------------------------------- interop

st_numpy = pytest.importorskip("safetensors.numpy")


def test_reads_files_of_safetensors_numpy(tmp_path):
    arrays = {d.name: _sample(d, seed=i) for i, d in enumerate(DTYPES) if d is not mg.bfloat16}
    st_numpy.save_file(arrays, str(tmp_path / "a.safetensors"), metadata={"k": "v"})
    got = load(tmp_path / "a.safetensors")
    for k, a in arrays.items():
        np.testing.assert_array_equal(_bits(got[k].numpy()), _bits(a))
    assert mst.read_metadata(tmp_path / "a.safetensors") == {"k": "v"}


def test_safetensors_numpy_reads_our_files(tmp_path):
    sd = {k: v for k, v in _state().items() if k != "bfloat16"}
    save(sd, tmp_path / "m.safetensors", metadata={"format": "np"})
    got = st_numpy.load_file(str(tmp_path / "m.safetensors"))
    assert set(got) == set(sd)
    for k, t in sd.items():
        np.testing.assert_array_equal(_bits(got[k]), _bits(t.numpy()))


def test_reads_torch_state_dict_incl_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    gen = torch.Generator().manual_seed(0)
    sd = {
        "fc.weight": torch.randn(4, 3, generator=gen),
        "fc.bias": torch.randn(4, generator=gen).to(torch.bfloat16),
        "emb": torch.randn(5, 2, generator=gen).to(torch.float16),
        "steps": torch.arange(6, dtype=torch.int64).reshape(2, 3),
        "mask": torch.tensor([True, False]),
    }
    st_torch.save_file(sd, str(tmp_path / "t.safetensors"))
    got = load(tmp_path / "t.safetensors")
    for k, t in sd.items():
        assert got[k].dtype.name == str(t.dtype).replace("torch.", "")
        expect = t.view(torch.int16).numpy() if t.dtype is torch.bfloat16 else t.numpy()
        np.testing.assert_array_equal(_bits(got[k].numpy()), _bits(expect))


def test_torch_reads_our_files_incl_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    sd = _state()
    save(sd, tmp_path / "m.safetensors")
    got = st_torch.load_file(str(tmp_path / "m.safetensors"))
    for k, t in sd.items():
        g = got[k]
        assert tuple(g.shape) == tuple(t.shape)
        g = g.view(torch.int16) if g.dtype is torch.bfloat16 else g
        np.testing.assert_array_equal(_bits(g.numpy()), _bits(t.numpy()))
    # a nested checkpoint is still a valid safetensors file, with dotted names
    save({"optim": {"state": {0: {"m": mg.ones(2)}}}}, tmp_path / "n.safetensors")
    assert list(st_torch.load_file(str(tmp_path / "n.safetensors"))) == ["optim.state.0.m"]


# ---------------------------------------------------------------------------- damaged files


def _good(tmp_path):
    path = tmp_path / "good.safetensors"
    save({"a": mg.arange(10, dtype=mg.float32), "b": mg.ones(4, dtype=mg.int64)}, path)
    return path, path.read_bytes()


def _header(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _with_header(header, data):
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + data


def _corrupt(kind, raw):
    header, data = _header(raw)
    if kind == "truncated":
        return raw[:-5]
    if kind == "tiny":
        return raw[:5]
    if kind == "header_len":
        return struct.pack("<Q", 10**12) + raw[8:]
    if kind == "not_json":
        return struct.pack("<Q", 8) + b"\xff\xfenotjs" + data
    if kind == "overlap":
        header["b"]["data_offsets"] = [8, 40]
        return _with_header(header, data)
    if kind == "out_of_range":
        header["b"]["data_offsets"] = [400, 432]
        return _with_header(header, data)
    if kind == "size_mismatch":
        header["a"]["shape"] = [11]
        return _with_header(header, data)
    if kind == "dtype":
        header["a"]["dtype"] = "F6_E3M2"  # NOTE: a format manygrad lacks
        return _with_header(header, data)
    if kind == "zip":
        return b"PK\x03\x04" + b"\x00" * 60
    if kind == "pickle":
        return b"\x80\x04\x95" + b"\x00" * 60
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind,match",
    [
        (
            "truncated",
            "truncated: tensor 'a' ends at byte 72 of the data, but the file holds only 67",
        ),
        ("tiny", "only 5 bytes"),
        ("header_len", "bad header length 1000000000000"),
        ("not_json", "header is not JSON"),
        ("overlap", "tensors 'b' and 'a' overlap"),
        ("out_of_range", "truncated: tensor 'b' ends at byte 432"),
        ("size_mismatch", "needs 44 bytes but data_offsets"),
        ("dtype", "dtype 'F6_E3M2', which manygrad can't load"),
        ("zip", "zip archive"),
        ("pickle", "a pickle"),
    ],
)
def test_damaged_files_raise_checkpoint_error(tmp_path, kind, match):
    _, raw = _good(tmp_path)
    bad = tmp_path / f"{kind}.safetensors"
    bad.write_bytes(_corrupt(kind, raw))
    with pytest.raises(CheckpointError, match=match) as e:
        load(bad)
    assert str(bad) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load(tmp_path / "nope.safetensors")


def test_corrupt_structure_metadata(tmp_path):
    path = tmp_path / "c.safetensors"
    mst.save_file({"w": mg.ones(2)}, path, metadata={"manygrad.structure": '{"tensor": "x"}'})
    with pytest.raises(CheckpointError, match="names tensor 'x'"):
        load(path)


# ---------------------------------------------------------------------------- atomic writes


def test_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    path, raw = _good(tmp_path)
    calls = []
    real = mg.backend.to_numpy

    def failing(a):
        calls.append(1)
        if len(calls) == 2:  # the second tensor: the header and the first are written
            raise OSError("disk full")
        return real(a)

    monkeypatch.setattr(mg.backend, "to_numpy", failing)
    with pytest.raises(OSError, match="disk full"):
        save({"x": mg.ones(1000), "y": mg.ones(1000)}, path)
    assert len(calls) == 2
    assert path.read_bytes() == raw
    assert os.listdir(tmp_path) == ["good.safetensors"]  # no temporary file left


def test_save_replaces_and_keeps_permissions(tmp_path):
    path, _ = _good(tmp_path)
    save({"z": mg.zeros(3)}, path)
    assert list(load(path)) == ["z"]
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    m = os.umask(0o022)
    os.umask(m)
    return m
