"""torch.embedding_bag's 4-tuple, torch.from_file and the removed linalg names
(compat/torch_low_level_misc.py) against PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg

R = np.random.default_rng(0)
IDS = [1, 2, 4, 5, 4, 3, 2, 9, 9, 7]

# mode, dtype, offsets, include_last_offset, padding_idx, per_sample_weights, index dtype
BAGS = [
    (0, "float32", [0, 3, 3, 6], False, None, False, "int64"),
    (0, "float64", [0, 3, 3, 6], False, None, False, "int64"),
    (0, "float32", [0, 3, 3, 6], False, 4, False, "int64"),
    (0, "float32", [0, 4, 10], True, None, True, "int64"),
    (0, "float64", [0, 4, 10], True, None, True, "int32"),
    (1, "float32", [0, 3, 3, 6], False, None, False, "int64"),
    (1, "float64", [0, 2, 4, 10], True, 9, False, "int32"),
    (1, "float64", [0, 3, 10], False, -1, False, "int64"),
    (2, "float32", [0, 3, 3, 6], False, None, False, "int64"),
    (2, "float64", [0, 3, 7, 8, 8], False, 9, False, "int64"),
    (2, "float64", [0, 5, 7, 10], True, 2, False, "int32"),
]


@pytest.mark.parametrize("mode, dt, offsets, ilo, pad, psw, it", BAGS)
def test_embedding_bag_four_outputs(mode, dt, offsets, ilo, pad, psw, it, device):
    w = R.standard_normal((10, 3)).astype(dt)
    w[7] = w[2]  # NOTE: equal rows: max_indices names the first id holding the maximum
    mw, tw = mg.tensor(w, requires_grad=True, device=device), torch.tensor(w, requires_grad=True)
    ids, off = np.array(IDS, it), np.array(offsets, it)
    p = R.random(len(IDS)).astype(dt) if psw else None
    mp = None if p is None else mg.tensor(p, requires_grad=True, device=device)
    tp = None if p is None else torch.tensor(p, requires_grad=True)
    got = mg.embedding_bag(mw, mg.tensor(ids, device=device), mg.tensor(off, device=device),
                           False, mode, False, mp, ilo, pad)  # fmt: skip
    want = torch.embedding_bag(tw, torch.tensor(ids), torch.tensor(off), False, mode, False, tp,
                               ilo, pad)  # fmt: skip
    assert len(got) == 4
    np.testing.assert_allclose(got[0].detach().cpu().numpy(), want[0].detach().numpy(),
                               rtol=1e-6, atol=1e-6)  # fmt: skip
    for a, b in zip(got[1:], want[1:]):
        assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
        assert tuple(a.shape) == tuple(b.shape)
        assert np.array_equal(a.cpu().numpy(), b.numpy())
    g = R.standard_normal(tuple(want[0].shape)).astype(dt)
    (got[0] * mg.tensor(g, device=device)).sum().backward()
    (want[0] * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(mw.grad.cpu().numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-6)
    if p is not None:
        np.testing.assert_allclose(mp.grad.cpu().numpy(), tp.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_bag_matches_functional_and_defaults():
    w, ids, off = mg.randn(10, 4), mg.tensor(IDS), mg.tensor([0, 4])
    out = mg.embedding_bag(w, ids, off)[0]  # NOTE: PyTorch's short overload: mode 0 (sum)
    ref = mg.nn.functional.embedding_bag(ids, w, off, mode="sum")
    assert np.array_equal(out.numpy(), ref.numpy())
    half = mg.embedding_bag(w.half(), ids, off)
    assert half[0].dtype == mg.float16 and half[1].numel() == 0


@pytest.mark.parametrize("args, match", [
    ((3, False, None, False, None, [0, 2]), "`mode` must be"),
    ((0, False, None, False, None, [1, 2]), "offsets\\[0\\] has to be 0"),
    ((1, False, "psw", False, None, [0, 2]), "per_sample_weights only supported"),
    ((0, False, None, False, 10, [0, 2]), "padding_idx must be within"),
])  # fmt: skip
def test_embedding_bag_errors_as_torch(args, match):
    mode, sparse, psw, ilo, pad, off = args
    for lib in (mg, torch):
        w, ids = lib.ones(10, 3), lib.tensor([1, 2, 3])
        p = lib.ones(3) if psw else None
        with pytest.raises(RuntimeError, match=match):
            lib.embedding_bag(w, ids, lib.tensor(off), False, mode, sparse, p, ilo, pad)


@pytest.mark.parametrize("dt", ["float32", "float64", "int16", "uint8"])
@pytest.mark.parametrize("shared", [None, False, True])
def test_from_file(tmp_path, dt, shared):
    path = tmp_path / "data.bin"
    a = (R.standard_normal(12) * 50).astype(dt)
    a.tofile(path)
    kw = dict(dtype=getattr(mg, dt))
    got = mg.from_file(str(path), shared, 12, **kw)
    want = torch.from_file(str(path), shared, 12, dtype=getattr(torch, dt))
    assert got.dtype == getattr(mg, dt) and got.device.type == "cpu"
    assert np.array_equal(got.numpy(), want.numpy())
    got[0] = 7
    got[3:5].add_(1)
    on_disk = np.fromfile(path, dt)
    if shared:
        assert on_disk[0] == 7 and np.array_equal(on_disk, got.numpy())
    else:
        assert np.array_equal(on_disk, a)  # NOTE: a private mapping leaves the file alone
    assert np.array_equal(mg.from_file(str(path), shared, 5, **kw).numpy(),
                          torch.from_file(str(path), shared, 5, dtype=getattr(torch, dt)).numpy())  # fmt: skip


def test_from_file_sizes_and_creation(tmp_path):
    path = tmp_path / "x.bin"
    np.arange(6, dtype=np.float32).tofile(path)
    assert mg.from_file(str(path)).shape == torch.from_file(str(path)).shape == (0,)
    assert mg.from_file(str(path), size=4).dtype == mg.get_default_dtype()
    for lib in (mg, torch):
        with pytest.raises(RuntimeError, match="is smaller than the required mapping size"):
            lib.from_file(str(path), False, 10)
        with pytest.raises(RuntimeError, match="unable to open file"):
            lib.from_file(str(tmp_path / "missing.bin"), False, 3)
    for lib, name in ((mg, "m.bin"), (torch, "t.bin")):
        t = lib.from_file(str(tmp_path / name), True, 3, dtype=lib.int16)
        assert t.tolist() == [0, 0, 0]
    assert (tmp_path / "m.bin").read_bytes() == (tmp_path / "t.bin").read_bytes()
    mg.from_file(str(path), True, 10)  # NOTE: a shared mapping grows the file, as PyTorch's
    assert path.stat().st_size == 40


@pytest.mark.parametrize("name, args", [
    ("solve", 2), ("lstsq", 2), ("eig", 1), ("symeig", 1), ("matrix_rank", 1),
])  # fmt: skip
def test_removed_functions_raise_as_torch(name, args):
    a = np.eye(3)
    with pytest.raises(RuntimeError) as want:
        getattr(torch, name)(*[torch.tensor(a)] * args)
    with pytest.raises(RuntimeError) as got:
        getattr(mg, name)(*[mg.tensor(a)] * args)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)
    if name == "matrix_rank":
        assert not hasattr(torch.Tensor, name) and not hasattr(mg.Tensor, name)
        return
    with pytest.raises(RuntimeError) as got_m:
        getattr(mg.tensor(a), name)(*[mg.tensor(a)] * (args - 1))
    assert str(got_m.value) == str(want.value)
    if args == 2:  # NOTE: the methods take the other operand
        with pytest.raises(TypeError):
            getattr(mg.tensor(a), name)()
