"""The random-number API as PyTorch 2.13 has it: randint's argument forms, what manual_seed,
seed and the Generator methods return, and RNG states as uint8 tensors that restore a
stream exactly. The streams themselves are manygrad's own, so values are not compared:
shapes, dtypes, return types, errors and reproducibility are."""

import textwrap
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad import backend, compat

torch = pytest.importorskip("torch")

# one line per call form: (args, kwargs) given to both mg.randint and torch.randint, and
# the [low, high) the draws must lie in
RANDINT_FORMS = [
    ((10, (2, 2)), {}, (0, 10)),
    ((2, 10, (2, 2)), {}, (2, 10)),
    ((), {"high": 5, "size": (3,)}, (0, 5)),
    ((), {"low": 2, "high": 5, "size": (3,)}, (2, 5)),
    ((2,), {"high": 5, "size": (3,)}, (2, 5)),
    ((5,), {"size": (4, 1)}, (0, 5)),
    ((5, [3, 2]), {}, (0, 5)),
    ((5, ()), {}, (0, 5)),
    ((5, (0,)), {}, (0, 5)),
    ((-3, 3, (6,)), {}, (-3, 3)),
    ((5, (3,)), {"dtype": "int32"}, (0, 5)),
    ((5, (3,)), {"dtype": "int8"}, (0, 5)),
    ((5, (3,)), {"dtype": "uint8"}, (0, 5)),
    ((2, (3,)), {"dtype": "bool"}, (0, 2)),
    ((5, (3,)), {"dtype": "float32"}, (0, 5)),
    ((5, (3,)), {"dtype": "float64", "requires_grad": True}, (0, 5)),
    ((-(2**63), 2**63 - 1, (2,)), {}, (-(2**63), 2**63 - 1)),
]

# calls PyTorch refuses; manygrad raises the same builtin class (its errors derive from it)
RANDINT_ERRORS = [
    ((5,), {}),
    ((5,), {"size": 3}),
    ((5, 3), {}),
    ((5, 3, 2), {}),
    ((1, 2, 3, 4), {}),
    ((), {}),
    ((), {"size": (3,)}),
    ((), {"low": 2, "size": (3,)}),
    ((5,), {"size": (3,), "low": 1}),
    ((5, "ab"), {}),
    ((5, (3.0,)), {}),
    ((5.5, (3,)), {}),
    ((True, (3,)), {}),
    ((5, 5, (3,)), {}),
    ((6, 5, (3,)), {}),
    ((0, (3,)), {}),
    ((5, (-1,)), {}),
    ((5, (3,)), {"dtype": "bool"}),
    ((300, (3,)), {"dtype": "uint8"}),
    ((-1, 3, (3,)), {"dtype": "uint8"}),
    ((2**40, (3,)), {"dtype": "int32"}),
    ((5, (3,)), {"dtype": "complex64"}),
    ((5, (3,)), {"requires_grad": True}),
    ((-(2**63), 2**63, (3,)), {}),
]


def _kw(lib, kw, device=None):
    out = {k: getattr(lib, v) if k == "dtype" else v for k, v in kw.items()}
    if device is not None:
        out["device"] = device
    return out


def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the oracle's exception class is the answer
        return e
    raise AssertionError("expected an error")


@pytest.mark.parametrize("args,kw,bounds", RANDINT_FORMS, ids=str)
def test_randint_forms_match_torch(args, kw, bounds, device):
    t = torch.randint(*args, **_kw(torch, kw))
    m = mg.randint(*args, **_kw(mg, kw, device))
    assert type(m) is mg.Tensor and tuple(m.shape) == tuple(t.shape)
    assert m.dtype.name == str(t.dtype).removeprefix("torch.")
    assert m.requires_grad == t.requires_grad and m.device == mg.device(device)
    v = [int(x) for x in m.detach().cpu().numpy().ravel().tolist()]
    assert all(bounds[0] <= x < bounds[1] for x in v)


