"""The ATen-level helpers, determinism debug mode, symbolic-size classes, torch.types and
torch.utils.hooks, compared with PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import compat

RNG = np.random.default_rng(0)


def _pair(a, grad=False):
    return torch.tensor(a, requires_grad=grad), mg.tensor(a, requires_grad=grad)


def test_max_pool1d_with_indices_matches_torch():
    x = RNG.standard_normal((2, 3, 11)).astype(np.float32)
    tx, mx = _pair(x, True)
    for args in [(3,), (3, 2, 1), (4, 1, 0, 2, True)]:
        tv, ti = torch.max_pool1d_with_indices(tx, *args)
        mv, mi = mg.max_pool1d_with_indices(mx, *args)
        np.testing.assert_allclose(mv.detach().numpy(), tv.detach().numpy())
        np.testing.assert_array_equal(mi.numpy(), ti.numpy())
        tv.sum().backward()
        mv.sum().backward()
        np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("interp", [0, 1, 2])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_grid_sampler_modes_are_atens_integers(interp, pad):
    x = RNG.standard_normal((1, 2, 5, 6)).astype(np.float32)
    g = RNG.uniform(-1.2, 1.2, (1, 4, 3, 2)).astype(np.float32)
    want = torch.grid_sampler(torch.tensor(x), torch.tensor(g), interp, pad, False)
    got = mg.grid_sampler(mg.tensor(x), mg.tensor(g), interp, pad, False)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    got2 = mg.grid_sampler_2d(mg.tensor(x), mg.tensor(g), interp, pad, True)
    want2 = torch.grid_sampler_2d(torch.tensor(x), torch.tensor(g), interp, pad, True)
    np.testing.assert_allclose(got2.numpy(), want2.numpy(), rtol=1e-5, atol=1e-5)


def test_affine_grid_generator_matches_torch():
    theta = RNG.standard_normal((2, 2, 3)).astype(np.float32)
    for ac in (False, True):
        want = torch.affine_grid_generator(torch.tensor(theta), [2, 3, 4, 5], ac)
        got = mg.affine_grid_generator(mg.tensor(theta), [2, 3, 4, 5], ac)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_norm_except_dim_matches_torch(dim):
    v = RNG.standard_normal((3, 4, 5))
    tv, mv = _pair(v, True)
    want, got = torch.norm_except_dim(tv, 2, dim), mg.norm_except_dim(mv, 2, dim)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy())
    want.sum().backward()
    got.sum().backward()
    np.testing.assert_allclose(mv.grad.numpy(), tv.grad.numpy())


def test_embedding_renorm_matches_torch():
    w = RNG.standard_normal((6, 4)) * 2
    idx = np.array([0, 2, 2, 5])
    tw, mw = _pair(w)
    with torch.no_grad():
        out_t = torch.embedding_renorm_(tw, torch.tensor(idx), 1.5, 2.0)
    out_m = mg.embedding_renorm_(mw, mg.tensor(idx), 1.5, 2.0)
    assert out_m is mw and out_t is tw
    np.testing.assert_allclose(mw.numpy(), tw.numpy(), rtol=1e-12)


def test_deterministic_debug_mode_round_trips_as_torch():
    before = mg.get_deterministic_debug_mode()
    try:
        for mode, want in [("warn", 1), (2, 2), ("default", 0), (1, 1), (0, 0)]:
            mg.set_deterministic_debug_mode(mode)
            assert mg.get_deterministic_debug_mode() == want
            assert mg.are_deterministic_algorithms_enabled() == (want != 0)
        with pytest.raises(RuntimeError, match="debug_mode"):
            mg.set_deterministic_debug_mode("loud")
        with pytest.raises(RuntimeError, match="debug_mode"):
            mg.set_deterministic_debug_mode(3)
    finally:
        mg.set_deterministic_debug_mode(before)


def test_sym_classes_exist_for_isinstance_checks():
    for name in ("SymInt", "SymFloat", "SymBool"):
        assert not isinstance(3, getattr(mg, name)) and not isinstance(3, getattr(torch, name))
    with pytest.raises(TypeError, match="plain ints"):
        mg.SymInt(3)


def test_torch_types_and_utils_hooks_import_under_manygrad_run(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(
        "import torch\n"
        "from torch.types import Number, Device, _size, _TensorOrTensors\n"
        "from torch.utils.hooks import RemovableHandle, unserializable_hook\n"
        "m = torch.nn.Linear(2, 2)\n"
        "h = m.register_forward_hook(lambda mod, i, o: None)\n"
        "result = (isinstance(h, RemovableHandle), Number, unserializable_hook(lambda g: g))\n"
    )
    got = compat.run_script(str(path))["result"]
    assert got[0] is True and got[2].__torch_unserializable__ is True


def _type_shape(tp):
    """A comparable form of a type alias: unions as sets, tuples as sequences, tensors and
    type variables by name."""
    import types
    import typing

    if isinstance(tp, typing.TypeVar):
        return "T"
    if tp is type(None):
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return ("union", frozenset(_type_shape(a) for a in args))
    if origin is tuple:
        return ("tuple", tuple(a if a is Ellipsis else _type_shape(a) for a in args))
    return repr(tp)


def test_common_types_match_pytorch():
    import torch.nn.common_types as tct

    import manygrad.nn.common_types as mct

    prefixes = ("_size", "_ratio", "_scalar", "_tensor", "_maybe")
    names = [n for n in dir(tct) if n.startswith(prefixes)]
    assert len(names) > 15
    for n in names:
        assert _type_shape(getattr(mct, n)) == _type_shape(getattr(tct, n)), n


def test_container_replace_batch_norm_and_multithreading():
    import warnings

    import torch

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = mg.nn.Container(a=mg.nn.Linear(2, 2))
    assert any(issubclass(x.category, FutureWarning) for x in w)
    assert [n for n, _ in c.named_children()] == ["a"]
    tm = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    mm = mg.nn.Sequential(mg.nn.Linear(2, 3), mg.nn.BatchNorm1d(3))
    assert torch.func.replace_all_batch_norm_modules_(tm) is tm
    assert mg.func.replace_all_batch_norm_modules_(mm) is mm
    for attr in ("running_mean", "running_var", "num_batches_tracked", "track_running_stats"):
        assert getattr(mm[1], attr) == getattr(tm[1], attr), attr
    mm.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    mm.eval(), tm.eval()  # NOTE: batch statistics even in eval, with no running ones
    np.testing.assert_allclose(mm(mg.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)  # fmt: skip
    t = mg.ones(2)
    assert mg.func.debug_unwrap(t) is t
    from manygrad.compat import torch_autograd as ta

    with ta.set_multithreading_enabled(False):
        assert ta.set_multithreading_enabled._mode[0] is False
    assert ta.set_multithreading_enabled._mode[0] is True
