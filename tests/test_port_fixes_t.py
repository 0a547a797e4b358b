"""Fixes found by the ports of round t (tests/ports/scripts), each against PyTorch."""

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
        libmod.register_autograd(overload, lambda ctx, g: g * 3 * ctx.x**2,
                                 setup_context=lambda ctx, inputs, output: setattr(ctx, "x", inputs[0]))  # fmt: skip
        x = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
        out = libmod.opcheck(overload, (x,))
        assert set(out.values()) == {"SUCCESS"}
        (g,) = lib.autograd.grad(overload(x).sum(), x)
        results.append(g.tolist())
    assert results[0] == results[1]