@pytest.mark.parametrize("args,kw", RANDINT_ERRORS, ids=str)
def test_randint_errors_match_torch(args, kw):
    expected = _raised(lambda: torch.randint(*args, **_kw(torch, kw)))
    with pytest.raises(type(expected)):
        mg.randint(*args, **_kw(mg, kw))


def test_randint_messages_name_the_fix():
    with pytest.raises(TypeError, match=r"takes \(high, size\) or \(low, high, size\)"):
        mg.randint(5)
    with pytest.raises(TypeError, match="argument 'size' must be a tuple of ints, not int"):
        mg.randint(5, size=3)
    with pytest.raises(RuntimeError, match="expected low < high, got low=5 >= high=5"):
        mg.randint(5, 5, (3,))
    with pytest.raises(RuntimeError, match=r"out of bounds for uint8 \(\[0, 255\]\)"):
        mg.randint(300, (3,), dtype=mg.uint8)
    with pytest.raises(TypeError, match="float8_e4m3fn"):
        mg.randint(5, (3,), dtype=mg.float8_e4m3fn)


def test_randint_values_cover_the_range(device):
    v = mg.randint(3, 7, (4000,), device=device).cpu().numpy()
    assert sorted(np.unique(v).tolist()) == [3, 4, 5, 6]
    b = mg.randint(2, (400,), dtype=mg.bool, device=device).cpu().numpy()
    assert set(np.unique(b).tolist()) == {False, True}


