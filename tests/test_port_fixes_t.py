"""Fixes found by the ports of round t (tests/ports/scripts), each against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.utils.flop_counter import FlopCounterMode

torch = pytest.importorskip("torch")
TorchFlopCounterMode = pytest.importorskip("torch.utils.flop_counter").FlopCounterMode


def _gpt_like(lib):
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.proj = nn.Linear(8, 16), nn.Linear(16, 8)

        def forward(self, x):
            return x + self.proj(self.fc(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.ModuleList([Block() for _ in range(2)])  # never called itself
            self.head = nn.Sequential(nn.Linear(8, 3))

        def forward(self, x):
            for block in self.h:
                x = block(x)
            return self.head(x)

    return GPT()


def test_flop_counter_names_modules_under_an_uncalled_container_by_their_path(device):
    # PyTorch's ModuleTracker names a module's whole subtree when it first enters it, so the
    # blocks of a ModuleList are "GPT.h.0" and "GPT.h.1", counted apart
    def counts(lib, dev):
        model = _gpt_like(lib).to(dev)
        x = lib.ones(4, 8, device=dev)
        with (TorchFlopCounterMode if lib is torch else FlopCounterMode)(display=False) as mode:
            model(x).sum().backward()
        return {m: sum(ops.values()) for m, ops in mode.get_flop_counts().items()}

    want, got = counts(torch, "cpu"), counts(mg, device)
    assert got == want and "GPT.h.1.proj" in got


@pytest.mark.parametrize(
    "name,error",
    [("_check", RuntimeError), ("_check_index", IndexError), ("_check_value", ValueError),
     ("_check_type", TypeError), ("_check_not_implemented", NotImplementedError)],
)  # fmt: skip
def test_torch_check_family_raises_pytorch_errors_and_messages(name, error):
    for lib in (torch, mg):
        check = getattr(lib, name)
        assert check(True) is None and check(2 > 1, lambda: "never built") is None
        with pytest.raises(error, match=r"^shapes differ: 3$"):
            check(False, lambda: f"shapes differ: {3}")
        with pytest.raises(error, match="Expected cond to be True, but got False"):
            check(False)
        with pytest.raises(TypeError, match="cond must be a bool, but got <class 'int'>"):
            check(1)
        with pytest.raises(TypeError, match="message must be a callable"):
            check(False, "text")
        with pytest.raises(TypeError, match="_check_tensor_all"):
            check(lib.tensor(True))


def test_torch_check_tensor_all_and_assert():
    for lib in (torch, mg):
        lib._check_tensor_all(lib.tensor([True, True]))
        with pytest.raises(RuntimeError, match="^bad$"):
            lib._check_tensor_all(lib.tensor([True, False]), lambda: "bad")
        with pytest.raises(TypeError, match="dtype torch.bool"):
            lib._check_tensor_all(lib.tensor([1, 1]))
        lib._assert(True, "fine")
        with pytest.raises(AssertionError, match="^broken$"):
            lib._assert(lib.tensor(False), "broken")


def test_library_functions_take_an_operator_overload_as_pytorch_does():
    import manygrad.library as mlib

    results = []
    for lib, libmod in ((torch, torch.library), (mg, mlib)):
        ns = "portfixt" + ("_torch" if lib is torch else "_mg")

        @libmod.custom_op(f"{ns}::cube", mutates_args=())
        def cube(x: lib.Tensor) -> lib.Tensor:
            return x * x * x

        @cube.register_fake
        def _(x, lib=lib):
            lib._check(x.dim() >= 1, lambda: "cube wants a vector")
            return lib.empty_like(x)

        overload = getattr(torch.ops if lib is torch else mlib.ops, ns).cube.default

        def keep_input(ctx, inputs, output):
            ctx.x = inputs[0]

        libmod.register_autograd(
            overload, lambda ctx, g: g * 3 * ctx.x**2, setup_context=keep_input
        )
        x = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
        out = libmod.opcheck(overload, (x,))
        assert set(out.values()) == {"SUCCESS"}
        (g,) = lib.autograd.grad(overload(x).sum(), x)
        results.append(g.tolist())
    assert results[0] == results[1]


def _pair(x, device, grad=True):
    return torch.tensor(x, requires_grad=grad), mg.tensor(x, device=device, requires_grad=grad)


@pytest.mark.parametrize("pool", ["max3s2", "fractional"])
def test_max_unpool_after_overlapping_windows_writes_each_value_once(device, pool):
    # overlapping windows pick one input position twice; PyTorch's unpool writes its value
    # there once (manygrad added the two copies)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 11, 11)).astype(np.float32)
    s = rng.random((2, 3, 2)).astype(np.float32)
    g = rng.standard_normal((2, 3, 11, 11)).astype(np.float32)
    outs = []
    for lib, xx in zip((torch, mg), _pair(x, device)):
        F = lib.nn.functional  # noqa: N806 - PyTorch's name
        if pool == "max3s2":
            y, i = F.max_pool2d(xx, 3, stride=2, return_indices=True)
            u = F.max_unpool2d(y, i, 3, stride=2, output_size=(11, 11))
        else:
            samples = lib.tensor(s, device=xx.device)
            y, i = F.fractional_max_pool2d(xx, 2, output_ratio=(0.6, 0.6), return_indices=True,
                                           _random_samples=samples)  # fmt: skip
            u = F.max_unpool2d(y, i, 2, output_size=(11, 11))
        u.backward(lib.tensor(g, device=xx.device))
        outs.append((u.detach().cpu().numpy(), xx.grad.cpu().numpy()))
    assert len(np.unique(outs[0][0])) < outs[0][0].size  # duplicates did occur
    np.testing.assert_array_equal(outs[1][0], outs[0][0])
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-6, atol=1e-6)


def test_scatter_along_a_later_dim_is_differentiable_twice(device):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5)).astype(np.float32)
    src = rng.standard_normal((3, 2)).astype(np.float32)
    index = np.array([[4, 0], [1, 2], [3, 3]])
    grads = []
    (xt, xm), (st, sm) = _pair(x, device), _pair(src, device)
    for lib, xx, ss in ((torch, xt, st), (mg, xm, sm)):
        idx = lib.tensor(index, device=xx.device)
        out = lib.zeros(3, 5, device=xx.device).scatter(1, idx, ss * ss) * xx
        (gs,) = lib.autograd.grad(out.pow(2).sum(), ss, create_graph=True)
        (ggs,) = lib.autograd.grad(gs.sin().sum(), ss)
        grads.append((gs.detach().cpu().numpy(), ggs.cpu().numpy()))
    for a, b in zip(grads[1], grads[0]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "fn,shape,kernel,size",
    [("3d", (1, 1, 5, 5, 5), 2, (4, 4, 4)), ("3d", (1, 1, 1, 5, 5), (1, 2, 2), (1, 3, 3)),
     ("3d", (1, 1, 6, 5, 5), 2, (3, 4, 4)), ("3d", (1, 1, 6, 5, 6), 2, (3, 4, 3)),
     ("2d", (1, 1, 6, 5), 2, (3, 5)), ("2d", (1, 1, 5, 5), 2, (5, 5))],
)  # fmt: skip
def test_fractional_max_pool_refuses_the_sizes_pytorch_refuses(fn, shape, kernel, size):
    # PyTorch's 3-d kernel wants output + kernel - 1 strictly below the input (2-d: at most)
    messages = []
    for lib in (torch, mg):
        pool = getattr(lib.nn.functional, f"fractional_max_pool{fn}")
        with pytest.raises(RuntimeError) as err:
            pool(lib.ones(*shape), kernel, output_size=size,
                 _random_samples=lib.rand(1, 1, len(shape) - 2))  # fmt: skip
        messages.append(str(err.value))
    assert messages[1] == messages[0]
    ok = mg.nn.functional.fractional_max_pool3d(
        mg.ones(1, 1, 2, 5, 5), (1, 2, 2), output_size=(1, 3, 3)
    )
    assert tuple(ok.shape) == (1, 1, 1, 3, 3)


@pytest.mark.parametrize("src,dst", [("float64", "float32"), ("float32", "float16"),
                                     ("bfloat16", "float16"), ("complex64", "float32"),
                                     ("float32", "complex64"), ("int64", "float32")])  # fmt: skip
def test_vector_norm_refuses_the_dtypes_pytorch_refuses(src, dst):
    for lib in (torch, mg):
        x = lib.ones(3, dtype=getattr(lib, src))
        with pytest.raises(RuntimeError):
            lib.linalg.vector_norm(x, dtype=getattr(lib, dst))
    with pytest.raises(RuntimeError, match="narrowing|complex|real|int64"):
        mg.linalg.vector_norm(mg.ones(3, dtype=getattr(mg, src)), dtype=getattr(mg, dst))
    ok = mg.linalg.vector_norm(mg.ones(3, dtype=mg.float32), dtype=mg.float64)
    assert ok.dtype is mg.float64 and abs(float(ok) - 3**0.5) < 1e-12