def test_randint_float_beyond_exact_integers_warns_as_torch():
    with pytest.warns(UserWarning):
        torch.randint(2**25, (3,), dtype=torch.float32)
    with pytest.warns(UserWarning, match=r"2\^24"):
        mg.randint(2**25, (3,), dtype=mg.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.randint(2**24 + 1, (3,), dtype=mg.float32)


def test_randint_generator_dtype_and_out(device):
    g = mg.Generator(device)
    a = mg.randint(100, (5,), generator=g.manual_seed(3), device=device)
    b = mg.randint(100, (5,), generator=g.manual_seed(3), device=device)
    assert a.tolist() == b.tolist()
    o = mg.empty(0, dtype=mg.int32, device=device)
    r = mg.randint(0, 5, (4,), out=o)
    assert r is o and o.shape == (4,) and o.dtype == mg.int32
    if device != "cpu":
        with pytest.raises(mg.errors.DeviceError, match=r"mg.Generator\('fakegpu"):
            mg.randint(5, (3,), generator=mg.Generator(), device=device)
        with pytest.raises(mg.errors.DeviceError, match="the generator draws on cpu"):
            mg.rand(3, generator=mg.Generator(), device=device)


# (args, kwargs) after the input tensor
LIKE_FORMS = [((5,), {}), ((2, 5), {}), ((), {"high": 5}), ((), {"low": 1, "high": 5}),
              ((5,), {"dtype": "int64"}), ((5,), {"requires_grad": True})]  # fmt: skip
LIKE_ERRORS = [((), {"low": 1}), ((), {}), ((5, 5), {}), ((5.5,), {}), ((1, 2, 3), {})]


@pytest.mark.parametrize("args,kw", LIKE_FORMS, ids=str)
def test_randint_like_forms_match_torch(args, kw, device):
    t = torch.randint_like(torch.zeros(2, 3), *args, **_kw(torch, kw))
    m = mg.randint_like(mg.zeros(2, 3, device=device), *args, **_kw(mg, kw))
    assert tuple(m.shape) == tuple(t.shape) and m.dtype.name == str(t.dtype)[6:]
    assert m.requires_grad == t.requires_grad and m.device == mg.device(device)
    g = mg.Generator(device)
    assert mg.randint_like(m, 9, generator=g).device == mg.device(device)


@pytest.mark.parametrize("args,kw", LIKE_ERRORS, ids=str)
def test_randint_like_errors_match_torch(args, kw):
    expected = _raised(lambda: torch.randint_like(torch.zeros(2), *args, **kw))
    with pytest.raises(type(expected)):
        mg.randint_like(mg.zeros(2), *args, **kw)


def test_randint_like_keeps_integer_dtype_and_checks_bounds():
    x = mg.zeros(2, dtype=mg.int32)
    assert mg.randint_like(x, 5).dtype == mg.int32
    with pytest.raises(RuntimeError):
        torch.randint_like(torch.zeros(2, dtype=torch.uint8), 300)
    with pytest.raises(RuntimeError, match="out of bounds for uint8"):
        mg.randint_like(mg.zeros(2, dtype=mg.uint8), 300)


# ------------------------------------------------------------------ seeding
def test_manual_seed_returns_the_default_generator():
    t = torch.manual_seed(0)
    m = mg.manual_seed(0)
    assert t is torch.default_generator and isinstance(t, torch.Generator)
    assert m is mg.default_generator and isinstance(m, mg.Generator)
    assert mg.random.manual_seed(1) is mg.default_generator and mg.initial_seed() == 1
    assert m.initial_seed() == 1


def test_seed_returns_the_seed():
    for lib in (torch, mg):
        s = lib.seed()
        assert type(s) is int and lib.initial_seed() == s
        assert lib.random.seed() == lib.initial_seed()


def test_seeds_wrap_and_convert_as_torch():
    for seed, want in ((-1, 2**64 - 1), (1.5, 1), ("3", 3), (2**64 - 1, 2**64 - 1)):
        torch.manual_seed(seed)
        mg.manual_seed(seed)
        assert mg.initial_seed() == torch.initial_seed() == want
    mg.manual_seed(-1)
    a = mg.rand(3)
    mg.manual_seed(2**64 - 1)
    assert mg.rand(3).tolist() == a.tolist()
    for lib in (torch, mg):
        with pytest.raises(ValueError):
            lib.manual_seed(2**64)
    with pytest.raises(RuntimeError):
        torch.Generator().manual_seed(1.5)
    with pytest.raises(TypeError, match="expected an int seed, got float"):
        mg.Generator().manual_seed(1.5)


def test_generator_methods_return_as_torch(device):
    for lib, dev in ((torch, "cpu"), (mg, device)):
        g = lib.Generator(dev)
        assert g.manual_seed(3) is g and g.initial_seed() == 3
        assert type(g.seed()) is int
        assert g.set_state(g.get_state()) is g
        assert type(g.clone_state()) is type(g)


# ------------------------------------------------------------------ states
def _draws(device="cpu", generator=None):
    kw = {"device": device, "generator": generator}
    return (mg.rand(4, **kw).tolist(), mg.randn(3, **kw).tolist(),
            mg.randint(100, (3,), **kw).tolist(), mg.randperm(5, **kw).tolist())  # fmt: skip


def test_get_rng_state_is_a_uint8_tensor_as_torch():
    t, m = torch.get_rng_state(), mg.get_rng_state()
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1
    assert type(m) is mg.Tensor and m.dtype == mg.uint8 and m.ndim == 1
    assert m.device == mg.device("cpu") and not m.requires_grad
    assert mg.set_rng_state(m) is None and torch.set_rng_state(t) is None
    assert mg.random.get_rng_state().tolist() == m.tolist()


def test_set_rng_state_repeats_the_draws():
    st = mg.get_rng_state()
    before = st.tolist()
    a = _draws()
    assert st.tolist() == before  # a copy, not a live view
    assert mg.get_rng_state().tolist() != before
    mg.set_rng_state(st)
    assert _draws() == a
    x = mg.ones(1000)
    mg.random.set_rng_state(st)
    d = mg.nn.functional.dropout(x, 0.5).tolist()
    mg.random.set_rng_state(st)
    assert mg.nn.functional.dropout(x, 0.5).tolist() == d


def test_generator_state_repeats_the_draws(device):
    g = mg.Generator(device).manual_seed(5)
    st = g.get_state()
    assert st.dtype == mg.uint8 and st.device == mg.device("cpu")
    a = _draws(device, g)
    g.set_state(st)
    assert _draws(device, g) == a
    assert g.initial_seed() == 5
    g.seed()
    g.set_state(st)  # the seed comes back with the position
    assert g.initial_seed() == 5 and _draws(device, g) == a
    g.set_state(st.to(device))  # a state that was moved to the device is fine too
    assert _draws(device, g) == a
    c = g.set_state(st).clone_state()
    assert _draws(device, c) == a


def test_fork_rng_and_the_older_dict_states(device):
    # NOTE: states of older manygrad versions were dicts (NumPy's bit_generator.state);
    # training checkpoints hold them, so set_state still takes them
    gen = backend.generator(backend.device(device))
    old = backend.Generator.get_state(gen)
    assert isinstance(old, dict)
    a = _draws(device)
    gen.set_state(old)
    assert _draws(device) == a
    if device == "cpu":
        mg.set_rng_state(old)
        assert _draws(device) == a
    gen.set_state(old)
    with mg.random.fork_rng():
        mg.rand(5, device=device)
    assert _draws(device) == a  # the forked draws left no trace


def test_state_survives_save_and_load(tmp_path):
    mg.save({"rng": mg.get_rng_state()}, str(tmp_path / "s.pt"))
    a = _draws()
    mg.set_rng_state(mg.load(str(tmp_path / "s.pt"))["rng"])
    assert _draws() == a


def test_bad_states_are_refused_as_torch():
    st = mg.get_rng_state()
    for lib, s in ((torch, torch.get_rng_state()), (mg, st)):
        with pytest.raises(TypeError):
            lib.set_rng_state(s.float())
        with pytest.raises(TypeError):
            lib.set_rng_state([1, 2])
        with pytest.raises(RuntimeError):
            lib.Generator().set_state(s[:10])
    with pytest.raises(RuntimeError, match="not a manygrad generator state"):
        mg.set_rng_state(mg.zeros(5056, dtype=mg.uint8))
    with pytest.raises(TypeError, match="uint8 tensor .* got a float32 tensor"):
        mg.set_rng_state(st.float())


def test_cuda_rng_state_on_the_fake_gpus():
    for dev in ("fakegpu", "fakegpu:1"):
        st = mg.cuda.get_rng_state(dev)
        assert st.dtype == mg.uint8 and st.device == mg.device("cpu")
        a = _draws(dev)
        mg.cuda.set_rng_state(st, dev)
        assert _draws(dev) == a
    g0 = mg.cuda.get_rng_state("fakegpu").tolist()
    assert g0 != mg.cuda.get_rng_state("fakegpu:1").tolist()  # each device its stream


@pytest.mark.skipif(mg.cuda.is_available(), reason="checks the answers without a GPU")
def test_cuda_rng_state_without_a_gpu():
    assert mg.cuda.get_rng_state_all() == []
    with pytest.raises(RuntimeError, match="no usable GPU"):
        mg.cuda.get_rng_state()
    with pytest.raises(RuntimeError, match="no usable GPU"):
        mg.cuda.set_rng_state(mg.get_rng_state())


def test_torch_script_under_compat(tmp_path):
    p = tmp_path / "script.py"
    p.write_text(
        textwrap.dedent("""
        import torch
        g = torch.manual_seed(0)
        st = torch.get_rng_state()
        a = torch.randint(10, (2, 2))
        torch.set_rng_state(st)
        b = torch.randint(high=10, size=(2, 2))
        result = (g is torch.default_generator, st.dtype == torch.uint8,
                  torch.equal(a, b), torch.random.get_rng_state().dtype == torch.uint8)
    """)
    )
    assert compat.run_script(str(p), [])["result"] == (True, True, True, True)
